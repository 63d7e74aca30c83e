package dispatch

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/run"
)

var walkTexts = []string{
	"ops:status", "ops:list | ops:deploy $name", "ops:list | echo ${name} | ops:deploy $name -r x",
	"status", "st > #ops", "!!", "echo a b | echo $body[0]", "ops:status *> me #secret", "ops:deploy prod",
	"whoami | echo $x", "help ops:deploy", "ops:deplyo", "legacy:purge", "ops:list | ops:list | ops:list",
	"ops:status |", "\"unterminated", "prodstat",
}

var walkOutputs = []string{
	``, `null`, `[]`, `{}`, `"text"`, `42`, `[{"body":["x"]}]`, `[{"name":"prod"},{"name":"web"}]`,
	`{"name":"staging","x":"y"}`, `[1,2,3]`, `[{"name":{"deep":[1]}}]`, `{"body":"x"}`, `[[],[{"name":"a"}]]`,
}

func randomOutcome(rng *rand.Rand) domain.Payload {
	res := run.Result{Value: json.RawMessage(walkOutputs[rng.IntN(len(walkOutputs))]), Aborted: rng.IntN(8) == 0}
	switch rng.IntN(6) {
	case 0:
		return run.RunFailed{Reason: "exit 1", Result: res}
	case 1:
		return run.RunTimedOut{TimeoutMS: 5, Result: res}
	case 2:
		return run.RunCancelled{Result: res}
	case 3:
		return run.RunLost{Reason: "gone"}
	default:
		return run.RunSucceeded{Result: res}
	}
}

// TestRandomWalksThroughRequestsKeepTheInvariants drives requests with
// random texts, users, run outcomes (in random order, repeated) and
// timeouts, recording every decision, and checks that Decide is
// deterministic, never panics, ends a request once with one reply, and names
// only valid run ids.
func TestRandomWalksThroughRequestsKeepTheInvariants(t *testing.T) {
	t.Parallel()
	facts := newTestFacts(t)
	handles := []string{"U1", "U2", "U3", "U4", "U9"}
	seen := map[Status]int{}
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 7))
		trigger := RequestReceived{Adapter: testAdapter, MessageID: fmt.Sprint("m", seed), Room: "general",
			ChatUser: handles[rng.IntN(len(handles))], Text: walkTexts[rng.IntN(len(walkTexts))]}
		var history []domain.Payload
		var pending []domain.Payload
		replies, ends := 0, 0
		step := func(tr domain.Payload) {
			r := Fold(history)
			d, err := Decide(r, tr, facts)
			again, _ := Decide(r, tr, facts)
			if !reflect.DeepEqual(d, again) {
				t.Fatalf("seed %d: not deterministic for %T", seed, tr)
			}
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			history = append(history, tr)
			history = append(history, d.Request...)
			for _, e := range d.Request {
				switch e.(type) {
				case IdentityUnknown, PipelineRejected, RequestDenied, RequestCompleted, RequestFailed:
					ends++
				}
			}
			if d.Reply != nil {
				replies++
				if !Fold(history).Status().Ended() {
					t.Fatalf("seed %d: a reply before the end", seed)
				}
			}
			for _, s := range d.Runs {
				if err := run.ValidateID(s.RunID); err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				pending = append(pending, RunEvent{RunID: s.RunID, Event: randomOutcome(rng)})
			}
			for _, id := range d.Cancel {
				pending = append(pending, RunEvent{RunID: id, Event: run.RunCancelled{Reason: "cancelled"}})
			}
		}
		step(trigger)
		for i := 0; len(pending) > 0 && i < 50; i++ {
			k := rng.IntN(len(pending))
			next := pending[k]
			if rng.IntN(4) != 0 {
				pending = append(pending[:k], pending[k+1:]...)
			}
			if rng.IntN(20) == 0 {
				next = RequestTimedOut{At: time.Unix(int64(seed), 0)}
			}
			step(next)
		}
		final := Fold(history)
		seen[final.Status()]++
		if ends > 1 || replies > 1 || (final.Status().Ended() != (ends == 1)) || replies != ends {
			t.Fatalf("seed %d (%q by %s): %d ends and %d replies, status %s", seed, trigger.Text, trigger.ChatUser, ends, replies, final.Status())
		}
	}
	for _, status := range []Status{StatusUnknown, StatusRejected, StatusDenied, StatusCompleted, StatusFailed} {
		if seen[status] == 0 {
			t.Errorf("no walk ended %s: %v", status, seen)
		}
	}
}

