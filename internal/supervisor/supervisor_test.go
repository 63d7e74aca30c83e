package supervisor_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/internal/supervisor"
)

func newSupervisor(t *testing.T) *supervisor.Supervisor {
	return supervisor.New(supervisor.Config{
		Logger: zerolog.New(zerolog.NewTestWriter(t)),
		// Fixed delays doubling from 1s, without jitter, so the test can
		// say when each restart happens.
		NewBackOff: func() backoff.BackOff {
			b := backoff.NewExponentialBackOff()
			b.InitialInterval, b.RandomizationFactor, b.Multiplier, b.MaxInterval = time.Second, 0, 2, 8*time.Second
			return b
		},
	})
}

func statusOf(s *supervisor.Supervisor, name string) supervisor.Status {
	for _, st := range s.Status() {
		if st.Name == name {
			return st
		}
	}
	return supervisor.Status{}
}

// Given a part that fails, when time passes, then it is restarted after
// 1s, 2s, 4s, each restart counted, and once it reports ready its backoff
// starts over.
func TestAFailingPartIsRestartedWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSupervisor(t)
		var mu sync.Mutex
		var starts []time.Duration
		begin := time.Now()
		healthy := make(chan struct{})
		s.Start(t.Context(), supervisor.Part{Name: "feed", Essential: true, ReportsReady: true, Run: func(ctx context.Context) error {
			mu.Lock()
			starts = append(starts, time.Since(begin))
			n := len(starts)
			mu.Unlock()
			if n <= 3 {
				return errors.New("connection refused")
			}
			supervisor.Ready(ctx)
			if n == 4 {
				select {
				case <-healthy:
					return errors.New("connection reset")
				case <-ctx.Done():
				}
			}
			<-ctx.Done()
			return nil
		}})
		synctest.Wait()
		if st := statusOf(s, "feed"); st.State != supervisor.Restarting || st.Restarts != 1 || st.LastError != "connection refused" {
			t.Fatalf("after the first failure: %+v", st)
		}
		if ready, _ := s.Ready(); ready {
			t.Fatal("ready while an essential part restarts")
		}
		time.Sleep(7*time.Second + time.Millisecond) // 1 + 2 + 4
		synctest.Wait()
		if st := statusOf(s, "feed"); st.State != supervisor.Running || st.Restarts != 3 {
			t.Fatalf("after three failures: %+v", st)
		}
		if ready, _ := s.Ready(); !ready {
			t.Fatal("not ready once the part reported ready")
		}
		mu.Lock()
		want := []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second}
		for i, at := range starts {
			if at != want[i] {
				t.Errorf("start %d at %v, want %v", i, at, want[i])
			}
		}
		mu.Unlock()
		// Ready reset the backoff: the next failure waits 1s, not 8s.
		close(healthy)
		synctest.Wait()
		time.Sleep(time.Second + time.Millisecond)
		synctest.Wait()
		mu.Lock()
		if n := len(starts); n != 5 || starts[4] != 8*time.Second+time.Millisecond {
			t.Errorf("starts = %v, want a fifth at 8.001s (1s after the failure at 7.001s)", starts)
		}
		mu.Unlock()
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// Given a part that panics, then it is restarted like a failure, and the
// panic is its last error.
func TestAPanickingPartIsRestarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSupervisor(t)
		calls := 0
		s.Start(t.Context(), supervisor.Part{Name: "p", Run: func(ctx context.Context) error {
			calls++
			if calls == 1 {
				panic("nil map")
			}
			<-ctx.Done()
			return nil
		}})
		synctest.Wait()
		if st := statusOf(s, "p"); st.State != supervisor.Restarting || !strings.Contains(st.LastError, "panic: nil map") {
			t.Fatalf("status = %+v", st)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if st := statusOf(s, "p"); st.State != supervisor.Running || calls != 2 {
			t.Fatalf("status = %+v after %d calls", st, calls)
		}
		_ = s.Stop(context.Background())
	})
}

// Given a part failing with a Permanent error, then it is not restarted
// and Fatal says why, so the process can exit non-zero.
func TestAPermanentFailureStopsTheServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSupervisor(t)
		calls := 0
		s.Start(t.Context(), supervisor.Part{Name: "migrations", Run: func(context.Context) error {
			calls++
			return supervisor.Permanent(errors.New("the database schema is version 9; this build knows 5"))
		}})
		err := <-s.Fatal()
		if err == nil || !strings.Contains(err.Error(), "migrations: the database schema is version 9") || !supervisor.IsPermanent(err) {
			t.Fatalf("fatal = %v", err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if st := statusOf(s, "migrations"); st.State != supervisor.Failed || calls != 1 {
			t.Fatalf("status = %+v after %d calls, want failed once", st, calls)
		}
		_ = s.Stop(context.Background())
	})
}

