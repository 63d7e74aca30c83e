package dispatch

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
)

// execute runs a builtin invocation as the runner would and returns its
// reply text, or the failure reason.
func execute(t *testing.T, facts *StaticFacts, handle, username string, args ...string) (string, bool) {
	t.Helper()
	req := run.RunRequested{Bundle: BuiltinBundle, Command: args[0], Args: args[1:], Mode: ModeBuiltin,
		Invocation: run.Invocation{Room: "general", ChatHandle: handle, Username: username}}
	events := facts.Builtins().Execute(t.Context(), req, "r1", facts, time.Now()).Events
	switch e := events[len(events)-1].(type) {
	case run.RunSucceeded:
		return renderOutput(e.Result.Value), true
	case run.RunFailed:
		return e.Reason, false
	default:
		t.Fatalf("Execute returned %T", e)
		return "", false
	}
}

func TestTheBuiltinsAnswerFromTheFacts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		args     []string
		ok       bool
		contains []string
	}{
		{"echo joins its arguments", []string{"echo", "hello", "big", "world"}, true, []string{"hello big world"}},
		{"help lists the builtins and every enabled bundle's commands", []string{"help"}, true,
			[]string{"logbook:echo - Repeats its arguments.", "ops 1.2.0:", "ops:deploy - Deploy a service", "web:page - Page someone"}},
		{"help for a command shows its usage from its options", []string{"help", "ops:deploy"}, true,
			[]string{"ops:deploy - Deploy a service", "Usage: ops:deploy [OPTIONS] <env>", "-r, --region STRING  Where to deploy"}},
		{"help for a builtin shows its usage", []string{"help", "which"}, true, []string{"Usage: which COMMAND"}},
		{"help for an ambiguous name says so", []string{"help", "status"}, false, []string{"ambiguous"}},
		{"which names the bundle of a bare name", []string{"which", "deploy"}, true, []string{"deploy is ops:deploy (bundle ops 1.2.0)"}},
		{"which names a builtin", []string{"which", "echo"}, true, []string{"echo is the builtin logbook:echo"}},
		{"which of an ambiguous name names the candidates", []string{"which", "status"}, false, []string{"ops:status or web:status"}},
		{"which of an unknown name suggests the closest", []string{"which", "dploy"}, false, []string{"did you mean deploy?"}},
		{"which needs exactly one name", []string{"which"}, false, []string{"usage: which COMMAND"}},
		{"whoami shows the user's handles and groups", []string{"whoami"}, true,
			[]string{"You are alice.", "Email: alice@example.com", "Chat handles: slack: U1", "Groups: ops"}},
		{"a name that is no builtin fails the run", []string{"history"}, false, []string{"logbook:history is not a builtin command"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			text, ok := execute(t, newTestFacts(t), "U1", "alice", tc.args...)
			if ok != tc.ok {
				t.Fatalf("succeeded %v, want %v: %s", ok, tc.ok, text)
			}
			for _, c := range tc.contains {
				if !strings.Contains(text, c) {
					t.Fatalf("%q does not contain %q", text, c)
				}
			}
		})
	}
}

func TestABuiltinRunsThroughTheWholeRequest(t *testing.T) {
	t.Parallel()
	s, id := started(t, "U2", "echo hi there > #ops")
	events := s.facts.Builtins().Execute(t.Context(), s.last.Runs[0].Request, s.last.Runs[0].RunID, s.facts, time.Now()).Events
	done := s.then(RunEvent{RunID: RunID(id, 0, 0), Event: events[len(events)-1]})
	wantTypes(t, done, "RequestCompleted")
	if reply := wantReply(t, done, "hi there"); reply.To[0].Name != "ops" {
		t.Fatalf("reply %+v", reply)
	}
}

