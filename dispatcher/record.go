package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
)

// appendDecision records a decision's runs and request events in one
// atomic append. When part of it is stored already (an earlier build
// recorded a decision one stream at a time and stopped half way) and
// piecewise is set, the parts are recorded one by one instead, each a
// no-op when stored, and a run requested already is left as it is.
func (d *Dispatcher) appendDecision(ctx context.Context, parts []eventstore.StreamAppend, piecewise bool) ([]eventstore.AppendResult, error) {
	results, err := d.cfg.Store.AppendMulti(ctx, parts...)
	if !piecewise || !errors.Is(err, eventstore.ErrDuplicateEvent) {
		return results, err
	}
	results = make([]eventstore.AppendResult, len(parts))
	for i, p := range parts {
		res, err := d.cfg.Store.Append(ctx, p.Stream, p.Expected, p.Events...)
		if err != nil && !(strings.HasPrefix(p.Stream, run.StreamPrefix) && errors.Is(err, eventstore.ErrWrongExpectedVersion)) {
			return nil, fmt.Errorf("append the decision to %s: %w", p.Stream, err)
		}
		results[i] = res
	}
	return results, nil
}

// loopState is how far Run's loop has got; only the loop touches it.
type loopState struct {
	start      int64 // the checkpoint at start: events after it are decided
	checkpoint int64 // the last position decided
	resumeAt   int64 // resume once the fold reaches this position
	folded     int64 // the last position handled
}

// consume handles the next event of the log, from the feed or catchUp.
func (d *Dispatcher) consume(ctx context.Context, log zerolog.Logger, e domain.RecordedEvent) {
	deciding := e.Position > d.loop.start
	d.handle(ctx, log, e, deciding)
	d.loop.folded = e.Position
	d.position.Store(e.Position)
	if deciding {
		d.loop.checkpoint = e.Position
	}
	if !d.resumed && e.Position >= d.loop.resumeAt {
		d.resumeNow(ctx, log)
	}
}

// maxInlineCatchUp is the most events a request decided as it arrives
// waits for the loop to fold first; further behind, it is recorded alone
// and decided in its turn.
const maxInlineCatchUp = 1000

var errBehind = errors.New("the dispatcher is behind the log")

// errAlreadyRecorded says a request decided as it arrived was recorded,
// with its decision, before: its message id came again.
var errAlreadyRecorded = errors.New("the request is recorded already")

// catchUp folds what the log holds beyond the last event handled, so that a
// decision made now sees everything recorded before it. The feed skips
// what catchUp handled.
//
// One read, not a read of the head and then of the events: what it
// returns is the log as committed when it ran, and one event more than
// maxInlineCatchUp says the loop is too far behind.
func (d *Dispatcher) catchUp(ctx context.Context, log zerolog.Logger) error {
	events, err := eventstore.ReadLive(ctx, d.cfg.Store, d.loop.folded+1, maxInlineCatchUp+1)
	if err != nil {
		return err
	}
	if len(events) > maxInlineCatchUp {
		return errBehind
	}
	for _, e := range events {
		d.consume(ctx, log, e)
	}
	return nil
}

// receiveJob is a request on its way from Receive to the loop.
type receiveJob struct {
	in    dispatch.RequestReceived
	event domain.NewEvent
	done  chan error
}

// receiveInline decides a request as it arrives: after folding the whole
// log (catchUp), it appends the RequestReceived with its decision in one
// atomic append, the one commit between a message and its runs. The ids
// are those the feed path would give, so either path records the same
// events. A request the log holds already (a redelivery) is left to the
// feed; a loop too far behind records the request alone, to be decided in
// its turn.
func (d *Dispatcher) receiveInline(ctx context.Context, log zerolog.Logger, job *receiveJob) error {
	id := job.in.ID()
	if err := d.catchUp(ctx, log); err != nil {
		if !errors.Is(err, errBehind) {
			log.Warn().Err(err).Str("request_id", id).Msg("catching up before deciding a request; it is decided from the feed")
		}
		return d.appendReceived(ctx, job.in, job.event)
	}
	if _, known := d.requests[id]; known {
		return d.alreadyReceived(ctx, job.in)
	}
	st := &requestState{version: -1, req: dispatch.Evolve(dispatch.Request{}, job.in)}
	decision, err := dispatch.Decide(st.req, job.in, decidingAt{d.cfg.Facts, time.Now().UTC()})
	if err != nil {
		log.Error().Err(err).Str("request_id", id).Msg("deciding failed; the request is decided from the feed")
		return d.appendReceived(ctx, job.in, job.event)
	}
	d.requests[id] = st
	err = d.record(ctx, log.With().Str("request_id", id).Logger(), st, decision, job.event.ID, job.event)
	var conflict *eventstore.VersionConflictError
	switch {
	case errors.Is(err, errAlreadyRecorded), errors.Is(err, eventstore.ErrDuplicateEvent),
		errors.As(err, &conflict) && conflict.Stream == dispatch.Stream(id):
		// Recorded already (a redelivery of a request that ended, or
		// another process's, or another sender's message under its id):
		// the feed brings or brought it.
		delete(d.requests, id)
		return d.alreadyReceived(ctx, job.in)
	case err != nil:
		delete(d.requests, id)
		return err
	}
	d.recorded[job.event.ID] = job.in // committed with its decision: the fold takes it
	d.arm(id, st)
	return nil
}
