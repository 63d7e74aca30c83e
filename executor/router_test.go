package executor_test

import (
	"context"
	"errors"
	"sync/atomic"
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
	"github.com/logbookhq/logbook/internal/testenv"
)

func TestRoutedRunRequestEndsAsAStoredStream(t *testing.T) {
	t.Parallel()
	log := zerolog.New(zerolog.NewTestWriter(t))
	// Watermill logs a handler's end (debug, trace) after Close returns,
	// which may be after the test ended: the bus and the router log
	// only what is worse.
	quiet := log.Level(zerolog.InfoLevel)
	store := executortest.NewMemStore()
	bus := executor.NewEmbeddedBus(quiet)
	t.Cleanup(func() { _ = bus.Close() }) // after runRouter's cleanup: a bus closed first stops the handlers, logged after the test
	router, err := executor.NewRouter(executor.RouterConfig{PoisonPublisher: bus.Commands, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	e, err := executor.NewExecutorWithConfig(executor.Config{
		Runtime: &fakeRuntime{fn: echoRun("routed\n", executor.Outcome{})}, Publisher: bus.EventsPublisher(), Store: store, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.AddHandlers(router, bus.Commands, bus.Commands)
	bus.AddAppender(router, executor.NewAppender(store))
	runRouter(t, router)
	<-router.Running()

	msg, err := runbus.NewRunRequestMessage(request("routed"))
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Commands.Publish(runbus.TopicRunRequested, msg); err != nil {
		t.Fatal(err)
	}
	var got []domain.Payload
	testenv.Eventually(t, "the routed run stored to its end", func() bool {
		got = store.Payloads("run-routed")
		n := len(got)
		return n > 0 && got[n-1].EventType() == "ContainerRemoved"
	})
	if types(got) != "RunRequested ContainerCreated ContainerStarted OutputChunk ContainerStopped RunSucceeded ContainerRemoved" {
		t.Fatalf("events = %s", types(got))
	}
	if _, ok := got[5].(run.RunSucceeded); !ok {
		t.Fatalf("terminal = %T", got[5])
	}
	_ = e.Shutdown(context.Background())
}

// downStore is a MemStore whose appends fail, as an unreachable database's
// do, while it is down; each refused append is signalled.
type downStore struct {
	*executortest.MemStore
	down    atomic.Bool
	refused chan struct{}
}

func (s *downStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...domain.NewEvent) (eventstore.AppendResult, error) {
	if s.down.Load() {
		select {
		case s.refused <- struct{}{}:
		default:
		}
		return eventstore.AppendResult{}, errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	}
	return s.MemStore.Append(ctx, stream, expected, events...)
}

// Given the store is unreachable while a run publishes its events, when
// the router's retries are used up, then the events are not parked on the
// poison queue (which would leave a gap no later event can fill) but
// delivered again; once the store returns the whole run is stored in order.
func TestRunEventsWaitForAnUnreachableStoreInsteadOfBeingPoisoned(t *testing.T) {
	t.Parallel()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel)
	store := &downStore{MemStore: executortest.NewMemStore(), refused: make(chan struct{}, 1)}
	store.down.Store(true)
	bus := executor.NewEmbeddedBus(log)
	t.Cleanup(func() { _ = bus.Close() }) // after runRouter's cleanup: a bus closed first stops the handlers, logged after the test
	router, err := executor.NewRouter(executor.RouterConfig{PoisonPublisher: bus.Commands, Logger: log, MaxRetries: 2, RetryInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e, err := executor.NewExecutorWithConfig(executor.Config{
		Runtime: &fakeRuntime{fn: echoRun("waited\n", executor.Outcome{})}, Publisher: bus.EventsPublisher(), Store: store.MemStore, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.AddHandlers(router, bus.Commands, bus.Commands)
	bus.AddAppender(router, executor.NewAppender(store))
	runRouter(t, router)
	<-router.Running()

	msg, err := runbus.NewRunRequestMessage(request("outage"))
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Commands.Publish(runbus.TopicRunRequested, msg); err != nil {
		t.Fatal(err)
	}
	// Three times the router's retries (2 each) are refused: the first
	// event has outlived its retries at least twice.
	for range 9 {
		<-store.refused
	}
	store.down.Store(false)
	for changed := store.Changed(); ; changed = store.Changed() {
		got := store.Payloads("run-outage")
		if n := len(got); n > 0 && got[n-1].EventType() == "ContainerRemoved" {
			if types(got) != "RunRequested ContainerCreated ContainerStarted OutputChunk ContainerStopped RunSucceeded ContainerRemoved" {
				t.Fatalf("events = %s", types(got))
			}
			break
		}
		select {
		case <-changed:
		case <-time.After(30 * time.Second):
			t.Fatalf("the run never reached the store after it returned: %s", types(got))
		}
	}
	_ = e.Shutdown(context.Background())
}

// runRouter runs router until the test ends, and waits for its handlers to
// stop before the test is over, so none logs to a finished test.
func runRouter(t *testing.T, router *message.Router) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = router.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		_ = router.Close()
		<-done
	})
}
