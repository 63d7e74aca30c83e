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
			synctest.Test(t, func(t *testing.T) {
				src := newWakes()
				r := &Runner{src: src, cfg: Config{Quiet: 2 * time.Millisecond, MaxGather: 25 * time.Millisecond}}
				go func() {
					for range c.appends {
						time.Sleep(time.Millisecond)
						src.append()
					}
				}()
				start := time.Now()
				if !r.gather(context.Background()) {
					t.Fatal("gather ended as if stopped")
				}
				if got := time.Since(start); got != c.want {
					t.Fatalf("gathered for %v, want %v", got, c.want)
				}
				time.Sleep(time.Second) // let the appender finish inside the bubble
			})
		})
	}
}
