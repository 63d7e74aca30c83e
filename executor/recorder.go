package executor

import (
	"context"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cenkalti/backoff/v5"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
)

// recorder is the single writer of one run's stream while the executor holds
// the run. Each proposed event goes through the run decider, gets the next
// stream version and is published for the Appender.
type recorder struct {
	ctx   context.Context
	pub   message.Publisher
	topic string

	mu     sync.Mutex
	stream string
	md     domain.Metadata
	state  run.State
	next   int64 // the version the next event takes
	// ending: the command is over, and the run's last events follow one
	// another at once; each but the terminal one is marked MetaMore.
	ending bool
}

func newRecorder(ctx context.Context, pub message.Publisher, topic, runID string, md domain.Metadata, past []domain.Payload) *recorder {
	return &recorder{
		ctx: ctx, pub: pub, topic: topic,
		stream: run.Stream(runID),
		md:     md,
		state:  run.Fold(past),
		next:   int64(len(past)),
	}
}

// record publishes p if the run's lifecycle allows it. A rejection is a bug
// in the executor or runtime and comes back as an error.
func (r *recorder) record(p domain.Payload) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	accepted, err := run.Decide(r.state, p)
	if err != nil {
		return err
	}
	for _, a := range accepted {
		ev, err := encode(a, r.md)
		if err != nil {
			return err
		}
		msg := NewEventMessage(r.stream, r.next, ev)
		after := run.Evolve(r.state, a)
		if r.ending && !after.Finished() {
			msg.Metadata.Set(MetaMore, "1")
		}
		if err := r.publish(msg); err != nil {
			return fmt.Errorf("publish %s of %s: %w", a.EventType(), r.stream, err)
		}
		r.state = after
		r.next++
	}
	return nil
}

// publish hands msg to the bus, retrying a failed publish three times with
// backoff while ctx (the executor's drain context: it outlives a cancelled
// run, so its end is still recorded, and ends when shutdown gives up)
// lasts.
func (r *recorder) publish(msg *message.Message) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 50 * time.Millisecond
	_, err := backoff.Retry(r.ctx, func() (struct{}, error) {
		return struct{}{}, r.pub.Publish(r.topic, msg)
	}, backoff.WithBackOff(b), backoff.WithMaxTries(3))
	return err
}

// end says the command is over: the run's remaining events (its last
// output, the container's stop, the terminal event) follow at once.
func (r *recorder) end() {
	r.mu.Lock()
	r.ending = true
	r.mu.Unlock()
}

func (r *recorder) snapshot() run.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// readRun loads a run's stream from the store, decoded.
func readRun(ctx context.Context, store eventstore.Store, runID string) ([]domain.Payload, []domain.RecordedEvent, error) {
	const page = 1000
	var payloads []domain.Payload
	var recorded []domain.RecordedEvent
	for from := int64(0); ; {
		events, err := store.ReadStream(ctx, run.Stream(runID), from, page)
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", run.Stream(runID), err)
		}
		for _, e := range events {
			p, err := domain.Decode(e)
			if err != nil {
				return nil, nil, err
			}
			payloads = append(payloads, p)
			recorded = append(recorded, e)
		}
		if len(events) < page {
			return payloads, recorded, nil
		}
		from = events[len(events)-1].Version + 1
	}
}

// encode is domain.Encode with a fast path for output chunks, the bulk of
// what runs record.
func encode(p domain.Payload, md domain.Metadata) (domain.NewEvent, error) {
	if c, ok := p.(run.OutputChunk); ok {
		data := c.AppendJSON(make([]byte, 0, base64.StdEncoding.EncodedLen(len(c.Bytes))+128))
		return domain.NewEvent{ID: domain.NewEventID(), Type: c.EventType(), Data: data, Metadata: md}, nil
	}
	return domain.Encode(p, md)
}
