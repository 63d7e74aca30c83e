package dispatcher_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/internal/testenv"
)

// appendsStore keeps the event types of each append, and refuses the next
// append that holds a run's end with a version conflict when refuseEnd is
// set, as when the run's stream moved on.
type appendsStore struct {
	eventstore.Store
	mu        sync.Mutex
	appends   [][]string
	refuseEnd bool
}

func (s *appendsStore) AppendMulti(ctx context.Context, parts ...eventstore.StreamAppend) ([]eventstore.AppendResult, error) {
	var types []string
	for _, p := range parts {
		for _, e := range p.Events {
			types = append(types, e.Type)
		}
	}
	s.mu.Lock()
	refuse := s.refuseEnd && slices.Contains(types, "RunSucceeded")
	if refuse {
		s.refuseEnd = false
	} else {
		s.appends = append(s.appends, types)
	}
	s.mu.Unlock()
	if refuse {
		return nil, &eventstore.VersionConflictError{Stream: parts[0].Stream}
	}
	return s.Store.AppendMulti(ctx, parts...)
}

// holding says whether one append held all of types.
func (s *appendsStore) holding(types ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.appends {
		all := true
		for _, typ := range types {
			all = all && slices.Contains(a, typ)
		}
		if all {
			return true
		}
	}
	return false
}

// runInFlight starts a dispatcher over an appendsStore, sends text as
// admin and waits until its first run is requested; the executor then
// records ContainerStarted, as its own commit. It returns the store
// underneath, the watching one, the dispatcher, the request's id, and its
// reply to come.
func runInFlight(t *testing.T, text string) (*sqlite.Store, *appendsStore, *dispatcher.Dispatcher, string, <-chan dispatch.Reply) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	watched := &appendsStore{Store: store}
	d := startWithSampleBundle(t, store, watched, nil)
	in := dispatch.RequestReceived{Adapter: "api", MessageID: "m1", Room: "api", ChatUser: "admin", Text: text, Sender: "admin"}
	reply := d.WaitForReply(t.Context(), in.ID())
	if _, err := d.Receive(ctx, in, "admin"); err != nil {
		t.Fatal(err)
	}
	runID := dispatch.RunID(in.ID(), 0, 0)
	testenv.Eventually(t, "the run requested", func() bool {
		events, err := store.ReadStream(ctx, run.Stream(runID), 0, 1)
		return err == nil && len(events) == 1
	})
	started := domain.MustEncode(run.ContainerStarted{ContainerID: "c1", Warm: true}, domain.Metadata{Actor: "executor"})
	if _, err := store.Append(ctx, run.Stream(runID), eventstore.Exact(0), started); err != nil {
		t.Fatal(err)
	}
	return store, watched, d, in.ID(), reply
}

