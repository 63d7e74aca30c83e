package natsbus_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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

// BenchmarkAHopThroughNATS is what one hop through nats-server costs on
// this machine, the floor of what NATS adds to a run: a core request and
// its reply (a claim's two hops, with an empty answer), and a JetStream
// message from its publish (acknowledged, persisted) to a waiting pull
// consumer (a run request reaching an executor, a run's events reaching
// the server). Each is measured back to back ("busy"), and with the
// parties idle for 20 ms before each ("at-rest"), as at a few runs a
// second, where each hop wakes processes that were asleep (the pause is
// not timed; give the at-rest cases a count, -benchtime 300x, or they
// sleep for minutes).
//
//	go test ./adapters/natsbus -run '^$' -bench 'AHop/.*/busy' -count 5
//	go test ./adapters/natsbus -run '^$' -bench 'AHop/.*/at-rest' -benchtime 300x -count 5
func BenchmarkAHopThroughNATS(b *testing.B) {
	srv := natstest.Start(b, natstest.Executor{ID: "exec-a", Groups: []string{"default"}})
	server := serverConn(b, srv)
	execA := connect(b, srv, "exec-a", "exec-a")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// paced runs hop b.N times, back to back ("busy") and with the parties
	// idle for 20 ms, untimed, before each ("at-rest").
	paced := func(b *testing.B, hop func(b *testing.B)) {
		for _, pace := range []struct {
			name string
			rest time.Duration
		}{{"busy", 0}, {"at-rest", 20 * time.Millisecond}} {
			b.Run(pace.name, func(b *testing.B) {
				for range b.N {
					if pace.rest > 0 {
						b.StopTimer()
						time.Sleep(pace.rest)
						b.StartTimer()
					}
					hop(b)
				}
			})
		}
	}

	b.Run("request-reply", func(b *testing.B) {
		sub, err := server.NC.Subscribe("logbook.claim.exec-a", func(m *nats.Msg) { _ = m.Respond([]byte("{}")) })
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Unsubscribe()
		if err := server.NC.Flush(); err != nil { // the subscription is the server's before the first request
			b.Fatal(err)
		}
		paced(b, func(b *testing.B) {
			if _, err := execA.NC.RequestWithContext(ctx, "logbook.claim.exec-a", []byte(`{"run_id":"x"}`)); err != nil {
				b.Fatal(err)
			}
		})
	})

	b.Run("jetstream-publish-to-pull", func(b *testing.B) {
		stream, err := server.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH_HOP", Subjects: []string{"bench.hop"}, Retention: jetstream.WorkQueuePolicy})
		if err != nil {
			b.Fatal(err)
		}
		cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "hop", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			b.Fatal(err)
		}
		iter, err := cons.Messages(jetstream.PullMaxMessages(16))
		if err != nil {
			b.Fatal(err)
		}
		defer iter.Stop()
		paced(b, func(b *testing.B) {
			if _, err := server.JS.Publish(ctx, "bench.hop", []byte(`{"run_id":"x"}`)); err != nil {
				b.Fatal(err)
			}
			m, err := iter.Next()
			if err != nil {
				b.Fatal(err)
			}
			_ = m.Ack()
		})
	})
}
