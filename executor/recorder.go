package executor

import (
	"context"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"

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
	// another at once.
	ending bool
	// together: the bus stores the events of one Publish in one commit
	// (GroupPublisher), so while ending the events before the terminal
	// one are held and published with it. held are those events, in
	// order; state and next already count them, heldFrom is the state
	// before the first.
	together bool
	held     []*message.Message
	heldFrom run.State
	// startedHold, when set (holdStarted), holds ContainerStarted and what
	// follows it for up to that long: a short command's whole run then
	// goes in one Publish with its end. holding says the hold is on, and
	// release ends it when the time is up.
	startedHold time.Duration
	holding     bool
	release     *time.Timer
	log         zerolog.Logger
}

func newRecorder(ctx context.Context, pub message.Publisher, topic, runID string, md domain.Metadata, past []domain.Payload) *recorder {
	_, together := pub.(GroupPublisher)
	return &recorder{
		ctx: ctx, pub: pub, topic: topic,
		stream:   run.Stream(runID),
		md:       md,
		state:    run.Fold(past),
		next:     int64(len(past)),
		together: together,
	}
}

// record publishes p if the run's lifecycle allows it (or holds it, see
// end). A rejection is a bug in the executor or runtime and comes back as
// an error.
func (r *recorder) record(p domain.Payload) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recordLocked(p, false)
}

// recordTaken records p, the container a run took (Sink.ContainerTaken).
// Unless the run's stream says RunStarting (a claim), it is published on
// its own and stored when this returns, before the command starts. With
// RunStarting, on a bus that stores a Publish in one commit, it is held
// for the run's next event: the two go in one commit, and the caller does
// not wait for one of its own.
func (r *recorder) recordTaken(p domain.Payload) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recordLocked(p, r.state.Starting)
}

// recordTogether records ps in order, in one Publish (one commit) where
// the bus allows.
func (r *recorder) recordTogether(ps ...domain.Payload) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, p := range ps {
		if err := r.recordLocked(p, i < len(ps)-1); err != nil {
			return err
		}
	}
	return nil
}

func (r *recorder) recordLocked(p domain.Payload, withNext bool) error {
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
		if _, started := a.(run.ContainerStarted); started && r.startedHold > 0 && r.together {
			r.holding = true
			r.release = time.AfterFunc(r.startedHold, r.endHold)
		}
		if r.together && (withNext || (r.ending || r.holding) && !after.Finished()) {
			r.hold(msg, after)
			continue
		}
		r.stopHolding()
		if err := r.publishHeldAnd(msg); err != nil {
			return fmt.Errorf("publish %s of %s: %w", a.EventType(), r.stream, err)
		}
		r.state = after
		r.next++
	}
	return nil
}

// hold keeps msg to publish with a later event; after is the run's state
// with it.
func (r *recorder) hold(msg *message.Message, after run.State) {
	if len(r.held) == 0 {
		r.heldFrom = r.state
	}
	r.held = append(r.held, msg)
	r.state = after
	r.next++
}

// publishHeldAnd publishes the held events and then msg (if any) in one
// Publish. When that fails the held events are forgotten: the recorder
// goes back to the state before them, so the run's next event takes the
// first one's version and the stream has no gap.
func (r *recorder) publishHeldAnd(msg *message.Message) error {
	msgs := r.held
	if msg != nil {
		msgs = append(msgs, msg)
	}
	if len(msgs) == 0 {
		return nil
	}
	err := r.publish(msgs...)
	if err != nil && len(r.held) > 0 {
		err = fmt.Errorf("%w (and the %d events of the run held before it are not recorded)", err, len(r.held))
		r.state = r.heldFrom
		r.next -= int64(len(r.held))
	}
	r.held = nil
	return err
}

// flush publishes the events held for a terminal event that was not
// recorded (the run ended on an error, or its terminal event was
// refused), and holds none after. The executor calls it once a run's
// command is over, however the run ended.
func (r *recorder) flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.together = false
	r.stopHolding()
	if len(r.held) == 0 {
		return nil
	}
	n := len(r.held)
	if err := r.publishHeldAnd(nil); err != nil {
		return fmt.Errorf("publish the %d events of %s held for its terminal event: %w", n, r.stream, err)
	}
	return nil
}

// publish hands msgs to the bus in one Publish, retrying a failed publish
// three times with backoff while ctx (the executor's drain context: it
// outlives a cancelled run, so its end is still recorded, and ends when
// shutdown gives up) lasts.
func (r *recorder) publish(msgs ...*message.Message) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 50 * time.Millisecond
	_, err := backoff.Retry(r.ctx, func() (struct{}, error) {
		return struct{}{}, r.pub.Publish(r.topic, msgs...)
	}, backoff.WithBackOff(b), backoff.WithMaxTries(3))
	return err
}

// holdStarted holds ContainerStarted, and the output after it, for up to d
// (see startedHold). Only for a run whose claim recorded RunStarting: that
// is what says the command may have begun if the executor is lost
// meanwhile, so ContainerStarted may come late. Without a claim (the
// embedded bus) ContainerStarted is what a restarted server reads to know
// the command began, and it is never held.
func (r *recorder) holdStarted(d time.Duration, log zerolog.Logger) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state.Starting {
		r.startedHold, r.log = d, log
	}
}

// endHold publishes what the hold kept when its time is up: a run that
// goes on is seen started, and its output goes out as it comes from then
// on.
func (r *recorder) endHold() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.holding {
		return
	}
	r.holding = false
	if r.ending || len(r.held) == 0 {
		return // the command is over: its end takes them
	}
	n := len(r.held)
	if err := r.publishHeldAnd(nil); err != nil {
		r.log.Error().Err(err).Int("events", n).Msg("the run's events held since its start not recorded")
	}
}

// stopHolding ends the hold without publishing: what it kept goes with
// the event at hand.
func (r *recorder) stopHolding() {
	if r.holding {
		r.holding = false
		r.release.Stop()
	}
}

// end says the command is over: the run's remaining events (its last
// output, the container's stop, the terminal event) follow at once. On a
// bus that stores a Publish in one commit they are held until the terminal
// event, or until flush.
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
