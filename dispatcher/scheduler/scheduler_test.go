package scheduler_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/dispatcher/scheduler"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/schedule"
)

// recorder is a Receiver that records the request as the dispatcher
// would (idempotently, by its id), and can fail as a crash would.
type recorder struct {
	store eventstore.Store
	mu    sync.Mutex
	got   []dispatch.RequestReceived
	fail  bool
}

func (r *recorder) Receive(ctx context.Context, in dispatch.RequestReceived, actor string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return "", errors.New("the process died before the request was recorded")
	}
	e, err := domain.Encode(in, domain.Metadata{Actor: actor})
	if err != nil {
		return "", err
	}
	if _, err := r.store.Append(ctx, dispatch.Stream(in.ID()), eventstore.NoStream, e); err != nil {
		return "", err
	}
	r.got = append(r.got, in)
	return in.ID(), nil
}

func (r *recorder) received() []dispatch.RequestReceived {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]dispatch.RequestReceived(nil), r.got...)
}

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "log.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var anchor = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

func minutes(m float64) time.Time { return anchor.Add(time.Duration(m * float64(time.Minute))) }

func addSchedule(t *testing.T, s eventstore.Store, name, spec, missed string) {
	t.Helper()
	a := schedule.Added{ID: "id-" + name, Name: name, Spec: spec, Pipeline: "echo hi", Owner: "alice", Missed: missed, Anchor: anchor, By: "alice"}
	e, err := domain.Encode(a, domain.Metadata{Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), schedule.Stream(name), eventstore.NoStream, e); err != nil {
		t.Fatal(err)
	}
}