// TestDecideNeverPanicsOverArbitraryEventSequences folds random events,
// well-formed or not, in any order, and decides random triggers.
func TestDecideNeverPanicsOverArbitraryEventSequences(t *testing.T) {
	t.Parallel()
	facts := newTestFacts(t)
	rec := received("U1", "ops:list | ops:deploy $name")
	id := RequestID(rec.Adapter, rec.MessageID)
	pool := []domain.Payload{
		rec, received("U9", "x"), IdentityResolved{User: "u-alice", Username: "alice"}, IdentityUnknown{},
		PipelineParsed{Stages: json.RawMessage(`not json`)}, PipelineParsed{Stages: json.RawMessage(`[{"command":"ops:list","bundle":"ops","name":"list"}]`)},
		PipelineParsed{Stages: json.RawMessage(`[{"command":"nope","name":"nope"},{"command":"x:y","bundle":"x","name":"y"}]`), Redirects: json.RawMessage(`[{"kind":"room"}]`)},
		PipelineRejected{}, PermissionChecked{Stage: 5}, PermissionChecked{Stage: -1, Command: "ops:list"},
		StageStarted{Stage: 0, RunID: RunID(id, 0, 0)}, StageStarted{Stage: 7, Invocation: 3, RunID: "r7"}, StageStarted{Stage: -2, RunID: ""},
		RequestDenied{}, RequestCompleted{}, RequestFailed{Stage: 9}, ReplyPosted{},
		RunEvent{RunID: RunID(id, 0, 0)}, RunEvent{RunID: "r7", Event: run.RunSucceeded{Result: run.Result{Value: json.RawMessage(`[{"name":"a"}]`)}}},
		RequestTimedOut{}, domain.Raw{Type: "FromTheFuture"},
		ApprovalRequested{}, ApprovalRequested{Requirements: []ApprovalRequirement{{Permission: "ops:prod", Needed: 1, Stages: []int{9}}}, Stages: []ApprovedStage{{Stage: 3}}},
		ApprovalAnswered{Verdict: VerdictApprove, User: "u-dave", Via: "v1"}, ApprovalAnswered{Verdict: VerdictReject, User: "u-dave", Via: "v2"},
		ApprovalAnswered{Verdict: "maybe", Via: "v3"}, ApprovalGranted{Via: "v1", Permissions: []string{"ops:prod"}}, ApprovalRefused{Via: "v2"},
		ApprovalRejected{Via: "v2"}, ApprovalExpired{}, RequestApproved{}, ApprovalTimedOut{At: time.Unix(1<<40, 0)},
		QuotaWaiting{}, QuotaAdmitted{}, QuotaExceeded{}, QuotaCheck{At: time.Unix(1<<40, 0)},
	}
	for seed := range uint64(500) {
		rng := rand.New(rand.NewPCG(seed, 11))
		var events []domain.Payload
		for range rng.IntN(12) {
			e := pool[rng.IntN(len(pool))]
			if re, ok := e.(RunEvent); ok && re.Event == nil {
				e = RunEvent{RunID: re.RunID, Event: randomOutcome(rng)}
			}
			events = append(events, e)
		}
		r := Fold(events)
		trigger := pool[rng.IntN(len(pool))]
		if re, ok := trigger.(RunEvent); ok && re.Event == nil {
			trigger = RunEvent{RunID: re.RunID, Event: randomOutcome(rng)}
		}
		d, err := Decide(r, trigger, facts)
		again, againErr := Decide(r, trigger, facts)
		if !reflect.DeepEqual(d, again) || (err == nil) != (againErr == nil) {
			t.Fatalf("seed %d: not deterministic", seed)
		}
		_, _ = r.PendingReply()
		_ = r.ApprovalNotices()
		_ = r.Unjudged()
	}
}
