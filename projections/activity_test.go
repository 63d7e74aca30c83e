package projections_test

import (
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/projections"
)

// activityScenario feeds an Activity events at recorded times one
// millisecond apart, from t0, and keeps what each reported.
type activityScenario struct {
	t        *testing.T
	a        *projections.Activity
	at       time.Time
	position int64
	ended    []*projections.RequestActivity
	done     []*projections.RequestActivity
	runs     []*projections.RunActivity
}

var t0 = time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)

func givenActivity(t *testing.T) *activityScenario {
	return &activityScenario{t: t, a: projections.NewActivity(), at: t0}
}

// on records payload in stream after step of the recorded clock.
func (s *activityScenario) on(stream string, step time.Duration, payload domain.Payload) *activityScenario {
	s.t.Helper()
	s.at = s.at.Add(step)
	s.position++
	c := s.a.Apply(domain.RecordedEvent{Stream: stream, Position: s.position, Type: payload.EventType(), RecordedAt: s.at}, payload)
	if c.RequestEnded != nil {
		s.ended = append(s.ended, c.RequestEnded)
	}
	s.done = append(s.done, c.RequestDone...)
	if c.RunEnded != nil {
		s.runs = append(s.runs, c.RunEnded)
	}
	return s
}

func req(id string) string   { return dispatch.StreamPrefix + id }
func runOf(id string) string { return run.StreamPrefix + id }
func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }
func received(adapter string) dispatch.RequestReceived {
	return dispatch.RequestReceived{Adapter: adapter, Room: "ops", ChatUser: "U1", Text: "toolbox:echo hi"}
}

func TestActivityGivenAWarmRunWhenItsReplyIsPostedThenTheWholeLifecycleIsReported(t *testing.T) {
	s := givenActivity(t).
		on(runOf("r1"), 0, run.RunRequested{RequestID: "q1", Bundle: "toolbox", Command: "echo", Mode: run.ModeWarm}).
		on(req("q1"), 0, received("slack")).
		on(req("q1"), ms(1), dispatch.IdentityResolved{User: "u-1", Username: "alice"}).
		on(req("q1"), 0, dispatch.PermissionChecked{Command: "toolbox:echo", Granted: true}).
		on(req("q1"), 0, dispatch.StageStarted{RunID: "r1"})
	if s.a.Queued() != 1 || s.a.Running() != 0 {
		t.Fatalf("requested: queued %d running %d, want 1 and 0", s.a.Queued(), s.a.Running())
	}
	s.on(runOf("r1"), ms(4), run.ContainerStarted{Warm: true})
	if s.a.Queued() != 0 || s.a.Running() != 1 {
		t.Fatalf("started: queued %d running %d, want 0 and 1", s.a.Queued(), s.a.Running())
	}
	s.on(runOf("r1"), ms(2), run.OutputChunk{Stream: run.Stdout, Bytes: []byte("hi\n")}).
		on(runOf("r1"), ms(1), run.OutputChunk{Stream: run.Stderr, Bytes: []byte("warn\n")}).
		on(runOf("r1"), ms(3), run.RunSucceeded{}).
		on(req("q1"), ms(1), dispatch.RequestCompleted{})
	if len(s.runs) != 1 || len(s.ended) != 1 || len(s.done) != 0 {
		t.Fatalf("before the reply: %d runs ended, %d requests ended, %d done; want 1, 1, 0", len(s.runs), len(s.ended), len(s.done))
	}
	s.on(req("q1"), ms(20), dispatch.ReplyPosted{Adapter: "slack", Room: "ops"})
	if len(s.done) != 1 {
		t.Fatalf("after the reply: %d requests done, want 1", len(s.done))
	}
	r := s.done[0]
	if r.Adapter != "slack" || r.User != "alice" || r.Outcome != projections.RequestCompleted {
		t.Errorf("request = %s by %s, %s; want slack by alice, completed", r.Adapter, r.User, r.Outcome)
	}
	if got := r.DecidedAt.Sub(r.ReceivedAt); got != ms(1) {
		t.Errorf("decided %v after received, want 1ms", got)
	}
	if got := r.RepliedAt.Sub(r.ReceivedAt); got != ms(32) {
		t.Errorf("replied %v after received, want 32ms", got)
	}
	if len(r.Runs) != 1 {
		t.Fatalf("request holds %d runs, want 1", len(r.Runs))
	}
	rn := r.Runs[0]
	if rn.Bundle != "toolbox" || rn.Command != "echo" || rn.Mode != run.ModeWarm || rn.Outcome != projections.RunSucceeded {
		t.Errorf("run = %+v", rn)
	}
	if rn.Duration() != ms(11) || rn.StartedAt.Sub(rn.RequestedAt) != ms(5) {
		t.Errorf("run took %v, queued %v; want 11ms and 5ms", rn.Duration(), rn.StartedAt.Sub(rn.RequestedAt))
	}
	if rn.OutputChunks != 2 || rn.StderrChunks != 1 || rn.OutputBytes != 8 {
		t.Errorf("output = %d chunks (%d stderr), %d bytes; want 2 (1), 8", rn.OutputChunks, rn.StderrChunks, rn.OutputBytes)
	}
	if s.a.Queued() != 0 || s.a.Running() != 0 {
		t.Errorf("after the end: queued %d running %d, want 0 and 0", s.a.Queued(), s.a.Running())
	}
}

