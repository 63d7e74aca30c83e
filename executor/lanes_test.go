package executor_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

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
	bus := executor.NewEmbeddedBus(quiet)
	defer bus.Close()
	router, err := executor.NewRouter(executor.RouterConfig{PoisonPublisher: bus.Commands, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	bus.AddAppender(router, executor.NewAppender(store))
	runRouter(t, router)
	<-router.Running()
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
