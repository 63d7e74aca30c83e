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
)

// appendDecision records a decision's runs and request events in one
// atomic append. When part of it is stored already (an earlier build
// recorded a decision one stream at a time and stopped half way), the
// parts are recorded one by one instead, each a no-op when stored, and a
// run requested already is left as it is.
func (d *Dispatcher) appendDecision(ctx context.Context, parts []eventstore.StreamAppend) ([]eventstore.AppendResult, error) {
	results, err := d.cfg.Store.AppendMulti(ctx, parts...)
	if !errors.Is(err, eventstore.ErrDuplicateEvent) {
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

// runBuiltin executes a builtin run in-process and records, in one atomic
// append after its RunRequested, the changes it decided and what it
// printed and its end, as an executor records a container's run. A crash
// therefore leaves a builtin's changes with its end or neither, and a
// builtin run without an end is run again on restart (resume). The ids
// derive from the RunRequested, so recording the same run twice is a
// no-op. When a stream the builtin changes moved on while it ran (another
// process wrote to it), it runs once more on the new state, and after that
// ends failed, saying so.
func (d *Dispatcher) runBuiltin(ctx context.Context, log zerolog.Logger, runID string, req run.RunRequested, requestedID string) error {
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
			out = d.cfg.Facts.Builtins().Execute(req, runID, d.cfg.Facts, time.Now().UTC())
		} else {
			// Still conflicting: end the run failed, with no changes.
			reason := fmt.Sprintf("%s changed while this command ran; run it again", conflictStream(err))
			out = dispatch.BuiltinRun{Events: dispatch.OutputEvents(run.RunFailed{Reason: reason, Result: textResult(reason)}, time.Now().UTC())}
		}
		var conflict *eventstore.VersionConflictError
		parts, perr := builtinParts(requested, runID, out, md, changeMD)
		if perr != nil {
			return perr
		}
		_, err = d.cfg.Store.AppendMulti(ctx, parts...)
		switch {
		case err == nil:
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
