package schedule_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/schedule"
)

func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func nextN(t *testing.T, spec schedule.Spec, from time.Time, n int) []string {
	t.Helper()
	var out []string
	for range n {
		next, ok := spec.Next(from, time.Time{})
		if !ok {
			break
		}
		out = append(out, next.In(spec.Location).Format("2006-01-02 15:04 MST"))
		from = next
	}
	return out
}

func TestCronAcrossDaylightSavingChanges(t *testing.T) {
	cases := []struct {
		name, expr, from string
		want             []string
	}{
		{"a daily time in the spring gap runs when the gap ends, once", "30 2 * * *", "2026-03-28T12:00:00Z",
			[]string{"2026-03-29 03:00 CEST", "2026-03-30 02:30 CEST"}},
		{"a daily time in the repeated autumn hour runs once", "30 2 * * *", "2026-10-24T12:00:00Z",
			[]string{"2026-10-25 02:30 CEST", "2026-10-26 02:30 CET"}},
		{"an hourly job follows the real clock through the spring change", "0 * * * *", "2026-03-29T00:30:00Z",
			[]string{"2026-03-29 03:00 CEST", "2026-03-29 04:00 CEST"}},
		{"an hourly job runs in both copies of the repeated hour", "0 * * * *", "2026-10-24T23:30:00Z",
			[]string{"2026-10-25 02:00 CEST", "2026-10-25 02:00 CET", "2026-10-25 03:00 CET"}},
		{"every five minutes keeps real five-minute steps across the change", "*/5 * * * *", "2026-03-29T00:55:00Z",
			[]string{"2026-03-29 03:00 CEST", "2026-03-29 03:05 CEST"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec, err := schedule.ParseSpec(c.expr, "Europe/Berlin")
			if err != nil {
				t.Fatal(err)
			}
			if got := nextN(t, spec, at(t, c.from), len(c.want)); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestParseSpecRefusesWithTheReason(t *testing.T) {
	for text, want := range map[string]string{
		"every 2s":              "shorter than the shortest interval",
		"every soon":            "is not a duration",
		"at tomorrow":           "is not a time",
		"61 * * * *":            "is not a cron expression",
		"":                      "is empty",
		"CRON_TZ=UTC * * * * *": "--tz",
	} {
		if _, err := schedule.ParseSpec(text, ""); err == nil || !errors.Is(err, schedule.ErrSpec) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSpec(%q) = %v, want an error saying %q", text, err, want)
		}
	}
	if _, err := schedule.ParseSpec("* * * * *", "Mars/Olympus"); err == nil || !strings.Contains(err.Error(), "IANA") {
		t.Errorf("a bad zone: %v", err)
	}
}

func TestEveryAndAt(t *testing.T) {
	anchor := at(t, "2026-12-06T10:00:00Z")
	every, _ := schedule.ParseSpec("every 10m", "")
	if next, _ := every.Next(at(t, "2026-12-06T10:25:00Z"), anchor); !next.Equal(at(t, "2026-12-06T10:30:00Z")) {
		t.Fatalf("every 10m after 10:25 = %s", next)
	}
	once, _ := schedule.ParseSpec("at 2026-12-24 09:00", "Europe/Berlin")
	if next, ok := once.Next(anchor, anchor); !ok || !next.Equal(at(t, "2026-12-24T08:00:00Z")) {
		t.Fatalf("at = %s %v", next, ok)
	}
	if _, ok := once.Next(at(t, "2026-12-24T08:00:00Z"), anchor); ok {
		t.Fatal("an at schedule ticked twice")
	}
}

func FuzzParseSpec(f *testing.F) {
	for _, seed := range []string{"*/5 * * * *", "every 10m", "at 2026-12-24 09:00", "@daily", "0 9 * * 1-5", "every 5s", "at 2026-03-29T02:30:00+01:00"} {
		f.Add(seed, "Europe/Berlin")
	}
	f.Fuzz(func(t *testing.T, text, tz string) {
		spec, err := schedule.ParseSpec(text, tz)
		if err != nil {
			if !errors.Is(err, schedule.ErrSpec) {
				t.Fatalf("an error not of kind ErrSpec: %v", err)
			}
			return
		}
		from := time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)
		for range 3 {
			next, ok := spec.Next(from, from)
			if !ok {
				return
			}
			if !next.After(from) {
				t.Fatalf("%q: next %s is not after %s", text, next, from)
			}
			from = next
		}
	})
}

// given-when-then: the management decider.

func added(name, spec, missed string, anchor time.Time) schedule.Added {
	return schedule.Added{ID: "id-" + name, Name: name, Spec: spec, Pipeline: "echo hi", Owner: "alice", Missed: missed, Anchor: anchor, By: "alice"}
}

func TestManagementDecider(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	a := added("nightly", "0 3 * * *", schedule.MissedSkip, now)
	cases := []struct {
		name    string
		given   []domain.Payload
		when    any
		then    []domain.Payload
		wantErr error
	}{
		{"adding a new schedule records it", nil, schedule.Add{Added: a}, []domain.Payload{a}, nil},
		{"adding a name that exists is refused", []domain.Payload{a}, schedule.Add{Added: a}, nil, schedule.ErrExists},
		{"a bad spec is refused", nil, schedule.Add{Added: added("x", "every 1s", "", now)}, nil, schedule.ErrSpec},
		{"a time that has passed is refused", nil, schedule.Add{Added: added("x", "at 2026-12-06 09:00", "", now)}, nil, schedule.ErrSpec},
		{"a bad policy is refused", nil, schedule.Add{Added: added("x", "every 1m", "sometimes", now)}, nil, schedule.ErrInvalid},
		{"pausing records it", []domain.Payload{a}, schedule.Pause{By: "bob", At: now}, []domain.Payload{schedule.Paused{By: "bob", At: now}}, nil},
		{"pausing a paused one records nothing", []domain.Payload{a, schedule.Paused{}}, schedule.Pause{By: "bob", At: now}, nil, nil},
		{"resuming a paused one records it", []domain.Payload{a, schedule.Paused{}}, schedule.Resume{By: "bob", At: now}, []domain.Payload{schedule.Resumed{By: "bob", At: now}}, nil},
		{"deleting a deleted one is refused", []domain.Payload{a, schedule.Deleted{}}, schedule.Delete{By: "bob"}, nil, schedule.ErrNotFound},
		{"a deleted name may be added again", []domain.Payload{a, schedule.Deleted{}}, schedule.Add{Added: a}, []domain.Payload{a}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := schedule.Decide(schedule.Fold(c.given), c.when)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err = %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.then) {
				t.Fatalf("got %#v, %v; want %#v", got, err, c.then)
			}
		})
	}
}

