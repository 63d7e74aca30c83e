package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"
	// The zone database is built in: Logbook's image is FROM scratch, and
	// a schedule must read its --tz the same on every host.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
)

// Kind is how a schedule's times are given.
type Kind string

const (
	KindCron  Kind = "cron"  // a five-field cron expression or a descriptor (@daily)
	KindEvery Kind = "every" // a fixed interval from when the schedule was added
	KindAt    Kind = "at"    // once, at a date and time
)

// MinInterval is the shortest interval `every` takes.
const MinInterval = 5 * time.Second

// MaxSpecBytes bounds a spec's text.
const MaxSpecBytes = 256

// ErrSpec is the kind of every error about a spec's text.
var ErrSpec = errors.New("invalid schedule")

// Spec is a parsed schedule: when its ticks fall.
type Spec struct {
	Kind     Kind
	Text     string         // as written
	Location *time.Location // the time zone cron and at read their times in
	cron     cron.Schedule
	// fixedHour says the expression names its hours (not "*"): such a
	// tick in a daylight-saving gap runs when the gap ends, and in a
	// repeated hour it runs once, as Vixie cron does. A wildcard hour
	// runs by the real clock through both.
	fixedHour bool
	every     time.Duration
	at        time.Time
}

// ParseSpec reads when a schedule ticks: "every 10m" (any Go duration
// from 5s up), "at 2026-12-24 09:00" (or an RFC 3339 time), or a cron
// expression ("*/5 * * * *", "@daily"), read in the time zone tz (an IANA
// name; "" is UTC). Errors say what is wrong and where.
func ParseSpec(text, tz string) (Spec, error) {
	loc := time.UTC
	if tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil || tz == "Local" {
			return Spec{}, fmt.Errorf("%w: --tz %q is not an IANA time zone name (such as Europe/Berlin)", ErrSpec, tz)
		}
		loc = l
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return Spec{}, fmt.Errorf(`%w: the schedule is empty; expected "every 10m", "at 2026-12-24 09:00" or a cron expression such as "*/5 * * * *"`, ErrSpec)
	}
	if len(text) > MaxSpecBytes {
		return Spec{}, fmt.Errorf("%w: the schedule is %d bytes long; the limit is %d", ErrSpec, len(text), MaxSpecBytes)
	}
	s := Spec{Text: text, Location: loc}
	switch word, rest, _ := strings.Cut(text, " "); word {
	case "every":
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil {
			return Spec{}, fmt.Errorf("%w: %q after every (column 7) is not a duration; expected such as 30s, 10m or 1h30m", ErrSpec, strings.TrimSpace(rest))
		}
		if d < MinInterval {
			return Spec{}, fmt.Errorf("%w: every %s is shorter than the shortest interval, %s", ErrSpec, d, MinInterval)
		}
		s.Kind, s.every = KindEvery, d
	case "at":
		at, err := parseAt(strings.TrimSpace(rest), loc)
		if err != nil {
			return Spec{}, err
		}
		s.Kind, s.at = KindAt, at
	default:
		if strings.Contains(text, "TZ=") {
			return Spec{}, fmt.Errorf("%w: give the time zone with --tz, not in the expression", ErrSpec)
		}
		sched, err := cron.ParseStandard(text)
		if err != nil {
			return Spec{}, fmt.Errorf("%w: %q is not a cron expression (minute hour day-of-month month day-of-week, or @hourly, @daily, ...): %v", ErrSpec, text, err)
		}
		switch c := sched.(type) {
		case *cron.SpecSchedule:
			c.Location = loc // ParseStandard reads in the server's zone otherwise
		case cron.ConstantDelaySchedule:
			if c.Delay < MinInterval {
				return Spec{}, fmt.Errorf("%w: %s is shorter than the shortest interval, %s", ErrSpec, text, MinInterval)
			}
		}
		s.Kind, s.cron, s.fixedHour = KindCron, sched, namesHours(text)
	}
	return s, nil
}

