package pipeline_test

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/pipeline"
)

// variable and template mark values that are not yet bound, so a test can
// tell $body (a variable) from '$body' (text).
type (
	variable string
	template string
)

// stageWant is a stage as a test states it: options and args as plain
// values (string, int64, float64, bool, variable, template, []any for a
// repeated option).
type stageWant struct {
	cmd    string
	bundle string
	name   string
	args   []any
	opts   map[string]any
}

func plainValue(v pipeline.Value) any {
	switch v.Kind {
	case pipeline.KindVariable:
		return variable(v.Var.String())
	case pipeline.KindTemplate:
		return template(v.Literal().(string))
	case pipeline.KindList:
		items := make([]any, len(v.Items))
		for i, item := range v.Items {
			items[i] = plainValue(item)
		}
		return items
	default:
		return v.Literal()
	}
}

func plainStage(st pipeline.Stage) stageWant {
	got := stageWant{cmd: st.Command, bundle: st.Bundle, name: st.Name}
	for _, a := range st.Args {
		got.args = append(got.args, plainValue(a))
	}
	if len(st.Options) > 0 {
		got.opts = map[string]any{}
		for name, v := range st.Options {
			got.opts[name] = plainValue(v)
		}
	}
	return got
}

// checkStages compares stages with what the test expects; a want with an
// empty bundle and name is filled from its command.
func checkStages(t *testing.T, got []pipeline.Stage, want []stageWant) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d stages, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		w := want[i]
		if w.name == "" {
			w.bundle, w.name, _ = strings.Cut(w.cmd, ":")
			if w.name == "" {
				w.bundle, w.name = "", w.cmd
			}
		}
		g := plainStage(got[i])
		if !reflect.DeepEqual(g, w) {
			t.Errorf("stage %d:\n got %s\nwant %s", i+1, describeStage(g), describeStage(w))
		}
	}
}

func describeStage(s stageWant) string {
	keys := make([]string, 0, len(s.opts))
	for k := range s.opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var opts []string
	for _, k := range keys {
		opts = append(opts, fmt.Sprintf("%s=%#v", k, s.opts[k]))
	}
	return fmt.Sprintf("{cmd %q bundle %q name %q args %#v opts [%s]}", s.cmd, s.bundle, s.name, s.args, strings.Join(opts, " "))
}

func targets(rs []pipeline.Redirect) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Target)
	}
	return out
}
