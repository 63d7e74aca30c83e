// Package schedule is the schedule aggregate: a pipeline run as its owner
// on a clock (cron, every, at). Its stream is `schedule-<name>`. Adding,
// pausing, resuming and deleting a schedule are its events, and so is each
// tick's fate: decided (it runs, under a request id derived from the
// schedule and the tick's time), skipped (missed while Logbook was down,
// with a note) or abandoned (decided, not run before a crash, and too late
// to run under the skip policy). The decider is pure: the runner
// (dispatcher/scheduler) hands it the time.
package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/pipeline"
)

// StreamPrefix is the category of schedule streams.
const StreamPrefix = "schedule-"

// Stream names the stream of the schedule name.
func Stream(name string) string { return StreamPrefix + name }

// Provider is the request provider of a schedule's ticks in the history.
const Provider = "schedule"

// Missed-tick policies: what happens to ticks that fell while Logbook was
// not running.
const (
	MissedSkip    = "skip"     // skipped, with a recorded note
	MissedRunOnce = "run-once" // run once, late, for all of them
)

// Grace is how late a tick may be decided and still count as on time: a
// tick found later than this was missed (Logbook was down).
const Grace = time.Minute

// MaxCatchUp bounds the missed ticks counted one by one.
const MaxCatchUp = 10000

// Added records a new schedule.
type Added struct {
	ID       string `json:"id"` // this incarnation of the name; tick ids derive from it
	Name     string `json:"name"`
	Spec     string `json:"spec"`
	TZ       string `json:"tz,omitempty"`
	Pipeline string `json:"pipeline"`
	Owner    string `json:"owner"` // username it runs as
	// Provider and Room are where its replies go: a chat provider and a
	// room there (the room it was added in, or its redirect's).
	Provider string    `json:"provider,omitempty"`
	Room     string    `json:"room,omitempty"`
	Missed   string    `json:"missed"`
	Anchor   time.Time `json:"anchor"` // when it was added: `every` counts from here
	By       string    `json:"by"`
}

// Paused stops ticks until Resumed; ticks that fall while paused are not
// missed, they are not due.
type Paused struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
}
type Resumed struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// Deleted removes a schedule; its name may be added again.
type Deleted struct {
	By string `json:"by"`
}

// TickDecided says the tick at Scheduled runs, as request RequestID. Late
// says it was found after Grace; Missed counts the earlier ticks it runs
// for under the run-once policy.
type TickDecided struct {
	Scheduled time.Time `json:"scheduled"`
	RequestID string    `json:"request_id"`
	MessageID string    `json:"message_id"`
	Late      bool      `json:"late,omitempty"`
	Missed    int       `json:"missed,omitempty"`
}

// TicksSkipped is the note that ticks were missed and not run.
type TicksSkipped struct {
	First  time.Time `json:"first"`
	Last   time.Time `json:"last"`
	Count  int       `json:"count"`
	Reason string    `json:"reason"`
}

// TickAbandoned says a decided tick was not run: the server stopped
// between deciding and running it, and it came back too late for a
// schedule that skips missed ticks.
type TickAbandoned struct {
	Scheduled time.Time `json:"scheduled"`
	RequestID string    `json:"request_id"`
	Reason    string    `json:"reason"`
}

func (Added) EventType() string         { return "ScheduleAdded" }
func (Paused) EventType() string        { return "SchedulePaused" }
func (Resumed) EventType() string       { return "ScheduleResumed" }
func (Deleted) EventType() string       { return "ScheduleDeleted" }
func (TickDecided) EventType() string   { return "ScheduleTickDecided" }
func (TicksSkipped) EventType() string  { return "ScheduleTicksSkipped" }
func (TickAbandoned) EventType() string { return "ScheduleTickAbandoned" }

func init() {
	domain.Register[Added]()
	domain.Register[Paused]()
	domain.Register[Resumed]()
	domain.Register[Deleted]()
	domain.Register[TickDecided]()
	domain.Register[TicksSkipped]()
	domain.Register[TickAbandoned]()
}

// Schedule is the state of one schedule stream.
type Schedule struct {
	added   Added
	spec    Spec
	exists  bool
	paused  bool
	from    time.Time   // ticks after this are due (added, resumed, last tick)
	pending TickDecided // the last tick decided
}

