// Package supervisor runs the long-running parts of the server under one
// owner: each part is started in order, restarted with backoff when it
// fails, reported to /readyz as it is, and stopped in reverse order with a
// deadline each.
//
// Why not a library: thejerf/suture restarts and stops services, but stops
// them all at once in no order, and keeps no per-part state a readiness
// check can read; the server needs both (HTTP must stop before the
// dispatcher, the dispatcher before the executor and the store). The
// restart delays come from cenkalti/backoff, as watermill's retries do.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"
)

// Part is one long-running piece of the server.
type Part struct {
	Name string
	// Run does the part's work until ctx ends, then returns nil. An error
	// is a failure: the part is restarted after a backoff, unless the
	// error is Permanent. A nil return before ctx ends is a failure too:
	// a part is meant to run until it is stopped.
	Run func(ctx context.Context) error
	// Essential parts decide readiness: the server is not ready while one
	// of them is not running.
	Essential bool
	// ReportsReady says Run calls Ready(ctx) once it serves (caught up,
	// connected); until then the part is starting. Other parts are
	// running as soon as Run is called.
	ReportsReady bool
	// StopTimeout bounds how long Stop waits for Run to return (10s).
	StopTimeout time.Duration
	// Stop, when set, is called to stop the part instead of (before)
	// cancelling its context: for servers that shut down gracefully
	// (http.Server.Shutdown) given a deadline.
	Stop func(ctx context.Context) error
	// StopFirst parts stop before every other part: the front door (HTTP)
	// starts first, so /healthz answers while the database is down, and
	// stops first, so no request reaches a part that is stopping.
	StopFirst bool
}

// State is where a part is.
type State string

const (
	Starting   State = "starting"   // Run called, not ready yet
	Running    State = "running"    // serving
	Degraded   State = "degraded"   // running, but reported it cannot serve now (Unready)
	Restarting State = "restarting" // failed; waiting out its backoff
	Stopped    State = "stopped"    // stopped by Stop
	Failed     State = "failed"     // failed permanently; the process stops
)

// Status is a part's state as /readyz shows it.
type Status struct {
	Name      string    `json:"name"`
	State     State     `json:"state"`
	Essential bool      `json:"essential"`
	Restarts  int       `json:"restarts"`
	LastError string    `json:"last_error,omitempty"`
	Since     time.Time `json:"since"`
}

// permanentError marks an error a restart cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one a restart cannot fix (a bad configuration, a
// schema this build cannot use): the part fails and the process stops.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent says whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// Config tunes a Supervisor. Zero fields take the defaults named.
type Config struct {
	Logger zerolog.Logger
	// NewBackOff gives each part its restart delays (exponential from
	// 200ms to 30s, with jitter, never giving up). A part that reaches
	// Running again starts its backoff over.
	NewBackOff func() backoff.BackOff
	// Now is the clock for Status.Since (time.Now).
	Now func() time.Time
}

// Supervisor owns the parts.
type Supervisor struct {
	cfg Config

	mu       sync.Mutex
	parts    []*partRun // in start order
	stopping bool
	changed  chan struct{} // closed and replaced at every state change
	fatal    chan error    // the first permanent failure
}

type partRun struct {
	part   Part
	cancel context.CancelFunc
	done   chan struct{} // closed when the part's goroutine ends
	// stopping is set before Stop asks the part to stop, so a Run that
	// returns because of it is not taken for a failure.
	stopping atomic.Bool

	// guarded by the supervisor's mu
	state    State
	restarts int
	lastErr  string
	since    time.Time
}

