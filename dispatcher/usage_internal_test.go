package dispatcher

import (
	"fmt"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/run"
)

func TestUsageCountsRunsInFlightAndTheLastMinutesRequests(t *testing.T) {
	t.Parallel()
	u := newUsage()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	requested := func(request, bundle, user, room string) run.RunRequested {
		return run.RunRequested{RequestID: request, Bundle: bundle, Invocation: run.Invocation{Username: user, Room: room}}
	}
	u.apply("q1-s0-i0", requested("q1", "ops", "alice", "ops"), t0)
	u.apply("q1-s0-i1", requested("q1", "ops", "alice", "ops"), t0)
	u.apply("q1-s0-i1", requested("q1", "ops", "alice", "ops"), t0) // the feed brings it again
	u.apply("q2-s0-i0", requested("q2", "ops", "bob", "ops"), t0.Add(30*time.Second))
	u.apply("q3-s0-i0", requested("q3", "ops", "alice", "dev"), t0.Add(70*time.Second))
	u.apply("q4-s0-i0", requested("q4", "web", "alice", "ops"), t0.Add(70*time.Second))
	u.apply("q1-s0-i0", run.RunSucceeded{}, time.Time{})
	got := u.of("ops", "alice", "ops", t0.Add(70*time.Second-rateWindow))
	// In flight: q1's second run, q2, q3; alice's: q1 and q3; from #ops:
	// q1 and q2. Started in the last minute by alice: q3 (q1 is older).
	if want := (dispatch.Usage{Running: 3, UserRunning: 2, RoomRunning: 2, Requests: 1}); got != want {
		t.Fatalf("usage %+v, want %+v", got, want)
	}
	// q1 was dropped when q3 came, more than a minute later; a request
	// with two runs counts once.
	if got := u.of("ops", "alice", "ops", t0.Add(-time.Hour)); got.Requests != 1 {
		t.Fatalf("alice's requests kept: %d, want 1", got.Requests)
	}
	if got := u.of("ops", "bob", "dev", t0); got.Requests != 1 || got.UserRunning != 1 || got.RoomRunning != 1 {
		t.Fatalf("bob's usage from #dev: %+v", got)
	}
}

func TestUsageCountsARequestOnceHoweverManyCameBetweenItsRuns(t *testing.T) {
	t.Parallel()
	// Given a request's first run, then a thousand other requests'
	u := newUsage()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	requested := func(request string) run.RunRequested {
		return run.RunRequested{RequestID: request, Bundle: "ops", Invocation: run.Invocation{Username: "alice"}}
	}
	u.apply("first-run", requested("q-first"), t0)
	for i := range 1000 {
		u.apply(fmt.Sprintf("run-%d", i), requested(fmt.Sprintf("q-%d", i)), t0.Add(time.Duration(i)*time.Millisecond))
	}

	// When the first request runs its next stage
	u.apply("second-run", requested("q-first"), t0.Add(2*time.Second))

	// Then it still counts once
	if got := u.of("ops", "alice", "", t0).Requests; got != 1001 {
		t.Fatalf("requests counted %d, want 1001", got)
	}
	// And a minute after the last of them, none is left
	u.apply("later", requested("q-later"), t0.Add(2*time.Second+rateWindow+time.Millisecond))
	if got := u.of("ops", "alice", "", t0).Requests; got != 1 {
		t.Fatalf("requests counted a minute later %d, want 1 (the new one)", got)
	}
}

// A batch's runs are counted before its commit, so each request decides
// with those before it; when the commit fails, they are taken back, and
// only they: a run the facts held already stays.
func TestRunsCountedBeforeACommitThatFailedAreTakenBack(t *testing.T) {
	t.Parallel()
	// Given a run of alice's in flight
	f := NewFacts(dispatch.DefaultBuiltins(), dispatch.Settings{}, nil)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	start := func(runID, request, user string) dispatch.RunStart {
		return dispatch.RunStart{RunID: runID, Request: run.RunRequested{RequestID: request, Bundle: "ops", Invocation: run.Invocation{Username: user, Room: "ops"}}}
	}
	f.applyOwnRuns([]dispatch.RunStart{start("q1-r0", "q1", "alice")}, t0)

	// When a batch counts q1's run again, a second run of q1, and bob's q2
	added := f.applyOwnRunsUndoably([]dispatch.RunStart{start("q1-r0", "q1", "alice"), start("q1-r1", "q1", "alice")}, t0)
	added = append(added, f.applyOwnRunsUndoably([]dispatch.RunStart{start("q2-r0", "q2", "bob")}, t0)...)
	if got := f.Usage("ops", "bob", "ops", t0.Add(-time.Minute)); got.Running != 3 || got.UserRunning != 1 || got.Requests != 1 {
		t.Fatalf("usage before the commit: %+v, want 3 running, bob's one request", got)
	}

	// And its commit fails
	f.forgetOwnRuns(added)

	// Then only what the facts held before is left: q1's first run, and q1
	if got := f.Usage("ops", "alice", "ops", t0.Add(-time.Minute)); got != (dispatch.Usage{Running: 1, UserRunning: 1, RoomRunning: 1, Requests: 1}) {
		t.Fatalf("alice's usage after the failed commit: %+v, want her one run and request", got)
	}
	if got := f.Usage("ops", "bob", "ops", t0.Add(-time.Minute)); got.UserRunning != 0 || got.Requests != 0 {
		t.Fatalf("bob's usage after the failed commit: %+v, want none", got)
	}
}
