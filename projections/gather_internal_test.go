package projections

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// wakes is a Source whose change signal the test fires.
type wakes struct {
	Source
	mu sync.Mutex
	ch chan struct{}
}

func newWakes() *wakes { return &wakes{ch: make(chan struct{})} }

func (w *wakes) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch
}

func (w *wakes) append() {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.ch)
	w.ch = make(chan struct{})
}

// Given a live runner woken by an append, when appends keep coming, then
// it waits for them (up to MaxGather), so one batch takes them all; a lone
// append waits only Quiet.
func TestALiveRunnerGathersAppendsWhileTheyKeepComing(t *testing.T) {
	cases := []struct {
		name    string
		appends int // one every millisecond after the wake
		want    time.Duration
	}{
		{"a lone append waits the quiet time", 0, 2 * time.Millisecond},
		{"five more wait until they stop, then the quiet time", 5, 7 * time.Millisecond},
		{"appends that never stop wait no longer than the bound", 100, 25 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Quiet: 2 * time.Millisecond, MaxGather: 25 * time.Millisecond}
			requireGatheredFor(t, cfg, false, c.appends, time.Millisecond, c.want)
		})
	}
}

// requireGatheredFor runs gather, in a synctest bubble, on a runner with
// cfg (busy or not) that is woken by appends, one every `every` after the
// wake, and requires that it gathered for want.
func requireGatheredFor(t *testing.T, cfg Config, busy bool, appends int, every, want time.Duration) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		src := newWakes()
		r := &Runner{src: src, cfg: cfg}
		go func() {
			for range appends {
				time.Sleep(every)
				src.append()
			}
		}()
		start := time.Now()
		if !r.gather(context.Background(), busy) {
			t.Fatal("gather ended as if stopped")
		}
		if got := time.Since(start); got != want {
			t.Fatalf("gathered for %v, want %v", got, want)
		}
		time.Sleep(time.Duration(appends+1) * every) // let the appender finish inside the bubble
	})
}

// Given a live runner whose last step found the log growing fast, when it
// is woken, then it waits BusyQuiet for more appends, so a run's events,
// coming over some milliseconds, go in one batch; MaxGather still bounds it.
func TestABusyLiveRunnerGathersForLonger(t *testing.T) {
	cases := []struct {
		name    string
		busy    bool
		appends int
		want    time.Duration
	}{
		{"idle: a lone append waits the quiet time", false, 0, 2 * time.Millisecond},
		{"busy: a lone append waits the busy quiet time", true, 0, 20 * time.Millisecond},
		{"busy: appends every 10 ms wait until they stop, then the busy quiet time", true, 3, 50 * time.Millisecond},
		{"busy: appends that never stop wait no longer than the bound", true, 100, 100 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Quiet: 2 * time.Millisecond, BusyQuiet: 20 * time.Millisecond, MaxGather: 100 * time.Millisecond}
			requireGatheredFor(t, cfg, c.busy, c.appends, 10*time.Millisecond, c.want)
		})
	}
}

// Given the positions a step read and the time since the step before,
// then the runner is busy above 500 events a second.
func TestARunnerIsBusyWhileTheLogGrowsFasterThan500EventsASecond(t *testing.T) {
	for _, c := range []struct {
		events int64
		since  time.Duration
		want   bool
	}{
		{0, time.Second, false},
		{10, 100 * time.Millisecond, false},  // a request now and then
		{500, time.Second, false},            // at the rate
		{60, 100 * time.Millisecond, true},   // 600 a second
		{1400, 100 * time.Millisecond, true}, // builtin requests under load
	} {
		if got := busyGrowth(c.events, c.since); got != c.want {
			t.Errorf("%d events in %v: busy = %v, want %v", c.events, c.since, got, c.want)
		}
	}
}