func TestActivityGivenADeniedCommandWhenTheRequestIsDeniedThenItNamesTheCommand(t *testing.T) {
	s := givenActivity(t).
		on(req("q2"), 0, received("api")).
		on(req("q2"), 0, dispatch.PermissionChecked{Command: "ops:deploy", Granted: false}).
		on(req("q2"), ms(1), dispatch.RequestDenied{Reason: "no"})
	if len(s.ended) != 1 {
		t.Fatalf("%d requests ended, want 1", len(s.ended))
	}
	r := s.ended[0]
	if r.Outcome != projections.RequestDenied || len(r.Denied) != 1 || r.Denied[0] != "ops:deploy" {
		t.Errorf("ended %s denying %v; want denied, [ops:deploy]", r.Outcome, r.Denied)
	}
}

func TestActivityGivenARequestThatBeganBeforeTheFoldWhenItEndsThenNothingIsReported(t *testing.T) {
	s := givenActivity(t).
		on(runOf("old"), 0, run.ContainerStarted{}).
		on(runOf("old"), 0, run.RunSucceeded{}).
		on(req("old"), 0, dispatch.RequestCompleted{}).
		on(req("old"), 0, dispatch.ReplyPosted{})
	if len(s.ended)+len(s.done)+len(s.runs) != 0 || s.a.Queued() != 0 || s.a.Running() != 0 {
		t.Errorf("a lifecycle seen in part was reported: %d ended, %d done, %d runs, queued %d, running %d",
			len(s.ended), len(s.done), len(s.runs), s.a.Queued(), s.a.Running())
	}
}

func TestActivityGivenAnEndedRequestWhenNoReplyComesWithinReplyWaitThenItIsDoneWithoutOne(t *testing.T) {
	s := givenActivity(t).
		on(req("q3"), 0, received("irc")).
		on(req("q3"), 0, dispatch.PipelineRejected{Error: "bad pipe"}).
		on(req("other"), 59*time.Second, received("irc"))
	if len(s.done) != 0 {
		t.Fatalf("done before ReplyWait passed")
	}
	s.on(req("other"), time.Second, dispatch.IdentityUnknown{Adapter: "irc", ChatUser: "x"})
	if len(s.done) != 1 || s.done[0].RequestID != "q3" || !s.done[0].RepliedAt.IsZero() {
		t.Fatalf("done = %v, want q3 without a reply", s.done)
	}
	if s.done[0].Outcome != projections.RequestRejected {
		t.Errorf("outcome %s, want rejected", s.done[0].Outcome)
	}
}

func TestActivityGivenMoreOpenThanMaxOpenWhenAnotherBeginsThenTheOldestIsDroppedAndCounted(t *testing.T) {
	s := givenActivity(t)
	s.a.MaxOpen = 3
	s.on(runOf("a"), 0, run.RunRequested{RequestID: "x"}).
		on(runOf("b"), 0, run.RunRequested{RequestID: "x"}).
		on(runOf("c"), 0, run.RunRequested{RequestID: "x"})
	if s.a.Queued() != 3 || s.a.Dropped() != 0 {
		t.Fatalf("queued %d dropped %d, want 3 and 0", s.a.Queued(), s.a.Dropped())
	}
	s.on(runOf("d"), 0, run.RunRequested{RequestID: "x"})
	if s.a.Queued() != 3 || s.a.Dropped() != 1 {
		t.Fatalf("queued %d dropped %d, want 3 and 1", s.a.Queued(), s.a.Dropped())
	}
	s.on(runOf("a"), 0, run.RunSucceeded{})
	if len(s.runs) != 0 {
		t.Errorf("the dropped run was reported when it ended")
	}
	s.on(runOf("d"), 0, run.RunFailed{Reason: "exit 1"})
	if len(s.runs) != 1 || s.runs[0].Outcome != projections.RunFailed || s.a.Queued() != 2 {
		t.Errorf("runs %v queued %d; want d failed and 2 queued", s.runs, s.a.Queued())
	}
}