// A part returning nil before it was stopped has stopped doing its work:
// it is restarted.
func TestAPartReturningEarlyIsRestarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSupervisor(t)
		calls := 0
		s.Start(t.Context(), supervisor.Part{Name: "p", Run: func(ctx context.Context) error {
			calls++
			if calls == 1 {
				return nil
			}
			<-ctx.Done()
			return nil
		}})
		synctest.Wait()
		if st := statusOf(s, "p"); st.State != supervisor.Restarting || st.LastError != "returned before it was stopped" {
			t.Fatalf("status = %+v", st)
		}
		_ = s.Stop(context.Background())
	})
}

// Given three parts, when the supervisor stops, then the front door
// (StopFirst, started first) stops first and the others in the reverse
// of their start order, each after the one before has returned; a part
// that ignores its context is left after its timeout and named.
func TestPartsStopInReverseOrderWithADeadlineEach(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSupervisor(t)
		var mu sync.Mutex
		var order []string
		stuck := make(chan struct{})
		part := func(name string, ignoresStop bool) supervisor.Part {
			return supervisor.Part{Name: name, StopTimeout: 5 * time.Second, Run: func(ctx context.Context) error {
				<-ctx.Done()
				if ignoresStop {
					<-stuck
				}
				time.Sleep(100 * time.Millisecond) // a part takes a moment to wind down
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
				return nil
			}}
		}
		front := part("http", false)
		front.StopFirst = true
		s.Start(t.Context(), front)
		s.Start(t.Context(), part("store", false))
		s.Start(t.Context(), part("dispatcher", true))
		synctest.Wait()
		begin := time.Now()
		err := s.Stop(context.Background())
		if err == nil || !strings.Contains(err.Error(), "dispatcher did not stop within 5s") {
			t.Fatalf("stop = %v, want the dispatcher named", err)
		}
		if took := time.Since(begin); took != 5*time.Second+200*time.Millisecond {
			t.Errorf("stop took %v, want 5.2s (http's 0.1s, the dispatcher's 5s timeout, the store's 0.1s)", took)
		}
		mu.Lock()
		if got := strings.Join(order, " "); got != "http store" {
			t.Errorf("stopped %q, want http then store (the dispatcher never stopped)", got)
		}
		mu.Unlock()
		for _, st := range s.Status() {
			if want := supervisor.Stopped; st.Name != "dispatcher" && st.State != want {
				t.Errorf("%s is %s after stop", st.Name, st.State)
			}
		}
		close(stuck)
		time.Sleep(time.Second) // let the stuck part wind down inside the bubble
	})
}

// A part with a Stop function is asked to stop gracefully first.
func TestAPartsOwnStopIsCalledBeforeItsContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSupervisor(t)
		graceful := make(chan struct{})
		var sawGraceful bool
		s.Start(t.Context(), supervisor.Part{Name: "http",
			Run: func(ctx context.Context) error {
				select {
				case <-graceful:
					sawGraceful = true
				case <-ctx.Done():
				}
				return nil
			},
			Stop: func(context.Context) error { close(graceful); return nil },
		})
		synctest.Wait()
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !sawGraceful {
			t.Fatal("the part's own Stop did not reach it before its context ended")
		}
		// Returning because it was asked to stop is no failure.
		if st := statusOf(s, "http"); st.State != supervisor.Stopped || st.Restarts != 0 {
			t.Fatalf("after a graceful stop: %+v, want stopped with no restart", st)
		}
	})
}

// Readiness follows the essential parts only: a degraded non-essential
// part (a chat provider reconnecting) leaves the server ready.
func TestReadinessFollowsTheEssentialParts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSupervisor(t)
		lose := make(chan error)
		run := func(ctx context.Context) error {
			supervisor.Ready(ctx)
			for {
				select {
				case err := <-lose:
					supervisor.Unready(ctx, err)
				case <-ctx.Done():
					return nil
				}
			}
		}
		s.Start(t.Context(), supervisor.Part{Name: "views", Essential: true, ReportsReady: true, Run: run})
		s.Start(t.Context(), supervisor.Part{Name: "irc", ReportsReady: true, Run: func(ctx context.Context) error {
			supervisor.Unready(ctx, errors.New("irc.example: connection refused"))
			<-ctx.Done()
			return nil
		}})
		synctest.Wait()
		if ready, statuses := s.Ready(); !ready {
			t.Fatalf("not ready with only irc degraded: %+v", statuses)
		}
		lose <- errors.New("database connection lost")
		synctest.Wait()
		ready, statuses := s.Ready()
		if ready || statuses[0].State != supervisor.Degraded || statuses[0].LastError != "database connection lost" {
			t.Fatalf("ready = %v with the views degraded: %+v", ready, statuses)
		}
		_ = s.Stop(context.Background())
	})
}

// Parts started once stopping began are never run.
func TestNothingStartsAfterStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSupervisor(t)
		_ = s.Stop(context.Background())
		ran := false
		s.Start(t.Context(), supervisor.Part{Name: "late", Run: func(context.Context) error { ran = true; return nil }})
		synctest.Wait()
		if ran || len(s.Status()) != 0 {
			t.Fatalf("a part started after Stop ran (%v) or was listed: %+v", ran, s.Status())
		}
	})
}