var atLayouts = []string{"2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02T15:04:05"}

func parseAt(text string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, text); err == nil {
		return t.UTC(), nil
	}
	for _, layout := range atLayouts {
		if t, err := time.ParseInLocation(layout, text, loc); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: %q after at (column 4) is not a time; expected YYYY-MM-DD HH:MM (in --tz, else UTC) or RFC 3339", ErrSpec, text)
}

// Next is the first tick strictly after after, and false when there is
// none (an `at` schedule whose time has passed). anchor is when an
// `every` schedule counts its intervals from.
func (s Spec) Next(after, anchor time.Time) (time.Time, bool) {
	switch s.Kind {
	case KindEvery:
		if after.Before(anchor) {
			return anchor, true
		}
		n := after.Sub(anchor)/s.every + 1
		return anchor.Add(n * s.every).UTC(), true
	case KindAt:
		if s.at.After(after) {
			return s.at, true
		}
		return time.Time{}, false
	case KindCron:
		return s.nextCron(after)
	}
	return time.Time{}, false
}

// nextCron is the cron library's next time, corrected for daylight
// saving where the expression names its hours. robfig/cron skips a time
// that falls in a spring-forward gap (a daily 02:30 would not run that
// day) and runs a time in a repeated autumn hour twice; both surprise
// anyone who wrote "every day at 02:30".
func (s Spec) nextCron(after time.Time) (time.Time, bool) {
	for range 4 { // at most one repeated hour to step over, in practice
		next := s.cron.Next(after.In(s.Location))
		if next.IsZero() {
			return time.Time{}, false
		}
		spec, ok := s.cron.(*cron.SpecSchedule)
		if !ok || !s.fixedHour {
			return next.UTC(), true
		}
		if gapEnd, ok := s.gapTickBefore(spec, after, next); ok {
			return gapEnd.UTC(), true
		}
		if !repeatedWallTime(next.In(s.Location)) {
			return next.UTC(), true
		}
		after = next
	}
	return time.Time{}, false
}

// gapTickBefore finds a spring-forward gap between after and next in
// which the expression names a wall time; that tick runs at the gap's
// end, the first instant that exists after it.
func (s Spec) gapTickBefore(spec *cron.SpecSchedule, after, next time.Time) (time.Time, bool) {
	t := after.In(s.Location)
	for range 8 {
		_, end := t.ZoneBounds()
		if end.IsZero() || !end.Before(next) {
			return time.Time{}, false
		}
		_, before := t.Zone()
		_, later := end.Zone()
		if gap := time.Duration(later-before) * time.Second; gap > 0 {
			// Read the expression in the zone before the change: its wall
			// times inside the gap are the instants [end, end+gap) there.
			fixed := *spec
			fixed.Location = time.FixedZone("", before)
			if wanted := fixed.Next(end.Add(-time.Second).In(fixed.Location)); !wanted.Before(end) && wanted.Before(end.Add(gap)) && end.After(after) {
				return end, true
			}
		}
		t = end.In(s.Location)
	}
	return time.Time{}, false
}

// repeatedWallTime says t's wall time happened already, in the hour an
// autumn change repeats.
func repeatedWallTime(t time.Time) bool {
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return false
	}
	_, now := t.Zone()
	_, before := start.Add(-time.Second).In(t.Location()).Zone()
	back := time.Duration(before-now) * time.Second
	return back > 0 && t.Sub(start) < back
}

// namesHours says a cron expression's hour field is not a wildcard.
func namesHours(text string) bool {
	if strings.HasPrefix(text, "@") {
		return text != "@hourly" && !strings.HasPrefix(text, "@every")
	}
	fields := strings.Fields(text)
	return len(fields) >= 2 && !strings.Contains(fields[1], "*")
}

// Describe says the spec in words for lists.
func (s Spec) Describe() string {
	if s.Location == time.UTC || s.Kind == KindEvery {
		return s.Text
	}
	return s.Text + " (" + s.Location.String() + ")"
}