// given-when-then: ticks.

func requestID(msg string) string { return "req-" + msg }

func TestTicks(t *testing.T) {
	anchor := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	minutes := func(m int) time.Time { return anchor.Add(time.Duration(m) * time.Minute) }
	skip := added("every5", "every 5m", schedule.MissedSkip, anchor)
	once := added("every5", "every 5m", schedule.MissedRunOnce, anchor)
	tick := func(a schedule.Added, m int, late bool, missed int) schedule.TickDecided {
		msg := schedule.TickMessageID(a.ID, minutes(m))
		return schedule.TickDecided{Scheduled: minutes(m), RequestID: requestID(msg), MessageID: msg, Late: late, Missed: missed}
	}
	cases := []struct {
		name  string
		given []domain.Payload
		now   time.Time
		then  []domain.Payload
	}{
		{"nothing is due before the first tick", []domain.Payload{skip}, minutes(4), nil},
		{"a tick on time is decided", []domain.Payload{skip}, minutes(5).Add(time.Second), []domain.Payload{tick(skip, 5, false, 0)}},
		{"a decided tick is not decided again", []domain.Payload{skip, tick(skip, 5, false, 0)}, minutes(6), nil},
		{"downtime over three ticks, skip: a note for the three, nothing runs", []domain.Payload{skip}, minutes(17),
			[]domain.Payload{schedule.TicksSkipped{First: minutes(5), Last: minutes(15), Count: 3, Reason: "missed while Logbook was not running (found 2m0s after the last); the schedule skips missed ticks"}}},
		{"downtime over three ticks ending on time, skip: a note for two, the third runs", []domain.Payload{skip}, minutes(15).Add(10 * time.Second),
			[]domain.Payload{schedule.TicksSkipped{First: minutes(5), Last: minutes(10), Count: 2, Reason: "missed while Logbook was not running (found 5m10s after the last); the schedule skips missed ticks"}, tick(skip, 15, false, 0)}},
		{"downtime over three ticks, run-once: one late run for all three", []domain.Payload{once}, minutes(17),
			[]domain.Payload{tick(once, 15, true, 2)}},
		{"a paused schedule has nothing due", []domain.Payload{skip, schedule.Paused{At: minutes(1)}}, minutes(30), nil},
		{"ticks while paused are not missed: after resuming only the next runs", []domain.Payload{skip, schedule.Paused{At: minutes(1)}, schedule.Resumed{At: minutes(21)}}, minutes(25),
			[]domain.Payload{tick(skip, 25, false, 0)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := schedule.DecideTicks(schedule.Fold(c.given), c.now, requestID)
			if !reflect.DeepEqual(got, c.then) {
				t.Fatalf("got %#v\nwant %#v", got, c.then)
			}
		})
	}
}

func TestAPendingTickAfterACrash(t *testing.T) {
	anchor := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	decided := schedule.TickDecided{Scheduled: anchor.Add(5 * time.Minute), RequestID: "r1", MessageID: "m1"}
	for _, c := range []struct {
		name    string
		missed  string
		now     time.Time
		run     bool
		abandon bool
	}{
		{"back within the grace: it runs", schedule.MissedSkip, decided.Scheduled.Add(30 * time.Second), true, false},
		{"back late, skip: abandoned with a note", schedule.MissedSkip, decided.Scheduled.Add(time.Hour), false, true},
		{"back late, run-once: it runs", schedule.MissedRunOnce, decided.Scheduled.Add(time.Hour), true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := schedule.Fold([]domain.Payload{added("s", "every 5m", c.missed, anchor), decided})
			run, abandon := schedule.DecidePending(s, c.now)
			if run != c.run || (len(abandon) > 0) != c.abandon {
				t.Fatalf("run %v abandon %v", run, abandon)
			}
			if c.abandon {
				after := schedule.Evolve(s, abandon[0])
				if after.Pending().RequestID != "" {
					t.Fatal("an abandoned tick is still pending")
				}
			}
		})
	}
}