// New returns a supervisor with no parts.
func New(cfg Config) *Supervisor {
	if cfg.NewBackOff == nil {
		cfg.NewBackOff = func() backoff.BackOff {
			b := backoff.NewExponentialBackOff()
			b.InitialInterval = 200 * time.Millisecond
			b.MaxInterval = 30 * time.Second
			return b
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Supervisor{cfg: cfg, changed: make(chan struct{}), fatal: make(chan error, 1)}
}

type partKey struct{}

// healthyRun is how long a part that does not report readiness must run
// before a failure starts its backoff over.
const healthyRun = 30 * time.Second

// Ready marks the part whose Run received ctx as serving. Parts with
// ReportsReady call it once they have caught up or connected, and again
// after Unready once they serve again.
func Ready(ctx context.Context) { report(ctx, Running, nil) }

// Unready marks the part whose Run received ctx as unable to serve for
// now (a lost connection it is retrying itself): the server is not ready
// while an essential part is degraded.
func Unready(ctx context.Context, err error) { report(ctx, Degraded, err) }

func report(ctx context.Context, state State, err error) {
	h, ok := ctx.Value(partKey{}).(*handle)
	if !ok {
		return
	}
	h.s.set(h.p, state, err, false)
	if state == Running {
		h.resetBackoff()
	}
}

type handle struct {
	s            *Supervisor
	p            *partRun
	resetBackoff func()
}

// Start starts part now; parts stop in the reverse of the order they
// were started. It panics on a part with no name or Run, or a name
// already started: both are programming errors.
func (s *Supervisor) Start(ctx context.Context, part Part) {
	if part.Name == "" || part.Run == nil {
		panic("supervisor: a part needs a Name and a Run")
	}
	if part.StopTimeout <= 0 {
		part.StopTimeout = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &partRun{part: part, cancel: cancel, done: make(chan struct{}), state: Starting, since: s.cfg.Now()}
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		cancel()
		return
	}
	for _, other := range s.parts {
		if other.part.Name == part.Name {
			s.mu.Unlock()
			panic("supervisor: part " + part.Name + " started twice")
		}
	}
	s.parts = append(s.parts, p)
	s.broadcastLocked()
	s.mu.Unlock()
	go s.supervise(ctx, p)
}

func (s *Supervisor) supervise(ctx context.Context, p *partRun) {
	defer close(p.done)
	log := s.cfg.Logger.With().Str("part", p.part.Name).Logger()
	b := s.cfg.NewBackOff()
	var bmu sync.Mutex
	h := &handle{s: s, p: p, resetBackoff: func() { bmu.Lock(); b.Reset(); bmu.Unlock() }}
	runCtx := context.WithValue(ctx, partKey{}, h)
	for {
		if !p.part.ReportsReady {
			s.set(p, Running, nil, false)
		}
		started := time.Now()
		err := runPart(runCtx, p.part.Run)
		if !p.part.ReportsReady && time.Since(started) >= healthyRun {
			h.resetBackoff() // it ran well for a while: a new failure starts over
		}
		if ctx.Err() != nil || p.stopping.Load() {
			s.set(p, Stopped, nil, false)
			return
		}
		if err == nil {
			err = errors.New("returned before it was stopped")
		}
		if IsPermanent(err) {
			log.Error().Err(err).Msg("a part failed and cannot be restarted; stopping the server")
			s.set(p, Failed, err, false)
			select {
			case s.fatal <- fmt.Errorf("%s: %w", p.part.Name, err):
			default:
			}
			return
		}
		bmu.Lock()
		delay := b.NextBackOff()
		bmu.Unlock()
		if delay == backoff.Stop {
			delay = 30 * time.Second
		}
		restarts := s.set(p, Restarting, err, true)
		log.Warn().Err(err).Int("restarts", restarts).Dur("restart_in", delay).Msg("a part failed; restarting it")
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			s.set(p, Stopped, nil, false)
			return
		case <-t.C:
		}
		s.set(p, Starting, nil, false)
	}
}

// runPart calls run, turning a panic into an error so one part's bug
// restarts that part instead of ending the process.
func runPart(ctx context.Context, run func(context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return run(ctx)
}

func (s *Supervisor) set(p *partRun, state State, err error, restarted bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.state == Stopped || p.state == Failed {
		return p.restarts // final
	}
	if restarted {
		p.restarts++
	}
	if err != nil {
		p.lastErr = err.Error()
	}
	if p.state != state {
		p.state = state
		p.since = s.cfg.Now()
		s.broadcastLocked()
	}
	return p.restarts
}

func (s *Supervisor) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Status lists every part in start order.
func (s *Supervisor) Status() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, len(s.parts))
	for i, p := range s.parts {
		out[i] = Status{Name: p.part.Name, State: p.state, Essential: p.part.Essential, Restarts: p.restarts, LastError: p.lastErr, Since: p.since}
	}
	return out
}

// Ready reports whether every essential part is running, with the
// statuses it decided on.
func (s *Supervisor) Ready() (bool, []Status) {
	statuses := s.Status()
	for _, st := range statuses {
		if st.Essential && st.State != Running {
			return false, statuses
		}
	}
	return true, statuses
}

// Changed returns a channel closed at the next change of any part's state:
// tests wait on it instead of polling.
func (s *Supervisor) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Fatal delivers the first permanent failure: the caller stops the
// process with a non-zero exit.
func (s *Supervisor) Fatal() <-chan error { return s.fatal }

// Stop stops every part in the reverse of its start order (StopFirst
// parts before all others), waiting for each up to its StopTimeout (and no
// longer than ctx), and reports the parts that did not stop in time.
// Parts started after Stop are not run.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopping = true
	parts := slices.Clone(s.parts)
	s.mu.Unlock()
	slices.Reverse(parts)
	slices.SortStableFunc(parts, func(a, b *partRun) int {
		switch {
		case a.part.StopFirst == b.part.StopFirst:
			return 0
		case a.part.StopFirst:
			return -1
		}
		return 1
	})
	var errs []error
	for _, p := range parts {
		stopCtx, cancel := context.WithTimeout(ctx, p.part.StopTimeout)
		p.stopping.Store(true)
		if p.part.Stop != nil {
			if err := p.part.Stop(stopCtx); err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("%s: %w", p.part.Name, err))
			}
		}
		p.cancel()
		select {
		case <-p.done:
		case <-stopCtx.Done():
			errs = append(errs, fmt.Errorf("%s did not stop within %v", p.part.Name, p.part.StopTimeout))
			s.cfg.Logger.Error().Str("part", p.part.Name).Dur("timeout", p.part.StopTimeout).Msg("a part did not stop in time; leaving it")
		}
		cancel()
	}
	return errors.Join(errs...)
}
