package run_test

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/logbookhq/logbook/domain/run"
)

func TestParseCogOutputFollowsTheCogProtocol(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		stdout   string
		complete bool
		want     run.Result
	}{
		{"plain lines become a body", "hello\nworld\n", true, run.Result{Value: []byte(`[{"body":["hello","world"]}]`)}},
		{"no output is a null value", "", true, run.Result{}},
		{"a JSON marker makes the rest one value", "JSON\n{\"a\": 1,\n \"b\": [2]}\n", true, run.Result{Value: []byte("{\"a\": 1,\n \"b\": [2]}")}},
		{"lines before the JSON marker are dropped from the value", "noise\nJSON\n[1]\n", true, run.Result{Value: []byte(`[1]`)}},
		{"a template line names the template", "COG_TEMPLATE: table\nx\n", true, run.Result{Value: []byte(`[{"body":["x"]}]`), Template: "table"}},
		{"log lines become logs with their level", "COGCMD_DEBUG: d\nCOGCMD_INFO: i\nCOGCMD_WARN:w\nCOGCMD_ERROR: e \n", true, run.Result{Logs: []run.LogLine{{"debug", "d"}, {"info", "i"}, {"warn", "w"}, {"error", "e"}}}},
		{"an abort action aborts", "COGCMD_ACTION: abort\nbye\n", true, run.Result{Value: []byte(`[{"body":["bye"]}]`), Aborted: true}},
		{"protocol lines count inside JSON mode", "JSON\n{\"a\":\nCOGCMD_INFO: mid\n1}\n", true, run.Result{Value: []byte("{\"a\":\n1}"), Logs: []run.LogLine{{"info", "mid"}}}},
		{"carriage returns are dropped", "a\r\nb\r\n", true, run.Result{Value: []byte(`[{"body":["a","b"]}]`)}},
		{"a cut JSON value in cut output is absent", "JSON\n{\"a\": [1, 2", false, run.Result{Truncated: true}},
		{"cut output ends at its last whole line", "one\ntwo\nthre", false, run.Result{Value: []byte(`[{"body":["one","two"]}]`), Truncated: true}},
		{"cut output of one line keeps its start", "a very long li", false, run.Result{Value: []byte(`[{"body":["a very long li"]}]`), Truncated: true}},
		{"cut output at a line's end keeps every line", "one\ntwo\n", false, run.Result{Value: []byte(`[{"body":["one","two"]}]`), Truncated: true}},
		{"invalid UTF-8 in the body is replaced", "\xff\n", true, run.Result{Value: []byte(`[{"body":["\ufffd"]}]`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := run.ParseCogOutput([]byte(tt.stdout), tt.complete)
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v (value %s)\nwant %+v (value %s)", got, got.Value, tt.want, tt.want.Value)
			}
		})
	}
}

func TestParseCogOutputLocatesBadJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		stdout    string
		line, col int
	}{
		{"a syntax error points at the bad byte", "hi\nJSON\n{\"a\": 1,\n  x}\n", 4, 3},
		{"a second value points at it", "JSON\n[1]\n[2]\n", 3, 1},
		{"nothing after the marker points past it", "JSON\n", 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := run.ParseCogOutput([]byte(tt.stdout), true)
			var oe *run.OutputError
			if !errors.As(err, &oe) || !errors.Is(err, run.ErrBadJSONOutput) {
				t.Fatalf("error = %v, want an OutputError of kind ErrBadJSONOutput", err)
			}
			if oe.Line != tt.line || oe.Column != tt.col {
				t.Fatalf("position = line %d col %d, want line %d col %d (%v)", oe.Line, oe.Column, tt.line, tt.col, err)
			}
		})
	}
}

func TestCogEnvCarriesArgsOptionsAndContext(t *testing.T) {
	t.Parallel()
	env := run.CogEnv("run1", run.RunRequested{
		Bundle: "ops", Command: "deploy",
		Args:       []string{"prod", "v1.2"},
		Options:    map[string]any{"force": true, "tags": []any{"a", 2.0}, "max-wait": 30.0},
		Invocation: run.Invocation{Room: "#ops", ChatHandle: "alice", Username: "alice", PipelineID: "p1", Last: true},
	})
	want := []string{
		"COG_ARGC=2", "COG_ARGV_0=prod", "COG_ARGV_1=v1.2", "COG_BUNDLE=ops", "COG_CHAT_HANDLE=alice",
		"COG_COMMAND=deploy", "COG_INVOCATION_ID=run1", "COG_INVOCATION_STEP=last",
		"COG_OPTS=force,max-wait,tags", "COG_OPT_FORCE=true", "COG_OPT_MAX_WAIT=30",
		"COG_OPT_TAGS_0=a", "COG_OPT_TAGS_1=2", "COG_OPT_TAGS_COUNT=2",
		"COG_PIPELINE_ID=p1", "COG_ROOM=#ops", "COG_USERNAME=alice",
	}
	if !slices.Equal(env, want) {
		t.Fatalf("env =\n%q\nwant\n%q", env, want)
	}
}

func FuzzParseCogOutput(f *testing.F) {
	f.Add([]byte("hello\nJSON\n{\"a\":1}\n"), true)
	f.Add([]byte("COG_TEMPLATE: x\nCOGCMD_ACTION: abort\n"), false)
	f.Fuzz(func(t *testing.T, stdout []byte, complete bool) {
		res, err := run.ParseCogOutput(stdout, complete)
		if err != nil {
			var oe *run.OutputError
			if !errors.As(err, &oe) || oe.Line < 1 || oe.Column < 1 {
				t.Fatalf("error %v has no position", err)
			}
			return
		}
		if res.Value != nil && !jsonValid(res.Value) {
			t.Fatalf("value %q is not JSON", res.Value)
		}
	})
}