func TestTheBuiltinRegistryIsExtensible(t *testing.T) {
	t.Parallel()
	ping, err := NewBuiltin("ping", "Answers pong.", "ping", []string{"must have site:ping"}, func(BuiltinCall) (run.Result, error) {
		return BodyResult("pong"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fail, err := NewBuiltin("fail", "Always fails.", "fail", []string{"allow"}, func(BuiltinCall) (run.Result, error) {
		return run.Result{}, errors.New("it went wrong")
	})
	if err != nil {
		t.Fatal(err)
	}
	facts := newTestFacts(t)
	facts.BuiltinSet = DefaultBuiltins().With(ping, fail)
	if _, ok := DefaultBuiltins()["ping"]; ok {
		t.Fatal("With changed the registry it was called on")
	}
	if text, ok := execute(t, facts, "U1", "alice", "ping"); !ok || text != "pong" {
		t.Fatalf("ping: %q %v", text, ok)
	}
	if text, ok := execute(t, facts, "U1", "alice", "fail"); ok || text != "it went wrong" {
		t.Fatalf("fail: %q %v", text, ok)
	}
	s := given(t).withFacts(func(f *StaticFacts) { f.BuiltinSet = facts.BuiltinSet })
	d := s.then(received("U1", "ping"))
	wantTypes(t, d, "IdentityResolved PipelineParsed PermissionChecked RequestDenied")
	wantReply(t, d, "missing permission site:ping")
}

func TestABuiltinWithABadRuleOrNoFunctionIsRefused(t *testing.T) {
	t.Parallel()
	var de *Error
	if _, err := NewBuiltin("x", "", "", []string{"must have nonsense"}, func(BuiltinCall) (run.Result, error) { return run.Result{}, nil }); !errors.As(err, &de) || de.Kind != KindBadBuiltin {
		t.Fatalf("bad rule: %v", err)
	}
	if _, err := NewBuiltin("x", "", "", nil, nil); !errors.As(err, &de) || de.Kind != KindBadBuiltin {
		t.Fatalf("no function: %v", err)
	}
}

func TestTheNewEventTypesAreRegistered(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"InvocationChecked", "PipelineParsed"} {
		found := false
		for _, registered := range domain.RegisteredTypes() {
			found = found || registered == name
		}
		if !found {
			t.Fatalf("%s is not registered", name)
		}
	}
}

// builtinRun executes one builtin as the runner does and checks that its
// events, after the RunRequested, keep the run lifecycle's rules.
func builtinRun(t *testing.T, facts Facts, at time.Time, args ...string) []domain.Payload {
	t.Helper()
	req := run.RunRequested{Bundle: BuiltinBundle, Command: args[0], Args: args[1:], Mode: ModeBuiltin,
		Invocation: run.Invocation{Room: "general", ChatHandle: "U1", Username: "alice"}}
	events := facts.Builtins().Execute(t.Context(), req, "r1", facts, at).Events
	state := run.Fold([]domain.Payload{req})
	for _, e := range events {
		accepted, err := run.Decide(state, e)
		if err != nil || len(accepted) != 1 {
			t.Fatalf("the run lifecycle refuses %s after %+v: %v", e.EventType(), state, err)
		}
		state = run.Evolve(state, e)
	}
	if !state.Finished() {
		t.Fatalf("the builtin run did not end: %+v", state)
	}
	return events
}

func TestABuiltinRunRecordsItsOutputBeforeItsEnd(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	facts := newTestFacts(t)
	t.Run("given echo hello, its stdout is hello and a newline, then it succeeds", func(t *testing.T) {
		events := builtinRun(t, facts, at, "echo", "hello")
		if len(events) != 2 {
			t.Fatalf("events %+v, want one chunk and the end", events)
		}
		chunk, ok := events[0].(run.OutputChunk)
		if !ok || chunk.Seq != 0 || chunk.Stream != run.Stdout || string(chunk.Bytes) != "hello\n" || !chunk.At.Equal(at) {
			t.Fatalf("first event %+v, want stdout chunk 0 \"hello\\n\" at %v", events[0], at)
		}
		if _, ok := events[1].(run.RunSucceeded); !ok {
			t.Fatalf("last event %T, want RunSucceeded", events[1])
		}
	})
	t.Run("given a failing builtin, its output is the error, then it fails", func(t *testing.T) {
		events := builtinRun(t, facts, at, "which")
		if chunk, ok := events[0].(run.OutputChunk); !ok || string(chunk.Bytes) != "which takes one command name; usage: which COMMAND\n" {
			t.Fatalf("first event %+v, want the usage error on stdout", events[0])
		}
		if failed, ok := events[1].(run.RunFailed); !ok || failed.Reason != "which takes one command name; usage: which COMMAND" {
			t.Fatalf("last event %+v, want RunFailed", events[1])
		}
	})
	t.Run("given a name that is no builtin, nothing was printed and the run fails", func(t *testing.T) {
		events := builtinRun(t, facts, at, "nonesuch")
		if len(events) != 1 {
			t.Fatalf("events %+v, want only RunFailed", events)
		}
	})
	t.Run("given more output than a chunk holds, it is split in numbered chunks that add up", func(t *testing.T) {
		long := strings.Repeat("x", BuiltinChunkBytes)
		events := builtinRun(t, facts, at, "echo", long, long)
		var joined []byte
		for i, e := range events[:len(events)-1] {
			chunk := e.(run.OutputChunk)
			if chunk.Seq != int64(i) || len(chunk.Bytes) > BuiltinChunkBytes {
				t.Fatalf("chunk %d: seq %d, %d bytes", i, chunk.Seq, len(chunk.Bytes))
			}
			joined = append(joined, chunk.Bytes...)
		}
		if want := long + " " + long + "\n"; string(joined) != want || len(events) != 4 {
			t.Fatalf("%d events, %d bytes of output, want 3 chunks of %d bytes", len(events), len(joined), len(want))
		}
	})
}

func TestCogStdoutParsesBackToTheResult(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		result run.Result
		stdout string
	}{
		{"body lines are printed as lines", BodyResult("one", "", "three"), "one\n\nthree\n"},
		{"an empty body prints nothing", BodyResult(), ""},
		{"no value prints nothing", run.Result{}, ""},
		{"a value that is not a body is JSON", run.Result{Value: json.RawMessage(`{"a":1}`)}, "JSON\n{\"a\":1}\n"},
		{"a body line reading as the JSON marker makes it JSON", BodyResult("JSON"), "JSON\n[{\"body\":[\"JSON\"]}]\n"},
		{"a body line reading as a protocol line makes it JSON", BodyResult("COGCMD_ACTION: abort"), "JSON\n[{\"body\":[\"COGCMD_ACTION: abort\"]}]\n"},
		{"template, logs and abort come first", run.Result{Template: "t", Logs: []run.LogLine{{Level: "info", Message: "m"}}, Aborted: true, Value: BodyResult("x").Value},
			"COG_TEMPLATE: t\nCOGCMD_INFO: m\nCOGCMD_ACTION: abort\nx\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdout := CogStdout(tc.result)
			if string(stdout) != tc.stdout {
				t.Fatalf("stdout %q, want %q", stdout, tc.stdout)
			}
			assertParsesBack(t, tc.result, stdout)
		})
	}
}

