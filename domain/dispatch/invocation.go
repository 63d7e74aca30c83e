package dispatch

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/logbookhq/logbook/domain/pipeline"
	"github.com/logbookhq/logbook/domain/rules"
)

// StageInvocation turns a parsed stage into what the rules evaluate: typed
// argument values and options by name (a repeated option as a list). The
// command is the stage's full name as written; a stage written bare gets
// the full name it resolves to from the caller (see Invocation.Command).
// Variables not yet bound appear as their text ("$x").
func StageInvocation(stage pipeline.Stage) rules.Invocation {
	command := stage.Name
	if stage.Bundle != "" {
		command = stage.Bundle + ":" + stage.Name
	}
	inv := rules.Invocation{Command: command, Options: map[string]any{}}
	for _, a := range stage.Args {
		inv.Args = append(inv.Args, a.Literal())
	}
	names := make([]string, 0, len(stage.Options))
	for name := range stage.Options {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		inv.Options[strings.TrimLeft(name, "-")] = stage.Options[name].Literal()
	}
	return inv
}

// argText writes a bound value as a command argument (COG_ARGV_<n>):
// strings as they are, numbers and booleans as written, null as "", lists
// and objects as compact JSON.
func argText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}
