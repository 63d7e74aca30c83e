package dispatch

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
)

// pendingWorld is the approval world where alice's "rel:prod db" (id
// 0190aaaa-...) awaits two approvals, bob's first already counted, and
// erin's "rel:prod web" (0190bbbb-...) awaits one.
func pendingWorld(t *testing.T) *StaticFacts {
	t.Helper()
	f := relFacts(t)
	mk := func(id, requester, name, text string, needed int) Approval {
		return FoldApproval(Approval{RequestID: id}, ApprovalRequested{
			Requirements: []ApprovalRequirement{{Permission: "rel:approver", Needed: needed, Stages: []int{0}}},
			Text:         text, Requester: requester, RequesterName: name, Approvers: []string{"bob", "dave"},
			ExpiresAt: t0.Add(DefaultApprovalTTL),
		})
	}
	db := mk("0190aaaa-1111-7000-8000-000000000001", "u-alice", "alice", "rel:prod db", 2)
	db = FoldApproval(db, ApprovalGranted{User: "u-bob", Username: "bob", Via: "x", Permissions: []string{"rel:approver"}})
	f.Pending = []Approval{db, mk("0190bbbb-2222-7000-8000-000000000002", "u-erin", "erin", "rel:prod web", 1)}
	return f
}

// answer runs approve or reject as username at t0+1m and returns the run's
// outcome: its reply text or failure, and the changes it recorded.
func answerRun(t *testing.T, f *StaticFacts, username string, args ...string) (string, bool, []Change) {
	t.Helper()
	req := run.RunRequested{Bundle: BuiltinBundle, Command: args[0], Args: args[1:], Mode: ModeBuiltin,
		RequestID: "req-b", Invocation: run.Invocation{Room: "ops", ChatHandle: relUsers[username][1], Username: username, PipelineID: "req-b"}}
	out := f.Builtins().Execute(context.Background(), req, "req-b-s0-i0", f, t0.Add(time.Minute))
	switch e := out.Events[len(out.Events)-1].(type) {
	case run.RunSucceeded:
		return renderOutput(e.Result.Value), true, out.Changes
	case run.RunFailed:
		return e.Reason, false, out.Changes
	default:
		t.Fatalf("Execute returned %T", e)
		return "", false, nil
	}
}

func TestApproveRecordsTheAnswerInTheAnsweredRequest(t *testing.T) {
	t.Parallel()
	f := pendingWorld(t)
	text, ok, changes := answerRun(t, f, "dave", "approve", "0190aaaa", "ship", "it")
	if !ok || !strings.Contains(text, "Approved request 0190aaaa (alice: rel:prod db): that was the last approval it needed, so it goes ahead now.") {
		t.Fatalf("reply %q (ok %v)", text, ok)
	}
	want := []Change{{Stream: Stream("0190aaaa-1111-7000-8000-000000000001"), Expected: eventstore.Any, Events: []domain.Payload{
		ApprovalAnswered{Verdict: VerdictApprove, User: "u-dave", Username: "dave", Reason: "ship it", At: t0.Add(time.Minute), Via: "req-b-s0-i0", Room: "ops"},
	}}}
	if !reflect.DeepEqual(changes, want) {
		t.Fatalf("changes\n got %+v\nwant %+v", changes, want)
	}
}

func TestApproveAndRejectSayHowTheAnswerFares(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		username string
		args     []string
		ok       bool
		contains string
	}{
		{"an approval short of the count says what is still needed", "dave", []string{"approve", "0190bbbb"}, true,
			"Approved request 0190bbbb (erin: rel:prod web): that was the last approval"},
		{"an approver who is another request's requester", "alice", []string{"approve", "0190bbbb-2222-7000-8000-000000000002"}, true, "Approved request 0190bbbb"},
		{"a rejection says the request will not run", "dave", []string{"reject", "0190aaaa", "not", "today"}, true,
			"Rejected request 0190aaaa (alice: rel:prod db): it will not run."},
		{"a rejection needs a reason", "dave", []string{"reject", "0190aaaa"}, false, "say why you reject it: reject ID REASON..."},
		{"the requester's own approval does not count", "alice", []string{"approve", "0190aaaa"}, false,
			"your approval does not count: request 0190aaaa is your own; someone else must approve it"},
		{"an approver without the permission", "frank", []string{"approve", "0190aaaa"}, false, "needs rel:approver, which you do not hold"},
		{"the same approver twice", "bob", []string{"approve", "0190aaaa"}, false, "one person counts once; it needs 1 of 2 approvals from rel:approver"},
		{"an unknown id", "bob", []string{"approve", "0190cccc"}, false, "no request waiting for approval has the id 0190cccc"},
		{"a prefix too short", "bob", []string{"approve", "0190"}, false, `"0190" is too short to name a request`},
		{"any unique prefix of eight characters or more", "dave", []string{"approve", "0190aaaa-1111-7000-8000-00000000000"}, true, "Approved"},
		{"no id", "bob", []string{"approve"}, false, "name the request to approve: approve ID [REASON...]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			text, ok, changes := answerRun(t, pendingWorld(t), tc.username, tc.args...)
			if ok != tc.ok || !strings.Contains(text, tc.contains) {
				t.Fatalf("got %q (ok %v), want ok %v and %q", text, ok, tc.ok, tc.contains)
			}
			if !ok && len(changes) != 0 {
				t.Fatalf("a refused answer recorded %+v", changes)
			}
		})
	}
	t.Run("an approval short of the count says what is in", func(t *testing.T) {
		t.Parallel()
		f := pendingWorld(t)
		f.Pending[0] = FoldApproval(Approval{RequestID: f.Pending[0].RequestID}, f.Pending[0].Requested)
		text, ok, _ := answerRun(t, f, "bob", "approve", "0190aaaa")
		if !ok || !strings.Contains(text, "it has 1 of 2 approvals from rel:approver.") {
			t.Fatalf("reply %q", text)
		}
	})
	t.Run("an ambiguous prefix names the requests", func(t *testing.T) {
		t.Parallel()
		f := pendingWorld(t)
		twin := f.Pending[1]
		twin.RequestID = "0190bbbb-2222-7000-8000-000000000003"
		f.Pending = append(f.Pending, twin)
		text, ok, _ := answerRun(t, f, "bob", "approve", "0190bbbb")
		if ok || !strings.Contains(text, "starts the ids of 2 requests waiting for approval") {
			t.Fatalf("reply %q", text)
		}
	})
}

func TestApprovalsListsWhatTheCallerMayAnswerOrOwns(t *testing.T) {
	t.Parallel()
	cases := []struct {
		username      string
		want, without []string
	}{
		{"dave", []string{"0190aaaa  alice: rel:prod db  (1 of 2 approvals from rel:approver; expires 12:15:00 UTC)", "0190bbbb  erin: rel:prod web"}, []string{"[yours]"}},
		{"erin", []string{"0190bbbb  erin: rel:prod web  (0 of 1 approval from rel:approver; expires 12:15:00 UTC)  [yours]"}, []string{"0190aaaa"}},
		{"frank", []string{"No request waits for your approval."}, []string{"0190"}},
	}
	for _, tc := range cases {
		text, ok, _ := answerRun(t, pendingWorld(t), tc.username, "approvals")
		if !ok {
			t.Fatalf("%s: %q", tc.username, text)
		}
		for _, w := range tc.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: %q lacks %q", tc.username, text, w)
			}
		}
		for _, w := range tc.without {
			if strings.Contains(text, w) {
				t.Errorf("%s: %q shows %q", tc.username, text, w)
			}
		}
	}
}
