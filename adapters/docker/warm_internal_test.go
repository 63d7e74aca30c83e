package docker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
)

// fakeStarts stands in for Docker in tests of the warm pool's policy: a
// start takes startTime, and each start (as it begins) and removal is
// counted.
type fakeStarts struct {
	startTime time.Duration

	mu      sync.Mutex
	started int
	removed int
}

func (f *fakeStarts) start(ctx context.Context, _ poolKey) (*warmContainer, error) {
	f.mu.Lock()
	f.started++
	id := fmt.Sprintf("started-%d", f.started)
	f.mu.Unlock()
	select {
	case <-time.After(f.startTime):
		return &warmContainer{id: id}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *fakeStarts) remove(*warmContainer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed++
}

func (f *fakeStarts) counts() (started, removed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started, f.removed
}

var testPoolKey = poolKey{image: "example/bundle:1"}

// newTestPools returns warm pools whose containers come from starts, with
// one idle container, "prewarmed", in testPoolKey's pool.
func newTestPools(t *testing.T, cfg WarmConfig, starts *fakeStarts) *warmPools {
	t.Helper()
	rt := &Runtime{cfg: Config{Logger: zerolog.Nop()}}
	wp := newWarmPools(rt, cfg)
	rt.warm = wp
	wp.startContainer, wp.removeContainer = starts.start, starts.remove
	wp.mu.Lock()
	wp.poolLocked(testPoolKey).live = 1
	wp.mu.Unlock()
	wp.release(testPoolKey, &warmContainer{id: "prewarmed"}, true)
	t.Cleanup(func() {
		if err := wp.close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return wp
}

// runFor takes a container, holds it for d as a run would, and returns it.
func runFor(t *testing.T, wp *warmPools, d time.Duration) {
	t.Helper()
	c, err := wp.acquire(context.Background(), testPoolKey)
	if err != nil {
		t.Error(err)
		return
	}
	time.Sleep(d)
	c.invocations++
	wp.release(testPoolKey, c, true)
}

// took is what a run got from acquire, and after how long.
type took struct {
	id   string
	wait time.Duration
}

// acquireTimed has a run take a container in the background; got says
// which, and after how long.
func acquireTimed(t *testing.T, wp *warmPools, got chan<- took) {
	go func() {
		start := time.Now()
		c, err := wp.acquire(context.Background(), testPoolKey)
		if err != nil {
			t.Error(err)
			return
		}
		got <- took{c.id, time.Since(start)}
	}()
}

// pooledWithHistory returns pools of one prewarmed container, with room
// for four, that ten runs have held for 10 ms each.
func pooledWithHistory(t *testing.T, starts *fakeStarts) *warmPools {
	t.Helper()
	wp := newTestPools(t, WarmConfig{PoolSize: 4}, starts)
	for range 10 {
		runFor(t, wp, 10*time.Millisecond)
	}
	return wp
}

// arriveWhileHeld has a run hold the pool's container for hold, and another
// arrive after; it returns what the second got, once the first is done.
func arriveWhileHeld(t *testing.T, wp *warmPools, hold, after time.Duration) took {
	var running sync.WaitGroup
	defer running.Wait()
	running.Go(func() { runFor(t, wp, hold) })
	synctest.Wait()
	time.Sleep(after)
	second := make(chan took, 1)
	acquireTimed(t, wp, second)
	return <-second
}

// Given a pool of one container whose runs have held it about 10 ms, when a
// second run arrives while a run holds it for 15 ms, then the second run
// takes that container as it frees up, and no container is started.
func TestAWarmRunWaitsForABusyContainerThatFreesUpInTheUsualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		starts := &fakeStarts{startTime: 300 * time.Millisecond}
		wp := pooledWithHistory(t, starts)

		got := arriveWhileHeld(t, wp, 15*time.Millisecond, time.Millisecond)

		if got.id != "prewarmed" || got.wait != 14*time.Millisecond {
			t.Errorf("the second run got %q after %v, want the busy container after 14ms", got.id, got.wait)
		}
		if started, _ := starts.counts(); started != 0 {
			t.Errorf("%d containers started, want none", started)
		}
	})
}

// Given a pool of one container whose runs have held it about 10 ms, when a
// run holds it for a second and another arrives, then once the second has
// waited twice the usual hold, a container is started for it, and it
// takes the new container when that is up.
func TestAWarmRunThatWaitsLongerThanRunsUsuallyHoldAContainerGetsOneStarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		starts := &fakeStarts{startTime: 300 * time.Millisecond}
		wp := pooledWithHistory(t, starts)

		got := arriveWhileHeld(t, wp, time.Second, 0)

		if want := 2*10*time.Millisecond + starts.startTime; got.id != "started-1" || got.wait != want {
			t.Errorf("the second run got %q after %v, want the new container after %v", got.id, got.wait, want)
		}
		if started, _ := starts.counts(); started != 1 {
			t.Errorf("%d containers started, want 1", started)
		}
	})
}

// Given a pool of one busy container with room for three, when five runs
// wait longer than the pool's patience, then two containers are started,
// not five: the pool stops at its size, and the other runs wait.
func TestWaitingWarmRunsGrowThePoolOnlyToItsSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		starts := &fakeStarts{startTime: 300 * time.Millisecond}
		wp := newTestPools(t, WarmConfig{PoolSize: 3}, starts)

		var running sync.WaitGroup
		defer running.Wait()
		running.Go(func() { runFor(t, wp, 10*time.Second) })
		synctest.Wait()
		waiting := make(chan took, 5)
		for range 5 {
			acquireTimed(t, wp, waiting)
		}
		time.Sleep(firstPatience + starts.startTime + time.Millisecond)
		synctest.Wait()

		if started, _ := starts.counts(); started != 2 {
			t.Errorf("%d containers started, want 2 (a pool of 3 with one busy)", started)
		}
		if st := wp.rt.WarmStatus(); len(st) != 1 || st[0].Live != 3 {
			t.Errorf("pools %+v, want one of 3 containers", st)
		}
		// The runs that got the new containers return them, and the rest
		// take them in turn.
		for range 5 {
			select {
			case got := <-waiting:
				running.Go(func() {
					time.Sleep(time.Millisecond)
					wp.release(testPoolKey, &warmContainer{id: got.id, takenAt: time.Now()}, true)
				})
			case <-time.After(5 * time.Second):
				t.Fatal("a waiting run never got a container")
			}
		}
		if started, _ := starts.counts(); started != 2 {
			t.Errorf("%d containers started in all, want 2", started)
		}
	})
}

// A run waits for a busy container twice as long as runs have lately held
// one, within bounds, and a while before any run has.
func TestAWarmRunsPatienceFollowsHowLongRunsHoldAContainer(t *testing.T) {
	for _, tt := range []struct {
		held time.Duration
		want time.Duration
	}{
		{0, firstPatience},
		{time.Millisecond, minPatience},
		{40 * time.Millisecond, 80 * time.Millisecond},
		{10 * time.Second, maxPatience},
	} {
		p := &pool{held: tt.held}
		if got := p.patience(); got != tt.want {
			t.Errorf("held %v: patience %v, want %v", tt.held, got, tt.want)
		}
	}
	p := &pool{}
	p.noteHeld(80 * time.Millisecond)
	p.noteHeld(0)
	if p.held != 70*time.Millisecond {
		t.Errorf("after holds of 80ms then 0: held %v, want the average moved an eighth of the way, 70ms", p.held)
	}
}
