package natsbus_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/logbookhq/logbook/adapters/natsbus"
	"github.com/logbookhq/logbook/adapters/natsbus/natstest"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/executor"
)

// BenchmarkARunsEventsThroughNATS is the NATS part of a warm run's events:
// an executor publishes five events of one run, and the appender's
// subscriber has taken them all. Waited: each publish acknowledged before
// the next (as before pipelining); pipelined: published without waiting,
// then settled; together: pipelined, the last three in one message, as a
// run's events after its command's end go (executor.GroupPublisher).
//
//	go test ./adapters/natsbus -run '^$' -bench ARunsEvents -count 5
func BenchmarkARunsEventsThroughNATS(b *testing.B) {
	for _, mode := range []struct {
		name      string
		pipelined bool
		together  int // how many of the last events go in one message
	}{{"waited", false, 0}, {"pipelined", true, 0}, {"together", true, 3}} {
		b.Run(mode.name, func(b *testing.B) {
			srv := natstest.Start(b, natstest.Executor{ID: "exec-a", Groups: []string{"default"}})
			server := serverConn(b, srv)
			execA := connect(b, srv, "exec-a", "exec-a")
			pub, err := natsbus.NewPublisher(execA, natsbus.PublisherConfig{Source: "exec-a", Pipelined: mode.pipelined})
			if err != nil {
				b.Fatal(err)
			}
			sub, err := natsbus.NewSubscriber(server, natsbus.SubscriberConfig{})
			if err != nil {
				b.Fatal(err)
			}
			defer sub.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			events, err := sub.Subscribe(ctx, executor.TopicRunEvents)
			if err != nil {
				b.Fatal(err)
			}
			const perRun = 5
			b.ResetTimer()
			for range b.N {
				runID := domain.NewEventID().String()
				var held []*message.Message
				for v := range perRun {
					ev := domain.NewEvent{ID: domain.NewEventID(), Type: "OutputChunk", Data: []byte(`{"seq":1}`)}
					msg := executor.NewEventMessage(run.Stream(runID), int64(v), ev)
					if v >= perRun-mode.together {
						held = append(held, msg)
						if v < perRun-1 {
							continue
						}
					} else {
						held = []*message.Message{msg}
					}
					if err := (executor.GroupPublisher{Publisher: pub}).Publish(executor.TopicRunEvents, held...); err != nil {
						b.Fatal(err)
					}
				}
				for taken := 0; taken < perRun; {
					select {
					case m := <-events:
						together, err := natsbus.RunEvents(m)
						if err != nil {
							b.Fatal(err)
						}
						taken += max(1, len(together))
						m.Ack()
					case <-time.After(15 * time.Second):
						b.Fatal("an event did not arrive within 15s")
					}
				}
				if err := pub.Settle(ctx, runID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
