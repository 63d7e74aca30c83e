package executor_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/runbus"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/executor/executortest"
)

// fleetWorld is a store, a claim desk and a fleet on a clock the test
// moves.
type fleetWorld struct {
	t     *testing.T
	ctx   context.Context
	store eventstore.Store
	desk  *executor.ClaimDesk
	fleet *executor.Fleet
	now   time.Time
	// released are the runs the fleet told each executor to stop.
	released map[string][]string
}

func givenFleet(t *testing.T) *fleetWorld {
	t.Helper()
	return givenFleetOn(t, executortest.NewMemStore())
}

// givenFleetOn is givenFleet over store.
func givenFleetOn(t *testing.T, store eventstore.Store) *fleetWorld {
	t.Helper()
	w := &fleetWorld{t: t, ctx: context.Background(), store: store, now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), released: map[string][]string{}}
	w.desk = executor.NewClaimDesk(w.store, func(id string) bool { return w.fleet.Live(id) })
	w.desk.ServedBy(func(id, group string) bool { return w.fleet.Serves(id, group) })
	var err error
	w.fleet, err = executor.NewFleet(executor.FleetConfig{Store: w.store, Desk: w.desk, LostAfter: 15 * time.Second, QueueTimeout: 30 * time.Second,
		Now: func() time.Time { return w.now }, Logger: zerolog.New(zerolog.NewTestWriter(t)),
		Release: func(_ context.Context, id string, runIDs []string) {
			w.released[id] = append(w.released[id], runIDs...)
		}})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *fleetWorld) seed(runID string, ps ...domain.Payload) {
	w.t.Helper()
	past, err := w.store.ReadStream(w.ctx, run.Stream(runID), 0, 1000)
	if err != nil {
		w.t.Fatal(err)
	}
	for i, p := range ps {
		if _, err := w.store.Append(w.ctx, run.Stream(runID), eventstore.Exact(int64(len(past)+i)-1), domain.MustEncode(p, domain.Metadata{})); err != nil {
			w.t.Fatal(err)
		}
	}
}

func (w *fleetWorld) types(runID string) string {
	w.t.Helper()
	events, err := w.store.ReadStream(w.ctx, run.Stream(runID), 0, 1000)
	if err != nil {
		w.t.Fatal(err)
	}
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	return strings.Join(types, " ")
}

func (w *fleetWorld) beat(id, boot string, groups ...string) {
	w.fleet.Beat(w.ctx, executor.Heartbeat{ID: id, Boot: boot, Groups: groups})
}

func (w *fleetWorld) claim(id, boot, runID string) executor.ClaimReply {
	w.t.Helper()
	reply, err := w.desk.Claim(w.ctx, id, boot, "host-"+id, "default", runID, false)
	if err != nil {
		w.t.Fatal(err)
	}
	return reply
}

func (w *fleetWorld) pass(d time.Duration) {
	w.now = w.now.Add(d)
	w.fleet.Check(w.ctx)
}

func TestAClaimIsGrantedOnceAndNeverForAStartedRun(t *testing.T) {
	t.Parallel()
	w := givenFleet(t)
	w.beat("a", "boot1", "default")
	w.beat("b", "boot1", "default")
	w.seed("r1", requested())
	if got := w.claim("a", "boot1", "r1"); got.Status != executor.ClaimGranted || len(got.Events) != 2 || got.Events[1].Type != "RunClaimed" {
		t.Fatalf("first claim: %+v", got)
	}
	if got := w.claim("a", "boot1", "r1"); got.Status != executor.ClaimGranted || len(got.Events) != 2 {
		t.Fatalf("the holder's claim again: %+v (nothing more recorded)", got)
	}
	if got := w.claim("b", "boot1", "r1"); got.Status != executor.ClaimHeld || !strings.Contains(got.Reason, `"a"`) {
		t.Fatalf("another executor's claim while a is live: %+v", got)
	}
	w.seed("r1", run.ContainerCreated{ContainerID: "c"}, run.ContainerStarted{})
	if got := w.claim("a", "boot1", "r1"); got.Status != executor.ClaimDone {
		t.Fatalf("claiming a started run: %+v", got)
	}
	if got := w.claim("a", "boot1", "nope"); got.Status != executor.ClaimUnknown {
		t.Fatalf("claiming an unknown run: %+v", got)
	}
	prod := requested()
	prod.Group = "prod"
	w.seed("prod-run", prod)
	if got := w.claim("a", "boot1", "prod-run"); got.Status != executor.ClaimHeld || !strings.Contains(got.Reason, `relay group "prod"`) {
		t.Fatalf("an executor of default claiming a prod run: %+v", got)
	}
	w.beat("c", "boot1", "prod")
	if got := w.claim("c", "boot1", "prod-run"); got.Status != executor.ClaimGranted {
		t.Fatalf("an executor of prod claiming a prod run: %+v", got)
	}
}