func TestActivityGivenALongRunningRequestWhenThousandsEndBehindItThenTheQueueStaysBounded(t *testing.T) {
	s := givenActivity(t).on(req("long"), 0, received("api"))
	for i := range 20000 {
		id := "q" + time.Duration(i).String()
		s.on(req(id), 0, received("api")).
			on(req(id), 0, dispatch.RequestCompleted{}).
			on(req(id), 0, dispatch.ReplyPosted{})
	}
	if len(s.done) != 20000 {
		t.Fatalf("%d done, want 20000", len(s.done))
	}
	if s.a.Dropped() != 0 {
		t.Errorf("the long-running request was dropped")
	}
	if n := s.a.QueueLen(); n > 2000 {
		t.Errorf("the expiry queue holds %d keys for 1 open request", n)
	}
	s.on(req("long"), 0, dispatch.RequestCompleted{}).on(req("long"), 0, dispatch.ReplyPosted{})
	if last := s.done[len(s.done)-1]; last.RequestID != "long" {
		t.Errorf("the long request was not reported at its end")
	}
}

func TestActivityGivenAPureBuiltinDecidedInTheCommitThatReceivedItThenItsRequestHoldsItsRun(t *testing.T) {
	// Given one commit, as the dispatcher records a request of a pure
	// builtin: the run's stream, whole, before the request's
	s := givenActivity(t).
		on(runOf("r1"), 0, run.RunRequested{RequestID: "q1", Bundle: dispatch.BuiltinBundle, Command: "echo", Mode: dispatch.ModeBuiltin}).
		on(runOf("r1"), 0, run.OutputChunk{Stream: run.Stdout, Bytes: []byte("hi\n")}).
		on(runOf("r1"), 0, run.RunSucceeded{}).
		on(req("q1"), 0, received("api")).
		on(req("q1"), 0, dispatch.StageStarted{RunID: "r1"}).
		on(req("q1"), 0, dispatch.RequestCompleted{})

	// When its reply is recorded in that commit too
	s.on(req("q1"), 0, dispatch.ReplyPosted{Adapter: "api", Room: "api"})

	// Then the request is done with its run, which ended succeeded
	if len(s.done) != 1 || len(s.done[0].Runs) != 1 {
		t.Fatalf("done: %+v, want one request with one run", s.done)
	}
	if rn := s.done[0].Runs[0]; rn.RunID != "r1" || rn.Outcome != projections.RunSucceeded || rn.OutputChunks != 1 {
		t.Fatalf("its run: %+v", rn)
	}
	if s.a.Queued() != 0 || s.a.Running() != 0 {
		t.Fatalf("queued %d running %d, want none", s.a.Queued(), s.a.Running())
	}
}

func TestActivityGivenARunOfARequestNotYetReceivedWhenALaterCommitReceivesOneOfItsIDThenItIsNotLinked(t *testing.T) {
	// Given a run whose request the fold never saw (it began before)
	s := givenActivity(t).
		on(runOf("r1"), 0, run.RunRequested{RequestID: "q1", Command: "echo"}).
		on(runOf("r1"), ms(1), run.RunSucceeded{})

	// When a request of that id is received in a later commit
	s.on(req("q1"), ms(1), received("api")).
		on(req("q1"), 0, dispatch.RequestCompleted{}).
		on(req("q1"), 0, dispatch.ReplyPosted{Adapter: "api"})

	// Then it holds no run: only a run of its own commit is linked so
	if len(s.done) != 1 || len(s.done[0].Runs) != 0 {
		t.Fatalf("done: %+v, want one request without runs", s.done)
	}
}

