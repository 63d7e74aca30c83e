package executor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
)

// ErrStreamBehind is the kind of an event that arrived before its
// predecessor: the message is retried until the gap fills.
var ErrStreamBehind = errors.New("stream is behind the event")

// ErrHeldBack is the kind of an event a bus hands over again once the
// events before it are in (NATS's lanes hold a run's events back in
// version order): it is nacked at once, neither retried in place nor
// poisoned.
var ErrHeldBack = errors.New("the event waits for its run's earlier events")

// ErrStreamConflict is the kind of an event whose place in its stream holds
// a different event: retrying cannot help, so it goes to the poison queue.
var ErrStreamConflict = errors.New("stream holds another event at this version")

// Appender stores published run events in their streams. Each message names
// its stream and version; the append expects exactly the version before, so
// a late or reordered delivery can neither skip nor overwrite an event, and
// a repeated delivery is recognised by its event id and acknowledged.
type Appender struct {
	store eventstore.Store
	ender RunEnder
}

// NewAppender returns an appender writing to store.
func NewAppender(store eventstore.Store) *Appender { return &Appender{store: store} }

// RunEnder records a run's last events together with what its end calls
// for (the request's completion and reply, its next stage) in one commit,
// where they took two: the run's, then its request's. The dispatcher is
// one.
type RunEnder interface {
	// EndRun appends events, a run's last, at versions first, first+1,
	// ... of its stream, with the decision its end calls for, and reports
	// whether it did. false means nothing was appended: the events are the
	// caller's to append, and the run's end is decided from the log.
	EndRun(ctx context.Context, runID string, first int64, events []domain.NewEvent) (bool, error)
}

// EndRunsWith has a run's last events, carried together (AppendRun), go
// through e first.
func (a *Appender) EndRunsWith(e RunEnder) *Appender {
	a.ender = e
	return a
}

// Handle is the router handler of the run.events topic.
func (a *Appender) Handle(msg *message.Message) error {
	together, err := DecodeRunEventsMessage(msg)
	if err != nil {
		return err
	}
	if together != nil {
		return a.appendTogether(msg.Context(), together)
	}
	stream, version, ev, err := DecodeEventMessage(msg)
	if err != nil {
		return err
	}
	return a.Append(msg.Context(), stream, version, ev)
}

// Append stores ev at version of stream and settles a conflict: the event
// already stored there (a redelivery) is success; a stream short of
// version-1 is ErrStreamBehind (retry); another event at version is
// ErrStreamConflict.
func (a *Appender) Append(ctx context.Context, stream string, version int64, ev domain.NewEvent) error {
	eventID := ev.ID.String()
	_, err := a.store.Append(ctx, stream, eventstore.Exact(version-1), ev)
	if err == nil {
		return nil
	}
	if !errors.Is(err, eventstore.ErrWrongExpectedVersion) && !errors.Is(err, eventstore.ErrDuplicateEvent) {
		return fmt.Errorf("append %s to %s at version %d: %w", eventID, stream, version, err)
	}
	stored, readErr := a.store.ReadStream(ctx, stream, version, 1)
	if readErr != nil {
		return fmt.Errorf("append %s to %s: %w (and reading it back failed: %v)", eventID, stream, err, readErr)
	}
	if len(stored) == 0 {
		return fmt.Errorf("%w: %s has no version %d yet, so event %s waits: %v", ErrStreamBehind, stream, version-1, eventID, err)
	}
	if stored[0].ID.String() == eventID {
		zerolog.Ctx(ctx).Debug().Str("stream", stream).Int64("version", version).Msg("event already stored; redelivery acknowledged")
		return nil
	}
	return fmt.Errorf("%w: %s version %d is event %s, not %s", ErrStreamConflict, stream, version, stored[0].ID, eventID)
}

// appendTogether stores a run's events carried in one message
// (GroupPublisher) in one commit. When they cannot go in as they are (one
// is stored already after a redelivery, the stream is behind them, another
// event holds a place), each is appended alone with Append, in order, as
// if it had come on its own: a redelivery is acknowledged, nothing is
// stored twice, and a failure stops at the event that failed.
func (a *Appender) appendTogether(ctx context.Context, msgs []*message.Message) error {
	events := make([]domain.NewEvent, len(msgs))
	var stream string
	var first int64
	for i, m := range msgs {
		s, version, ev, err := DecodeEventMessage(m)
		if err != nil {
			return err
		}
		if i == 0 {
			stream, first = s, version
		}
		events[i] = ev
	}
	err := a.AppendRun(ctx, stream, first, events)
	if err == nil {
		return nil
	}
	zerolog.Ctx(ctx).Debug().Err(err).Str("stream", stream).Int64("version", first).Int("events", len(events)).
		Msg("a run's events not appended together; appending them one by one")
	for i, ev := range events {
		if err := a.Append(ctx, stream, first+int64(i), ev); err != nil {
			return err
		}
	}
	return nil
}

// AppendRun stores events at versions first, first+1, ... of stream in
// one commit, and only if the stream is exactly at first-1: no
// idempotence here, a caller that gets an error appends them one at a
// time with Append, which settles redeliveries and conflicts.
func (a *Appender) AppendRun(ctx context.Context, stream string, first int64, events []domain.NewEvent) error {
	if a.ender != nil && len(events) > 0 && run.IsTerminalType(events[len(events)-1].Type) && strings.HasPrefix(stream, run.StreamPrefix) {
		ended, err := a.ender.EndRun(ctx, strings.TrimPrefix(stream, run.StreamPrefix), first, events)
		if ended {
			return nil
		}
		if err != nil {
			zerolog.Ctx(ctx).Debug().Err(err).Str("stream", stream).Msg("a run's end not recorded with its decision; recording it alone")
		}
	}
	if _, err := a.store.Append(ctx, stream, eventstore.Exact(first-1), events...); err != nil {
		return fmt.Errorf("append %d events to %s from version %d: %w", len(events), stream, first, err)
	}
	return nil
}
