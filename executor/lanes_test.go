package executor_test

import (
	"context"
	"fmt"
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

// holdingStore holds every append to one stream until released, and says
// when the first has arrived.
type holdingStore struct {
	*executortest.MemStore
	stream   string
	arrived  chan struct{}
	once     sync.Once
	released chan struct{}
}

func (s *holdingStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...domain.NewEvent) (eventstore.AppendResult, error) {
	if stream == s.stream {
		s.once.Do(func() { close(s.arrived) })
		select {
		case <-s.released:
		case <-ctx.Done():
			return eventstore.AppendResult{}, ctx.Err()
		}
	}
	return s.MemStore.Append(ctx, stream, expected, events...)
}

// appendingBus is an embedded bus whose Appender stores into store, its
// router running until the test ends.
func appendingBus(t *testing.T, store eventstore.Store, log zerolog.Logger) executor.EmbeddedBus {
	t.Helper()
	bus := executor.NewEmbeddedBus(log)
	t.Cleanup(func() { _ = bus.Close() }) // after runRouter's cleanup: a bus closed first stops the handlers, logged after the test
	router, err := executor.NewRouter(executor.RouterConfig{PoisonPublisher: bus.Commands, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	bus.AddAppender(router, executor.NewAppender(store))
	runRouter(t, router)
	<-router.Running()
	return bus
}

// Given a run whose events the store is slow to take, when another run
// publishes its events on the embedded bus, then they are appended
// meanwhile: each run's events wait in their run's lane, not behind every
// other run's commit.
func TestARunsEventsAreNotHeldBehindAnotherRunsAppend(t *testing.T) {
	t.Parallel()
	quiet := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	held := run.Stream("held")
	other := ""
	for i := 0; other == "" && i < 1000; i++ {
		if s := run.Stream(fmt.Sprintf("other-%d", i)); executor.LaneOf(s) != executor.LaneOf(held) {
			other = s
		}
	}
	if other == "" {
		t.Fatal("every run is in the held run's lane: the bus has one lane")
	}
	store := &holdingStore{MemStore: executortest.NewMemStore(), stream: held, arrived: make(chan struct{}), released: make(chan struct{})}
	bus := appendingBus(t, store, quiet)
	publish := func(stream string) <-chan error {
		done := make(chan error, 1)
		msg := executor.NewEventMessage(stream, 0, domain.MustEncode(run.RunRequested{Image: "x", Argv: []string{"true"}}, domain.Metadata{}))
		go func() { done <- bus.EventsPublisher().Publish(executor.TopicRunEvents, msg) }()
		return done
	}

	// Given a run whose first event's append is held
	heldDone := publish(held)
	<-store.arrived

	// When another run publishes its first event
	// Then it is appended while the first is still held
	select {
	case err := <-publish(other):
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the other run's event waited behind the held run's append")
	}
	if got := types(store.Payloads(other)); got != "RunRequested" {
		t.Fatalf("the other run holds %q", got)
	}
	if got := types(store.Payloads(held)); got != "" {
		t.Fatalf("the held run holds %q before its append was let through", got)
	}
	// And the held run's event is appended once its append goes on
	close(store.released)
	if err := <-heldDone; err != nil {
		t.Fatal(err)
	}
	if got := types(store.Payloads(held)); got != "RunRequested" {
		t.Fatalf("the held run holds %q", got)
	}
}

// Given a run's events grouped into one message in this process, when it
// is read back here, then the events come as they were published, without
// a decode; and a copy that crossed a bus (no context) decodes to the same.
func TestAGroupOfRunEventsIsReadBackAsPublishedInItsOwnProcess(t *testing.T) {
	t.Parallel()
	var msgs []*message.Message
	for v := range 3 {
		msgs = append(msgs, executor.NewEventMessage(run.Stream("g"), int64(v+1), domain.MustEncode(run.OutputChunk{Stream: "stdout", Bytes: []byte(fmt.Sprint("line ", v))}, domain.Metadata{})))
	}
	together, err := executor.NewRunEventsMessage(msgs)
	if err != nil {
		t.Fatal(err)
	}
	here, err := executor.DecodeRunEventsMessage(together)
	if err != nil {
		t.Fatal(err)
	}
	if len(here) != 3 || here[0] != msgs[0] || here[2] != msgs[2] {
		t.Fatalf("read back %d events, not the ones published", len(here))
	}
	crossed, err := executor.DecodeRunEventsMessage(together.Copy())
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range crossed {
		if m.UUID != msgs[i].UUID || string(m.Payload) != string(msgs[i].Payload) || m.Metadata.Get("version") != msgs[i].Metadata.Get("version") {
			t.Fatalf("event %d decoded as %s %q, want %s %q", i, m.UUID, m.Payload, msgs[i].UUID, msgs[i].Payload)
		}
	}
}

// Given runs publishing grouped events on the embedded bus, when every
// Publish has returned, then each group is stored and the bus holds none
// of them any more.
func TestTheEmbeddedBusLetsGoOfEachGroupItCarried(t *testing.T) {
	t.Parallel()
	store := executortest.NewMemStore()
	bus := appendingBus(t, store, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel))
	var wg sync.WaitGroup
	for r := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := run.Stream(fmt.Sprint("grouped-", r))
			msgs := []*message.Message{executor.NewEventMessage(stream, 0, domain.MustEncode(run.RunRequested{Image: "x", Argv: []string{"true"}}, domain.Metadata{}))}
			for v := 1; v <= 3; v++ {
				msgs = append(msgs, executor.NewEventMessage(stream, int64(v), domain.MustEncode(run.OutputChunk{Stream: "stdout", Bytes: []byte("x")}, domain.Metadata{})))
			}
			if err := bus.EventsPublisher().Publish(executor.TopicRunEvents, msgs...); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for r := range 8 {
		if got := types(store.Payloads(run.Stream(fmt.Sprint("grouped-", r)))); got != "RunRequested OutputChunk OutputChunk OutputChunk" {
			t.Fatalf("run %d stored %s", r, got)
		}
	}
	if n := bus.CarriedGroups(); n != 0 {
		t.Fatalf("the bus still holds %d groups", n)
	}
}
