package executor_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/executor"
)

type discardPublisher struct{}

func (discardPublisher) Publish(string, ...*message.Message) error { return nil }
func (discardPublisher) Close() error                              { return nil }

// BenchmarkExecutorCapture measures the executor's own cost of turning
// output into published OutputChunk events (no runtime, no store).
func BenchmarkExecutorCapture(b *testing.B) {
	const total = 16 << 20
	block := make([]byte, 32<<10)
	rt := &fakeRuntime{fn: func(_ context.Context, _ executor.Spec, sink executor.Sink) (executor.Outcome, error) {
		sink.ContainerStarted("", false)
		for written := 0; written < total; written += len(block) {
			_, _ = sink.Stdout().Write(block)
		}
		return executor.Outcome{Started: true}, nil
	}}
	e, err := executor.NewExecutorWithConfig(executor.Config{Runtime: rt, Publisher: discardPublisher{}, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	for i := 0; b.Loop(); i++ {
		req := request("b" + string(rune('a'+i%26)) + itoa(i))
		req.Request.Limits.OutputBytes = total * 2
		if err := e.Execute(req); err != nil {
			b.Fatal(err)
		}
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