func newRunner(t *testing.T, s eventstore.Store, rec scheduler.Receiver) *scheduler.Runner {
	t.Helper()
	r, err := scheduler.New(scheduler.Config{Store: s, Receiver: rec})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func streamTypes(t *testing.T, s eventstore.Store, name string) []string {
	t.Helper()
	events, err := s.ReadStream(context.Background(), schedule.Stream(name), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range events {
		out = append(out, e.Type)
	}
	return out
}

func TestTicksOnTimeRunOnceEachWithAnIDFromTheScheduleAndTheTime(t *testing.T) {
	s := openStore(t)
	addSchedule(t, s, "every5", "every 5m", schedule.MissedSkip)
	rec := &recorder{store: s}
	r := newRunner(t, s, rec)
	for _, m := range []float64{1, 5, 5.1, 7, 10.2, 10.3} {
		if err := r.Step(context.Background(), minutes(m)); err != nil {
			t.Fatal(err)
		}
	}
	got := rec.received()
	if len(got) != 2 {
		t.Fatalf("%d ticks ran, want 2 (at 10:05 and 10:10)", len(got))
	}
	want := schedule.TickMessageID("id-every5", minutes(5))
	if got[0].MessageID != want || got[0].Adapter != dispatch.ScheduleAdapter || got[0].Source != "every5" || got[0].ChatUser != "alice" {
		t.Fatalf("first tick's request: %+v", got[0])
	}
	if next, ok := r.NextDue(); !ok || !next.Equal(minutes(15)) {
		t.Fatalf("next due %s", next)
	}
}

func TestTwoReplicasRunATickOnce(t *testing.T) {
	s := openStore(t)
	addSchedule(t, s, "every5", "every 5m", schedule.MissedSkip)
	rec := &recorder{store: s}
	a, b := newRunner(t, s, rec), newRunner(t, s, rec)
	// Both have folded the schedule before either decides.
	for _, r := range []*scheduler.Runner{a, b} {
		if err := r.Step(context.Background(), minutes(1)); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*scheduler.Runner{a, b} {
		if err := r.Step(context.Background(), minutes(5)); err != nil {
			t.Fatal(err)
		}
	}
	if got := rec.received(); len(got) != 1 {
		t.Fatalf("the tick ran %d times on two replicas", len(got))
	}
	if types := streamTypes(t, s, "every5"); len(types) != 2 {
		t.Fatalf("the schedule's stream: %v, want one ScheduleTickDecided after ScheduleAdded", types)
	}
}

func TestDowntimeOverThreeTicks(t *testing.T) {
	for _, c := range []struct {
		missed    string
		runs      int
		lastEvent string
	}{
		{schedule.MissedSkip, 0, "ScheduleTicksSkipped"},
		{schedule.MissedRunOnce, 1, "ScheduleTickDecided"},
	} {
		t.Run(c.missed, func(t *testing.T) {
			s := openStore(t)
			addSchedule(t, s, "every5", "every 5m", c.missed)
			rec := &recorder{store: s}
			// The server comes back at 10:17: the ticks of 10:05, 10:10
			// and 10:15 fell while it was down.
			if err := newRunner(t, s, rec).Step(context.Background(), minutes(17)); err != nil {
				t.Fatal(err)
			}
			if got := rec.received(); len(got) != c.runs {
				t.Fatalf("%d runs, want %d", len(got), c.runs)
			}
			types := streamTypes(t, s, "every5")
			if len(types) != 2 || types[1] != c.lastEvent {
				t.Fatalf("recorded %v, want ScheduleAdded then %s", types, c.lastEvent)
			}
			events, _ := s.ReadStream(context.Background(), schedule.Stream("every5"), 1, 1)
			p, _ := domain.Decode(events[0])
			switch v := p.(type) {
			case schedule.TicksSkipped:
				if v.Count != 3 {
					t.Fatalf("skipped %d, want 3", v.Count)
				}
			case schedule.TickDecided:
				if !v.Late || v.Missed != 2 || !v.Scheduled.Equal(minutes(15)) {
					t.Fatalf("decided %+v, want the 10:15 tick, late, for 2 more", v)
				}
			}
		})
	}
}

func TestACrashBetweenDecidingATickAndRunningIt(t *testing.T) {
	for _, c := range []struct {
		name      string
		missed    string
		back      float64
		runs      int
		abandoned bool
	}{
		{"back within the grace: it runs once", schedule.MissedSkip, 5.5, 1, false},
		{"back late, skip: recorded abandoned, never run", schedule.MissedSkip, 30, 0, true},
		{"back late, run-once: it runs once", schedule.MissedRunOnce, 30, 1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t)
			addSchedule(t, s, "every5", "every 5m", c.missed)
			crashing := &recorder{store: s, fail: true}
			if err := newRunner(t, s, crashing).Step(context.Background(), minutes(5)); err == nil {
				t.Fatal("the step did not report the tick it could not run")
			}
			if types := streamTypes(t, s, "every5"); len(types) != 2 || types[1] != "ScheduleTickDecided" {
				t.Fatalf("before the crash: %v", types)
			}
			rec := &recorder{store: s}
			restarted := newRunner(t, s, rec)
			for range 3 { // steps again find nothing more to do
				if err := restarted.Step(context.Background(), minutes(c.back)); err != nil {
					t.Fatal(err)
				}
			}
			runs := 0
			for _, in := range rec.received() {
				if in.MessageID == schedule.TickMessageID("id-every5", minutes(5)) {
					runs++
				}
			}
			if runs != c.runs {
				t.Fatalf("the 10:05 tick ran %d times, want %d", runs, c.runs)
			}
			types := streamTypes(t, s, "every5")
			if got := slices.Contains(types, "ScheduleTickAbandoned"); got != c.abandoned {
				t.Fatalf("recorded %v; abandoned %v, want %v", types, got, c.abandoned)
			}
		})
	}
}

// fakeClock is a clock the test moves; After fires when it is moved past.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	waiting chan struct{}
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, waiter{c.now.Add(d), ch})
	select {
	case c.waiting <- struct{}{}:
	default:
	}
	return ch
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(t) {
			w.ch <- t
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

func TestRunWaitsOnTheClockAndRunsEachTick(t *testing.T) {
	s := openStore(t)
	addSchedule(t, s, "every5", "every 5m", schedule.MissedSkip)
	rec := &recorder{store: s}
	clock := &fakeClock{now: minutes(1), waiting: make(chan struct{}, 16)}
	r, err := scheduler.New(scheduler.Config{Store: s, Receiver: rec, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for _, m := range []float64{5, 10} {
		<-clock.waiting // the runner waits on the clock
		clock.set(minutes(m))
		deadline := time.After(10 * time.Second)
		for len(rec.received()) < int(m/5) {
			select {
			case <-clock.waiting:
			case <-deadline:
				t.Fatalf("the tick at minute %v did not run", m)
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := len(rec.received()); got != 2 {
		t.Fatalf("%d runs, want 2", got)
	}
}

// staleReads is a store whose log reads see nothing new while frozen: a
// replica that decided before it read the other's decision.
type staleReads struct {
	eventstore.Store
	mu     sync.Mutex
	frozen bool
}

func (s *staleReads) freeze(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frozen = on
}

func (s *staleReads) ReadAll(ctx context.Context, from int64, limit int) ([]domain.RecordedEvent, error) {
	s.mu.Lock()
	frozen := s.frozen
	s.mu.Unlock()
	if frozen {
		return nil, nil
	}
	return s.Store.ReadAll(ctx, from, limit)
}

func TestAReplicaWhoseClockDisagreesActsOnNothingTheOtherDecided(t *testing.T) {
	s := openStore(t)
	addSchedule(t, s, "every5", "every 5m", schedule.MissedSkip)
	rec := &recorder{store: s}
	stale := &staleReads{Store: s}
	a, b := newRunner(t, s, rec), newRunner(t, stale, rec)
	for _, r := range []*scheduler.Runner{a, b} {
		if err := r.Step(context.Background(), minutes(1)); err != nil {
			t.Fatal(err)
		}
	}
	// a finds the 10:05 tick on time and runs it. b, whose clock reads
	// 10:10:30 and which has not read a's decision, would skip 10:05 as
	// missed and run 10:10: its append conflicts, it runs nothing, and
	// a's decision stands; its next step runs 10:10, once.
	if err := a.Step(context.Background(), minutes(5.5)); err != nil {
		t.Fatal(err)
	}
	stale.freeze(true)
	if err := b.Step(context.Background(), minutes(10.5)); err != nil {
		t.Fatal(err)
	}
	if got := len(rec.received()); got != 1 {
		t.Fatalf("%d runs after the conflict, want a's one", got)
	}
	stale.freeze(false)
	if err := b.Step(context.Background(), minutes(10.5)); err != nil {
		t.Fatal(err)
	}
	if got := len(rec.received()); got != 2 {
		t.Fatalf("%d runs, want 2 (10:05 by a, 10:10 by b)", got)
	}
	if types := streamTypes(t, s, "every5"); !slices.Equal(types, []string{"ScheduleAdded", "ScheduleTickDecided", "ScheduleTickDecided"}) {
		t.Fatalf("recorded %v", types)
	}
}
