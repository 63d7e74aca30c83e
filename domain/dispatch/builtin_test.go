package dispatch

import (
	"errors"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/run"
)

// execute runs a builtin invocation as the runner would and returns its
// reply text, or the failure reason.
func execute(t *testing.T, facts *StaticFacts, handle, username string, args ...string) (string, bool) {
	t.Helper()
	req := run.RunRequested{Bundle: BuiltinBundle, Command: args[0], Args: args[1:], Mode: ModeBuiltin,
		Invocation: run.Invocation{Room: "general", ChatHandle: handle, Username: username}}
	switch e := facts.Builtins().Execute(req, facts).(type) {
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
	outcome := s.facts.Builtins().Execute(s.last.Runs[0].Request, s.facts)
	done := s.then(RunEvent{RunID: RunID(id, 0, 0), Event: outcome})
	wantTypes(t, done, "RequestCompleted")
	if reply := wantReply(t, done, "hi there"); reply.To[0].Name != "ops" {
		t.Fatalf("reply %+v", reply)
	}
}

func TestTheBuiltinRegistryIsExtensible(t *testing.T) {
	t.Parallel()
	ping, err := NewBuiltin("ping", "Answers pong.", "ping", []string{"must have site:ping"}, func(BuiltinCall) (run.Result, error) {
		return bodyResult("pong"), nil
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