// Given runs whose streams the dispatcher in this process just created
// (JustRequested), when executors claim them, then the first claim of a
// run whose stream is as said reads nothing and is granted with the run's
// request; a run whose stream moved on meanwhile is read and refused, and
// nothing is recorded for it; and a later claim reads.
func TestAJustRequestedRunsFirstClaimReadsNothingAndAStaleOneLooksAgain(t *testing.T) {
	t.Parallel()
	store := &streamReads{MemStore: executortest.NewMemStore(), reads: map[string]int{}}
	w := givenFleetOn(t, store)
	w.beat("a", "boot1", "default")
	w.beat("b", "boot1", "default")
	w.seed("fresh", requested())
	w.desk.JustRequested(runbus.RunRequest{RunID: "fresh", Request: requested()})
	seeded := store.of(run.Stream("fresh")) // the seeding's own read
	got := w.claim("a", "boot1", "fresh")
	if got.Status != executor.ClaimGranted || len(got.Events) != 2 || got.Events[0].Type != "RunRequested" || got.Events[1].Type != "RunClaimed" {
		t.Fatalf("first claim: %+v", got)
	}
	if past, err := executor.DecodeWireEvents(got.Events[:1]); err != nil || past[0].(run.RunRequested).Image != requested().Image {
		t.Fatalf("the claim gave the run's request as %+v (%v)", past, err)
	}
	if n := store.of(run.Stream("fresh")) - seeded; n != 0 {
		t.Fatalf("the first claim read the stream %d times, want none", n)
	}
	if got := w.claim("b", "boot1", "fresh"); got.Status != executor.ClaimHeld {
		t.Fatalf("another executor's claim after it: %+v", got)
	}
	if n := store.of(run.Stream("fresh")) - seeded; n == 0 {
		t.Fatal("the later claim did not read the stream")
	}

	w.seed("moved", requested())
	w.desk.JustRequested(runbus.RunRequest{RunID: "moved", Request: requested()})
	w.seed("moved", run.RunFailed{Reason: "no executor of relay group default took it"})
	if got := w.claim("a", "boot1", "moved"); got.Status != executor.ClaimDone {
		t.Fatalf("claiming a run that failed in its queue after it was requested: %+v", got)
	}
	if types := w.types("moved"); types != "RunRequested RunFailed" {
		t.Fatalf("run stream = %s, want nothing recorded for the claim", types)
	}
}