// lastEvents are a run's last events as its executor sends them: the
// container's stop and the run's success, printing out.
func lastEvents(t *testing.T, out string) []domain.NewEvent {
	t.Helper()
	result, err := run.ParseCogOutput([]byte(out+"\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	md := domain.Metadata{Actor: "executor"}
	return []domain.NewEvent{
		domain.MustEncode(run.ContainerStopped{ExitCode: 0, DurationMS: 3}, md),
		domain.MustEncode(run.RunSucceeded{Result: result}, md),
	}
}

// A run's last events handed to the dispatcher go into the log with the
// request's completion and reply in one commit: the run's commit and its
// request's took one each.
func TestARunsEndIsRecordedWithItsRequestsCompletionInOneCommit(t *testing.T) {
	// Given a request whose container run has started
	store, watched, d, id, reply := runInFlight(t, "toolbox:echo inline")
	runID := dispatch.RunID(id, 0, 0)

	// When its executor hands over the run's last events
	ended, err := d.EndRun(t.Context(), runID, 2, lastEvents(t, "inline"))

	// Then they are recorded, with the completion and the reply, in one append
	if err != nil || !ended {
		t.Fatalf("EndRun = %v, %v; want true, nil", ended, err)
	}
	if got := awaitReply(t, reply, "toolbox:echo inline"); got != "inline" {
		t.Errorf("the reply is %q, want the run's output", got)
	}
	if !watched.holding("ContainerStopped", "RunSucceeded", "RequestCompleted", "ReplyPosted") {
		t.Errorf("no append held the run's end with the request's completion and reply: %v", watched.appends)
	}
	// And each is in the log once, the run's at the versions it was given
	if got, want := typesOf(mustRead(t, store, run.Stream(runID))), []string{"RunRequested", "ContainerStarted", "ContainerStopped", "RunSucceeded"}; !slices.Equal(got, want) {
		t.Errorf("the run's stream holds %v, want %v", got, want)
	}
	testenv.Eventually(t, "the dispatcher to pass the run's end in the log", func() bool {
		head, _, err := store.Head(t.Context())
		return err == nil && d.Position() >= head
	})
	if n := countOf(mustRead(t, store, dispatch.Stream(id)), "RequestCompleted"); n != 1 {
		t.Errorf("the request was completed %d times, want once", n)
	}
}

// The end of a stage of a pipeline is recorded in the commit that starts
// the next stage.
func TestAPipelinesNextStageStartsInTheCommitThatEndsTheStageBefore(t *testing.T) {
	// Given a pipeline whose first stage's container run has started
	store, watched, d, id, _ := runInFlight(t, "toolbox:echo first | toolbox:echo")

	// When its executor hands over the first run's last events
	ended, err := d.EndRun(t.Context(), dispatch.RunID(id, 0, 0), 2, lastEvents(t, "first"))

	// Then they are recorded with the second stage's run request
	if err != nil || !ended {
		t.Fatalf("EndRun = %v, %v; want true, nil", ended, err)
	}
	if !watched.holding("RunSucceeded", "StageStarted", "RunRequested") {
		t.Errorf("no append held the first run's end with the second stage's start: %v", watched.appends)
	}
	if got := typesOf(mustRead(t, store, run.Stream(dispatch.RunID(id, 1, 0)))); !slices.Equal(got, []string{"RunRequested"}) {
		t.Errorf("the second stage's run holds %v, want its RunRequested", got)
	}
}

// What the dispatcher cannot decide as it comes is left to the caller,
// with nothing appended: a run it does not own, and a run's end already
// recorded.
func TestEndRunLeavesWhatItDoesNotOwnToTheCaller(t *testing.T) {
	// Given a request whose container run has ended through EndRun
	store, _, d, id, reply := runInFlight(t, "toolbox:echo once")
	runID := dispatch.RunID(id, 0, 0)
	events := lastEvents(t, "once")
	if ended, err := d.EndRun(t.Context(), runID, 2, events); err != nil || !ended {
		t.Fatalf("EndRun = %v, %v; want true, nil", ended, err)
	}
	awaitReply(t, reply, "toolbox:echo once")

	for _, tc := range []struct {
		name   string
		runID  string
		events []domain.NewEvent
	}{
		{"the same events again (a redelivery)", runID, events},
		{"a run of no request of this dispatcher", "no-such-run", lastEvents(t, "stray")},
	} {
		// When they are handed over
		ended, err := d.EndRun(t.Context(), tc.runID, 2, tc.events)

		// Then the caller is told to append them itself, and nothing was
		if err != nil || ended {
			t.Errorf("%s: EndRun = %v, %v; want false, nil", tc.name, ended, err)
		}
	}
	if got := typesOf(mustRead(t, store, run.Stream("no-such-run"))); len(got) != 0 {
		t.Errorf("the stray run's stream holds %v, want nothing", got)
	}
	if n := countOf(mustRead(t, store, run.Stream(runID)), "RunSucceeded"); n != 1 {
		t.Errorf("the run's end is recorded %d times, want once", n)
	}
}

// A run's end whose append the store refuses (its stream moved on) is
// left to the caller whole, and decided from the log once the caller has
// appended it.
func TestARunsEndTheStoreRefusesIsLeftToTheCallerWhole(t *testing.T) {
	// Given a request whose container run has started, and a store that
	// refuses the next append of a run's end
	store, watched, d, id, reply := runInFlight(t, "toolbox:echo refused")
	watched.mu.Lock()
	watched.refuseEnd = true
	watched.mu.Unlock()
	runID := dispatch.RunID(id, 0, 0)
	events := lastEvents(t, "refused")

	// When its executor hands over the run's last events
	ended, err := d.EndRun(t.Context(), runID, 2, events)

	// Then none is appended, and the caller is told to append them
	if err != nil || ended {
		t.Fatalf("EndRun = %v, %v; want false, nil", ended, err)
	}
	if got := typesOf(mustRead(t, store, run.Stream(runID))); !slices.Equal(got, []string{"RunRequested", "ContainerStarted"}) {
		t.Fatalf("after the refused append the run's stream holds %v", got)
	}
	// And once it has, the feed decides the run's end: answered, completed once
	if _, err := store.Append(t.Context(), run.Stream(runID), eventstore.Exact(1), events...); err != nil {
		t.Fatal(err)
	}
	if got := awaitReply(t, reply, "toolbox:echo refused"); got != "refused" {
		t.Errorf("the reply is %q, want the run's output", got)
	}
	testenv.Eventually(t, "the request completed once", func() bool {
		return countOf(mustRead(t, store, dispatch.Stream(id)), "RequestCompleted") == 1
	})
}

func mustRead(t *testing.T, s eventstore.Store, stream string) []domain.RecordedEvent {
	t.Helper()
	events, err := s.ReadStream(context.Background(), stream, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return events
}
