// Package scheduler runs schedules: it follows the schedule streams,
// decides each tick with domain/schedule (at the time an injected clock
// gives), records the decision, and hands the tick to the dispatcher as a
// request from provider schedule, the same path as a chat message.
//
// Each tick runs once. Its request id derives from the schedule and the
// tick's time, so two replicas, or a restart, name the same request, and
// the dispatcher records a request once. Its decision (TickDecided) is
// appended at the stream version the state was folded from, so of two
// replicas one decides and the other finds it decided. A crash between
// the decision and the request is found on the next start: the request
// stream is missing, and DecidePending runs the tick then (on time, or
// under the run-once policy) or records it abandoned (late, under skip).
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/schedule"
	"github.com/logbookhq/logbook/internal/supervisor"
	"github.com/logbookhq/logbook/projections"
)

// Receiver records a request and decides it (dispatcher.Dispatcher).
type Receiver interface {
	Receive(ctx context.Context, in dispatch.RequestReceived, actor string) (string, error)
}

// Clock is the time the runner acts at; tests inject their own.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now().UTC() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Config configures a Runner.
type Config struct {
	Store    eventstore.Store // required
	Receiver Receiver         // required
	Clock    Clock            // nil: the system clock
	// MaxWait bounds a wait between steps (1 minute), so a clock that
	// jumps is caught up with.
	MaxWait time.Duration
	// Spacing is how long the runner lets appends gather after one wakes
	// it (100ms), so a busy log costs it one read per spacing, not one
	// per commit. A schedule's ticks are 5 seconds apart at least.
	Spacing time.Duration
	Logger  zerolog.Logger
}

// Runner runs the schedules.
type Runner struct {
	cfg       Config
	position  int64 // the log is folded up to here
	schedules map[string]*entry
}

type entry struct {
	state   schedule.Schedule
	version int64
	// received is the pending tick's request id once it is known to be
	// recorded, so the store is asked once per tick.
	received string
}