// Given executor a holds a started run and a run it has not started, when
// its heartbeats stop for LostAfter, then the started run is RunLost and
// the other goes to executor b.
func TestASilentExecutorsStartedRunsAreLostAndTheOthersGoElsewhere(t *testing.T) {
	t.Parallel()
	w := givenFleet(t)
	w.beat("a", "boot1", "default")
	w.beat("b", "boot1", "default")
	w.seed("started", requested())
	w.seed("waiting", requested())
	w.claim("a", "boot1", "started")
	w.claim("a", "boot1", "waiting")
	w.seed("started", run.ContainerCreated{ContainerID: "c"}, run.ContainerStarted{})
	w.seed("starting", requested())
	if got, err := w.desk.Claim(w.ctx, "a", "boot1", "host-a", "default", "starting", true); err != nil || got.Status != executor.ClaimGranted {
		t.Fatalf("a's claim to start a run: %+v %v", got, err)
	}
	if got, err := w.desk.Claim(w.ctx, "b", "boot1", "host-b", "default", "waiting", true); err != nil || got.Status != executor.ClaimHeld {
		t.Fatalf("b's claim to start a run a holds: %+v %v", got, err)
	}

	w.now = w.now.Add(10 * time.Second)
	w.beat("b", "boot1", "default")
	w.pass(4 * time.Second) // a silent for 14s
	if got := w.types("started"); strings.Contains(got, "RunLost") || !w.fleet.Live("a") {
		t.Fatalf("a was taken for lost before LostAfter: %s", got)
	}
	w.pass(time.Second)
	if w.fleet.Live("a") || !w.fleet.Live("b") {
		t.Fatalf("live: a %v, b %v", w.fleet.Live("a"), w.fleet.Live("b"))
	}
	if got := w.types("started"); got != "RunRequested RunClaimed ContainerCreated ContainerStarted RunLost" {
		t.Fatalf("started run: %s", got)
	}
	// a comes back and says what it saw: nothing follows the loss.
	handle := w.desk.Guard(executor.NewAppender(w.store), func(*message.Message) string { return "a" })
	for v, p := range []domain.Payload{run.ContainerStopped{}, run.RunSucceeded{}} {
		msg := executor.NewEventMessage(run.Stream("started"), int64(5+v), domain.MustEncode(p, domain.Metadata{}))
		msg.SetContext(w.ctx)
		if err := handle(msg); !errors.Is(err, executor.ErrNotYourRun) {
			t.Fatalf("a's late %s after the loss: %v", p.EventType(), err)
		}
	}
	if got := w.types("started"); !strings.HasSuffix(got, "RunLost") {
		t.Fatalf("late events were appended after the loss: %s", got)
	}
	if got := w.types("starting"); got != "RunRequested RunClaimed RunStarting RunLost" {
		t.Fatalf("a run a was starting, cut off before it could say more: %s", got)
	}
	if got := w.claim("b", "boot1", "starting"); got.Status != executor.ClaimDone {
		t.Fatalf("b's claim of a run a had begun: %+v", got)
	}
	if got := w.claim("b", "boot1", "waiting"); got.Status != executor.ClaimGranted {
		t.Fatalf("b's claim of the run a never started: %+v", got)
	}
	if got := w.types("waiting"); got != "RunRequested RunClaimed RunClaimed" {
		t.Fatalf("waiting run: %s", got)
	}
	w.pass(time.Minute)
	if got := w.types("started"); strings.Count(got, "RunLost") != 1 {
		t.Fatalf("a run was recorded lost twice: %s", got)
	}
}

// Given executor a holds a started run, when a comes back as a new process
// (another boot), then that run is lost at once, and a's runs of the new
// boot are its own.
func TestAnExecutorThatRestartedNoLongerHoldsItsEarlierRuns(t *testing.T) {
	t.Parallel()
	w := givenFleet(t)
	w.beat("a", "boot1", "default")
	w.seed("r1", requested())
	w.claim("a", "boot1", "r1")
	w.seed("r1", run.ContainerCreated{ContainerID: "c"}, run.ContainerStarted{})
	w.beat("a", "boot1", "default")
	if got := w.types("r1"); strings.Contains(got, "RunLost") {
		t.Fatalf("a heartbeat of the same boot lost a run: %s", got)
	}
	w.beat("a", "boot2", "default")
	if got := w.types("r1"); !strings.HasSuffix(got, "RunLost") {
		t.Fatalf("after a restart: %s", got)
	}
}