// assertParsesBack checks that run.ParseCogOutput reads stdout as res.
func assertParsesBack(t *testing.T, res run.Result, stdout []byte) {
	t.Helper()
	got, err := run.ParseCogOutput(stdout, true)
	if err != nil {
		t.Fatalf("%q does not parse: %v", stdout, err)
	}
	if got.Template != res.Template || got.Aborted != res.Aborted || len(got.Logs) != len(res.Logs) {
		t.Fatalf("parsed %+v from %q, want %+v", got, stdout, res)
	}
	want := res.Value
	if lines, ok := bodyLines(bytes.TrimSpace(want)); ok && len(lines) == 0 {
		want = nil // an empty body prints nothing, which reads back as no value
	}
	if !sameJSON(got.Value, want) {
		t.Fatalf("parsed value %s from %q, want %s", got.Value, stdout, want)
	}
}

func sameJSON(a, b json.RawMessage) bool {
	if len(bytes.TrimSpace(a)) == 0 || len(bytes.TrimSpace(b)) == 0 {
		return len(bytes.TrimSpace(a)) == len(bytes.TrimSpace(b))
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func TestABuiltinsChangesAreKeptOnlyWhenItSucceeds(t *testing.T) {
	t.Parallel()
	var sawRunID string
	note := func(fail bool) func(BuiltinCall) (run.Result, error) {
		return func(c BuiltinCall) (run.Result, error) {
			sawRunID = c.RunID
			c.Record(Change{Stream: "note-1", Expected: eventstore.NoStream, Events: []domain.Payload{AliasCreated{Owner: "o", Name: "a", Pipeline: "echo"}}})
			c.Record(Change{Stream: "note-1", Expected: eventstore.Exact(7), Events: []domain.Payload{AliasDeleted{Owner: "o", Name: "a"}}})
			c.Record(Change{Stream: "note-2", Expected: eventstore.Any, Events: []domain.Payload{AliasDeleted{Owner: "o", Name: "b"}}})
			if fail {
				return run.Result{}, errors.New("it went wrong after recording")
			}
			return BodyResult("noted"), nil
		}
	}
	ok, err := NewBuiltin("note", "", "note", []string{"allow"}, note(false))
	if err != nil {
		t.Fatal(err)
	}
	bad, err := NewBuiltin("badnote", "", "badnote", []string{"allow"}, note(true))
	if err != nil {
		t.Fatal(err)
	}
	facts := newTestFacts(t)
	facts.BuiltinSet = DefaultBuiltins().With(ok, bad)
	req := run.RunRequested{Bundle: BuiltinBundle, Command: "note", Mode: ModeBuiltin}

	t.Run("given a builtin that records and succeeds, its changes come with its end, merged by stream", func(t *testing.T) {
		out := facts.Builtins().Execute(t.Context(), req, "run-7", facts, time.Now())
		if sawRunID != "run-7" {
			t.Fatalf("the builtin saw run id %q", sawRunID)
		}
		if len(out.Changes) != 2 || out.Changes[0].Stream != "note-1" || len(out.Changes[0].Events) != 2 || out.Changes[0].Expected != eventstore.NoStream {
			t.Fatalf("changes = %+v, want note-1's two events expecting no stream, then note-2", out.Changes)
		}
		if _, ok := out.Events[len(out.Events)-1].(run.RunSucceeded); !ok {
			t.Fatalf("events = %+v", out.Events)
		}
	})
	t.Run("given a builtin that records and then fails, nothing it recorded is kept", func(t *testing.T) {
		req.Command = "badnote"
		out := facts.Builtins().Execute(t.Context(), req, "run-8", facts, time.Now())
		if len(out.Changes) != 0 {
			t.Fatalf("a failed run kept changes %+v", out.Changes)
		}
		if failed, ok := out.Events[len(out.Events)-1].(run.RunFailed); !ok || failed.Reason != "it went wrong after recording" {
			t.Fatalf("events = %+v", out.Events)
		}
	})
}