// New builds a runner.
func New(cfg Config) (*Runner, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("scheduler config: Store is required"))
	}
	if cfg.Receiver == nil {
		errs = append(errs, errors.New("scheduler config: Receiver is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = time.Minute
	}
	if cfg.Spacing <= 0 {
		cfg.Spacing = 100 * time.Millisecond
	}
	return &Runner{cfg: cfg, schedules: map[string]*entry{}}, nil
}

// Run steps at every tick due until ctx ends; it is a part of the
// server's supervisor, ready after its first step. A step that fails ends
// it, and the supervisor runs it again after a backoff: what was decided
// and not run is found then.
func (r *Runner) Run(ctx context.Context) error {
	changed := r.cfg.Store.Changed()
	if err := r.Step(ctx, r.cfg.Clock.Now()); err != nil {
		return err
	}
	supervisor.Ready(ctx)
	for {
		wait := r.cfg.MaxWait
		now := r.cfg.Clock.Now()
		if next, ok := r.NextDue(); ok {
			wait = min(wait, max(next.Sub(now), 0))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed: // a schedule may have been added, paused or deleted
			gather := time.NewTimer(r.cfg.Spacing)
			select {
			case <-ctx.Done():
				gather.Stop()
				return nil
			case <-gather.C:
			}
		case <-r.cfg.Clock.After(wait):
		}
		changed = r.cfg.Store.Changed()
		if err := r.Step(ctx, r.cfg.Clock.Now()); err != nil {
			return err
		}
	}
}

// NextDue is the earliest next tick of any schedule.
func (r *Runner) NextDue() (time.Time, bool) {
	var best time.Time
	found := false
	for _, e := range r.schedules {
		if next, ok := e.state.Next(); ok && (!found || next.Before(best)) {
			best, found = next, true
		}
	}
	return best, found
}

// Step folds what the log holds, then decides and runs every tick due at
// now, schedule by schedule in name order.
func (r *Runner) Step(ctx context.Context, now time.Time) error {
	if err := r.catchUp(ctx); err != nil {
		return err
	}
	names := make([]string, 0, len(r.schedules))
	for name := range r.schedules {
		names = append(names, name)
	}
	slices.Sort(names)
	var errs []error
	for _, name := range names {
		if err := r.stepOne(ctx, name, r.schedules[name], now); err != nil {
			errs = append(errs, fmt.Errorf("schedule %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// scheduleTypes are the events the runner folds.
var scheduleTypes = []string{
	schedule.Added{}.EventType(), schedule.Paused{}.EventType(), schedule.Resumed{}.EventType(), schedule.Deleted{}.EventType(),
	schedule.TickDecided{}.EventType(), schedule.TicksSkipped{}.EventType(), schedule.TickAbandoned{}.EventType(),
}

// catchUp folds the log up to its head. A store that reads the log by
// type (projections.FeedReader, as *sqlstore.Store does) hands over only
// the schedules' events, so a start over a long log reads little.
func (r *Runner) catchUp(ctx context.Context) error {
	head, _, err := r.cfg.Store.Head(ctx)
	if err != nil {
		return fmt.Errorf("scheduler: read the head of the log: %w", err)
	}
	feed, typed := r.cfg.Store.(projections.FeedReader)
	for r.position < head {
		to := min(head, r.position+20000)
		var events []domain.RecordedEvent
		if typed {
			events, err = feed.ReadFeed(ctx, r.position+1, to, scheduleTypes)
		} else {
			events, err = r.cfg.Store.ReadAll(ctx, r.position+1, int(to-r.position))
		}
		if err != nil {
			return fmt.Errorf("scheduler: read the log: %w", err)
		}
		for _, e := range events {
			if e.Position > to {
				break
			}
			r.fold(e)
			r.position = e.Position
		}
		switch {
		case typed:
			r.position = to // every schedule event up to to is read
		case len(events) == 0:
			return nil // the head moved back (it cannot) or the read saw nothing yet
		}
	}
	return nil
}

func (r *Runner) fold(e domain.RecordedEvent) {
	name, ok := strings.CutPrefix(e.Stream, schedule.StreamPrefix)
	if !ok {
		return
	}
	p, err := domain.Decode(e)
	if err != nil {
		r.cfg.Logger.Error().Err(err).Int64("position", e.Position).Msg("a schedule event the scheduler cannot read; skipped")
		return
	}
	en := r.schedules[name]
	if en == nil {
		en = &entry{version: -1}
		r.schedules[name] = en
	}
	if e.Version <= en.version {
		return // folded when this runner recorded it
	}
	en.state, en.version = schedule.Evolve(en.state, p), e.Version
}

func (r *Runner) stepOne(ctx context.Context, name string, en *entry, now time.Time) error {
	log := r.cfg.Logger.With().Str("component", "scheduler").Str("schedule", name).Logger()
	if p := en.state.Pending(); p.RequestID != "" && en.received != p.RequestID {
		recorded, err := r.recorded(ctx, p.RequestID)
		if err != nil {
			return err
		}
		if recorded {
			en.received = p.RequestID
		} else {
			run, abandon := schedule.DecidePending(en.state, now)
			switch {
			case run:
				log.Warn().Str("request_id", p.RequestID).Time("scheduled", p.Scheduled).Msg("a tick decided before a stop was never run; running it now")
				if err := r.receive(ctx, en, p); err != nil {
					return err
				}
			case len(abandon) > 0:
				log.Warn().Str("request_id", p.RequestID).Time("scheduled", p.Scheduled).Msg("a tick decided before a stop came back too late; recorded abandoned")
				if _, err := r.record(ctx, name, en, abandon); err != nil {
					return err
				}
			}
		}
	}
	decided := schedule.DecideTicks(en.state, now, func(messageID string) string { return r.request(name, en, messageID).ID() })
	if len(decided) == 0 {
		return nil
	}
	recorded, err := r.record(ctx, name, en, decided)
	if err != nil || !recorded {
		return err // not recorded here: another replica decided first
	}
	for _, p := range decided {
		switch t := p.(type) {
		case schedule.TickDecided:
			log.Info().Str("request_id", t.RequestID).Time("scheduled", t.Scheduled).Bool("late", t.Late).Msg("tick decided")
			if err := r.receive(ctx, en, t); err != nil {
				return err
			}
		case schedule.TicksSkipped:
			log.Warn().Int("count", t.Count).Time("first", t.First).Time("last", t.Last).Msg("missed ticks skipped")
		}
	}
	return nil
}

// record appends decided events at the version the state was folded
// from, and says whether this runner recorded them. Their ids derive from
// the stream, the version and what they say, so a second replica that
// decided the same at the same version appends a duplicate (a no-op), and
// one that decided otherwise (its clock read later) a conflict: either way
// the other's record stands, this runner folds it, and acts on nothing.
func (r *Runner) record(ctx context.Context, name string, en *entry, events []domain.Payload) (bool, error) {
	out := make([]domain.NewEvent, 0, len(events))
	at := fmt.Appendf(nil, "%s@%d", schedule.Stream(name), en.version)
	for _, p := range events {
		e, err := domain.Encode(p, domain.Metadata{Actor: schedule.Sender(name)})
		if err != nil {
			return false, err
		}
		at = append(append(at, 0), e.Data...)
		out = append(out, e)
	}
	seed := uuid.NewSHA1(uuid.NameSpaceURL, at)
	for i := range out {
		out[i].ID = dispatch.DerivedID(seed, "schedule", i)
		out[i].Metadata.CorrelationID = seed.String()
	}
	res, err := r.cfg.Store.Append(ctx, schedule.Stream(name), eventstore.Exact(en.version), out...)
	switch {
	case errors.Is(err, eventstore.ErrWrongExpectedVersion) || errors.Is(err, eventstore.ErrDuplicateEvent) || (err == nil && res.Duplicate):
		return false, r.catchUp(ctx) // another replica decided first
	case err != nil:
		return false, fmt.Errorf("record the tick: %w", err)
	}
	for _, p := range events {
		en.state = schedule.Evolve(en.state, p)
	}
	en.version = res.LastVersion
	return true, nil
}

func (r *Runner) recorded(ctx context.Context, requestID string) (bool, error) {
	events, err := r.cfg.Store.ReadStream(ctx, dispatch.Stream(requestID), 0, 1)
	if err != nil {
		return false, fmt.Errorf("read request %s: %w", requestID, err)
	}
	return len(events) > 0, nil
}

// request is the request a tick makes: the owner's, from provider
// schedule, with the schedule as its sender and source.
func (r *Runner) request(name string, en *entry, messageID string) dispatch.RequestReceived {
	a := en.state.Config()
	room := a.Room
	if room == "" {
		room = name
	}
	return dispatch.RequestReceived{Adapter: dispatch.ScheduleAdapter, MessageID: messageID, Room: room, ChatUser: a.Owner,
		Text: a.Pipeline, Sender: schedule.Sender(name), Source: name, ReplyVia: a.Provider}
}

func (r *Runner) receive(ctx context.Context, en *entry, t schedule.TickDecided) error {
	name := en.state.Config().Name
	in := r.request(name, en, t.MessageID)
	if _, err := r.cfg.Receiver.Receive(ctx, in, in.Sender); err != nil {
		return fmt.Errorf("run the tick of %s as request %s: %w", t.Scheduled.Format(time.RFC3339), t.RequestID, err)
	}
	en.received = t.RequestID
	return nil
}