// Given executor a was taken for gone and its started run recorded lost,
// when a rejoins (same process) with a heartbeat still naming that run,
// then the fleet tells a to stop it, and only it: not a run a holds
// rightly, nor anything on a later heartbeat.
func TestAnExecutorThatRejoinsIsToldToStopTheRunsRecordedLost(t *testing.T) {
	t.Parallel()
	w := givenFleet(t)
	w.beat("a", "boot1", "default")
	w.seed("r1", requested())
	w.claim("a", "boot1", "r1")
	w.seed("r1", run.ContainerCreated{ContainerID: "c"}, run.ContainerStarted{})
	w.pass(15 * time.Second)
	if got := w.types("r1"); !strings.HasSuffix(got, "RunLost") {
		t.Fatalf("a silent executor's run: %s", got)
	}
	w.seed("r2", requested())
	w.fleet.Beat(w.ctx, executor.Heartbeat{ID: "a", Boot: "boot1", Groups: []string{"default"}, Runs: []string{"r1"}})
	w.claim("a", "boot1", "r2")
	w.fleet.Beat(w.ctx, executor.Heartbeat{ID: "a", Boot: "boot1", Groups: []string{"default"}, Runs: []string{"r1", "r2"}})
	if got := w.released["a"]; !slices.Equal(got, []string{"r1"}) {
		t.Fatalf("a was told to stop %v, want [r1]", got)
	}
}

// Given a run queued for relay group prod, where no executor is live, when
// QueueTimeout passes, then it fails naming the group; a run of a group
// with a live executor waits on.
func TestARunForAGroupNobodyServesFailsAfterTheQueueTimeout(t *testing.T) {
	t.Parallel()
	w := givenFleet(t)
	w.beat("a", "boot1", "default")
	w.seed("prod-run", requested())
	w.seed("default-run", requested())
	w.fleet.Queued("prod-run", "prod")
	w.fleet.Queued("default-run", "default")
	w.beat("a", "boot1", "default")
	w.pass(29 * time.Second)
	w.beat("a", "boot1", "default")
	if got := w.types("prod-run"); got != "RunRequested" {
		t.Fatalf("before the timeout: %s", got)
	}
	w.pass(time.Second)
	events, _ := w.store.ReadStream(w.ctx, run.Stream("prod-run"), 0, 10)
	if len(events) != 2 || events[1].Type != "RunFailed" || !strings.Contains(string(events[1].Data), `relay group \"prod\"`) {
		t.Fatalf("prod run after the timeout: %+v", events)
	}
	if got := w.types("default-run"); got != "RunRequested" {
		t.Fatalf("a run of a served group: %s", got)
	}
}

