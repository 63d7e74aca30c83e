package executor_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/executor"
)

// countedStore counts the appends (the commits) a SQLite store makes.
type countedStore struct {
	*sqlite.Store
	appends atomic.Int64
}

func (s *countedStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...domain.NewEvent) (eventstore.AppendResult, error) {
	s.appends.Add(1)
	return s.Store.Append(ctx, stream, expected, events...)
}

// BenchmarkWarmRunOnTheEmbeddedBus measures a warm-like run's events (its
// request, ContainerStarted, an output chunk, ContainerStopped,
// RunSucceeded) from the executor through the embedded bus and its router
// into SQLite with synchronous=FULL, one run at a time: "one by one"
// publishes on the GoChannel itself (each event its own commit, as before
// GroupPublisher), "together" through EmbeddedBus.EventsPublisher (the
// last three in one commit).
//
//	go test ./executor -run '^$' -bench WarmRunOnTheEmbeddedBus -benchtime 300x -count 3
func BenchmarkWarmRunOnTheEmbeddedBus(b *testing.B) {
	warm := func(_ context.Context, spec executor.Spec, sink executor.Sink) (executor.Outcome, error) {
		sink.ContainerStarted("warm-1", true)
		_, _ = sink.Stdout().Write([]byte("hello\n"))
		return executor.Outcome{Started: true}, nil
	}
	for _, c := range []struct {
		name      string
		publisher func(executor.EmbeddedBus) message.Publisher
	}{
		{"one by one", func(bus executor.EmbeddedBus) message.Publisher { return bus.LanePublisher() }},
		{"together", func(bus executor.EmbeddedBus) message.Publisher { return bus.EventsPublisher() }},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "logbook.db"), sqlstore.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			store := &countedStore{Store: db}
			bus := executor.NewEmbeddedBus(zerolog.Nop())
			defer bus.Close()
			router, err := executor.NewRouter(executor.RouterConfig{PoisonPublisher: bus.Commands, Logger: zerolog.Nop()})
			if err != nil {
				b.Fatal(err)
			}
			bus.AddAppender(router, executor.NewAppender(store))
			go func() { _ = router.Run(ctx) }()
			defer router.Close()
			<-router.Running()
			e, err := executor.NewExecutorWithConfig(executor.Config{
				Runtime: &fakeRuntime{fn: warm}, Publisher: c.publisher(bus), Store: store, Logger: zerolog.Nop(),
			})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = e.Shutdown(ctx) }()
			before := store.appends.Load()
			runs := 0
			for b.Loop() {
				if err := e.Execute(request("bench-" + itoa(runs))); err != nil {
					b.Fatal(err)
				}
				runs++
			}
			b.ReportMetric(float64(store.appends.Load()-before)/float64(runs), "commits/run")
		})
	}
}
