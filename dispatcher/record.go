package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/internal/supervisor"
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

// startBuiltin runs a builtin run now, or once the received request being
// decided is answered.
func (d *Dispatcher) startBuiltin(ctx context.Context, log zerolog.Logger, runID string, req run.RunRequested, requested domain.RecordedEvent) {
	start := func() {
		if err := d.runBuiltin(ctx, log, runID, req, requested.ID.String(), requested.RecordedAt); err != nil {
			log.Error().Err(err).Str("request_id", req.RequestID).Str("run_id", runID).Msg("running a builtin failed; it runs again when the dispatcher restarts")
		}
	}
	if d.deferring {
		d.deferred = append(d.deferred, start)
		return
	}
	start()
}

// runBuiltin executes a builtin run in-process and records, in one atomic
// append after its RunRequested, the changes it decided and what it
// printed and its end, as an executor records a container's run. A crash
// therefore leaves a builtin's changes with its end or neither, and a
// builtin run without an end is run again on restart (resume). The ids
// derive from the RunRequested, so recording the same run twice is a
// no-op. When a stream the builtin changes moved on while it ran (another
// process wrote to it), it runs once more on the new state, and after that
// ends failed, saying so. A builtin answers at once, so its output is dated
// when its run was requested (requestedAt): it plays back at offset 0.
func (d *Dispatcher) runBuiltin(ctx context.Context, log zerolog.Logger, runID string, req run.RunRequested, requestedID string, requestedAt time.Time) error {
	requested, err := uuid.Parse(requestedID)
	if err != nil {
		return fmt.Errorf("builtin run %s: RunRequested id %q: %w", runID, requestedID, err)
	}
	// A run that ended already (deciding again what was decided before a
	// crash) is not run again: its changes are recorded with its end.
	if ended, err := d.cfg.Store.ReadStream(ctx, run.Stream(runID), 1, 1); err != nil {
		return fmt.Errorf("builtin run %s: %w", runID, err)
	} else if len(ended) > 0 {
		return nil
	}
	md := domain.Metadata{CorrelationID: req.RequestID, CausationID: requestedID, Actor: d.cfg.Actor}
	changeMD := md
	if req.Invocation.Username != "" {
		changeMD.Actor = req.Invocation.Username // who ran the command made the change
	}
	for attempt := 0; ; attempt++ {
		var out dispatch.BuiltinRun
		if attempt < 2 {
			out = d.cfg.Facts.Builtins().Execute(req, runID, d.cfg.Facts, requestedAt)
		} else {
			// Still conflicting: end the run failed, with no changes.
			reason := fmt.Sprintf("%s changed while this command ran; run it again", conflictStream(err))
			out = dispatch.BuiltinRun{Events: dispatch.OutputEvents(run.RunFailed{Reason: reason, Result: textResult(reason)}, requestedAt)}
		}
		var conflict *eventstore.VersionConflictError
		parts, perr := builtinParts(requested, runID, out, md, changeMD)
		if perr != nil {
			return perr
		}
		_, err = d.cfg.Store.AppendMulti(ctx, parts...)
		switch {
		case err == nil:
			d.cfg.Facts.applyOwn(out.Changes)
			return nil
		case errors.As(err, &conflict) && conflict.Stream == run.Stream(runID):
			return nil // the run already ended: recorded by an earlier attempt or process
		case errors.As(err, &conflict) && attempt < 2:
			log.Info().Str("run_id", runID).Str("stream", conflict.Stream).Msg("a stream the builtin changes moved on while it ran; running it again")
			continue
		default:
			return fmt.Errorf("append the builtin run %s: %w", runID, err)
		}
	}
}

func conflictStream(err error) string {
	var conflict *eventstore.VersionConflictError
	if errors.As(err, &conflict) {
		return conflict.Stream
	}
	return "a stream"
}

// builtinParts encodes a builtin run's changes and its own events with ids
// derived from its RunRequested: its changes first, then its run stream.
func builtinParts(requested uuid.UUID, runID string, out dispatch.BuiltinRun, md, changeMD domain.Metadata) ([]eventstore.StreamAppend, error) {
	parts, err := encodeChanges(out.Changes, changeMD, requested)
	if err != nil {
		return nil, err
	}
	events := make([]domain.NewEvent, len(out.Events))
	for i, p := range out.Events {
		e, err := domain.Encode(p, md)
		if err != nil {
			return nil, err
		}
		e.ID = derivedID(requested, "builtin", i)
		events[i] = e
	}
	return append(parts, eventstore.StreamAppend{Stream: run.Stream(runID), Expected: eventstore.Exact(0), Events: events}), nil
}

// encodeChanges encodes changes to other streams, each event with its
// fixed id or one derived from the trigger.
func encodeChanges(changes []dispatch.Change, md domain.Metadata, trigger uuid.UUID) ([]eventstore.StreamAppend, error) {
	parts := make([]eventstore.StreamAppend, 0, len(changes)+2)
	n := 0
	for _, c := range changes {
		events := make([]domain.NewEvent, len(c.Events))
		for i, p := range c.Events {
			e, err := domain.Encode(p, md)
			if err != nil {
				return nil, err
			}
			e.ID = derivedID(trigger, "change", n)
			if i < len(c.IDs) && c.IDs[i] != uuid.Nil {
				e.ID = c.IDs[i]
			}
			n++
			events[i] = e
		}
		parts = append(parts, eventstore.StreamAppend{Stream: c.Stream, Expected: c.Expected, Events: events})
	}
	return parts, nil
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
	if deciding {
		d.loop.checkpoint = e.Position
	}
	if !d.resumed && e.Position >= d.loop.resumeAt {
		d.resumed = true
		d.resume(ctx, log)
		d.inline.Store(true)
		supervisor.Ready(ctx)
	}
}

// inlineWait is how long Receive waits for the loop to take a request
// before recording it alone, so a chat provider's acknowledgement never
// waits behind a slow builtin.
const inlineWait = 50 * time.Millisecond

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
func (d *Dispatcher) catchUp(ctx context.Context, log zerolog.Logger) error {
	head, _, err := d.cfg.Store.Head(ctx)
	if err != nil {
		return err
	}
	for d.loop.folded < head {
		if head-d.loop.folded > maxInlineCatchUp {
			return errBehind
		}
		events, err := d.cfg.Store.ReadAll(ctx, d.loop.folded+1, int(head-d.loop.folded))
		if err != nil {
			return err
		}
		if len(events) == 0 {
			return errBehind
		}
		for _, e := range events {
			d.consume(ctx, log, e)
		}
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
	decision, err := dispatch.Decide(st.req, job.in, d.cfg.Facts)
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
	d.arm(id, st)
	return nil
}