// Evolve folds one event.
func Evolve(s Schedule, e domain.Payload) Schedule {
	switch p := e.(type) {
	case Added:
		// A spec this build cannot read (recorded by another) leaves a
		// schedule that exists, can be deleted, and never ticks.
		spec, _ := ParseSpec(p.Spec, p.TZ)
		s = Schedule{added: p, spec: spec, exists: true, from: p.Anchor}
	case Paused:
		s.paused = true
	case Resumed:
		s.paused = false
		s.from = laterOf(s.from, p.At)
	case Deleted:
		s.exists, s.paused = false, false
	case TickDecided:
		s.from = laterOf(s.from, p.Scheduled)
		s.pending = p
	case TicksSkipped:
		s.from = laterOf(s.from, p.Last)
	case TickAbandoned:
		if s.pending.RequestID == p.RequestID {
			s.pending = TickDecided{}
		}
	}
	return s
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Fold evolves the zero Schedule through events.
func Fold(events []domain.Payload) Schedule {
	var s Schedule
	for _, e := range events {
		s = Evolve(s, e)
	}
	return s
}

// Exists says it was added and not deleted.
func (s Schedule) Exists() bool { return s.exists }

// Paused says it is paused.
func (s Schedule) Paused() bool { return s.paused }

// Config is the schedule as added.
func (s Schedule) Config() Added { return s.added }

// Spec is its parsed spec.
func (s Schedule) Spec() Spec { return s.spec }

// Pending is the last tick decided (zero when none, or abandoned).
func (s Schedule) Pending() TickDecided { return s.pending }

// Next is the next tick due, false when none will be (deleted, paused,
// or an `at` that passed).
func (s Schedule) Next() (time.Time, bool) {
	if !s.exists || s.paused {
		return time.Time{}, false
	}
	return s.spec.Next(s.from, s.added.Anchor)
}

// Commands.
type (
	Add struct {
		Added
	}
	Pause struct {
		By string
		At time.Time
	}
	Resume struct {
		By string
		At time.Time
	}
	Delete struct{ By string }
)

// Errors.
var (
	ErrNotFound = errors.New("no such schedule")
	ErrExists   = errors.New("a schedule of that name exists")
	ErrInvalid  = errors.New("invalid schedule")
)

// Decide checks a management command against the schedule's state.
func Decide(s Schedule, cmd any) ([]domain.Payload, error) {
	switch c := cmd.(type) {
	case Add:
		if s.exists {
			return nil, fmt.Errorf("%w: schedule %s exists; delete it first, or pick another name", ErrExists, c.Name)
		}
		if err := validate(c.Added); err != nil {
			return nil, err
		}
		added := c.Added
		if added.Missed == "" {
			added.Missed = MissedSkip
		}
		added.Anchor = added.Anchor.UTC().Truncate(time.Second)
		return []domain.Payload{added}, nil
	case Pause:
		if !s.exists {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, s.added.Name)
		}
		if s.paused {
			return nil, nil
		}
		return []domain.Payload{Paused{By: c.By, At: c.At.UTC()}}, nil
	case Resume:
		if !s.exists {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, s.added.Name)
		}
		if !s.paused {
			return nil, nil
		}
		return []domain.Payload{Resumed{By: c.By, At: c.At.UTC()}}, nil
	case Delete:
		if !s.exists {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, s.added.Name)
		}
		return []domain.Payload{Deleted{By: c.By}}, nil
	}
	return nil, fmt.Errorf("%w: unknown command %T", ErrInvalid, cmd)
}