// An event from an executor that does not hold its run is refused and not
// appended; the holder's is.
func TestRunEventsAreAcceptedOnlyFromTheRunsHolder(t *testing.T) {
	t.Parallel()
	w := givenFleet(t)
	w.beat("a", "boot1", "default")
	w.seed("r1", requested())
	w.claim("a", "boot1", "r1")
	handle := w.desk.Guard(executor.NewAppender(w.store), func(m *message.Message) string { return m.Metadata.Get("from") })
	send := func(from string, p domain.Payload) error {
		msg := executor.NewEventMessage(run.Stream("r1"), 2, domain.MustEncode(p, domain.Metadata{}))
		msg.Metadata.Set("from", from)
		msg.SetContext(w.ctx)
		return handle(msg)
	}
	err := send("b", run.RunSucceeded{})
	if !errors.Is(err, executor.ErrNotYourRun) || !executor.Unprocessable(err) {
		t.Fatalf("b's event for a's run: %v", err)
	}
	if err := send("", run.RunSucceeded{}); !errors.Is(err, executor.ErrNotYourRun) {
		t.Fatalf("an event naming no executor: %v", err)
	}
	if err := send("a", run.RunFailed{Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	if got := w.types("r1"); got != "RunRequested RunClaimed RunFailed" {
		t.Fatalf("stream: %s", got)
	}
	if ids := w.desk.Held("a", ""); slices.Contains(ids, "r1") {
		t.Fatalf("the desk still watches a finished run: %v", ids)
	}
}

// storeClaimer grants every claim from the store, as the server's desk
// does, for an executor without a store of its own.
type storeClaimer struct {
	desk *executor.ClaimDesk
}

func (c storeClaimer) Claim(ctx context.Context, req runbus.RunRequest) ([]domain.Payload, error) {
	reply, err := c.desk.Claim(ctx, "a", "boot1", "host", "default", req.RunID, true)
	if err != nil {
		return nil, err
	}
	if reply.Status != executor.ClaimGranted {
		return nil, fmt.Errorf("%w: %s", executor.ErrClaimDone, reply.Reason)
	}
	return executor.DecodeWireEvents(reply.Events)
}

// Given a claimed run whose container an executor that stopped on this
// host already made, when the runtime finds the name taken, then the run
// is lost, never run a second time.
func TestAClaimedRunWhoseContainerIsThereAlreadyIsLostNotRunAgain(t *testing.T) {
	t.Parallel()
	w := givenFleet(t)
	w.beat("a", "boot1", "default")
	req := request("r1")
	w.seed("r1", req.Request)
	ran := 0
	rt := &fakeRuntime{fn: func(context.Context, executor.Spec, executor.Sink) (executor.Outcome, error) {
		ran++
		return executor.Outcome{}, executor.Errorf(executor.ErrAlreadyExists, nil, "container logbook-run-r1 exists")
	}}
	e, err := executor.NewExecutorWithConfig(executor.Config{Runtime: rt, Publisher: executortest.AppendingPublisher{Appender: executor.NewAppender(w.store)},
		Claimer: storeClaimer{w.desk}, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Execute(req); err != nil {
		t.Fatal(err)
	}
	if got := w.types("r1"); got != "RunRequested RunClaimed RunStarting RunLost" || ran != 1 {
		t.Fatalf("stream %s after %d runs", got, ran)
	}
}

// A run's events handed over together are appended together, each checked
// as Guard checks one, or none is: one from another executor, a gap in
// their versions, or one stored already (a redelivery, which Guard then
// takes one by one) leave the stream as it was.
func TestARunsEventsTogetherAreAppendedAllOrNone(t *testing.T) {
	t.Parallel()
	w := givenFleet(t)
	w.beat("a", "boot1", "default")
	w.seed("r1", requested())
	w.claim("a", "boot1", "r1")
	appender := executor.NewAppender(w.store)
	from := func(m *message.Message) string { return m.Metadata.Get("from") }
	together, one := w.desk.GuardRun(appender, from), w.desk.Guard(appender, from)
	event := func(who string, version int64, p domain.Payload) *message.Message {
		msg := executor.NewEventMessage(run.Stream("r1"), version, domain.MustEncode(p, domain.Metadata{}))
		msg.Metadata.Set("from", who)
		msg.SetContext(w.ctx)
		return msg
	}
	started, stopped, succeeded := event("a", 2, run.ContainerStarted{ContainerID: "c"}), event("a", 3, run.ContainerStopped{}), event("a", 4, run.RunSucceeded{})
	for name, msgs := range map[string][]*message.Message{
		"one from another executor": {started, event("b", 3, run.ContainerStopped{}), succeeded},
		"a gap in the versions":     {started, succeeded},
	} {
		if err := together(w.ctx, msgs); err == nil {
			t.Fatalf("%s: appended", name)
		}
		if got := w.types("r1"); got != "RunRequested RunClaimed" {
			t.Fatalf("%s: stream %s", name, got)
		}
	}
	if err := together(w.ctx, []*message.Message{started, stopped}); err != nil {
		t.Fatal(err)
	}
	if err := together(w.ctx, []*message.Message{started, stopped, succeeded}); err == nil {
		t.Fatal("a redelivery of stored events was appended together again")
	}
	for _, m := range []*message.Message{started, stopped, succeeded} {
		if err := one(m); err != nil {
			t.Fatalf("one by one: %v", err)
		}
	}
	if got := w.types("r1"); got != "RunRequested RunClaimed ContainerStarted ContainerStopped RunSucceeded" {
		t.Fatalf("stream: %s", got)
	}
	if ids := w.desk.Held("a", ""); slices.Contains(ids, "r1") {
		t.Fatalf("the desk still watches a finished run: %v", ids)
	}
}
