package executortest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/executor"
)

// AppendingPublisher hands each published event straight to an Appender,
// so a test sees the stream as soon as Execute returns.
type AppendingPublisher struct{ Appender *executor.Appender }

// Publish implements message.Publisher.
func (p AppendingPublisher) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		if err := p.Appender.Handle(m); err != nil {
			return err
		}
	}
	return nil
}

// Close implements message.Publisher.
func (AppendingPublisher) Close() error { return nil }

// NewExecutor wires an executor over rt to a fresh MemStore; the executor
// is shut down when the test ends. cfg's Runtime, Publisher, Store and
// Logger are filled in.
func NewExecutor(t testing.TB, rt executor.Runtime, cfg executor.Config) (*executor.Executor, *MemStore) {
	t.Helper()
	store := NewMemStore()
	cfg.Runtime, cfg.Store = rt, store
	cfg.Publisher = AppendingPublisher{executor.NewAppender(store)}
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t))
	e, err := executor.NewExecutorWithConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	return e, store
}

// Types lists the event types of ps, space-separated.
func Types(ps []domain.Payload) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.EventType()
	}
	return strings.Join(names, " ")
}

// Terminal returns the run's terminal event, failing the test unless there
// is exactly one.
func Terminal(t testing.TB, ps []domain.Payload) domain.Payload {
	t.Helper()
	var found domain.Payload
	for _, p := range ps {
		if run.IsTerminal(p) {
			if found != nil {
				t.Fatalf("two terminal events: %s and %s", found.EventType(), p.EventType())
			}
			found = p
		}
	}
	if found == nil {
		t.Fatalf("no terminal event in %s", Types(ps))
	}
	return found
}

// Output joins a run's recorded output of one stream, in seq order.
func Output(ps []domain.Payload, s run.OutputStream) []byte {
	var b []byte
	for _, p := range ps {
		if c, ok := p.(run.OutputChunk); ok && c.Stream == s {
			b = append(b, c.Bytes...)
		}
	}
	return b
}