func validate(a Added) error {
	if err := access.ValidateName("schedule name", a.Name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	spec, err := ParseSpec(a.Spec, a.TZ)
	if err != nil {
		return err
	}
	if _, ok := spec.Next(a.Anchor, a.Anchor); !ok {
		return fmt.Errorf("%w: %s is in the past (it is %s now)", ErrSpec, a.Spec, a.Anchor.UTC().Format("2006-01-02 15:04 MST"))
	}
	if strings.TrimSpace(a.Pipeline) == "" {
		return fmt.Errorf("%w: schedule %s has no pipeline", ErrInvalid, a.Name)
	}
	parsed, err := pipeline.Parse(a.Pipeline)
	if err != nil {
		return fmt.Errorf("%w: schedule %s: the pipeline does not parse: %v", ErrInvalid, a.Name, err)
	}
	for _, rd := range parsed.Redirects {
		if rd.PostsToChat() && a.Provider == "" {
			return fmt.Errorf("%w: schedule %s posts to %s (column %d); name the chat provider it is on with --provider", ErrInvalid, a.Name, rd.Target, rd.Column)
		}
	}
	if err := access.ValidateUsername(a.Owner); err != nil {
		return fmt.Errorf("%w: schedule %s: owner: %v", ErrInvalid, a.Name, err)
	}
	if a.Missed != "" && a.Missed != MissedSkip && a.Missed != MissedRunOnce {
		return fmt.Errorf("%w: schedule %s: --missed %q; expected %s or %s", ErrInvalid, a.Name, a.Missed, MissedSkip, MissedRunOnce)
	}
	if a.ID == "" {
		return fmt.Errorf("%w: schedule %s has no id", ErrInvalid, a.Name)
	}
	return nil
}

// tickNamespace seeds tick message ids.
var tickNamespace = uuid.MustParse("9d3c6f0e-5b1a-4f7e-8c2d-1a4b6e8f0c37")

// TickMessageID is the message id of the tick at scheduled: derived from
// the schedule's incarnation and the time, so every replica, and every
// restart, names the same request for it.
func TickMessageID(scheduleID string, scheduled time.Time) string {
	return uuid.NewSHA1(tickNamespace, []byte(scheduleID+"@"+scheduled.UTC().Format(time.RFC3339Nano))).String()
}

// Sender is the authenticated sender a schedule's requests carry: the
// schedule, which runs as its owner.
func Sender(name string) string { return "schedule:" + name }

// DecideTicks decides what is due at now: nothing, a tick to run, a note
// of missed ticks, or both. requestID names a tick's request from its
// message id (dispatch derives it; the domain of schedules does not).
// Under MissedSkip, ticks found more than Grace late are skipped with a
// note, and the latest due runs only when on time; under MissedRunOnce,
// the latest due runs, late, once for all.
func DecideTicks(s Schedule, now time.Time, requestID func(messageID string) string) []domain.Payload {
	if !s.exists || s.paused {
		return nil
	}
	var due []time.Time
	after := s.from
	for len(due) < MaxCatchUp {
		next, ok := s.spec.Next(after, s.added.Anchor)
		if !ok || next.After(now) {
			break
		}
		due = append(due, next)
		after = next
	}
	if len(due) == 0 {
		return nil
	}
	latest := due[len(due)-1]
	onTime := now.Sub(latest) <= Grace
	decided := func(late bool, missed int) TickDecided {
		msg := TickMessageID(s.added.ID, latest)
		return TickDecided{Scheduled: latest, RequestID: requestID(msg), MessageID: msg, Late: late, Missed: missed}
	}
	switch {
	case s.added.Missed == MissedRunOnce:
		return []domain.Payload{decided(!onTime, len(due)-1)}
	case onTime && len(due) == 1:
		return []domain.Payload{decided(false, 0)}
	}
	missed := due
	if onTime {
		missed = due[:len(due)-1]
	}
	out := []domain.Payload{TicksSkipped{First: missed[0], Last: missed[len(missed)-1], Count: len(missed),
		Reason: fmt.Sprintf("missed while Logbook was not running (found %s after the last); the schedule skips missed ticks", now.Sub(missed[len(missed)-1]).Round(time.Second))}}
	if onTime {
		out = append(out, decided(false, 0))
	}
	return out
}

// DecidePending decides the fate of the last tick decided whose request
// was never recorded (the server stopped in between): it runs now when it
// is on time or the schedule runs missed ticks once; otherwise it is
// abandoned with a note. Never both, and never a second run: a recorded
// request is the caller's to see, and then nothing is decided.
func DecidePending(s Schedule, now time.Time) (run bool, abandon []domain.Payload) {
	p := s.pending
	if p.RequestID == "" || !s.exists {
		return false, nil
	}
	if now.Sub(p.Scheduled) <= Grace || s.added.Missed == MissedRunOnce {
		return true, nil
	}
	return false, []domain.Payload{TickAbandoned{Scheduled: p.Scheduled, RequestID: p.RequestID,
		Reason: fmt.Sprintf("decided, but the server stopped before it ran, and it came back %s late; the schedule skips missed ticks", now.Sub(p.Scheduled).Round(time.Second))}}
}
