package run

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// MaxResultBytes bounds how much of a command's stdout is parsed into its
// Result. Output beyond it is still recorded as OutputChunks (up to the
// run's output cap) but not parsed, and the Result says Truncated. At most
// 6x this (every byte a \u00XX escape) lands in the terminal event, well
// under the store's 4 MiB event limit.
const MaxResultBytes = 256 << 10

// CogEnv is the Cog command protocol's environment for a run, as sorted
// KEY=VALUE pairs: COG_BUNDLE, COG_COMMAND, COG_ARGC, COG_ARGV_<n>, COG_OPTS,
// COG_OPT_<NAME> (lists as COG_OPT_<NAME>_COUNT and COG_OPT_<NAME>_<i>),
// COG_ROOM, COG_CHAT_HANDLE, COG_USERNAME, COG_PIPELINE_ID,
// COG_INVOCATION_ID and COG_INVOCATION_STEP ("first" or "last"; a
// single-stage pipeline's only stage is "first").
func CogEnv(runID string, r RunRequested) []string {
	env := map[string]string{
		"COG_BUNDLE":        r.Bundle,
		"COG_COMMAND":       r.Command,
		"COG_ARGC":          strconv.Itoa(len(r.Args)),
		"COG_INVOCATION_ID": runID,
	}
	for i, a := range r.Args {
		env["COG_ARGV_"+strconv.Itoa(i)] = a
	}
	names := make([]string, 0, len(r.Options))
	for name := range r.Options {
		names = append(names, name)
	}
	sort.Strings(names)
	env["COG_OPTS"] = strings.Join(names, ",")
	for _, name := range names {
		key := "COG_OPT_" + cogEnvName(name)
		if list, ok := r.Options[name].([]any); ok {
			env[key+"_COUNT"] = strconv.Itoa(len(list))
			for i, v := range list {
				env[key+"_"+strconv.Itoa(i)] = cogValue(v)
			}
			continue
		}
		env[key] = cogValue(r.Options[name])
	}
	set := func(k, v string) {
		if v != "" {
			env[k] = v
		}
	}
	set("COG_ROOM", r.Invocation.Room)
	set("COG_CHAT_HANDLE", r.Invocation.ChatHandle)
	set("COG_USERNAME", r.Invocation.Username)
	set("COG_PIPELINE_ID", r.Invocation.PipelineID)
	switch {
	case r.Invocation.First:
		env["COG_INVOCATION_STEP"] = "first"
	case r.Invocation.Last:
		env["COG_INVOCATION_STEP"] = "last"
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// cogEnvName upper-cases an option name and replaces what an environment
// variable name cannot hold with '_'.
func cogEnvName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(name) {
		if r == '_' || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func cogValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
}

// ErrBadJSONOutput is the kind of a command whose output after the JSON
// marker line is not one JSON value.
var ErrBadJSONOutput = errors.New("output after the JSON marker is not one JSON value")

// OutputError locates what was wrong in a command's output: Line is the
// 1-based stdout line, Column the 1-based byte column within it.
type OutputError struct {
	Kind   error
	Line   int
	Column int
	Detail string
}

func (e *OutputError) Error() string {
	return fmt.Sprintf("stdout line %d, column %d: %v (%s)", e.Line, e.Column, e.Kind, e.Detail)
}

func (e *OutputError) Unwrap() error { return e.Kind }

// Log levels of COGCMD_<LEVEL>: lines.
var cogLogPrefixes = []struct{ prefix, level string }{
	{"COGCMD_DEBUG:", "debug"},
	{"COGCMD_INFO:", "info"},
	{"COGCMD_WARN:", "warn"},
	{"COGCMD_ERROR:", "error"},
}

// ParseCogOutput reads a command's stdout by the Cog protocol. Protocol lines
// are recognised anywhere (none of them can be part of a JSON value):
// COGCMD_DEBUG|INFO|WARN|ERROR: become Logs, "COGCMD_ACTION: abort" sets
// Aborted, "COG_TEMPLATE: name" sets Template. A line "JSON" makes the rest of
// stdout one JSON value; otherwise the remaining lines become
// [{"body": [lines]}], and no lines at all become a null Value. complete is
// false when stdout was cut short (at MaxResultBytes or the output cap): the
// Result says Truncated, a line cut in two is left out (unless it is the
// only one), and a cut JSON value is not an error, just absent.
// Lines are split on "\n" with a trailing "\r" dropped; invalid UTF-8 in body
// lines becomes U+FFFD (the exact bytes are in the run's OutputChunks).
func ParseCogOutput(stdout []byte, complete bool) (Result, error) {
	res := Result{Truncated: !complete}
	if !complete {
		// Output cut mid-line ends at its last whole line, so a reply
		// never ends in half a line; a single line cut stays as it is.
		if i := bytes.LastIndexByte(stdout, '\n'); i >= 0 {
			stdout = stdout[:i+1]
		}
	}
	var body []string
	var jsonText [][]byte
	jsonMode, jsonLine := false, 0
	lineNo := 0
	for rest := stdout; len(rest) > 0; {
		var line []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			line, rest = rest, nil
		}
		lineNo++
		line = bytes.TrimSuffix(line, []byte("\r"))
		if handled := parseCogProtocolLine(&res, line); handled {
			continue
		}
		switch {
		case jsonMode:
			jsonText = append(jsonText, line)
		case string(bytes.TrimSpace(line)) == "JSON":
			jsonMode, jsonLine = true, lineNo
		default:
			body = append(body, string(line))
		}
	}
	if jsonMode {
		value := bytes.TrimSpace(bytes.Join(jsonText, []byte("\n")))
		if err := checkOneJSONValue(value); err != nil {
			if !complete {
				return res, nil
			}
			line, col := jsonErrorPosition(jsonText, err)
			return res, &OutputError{Kind: ErrBadJSONOutput, Line: jsonLine + line, Column: col, Detail: err.Error()}
		}
		res.Value = json.RawMessage(value)
		return res, nil
	}
	if len(body) > 0 {
		v, _ := json.Marshal([]map[string][]string{{"body": body}}) // strings always marshal
		res.Value = v
	}
	return res, nil
}

func parseCogProtocolLine(res *Result, line []byte) bool {
	if !bytes.HasPrefix(line, []byte("COG")) {
		return false
	}
	s := string(line)
	for _, p := range cogLogPrefixes {
		if msg, ok := strings.CutPrefix(s, p.prefix); ok {
			res.Logs = append(res.Logs, LogLine{Level: p.level, Message: strings.TrimSpace(msg)})
			return true
		}
	}
	if action, ok := strings.CutPrefix(s, "COGCMD_ACTION:"); ok {
		if strings.TrimSpace(action) == "abort" {
			res.Aborted = true
		}
		return true
	}
	if name, ok := strings.CutPrefix(s, "COG_TEMPLATE:"); ok {
		res.Template = strings.TrimSpace(name)
		return true
	}
	return false
}

// errEmptyJSON: a JSON marker followed by nothing.
var errEmptyJSON = errors.New("nothing follows the JSON marker")

func checkOneJSONValue(b []byte) error {
	if len(b) == 0 {
		return errEmptyJSON
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return err
	}
	if off := dec.InputOffset(); int(off) < len(b) {
		// InputOffset is just past the value; point at what follows it.
		rest := b[off:]
		skip := len(rest) - len(bytes.TrimLeft(rest, " \t\r\n"))
		return &trailingDataError{offset: off + int64(skip)}
	}
	return nil
}

type trailingDataError struct{ offset int64 }

func (e *trailingDataError) Error() string {
	return "a second value follows the first; expected exactly one JSON value"
}

// jsonErrorPosition turns a decoder error's byte offset into a 1-based line
// (relative to the JSON marker) and column.
func jsonErrorPosition(lines [][]byte, err error) (line, col int) {
	var syn *json.SyntaxError
	var trailing *trailingDataError
	offset := int64(-1)
	switch {
	case errors.As(err, &syn):
		offset = max(syn.Offset-1, 0) // Offset counts the offending byte
	case errors.As(err, &trailing):
		offset = trailing.offset
	}
	// The value was trimmed before decoding; count from its first byte.
	joined := bytes.Join(lines, []byte("\n"))
	lead := len(joined) - len(bytes.TrimLeft(joined, " \t\r\n"))
	pos := lead
	if offset >= 0 {
		pos += int(offset)
	} else {
		pos = len(bytes.TrimRight(joined, " \t\r\n"))
	}
	if pos > len(joined) {
		pos = len(joined)
	}
	line = 1 + bytes.Count(joined[:pos], []byte("\n"))
	col = pos - bytes.LastIndexByte(joined[:pos], '\n')
	return line, col
}