// Given events of every type DecodeForActivity gives by its type alone,
// each with its fields filled, when one Activity folds them decoded whole
// and another folds them as DecodeForActivity gives them, then both report
// the same lifecycles: Apply reads nothing of those events but their type.
func TestActivityFoldsTheSameWhatDecodeForActivityGivesByTypeAlone(t *testing.T) {
	events := []struct {
		stream  string
		payload domain.Payload
	}{
		{runOf("r1"), run.RunRequested{RequestID: "q1", Bundle: "toolbox", Command: "echo", Mode: run.ModeWarm}},
		{req("q1"), received("slack")},
		{req("q1"), dispatch.IdentityResolved{User: "u-1", Username: "alice"}},
		{req("q1"), dispatch.PermissionChecked{Command: "toolbox:echo", Granted: true}},
		{req("q1"), dispatch.StageStarted{RunID: "r1"}},
		{runOf("r1"), run.ContainerStarted{ContainerID: "c1", Warm: true}},
		{runOf("r1"), run.RunSucceeded{Result: run.Result{Value: []byte(`[{"body":["hi"]}]`)}}},
		{req("q1"), dispatch.RequestCompleted{Output: []byte(`[{"body":["hi"]}]`)}},
		{req("q1"), dispatch.ReplyPosted{Adapter: "slack", Room: "ops", MessageID: "m1", Rendered: "hi"}},
		{runOf("r2"), run.RunRequested{RequestID: "q2", Bundle: "toolbox", Command: "fail", Mode: run.ModeFresh}},
		{req("q2"), received("irc")},
		{req("q2"), dispatch.IdentityResolved{User: "u-1", Username: "alice"}},
		{req("q2"), dispatch.StageStarted{RunID: "r2"}},
		{runOf("r2"), run.RunFailed{Reason: "exit 1", Result: run.Result{Value: []byte(`"no"`)}}},
		{req("q2"), dispatch.RequestFailed{Reason: "stage 1 failed", Stage: 0, RunID: "r2"}},
		{runOf("r3"), run.RunRequested{RequestID: "q3", Command: "slow", Mode: run.ModeFresh}},
		{runOf("r3"), run.RunTimedOut{TimeoutMS: 1000}},
		{runOf("r4"), run.RunRequested{RequestID: "q3", Command: "stopped", Mode: run.ModeFresh}},
		{runOf("r4"), run.RunCancelled{Reason: "stopped by alice"}},
		{runOf("r5"), run.RunRequested{RequestID: "q3", Command: "gone", Mode: run.ModeSingleUse}},
		{runOf("r5"), run.RunLost{Reason: "the executor stopped"}},
		{req("q4"), received("slack")},
		{req("q4"), dispatch.IdentityUnknown{Adapter: "slack", ChatUser: "U9"}},
		{req("q5"), received("slack")},
		{req("q5"), dispatch.IdentityResolved{User: "u-1", Username: "alice"}},
		{req("q5"), dispatch.PipelineRejected{Error: "no such command", Column: 3}},
		{req("q6"), received("slack")},
		{req("q6"), dispatch.IdentityResolved{User: "u-1", Username: "alice"}},
		{req("q6"), dispatch.RequestDenied{Reason: "not allowed"}},
	}
	whole, lean := givenActivity(t), givenActivity(t)
	for _, e := range events {
		encoded := domain.MustEncode(e.payload, domain.Metadata{})
		payload, err := projections.DecodeForActivity(domain.RecordedEvent{Type: encoded.Type, Data: encoded.Data})
		if err != nil {
			t.Fatal(err)
		}
		whole.on(e.stream, ms(1), e.payload)
		lean.on(e.stream, ms(1), payload)
	}
	if len(whole.runs) != 5 || len(whole.ended) != 5 {
		t.Fatalf("the scenario ended %d runs and %d requests, want 5 and 5", len(whole.runs), len(whole.ended))
	}
	for i := range whole.runs {
		if *whole.runs[i] != *lean.runs[i] {
			t.Errorf("run %d: %+v folded whole, %+v by type", i, *whole.runs[i], *lean.runs[i])
		}
	}
	for i := range whole.ended {
		w, l := whole.ended[i], lean.ended[i]
		if w.RequestID != l.RequestID || w.Outcome != l.Outcome || !w.EndedAt.Equal(l.EndedAt) || !w.RepliedAt.Equal(l.RepliedAt) || len(w.Runs) != len(l.Runs) {
			t.Errorf("request %d: %+v folded whole, %+v by type", i, *w, *l)
		}
	}
}
