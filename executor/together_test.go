package executor_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/executor/executortest"
)

// committingStore is a MemStore that notes each append (each a commit of
// a real store) as the types of its events, space-separated.
type committingStore struct {
	*executortest.MemStore
	mu      sync.Mutex
	commits []string
}

func (s *committingStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...domain.NewEvent) (eventstore.AppendResult, error) {
	res, err := s.MemStore.Append(ctx, stream, expected, events...)
	if err == nil && !res.Duplicate {
		names := make([]string, len(events))
		for i, e := range events {
			names[i] = e.Type
		}
		s.mu.Lock()
		s.commits = append(s.commits, strings.Join(names, " "))
		s.mu.Unlock()
	}
	return res, err
}

func (s *committingStore) Commits() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commits...)
}

// Given an executor on the embedded bus, whose events reach the Appender
// through the router, when a run's command is over, then its last output,
// ContainerStopped and the terminal event are stored in one commit (and
// the container's removal after it in one of its own).
func TestEmbeddedBusStoresARunsLastEventsInOneCommit(t *testing.T) {
	t.Parallel()
	quiet := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	store := &committingStore{MemStore: executortest.NewMemStore()}
	bus := executor.NewEmbeddedBus(quiet)
	t.Cleanup(func() { _ = bus.Close() }) // after runRouter's cleanup: a bus closed first stops the handlers, logged after the test
	router, err := executor.NewRouter(executor.RouterConfig{PoisonPublisher: bus.Commands, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	e, err := executor.NewExecutorWithConfig(executor.Config{
		Runtime: &fakeRuntime{fn: echoRun("together\n", executor.Outcome{Duration: time.Millisecond})}, Publisher: bus.EventsPublisher(),
		Store: store, Chunking: executor.ChunkerConfig{Interval: time.Hour}, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	bus.AddAppender(router, executor.NewAppender(store))
	runRouter(t, router)
	<-router.Running()

	if err := e.Execute(request("t1")); err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(context.Background()); err != nil { // waits for the container's removal
		t.Fatal(err)
	}
	want := []string{"RunRequested", "ContainerCreated", "ContainerStarted", "OutputChunk ContainerStopped RunSucceeded", "ContainerRemoved"}
	if got := store.Commits(); strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Fatalf("commits = %q\nwant      %q", got, want)
	}
	got := store.Payloads("run-t1")
	if string(executortest.Output(got, run.Stdout)) != "together\n" {
		t.Fatalf("stdout = %q", executortest.Output(got, run.Stdout))
	}
	if succeeded := executortest.Terminal(t, got).(run.RunSucceeded); string(succeeded.Result.Value) != `[{"body":["together"]}]` {
		t.Fatalf("result = %s", succeeded.Result.Value)
	}
}

// Given a runtime that takes a container started ahead of the run
// (single-use mode), when the run goes, then the container's
// ContainerCreated is stored, in a commit of its own, before ContainerTaken
// returns: a run given again after a crash finds it, and is not run twice.
func TestATakenContainerIsStoredBeforeTheCommandStarts(t *testing.T) {
	t.Parallel()
	store := &committingStore{MemStore: executortest.NewMemStore()}
	var storedFirst bool
	rt := &fakeRuntime{fn: func(_ context.Context, spec executor.Spec, sink executor.Sink) (executor.Outcome, error) {
		if err := sink.ContainerTaken("c-"+spec.RunID, "sha256:abc"); err != nil {
			return executor.Outcome{}, err
		}
		storedFirst = slices.Contains(store.Commits(), "ContainerCreated")
		sink.ContainerStarted("c-"+spec.RunID, false)
		_, _ = sink.Stdout().Write([]byte("once\n"))
		return executor.Outcome{Started: true, ContainerID: "c-" + spec.RunID, Release: func(context.Context) error { return nil }}, nil
	}}
	e := groupsExecutor(t, rt, store)
	if err := e.Execute(request("taken")); err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(context.Background()); err != nil { // waits for the container's removal
		t.Fatal(err)
	}
	if !storedFirst {
		t.Error("ContainerTaken returned before ContainerCreated was stored")
	}
	want := []string{"RunRequested", "ContainerCreated", "ContainerStarted", "OutputChunk ContainerStopped RunSucceeded", "ContainerRemoved"}
	if got := store.Commits(); strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Fatalf("commits = %q\nwant      %q", got, want)
	}
	if created := store.Payloads("run-taken")[1].(run.ContainerCreated); created.ContainerID != "c-taken" || created.ImageDigest != "sha256:abc" {
		t.Fatalf("ContainerCreated = %+v", created)
	}
}

// Given a claimed run (NATS: its RunStarting already says the command may
// have begun) that takes a container started ahead of it, when it goes,
// then ContainerCreated waits for the run's next event and goes in its
// commit: the run does not wait for a commit of its own.
func TestATakenContainerOfAClaimedRunGoesWithItsStart(t *testing.T) {
	t.Parallel()
	store := &committingStore{MemStore: executortest.NewMemStore()}
	desk := executor.NewClaimDesk(store, func(string) bool { return true })
	desk.ServedBy(func(string, string) bool { return true })
	req := request("claimed")
	if _, err := store.Append(context.Background(), run.Stream("claimed"), eventstore.NoStream, domain.MustEncode(req.Request, domain.Metadata{})); err != nil {
		t.Fatal(err)
	}
	rt := &fakeRuntime{fn: func(_ context.Context, spec executor.Spec, sink executor.Sink) (executor.Outcome, error) {
		if err := sink.ContainerTaken("c-"+spec.RunID, "sha256:abc"); err != nil {
			return executor.Outcome{}, err
		}
		sink.ContainerStarted("c-"+spec.RunID, false)
		return executor.Outcome{Started: true, ContainerID: "c-" + spec.RunID, Release: func(context.Context) error { return nil }}, nil
	}}
	e, err := executor.NewExecutorWithConfig(executor.Config{
		Runtime: rt, Publisher: appendingGroups(store), Claimer: storeClaimer{desk}, StartedHold: time.Minute,
		Chunking: executor.ChunkerConfig{Interval: time.Hour}, Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Execute(req); err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"RunRequested", "RunClaimed RunStarting", "ContainerCreated ContainerStarted ContainerStopped RunSucceeded", "ContainerRemoved"}
	if got := store.Commits(); strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Fatalf("commits = %q\nwant      %q", got, want)
	}
}

// Given a warm run on the embedded bus (no claim, and a pooled container
// that does not name its run), when it goes, then the run takes itself
// (RunClaimed and RunStarting, in one commit) before the runtime forks the
// command, and its ContainerStarted waits for its end and goes in that
// commit, as a claimed run's does on a broker.
func TestAWarmRunTakesItselfBeforeItsCommandStarts(t *testing.T) {
	t.Parallel()
	store := &committingStore{MemStore: executortest.NewMemStore()}
	var atStart []string
	rt := &fakeRuntime{fn: func(_ context.Context, spec executor.Spec, sink executor.Sink) (executor.Outcome, error) {
		atStart = store.Commits()
		sink.ContainerStarted("w-1", true)
		_, _ = sink.Stdout().Write([]byte("warm\n"))
		return executor.Outcome{Started: true}, nil
	}}
	e := groupsExecutor(t, rt, store)
	req := request("warm")
	req.Request.Mode = run.ModeWarm
	if err := e.Execute(req); err != nil {
		t.Fatal(err)
	}
	if want := []string{"RunRequested", "RunClaimed RunStarting"}; !slices.Equal(atStart, want) {
		t.Fatalf("commits when the command started = %q, want %q", atStart, want)
	}
	want := []string{"RunRequested", "RunClaimed RunStarting", "ContainerStarted OutputChunk ContainerStopped RunSucceeded"}
	if got := store.Commits(); !slices.Equal(got, want) {
		t.Fatalf("commits = %q\nwant      %q", got, want)
	}
}

// Given a runtime that takes a container for the run and then fails to
// start the command in it, when the run ends, then the container's
// ContainerCreated was stored before, and the run's failure after it.
func TestATakenContainerIsStoredWhenTheCommandNeverStarts(t *testing.T) {
	t.Parallel()
	store := &committingStore{MemStore: executortest.NewMemStore()}
	rt := &fakeRuntime{fn: func(_ context.Context, spec executor.Spec, sink executor.Sink) (executor.Outcome, error) {
		if err := sink.ContainerTaken("c-"+spec.RunID, "sha256:abc"); err != nil {
			return executor.Outcome{}, err
		}
		return executor.Outcome{ContainerID: "c-" + spec.RunID}, executor.Errorf(executor.ErrUnavailable, nil, "the agent went away")
	}}
	e := groupsExecutor(t, rt, store)
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	_ = e.Execute(request("never"))
	got := store.Commits()
	if len(got) < 3 || got[1] != "ContainerCreated" || !strings.HasPrefix(got[2], "Run") {
		t.Fatalf("commits = %q, want ContainerCreated stored alone, then the run's terminal event", got)
	}
}

// groupsExecutor is an executor of rt whose events go through
// appendingGroups to store, output chunked only at a run's end.
func groupsExecutor(t *testing.T, rt executor.Runtime, store eventstore.Store) *executor.Executor {
	t.Helper()
	e, err := executor.NewExecutorWithConfig(executor.Config{
		Runtime: rt, Publisher: appendingGroups(store), Store: store,
		Chunking: executor.ChunkerConfig{Interval: time.Hour}, Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// appendingGroups is the embedded bus without its router: a Publish goes
// through GroupPublisher and straight to an Appender.
func appendingGroups(store eventstore.Store) executor.GroupPublisher {
	return executor.GroupPublisher{Publisher: executortest.AppendingPublisher{Appender: executor.NewAppender(store)}}
}

// Given a runtime that reports the command started but not how it stopped,
// so the run's terminal event is refused, when the run ends, then the
// output held for the terminal event is still stored.
func TestExecutorStoresTheHeldEventsWhenTheTerminalEventIsRefused(t *testing.T) {
	t.Parallel()
	store := &committingStore{MemStore: executortest.NewMemStore()}
	rt := &fakeRuntime{fn: func(_ context.Context, spec executor.Spec, sink executor.Sink) (executor.Outcome, error) {
		sink.ContainerCreated("c-"+spec.RunID, "sha256:abc")
		sink.ContainerStarted("c-"+spec.RunID, false)
		_, _ = sink.Stdout().Write([]byte("last words\n"))
		return executor.Outcome{}, nil // Started false: no ContainerStopped, so no terminal event may follow
	}}
	e := groupsExecutor(t, rt, store)
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })

	if err := e.Execute(request("refused")); !errors.Is(err, run.ErrOutOfOrder) {
		t.Fatalf("Execute = %v, want the terminal event's refusal", err)
	}
	got := store.Payloads("run-refused")
	if types(got) != "RunRequested ContainerCreated ContainerStarted OutputChunk" {
		t.Fatalf("events = %s, want the output held for the terminal event stored", types(got))
	}
	if string(executortest.Output(got, run.Stdout)) != "last words\n" {
		t.Fatalf("stdout = %q", executortest.Output(got, run.Stdout))
	}
}

// Given a runtime that finds the run's container already there (a
// redelivered request) after writing output, when the run ends without a
// terminal event, then that output is stored all the same.
func TestExecutorStoresTheHeldEventsOfARunEndingWithoutATerminalEvent(t *testing.T) {
	t.Parallel()
	store := executortest.NewMemStore()
	rt := &fakeRuntime{fn: func(_ context.Context, spec executor.Spec, sink executor.Sink) (executor.Outcome, error) {
		sink.ContainerCreated("c-"+spec.RunID, "sha256:abc")
		sink.ContainerStarted("c-"+spec.RunID, false)
		_, _ = sink.Stdout().Write([]byte("partial\n"))
		return executor.Outcome{}, executor.Errorf(executor.ErrAlreadyExists, nil, "container exists")
	}}
	e := groupsExecutor(t, rt, store)
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })

	if err := e.Execute(request("exists")); err != nil {
		t.Fatal(err)
	}
	if got := store.Payloads("run-exists"); types(got) != "RunRequested ContainerCreated ContainerStarted OutputChunk" {
		t.Fatalf("events = %s, want the held output stored", types(got))
	}
}

// runEvents are payloads as events of run-g from version 0, as the
// recorder publishes them, and the message that carries all but the first
// together.
func runEvents(t *testing.T, payloads ...domain.Payload) ([]*message.Message, *message.Message) {
	t.Helper()
	msgs := make([]*message.Message, len(payloads))
	for i, p := range payloads {
		msgs[i] = executor.NewEventMessage("run-g", int64(i), domain.MustEncode(p, domain.Metadata{CorrelationID: "req-g"}))
	}
	together, err := executor.NewRunEventsMessage(msgs[1:])
	if err != nil {
		t.Fatal(err)
	}
	return msgs, together
}

// Given a run's last events carried together, when they arrive again
// after some or all were stored (a redelivery), then they are appended
// one by one where needed and nothing is stored twice; when their stream
// is behind them nothing is stored and the message waits.
func TestAppenderSettlesARedeliveredGroupOneByOne(t *testing.T) {
	t.Parallel()
	payloads := []domain.Payload{requested(), run.ContainerStarted{ContainerID: "c"}, run.ContainerStopped{}, run.RunSucceeded{}}
	const stored = "RunRequested ContainerStarted ContainerStopped RunSucceeded"

	t.Run("the stream is behind the group", func(t *testing.T) {
		store := &committingStore{MemStore: executortest.NewMemStore()}
		_, together := runEvents(t, payloads...)
		if err := executor.NewAppender(store).Handle(together); !errors.Is(err, executor.ErrStreamBehind) {
			t.Fatalf("Handle = %v, want ErrStreamBehind", err)
		}
		if n := len(store.Payloads("run-g")); n != 0 {
			t.Fatalf("%d events stored, want none", n)
		}
	})
	t.Run("its first event was stored already", func(t *testing.T) {
		store := &committingStore{MemStore: executortest.NewMemStore()}
		app := executor.NewAppender(store)
		msgs, together := runEvents(t, payloads...)
		for _, m := range msgs[:2] {
			if err := app.Handle(m); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Handle(together); err != nil {
			t.Fatal(err)
		}
		if got := types(store.Payloads("run-g")); got != stored {
			t.Fatalf("events = %s\nwant     %s", got, stored)
		}
		if got := strings.Join(store.Commits(), " | "); got != "RunRequested | ContainerStarted | ContainerStopped | RunSucceeded" {
			t.Fatalf("commits = %s, want the group's remaining events one by one", got)
		}
	})
	t.Run("all of it was stored", func(t *testing.T) {
		store := &committingStore{MemStore: executortest.NewMemStore()}
		app := executor.NewAppender(store)
		msgs, together := runEvents(t, payloads...)
		for _, m := range []*message.Message{msgs[0], together, together.Copy()} {
			if err := app.Handle(m); err != nil {
				t.Fatal(err)
			}
		}
		if got := types(store.Payloads("run-g")); got != stored {
			t.Fatalf("events = %s\nwant     %s", got, stored)
		}
		if got := strings.Join(store.Commits(), " | "); got != "RunRequested | ContainerStarted ContainerStopped RunSucceeded" {
			t.Fatalf("commits = %s, want the group in one commit, once", got)
		}
	})
	t.Run("another event holds a place", func(t *testing.T) {
		store := &committingStore{MemStore: executortest.NewMemStore()}
		app := executor.NewAppender(store)
		msgs, together := runEvents(t, payloads...)
		other := executor.NewEventMessage("run-g", 1, domain.MustEncode(run.ContainerStarted{ContainerID: "other"}, domain.Metadata{}))
		for _, m := range []*message.Message{msgs[0], other} {
			if err := app.Handle(m); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Handle(together); !errors.Is(err, executor.ErrStreamConflict) {
			t.Fatalf("Handle = %v, want ErrStreamConflict", err)
		}
		if got := types(store.Payloads("run-g")); got != "RunRequested ContainerStarted" {
			t.Fatalf("events = %s, want none of the group stored", got)
		}
	})
}

// Given events that are not one run's in a row, when they are published
// together, then GroupPublisher sends them one by one as they are.
func TestGroupPublisherSendsOtherMessagesOneByOne(t *testing.T) {
	t.Parallel()
	var got []string
	pub := executor.GroupPublisher{Publisher: publisherFunc(func(_ string, msgs ...*message.Message) error {
		for _, m := range msgs {
			got = append(got, m.UUID)
		}
		return nil
	})}
	a := executor.NewEventMessage("run-a", 3, domain.MustEncode(run.ContainerStopped{}, domain.Metadata{}))
	b := executor.NewEventMessage("run-b", 4, domain.MustEncode(run.RunSucceeded{}, domain.Metadata{}))
	if err := pub.Publish(executor.TopicRunEvents, a, b); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != a.UUID || got[1] != b.UUID {
		t.Fatalf("published %v, want %s and %s apart", got, a.UUID, b.UUID)
	}
}

type publisherFunc func(topic string, msgs ...*message.Message) error

func (f publisherFunc) Publish(topic string, msgs ...*message.Message) error {
	return f(topic, msgs...)
}
func (publisherFunc) Close() error { return nil }

// runEnder is a RunEnder that notes the runs handed to it and answers
// ends: true as if it had appended them with their decision.
type runEnder struct {
	mu     sync.Mutex
	handed []string // "<run id> <first version> <event types>"
	ends   bool
}

func (e *runEnder) EndRun(_ context.Context, runID string, first int64, events []domain.NewEvent) (bool, error) {
	names := make([]string, len(events))
	for i, ev := range events {
		names[i] = ev.Type
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.handed = append(e.handed, fmt.Sprintf("%s %d %s", runID, first, strings.Join(names, " ")))
	return e.ends, nil
}

// Given an appender with a RunEnder, a run's events carried together go to
// it only when they end the run, and are appended by the appender only
// when it says it did not append them.
func TestAppenderHandsARunsLastEventsToItsRunEnder(t *testing.T) {
	t.Parallel()
	ending := []domain.Payload{requested(), run.ContainerStarted{ContainerID: "c"}, run.ContainerStopped{}, run.RunSucceeded{}}
	going := []domain.Payload{requested(), run.ContainerStarted{ContainerID: "c"}, run.OutputChunk{Stream: run.Stdout, Bytes: []byte("hi")}}
	for _, tc := range []struct {
		name        string
		payloads    []domain.Payload
		ends        bool
		wantHanded  string
		wantCommits string
	}{
		{"a run's end the ender appended", ending, true, "g 1 ContainerStarted ContainerStopped RunSucceeded", "RunRequested"},
		{"a run's end the ender left", ending, false, "g 1 ContainerStarted ContainerStopped RunSucceeded", "RunRequested | ContainerStarted ContainerStopped RunSucceeded"},
		{"events that do not end the run", going, true, "", "RunRequested | ContainerStarted OutputChunk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &committingStore{MemStore: executortest.NewMemStore()}
			ender := &runEnder{ends: tc.ends}
			app := executor.NewAppender(store).EndRunsWith(ender)
			msgs, together := runEvents(t, tc.payloads...)
			for _, m := range []*message.Message{msgs[0], together} {
				if err := app.Handle(m); err != nil {
					t.Fatal(err)
				}
			}
			if got := strings.Join(ender.handed, " | "); got != tc.wantHanded {
				t.Errorf("handed to the ender: %q, want %q", got, tc.wantHanded)
			}
			if got := strings.Join(store.Commits(), " | "); got != tc.wantCommits {
				t.Errorf("appended by the appender: %q, want %q", got, tc.wantCommits)
			}
		})
	}
}
