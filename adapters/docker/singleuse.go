package docker

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/executor"
)

// SingleUseConfig configures single-use mode, which takes Warm.AgentPath
// too. Zero fields take the defaults named.
type SingleUseConfig struct {
	// MaxSpare bounds how many started containers one image (with one set
	// of limits) keeps waiting for runs (16). The number kept follows
	// demand up to it.
	MaxSpare int
	// IdleExpiry removes a spare container that waited this long for a
	// run, and the pool keeps one fewer (1m).
	IdleExpiry time.Duration
	// Starts bounds how many containers start at once, across images (4):
	// dockerd starts them, and more at once only queue there.
	Starts int
	// RefillHold holds back the start of a pool's replacement spares
	// while runs of the pool are in progress, for at most this long from
	// the first of them (250ms). A container start takes far more CPU
	// than a short run, and started at once it competes with the very run
	// that took the spare; a run that finds no spare never waits for it.
	RefillHold time.Duration
	// Now is the clock spares age by (time.Now); tests move it.
	Now func() time.Time
}

// SingleUsePoolStatus is one single-use pool as it stands.
type SingleUsePoolStatus struct {
	Image string
	// Target is how many spares the pool keeps; Spare how many wait now,
	// Starting how many are starting, Waiting how many runs wait, Running
	// how many runs hold one of its containers.
	Target, Spare, Starting, Waiting, Running int
}

// singleUsePools keeps, for each image and set of limits, containers
// started ahead of the runs that will use them: each serves one run, and
// is then removed. A background worker (refill) starts them, as many as
// runs wait for plus the pool's target of spares. The target follows
// demand: it grows by one whenever a run finds no spare, and shrinks by
// one whenever a spare waits IdleExpiry unused.
type singleUsePools struct {
	rt  *Runtime
	cfg SingleUseConfig

	mu       sync.Mutex
	pools    map[poolKey]*sparePool
	inUse    map[string]*warmContainer // taken by a run and not yet removed, by id
	starting int                       // starts in flight, across pools
	closed   bool
	// kick wakes the refill worker (it holds at most one wake-up).
	kick chan struct{}

	refillCtx  context.Context // the refill worker's, for its starts
	stopRefill context.CancelFunc
	refilling  sync.WaitGroup // the refill worker
	starts     sync.WaitGroup // container starts in flight
	removing   sync.WaitGroup // containers being removed
}

// sparePool is one image's (and limits') spares and the runs waiting.
type sparePool struct {
	key      poolKey
	spare    []spareContainer // oldest first
	starting int
	// waiting holds the runs that found no spare, first come first served:
	// each gets the next container started, or a failed start's error.
	waiting []chan startResult
	target  int
	// running counts the runs that took a container and whose command is
	// not over; busySince is when the first of them took it, for
	// RefillHold.
	running   int
	busySince time.Time
	// retryAt holds starts for the target back after a failed start; runs
	// that wait are not held back (each gets its start's error).
	retryAt time.Time
	retry   *backoff.ExponentialBackOff
	// executables are the commands the pool's runs exec'd lately, the
	// latest first: each new spare's agent reads them before it is ready,
	// so a run's first exec in its new container finds them cached.
	executables []string
}

// maxPrimed bounds how many executables a pool's spares read ahead.
const maxPrimed = 4

// noteExecutableLocked puts path first in p's executables.
func (p *sparePool) noteExecutableLocked(path string) {
	if path == "" || len(p.executables) > 0 && p.executables[0] == path {
		return
	}
	if i := slices.Index(p.executables, path); i >= 0 {
		p.executables = slices.Delete(p.executables, i, i+1)
	}
	p.executables = slices.Insert(p.executables, 0, path)
	p.executables = p.executables[:min(len(p.executables), maxPrimed)]
}

type spareContainer struct {
	c     *warmContainer
	since time.Time
}

type startResult struct {
	c   *warmContainer
	err error
}

func newSingleUsePools(rt *Runtime, cfg SingleUseConfig) *singleUsePools {
	if cfg.MaxSpare <= 0 {
		cfg.MaxSpare = 16
	}
	if cfg.IdleExpiry <= 0 {
		cfg.IdleExpiry = time.Minute
	}
	if cfg.Starts <= 0 {
		cfg.Starts = 4
	}
	if cfg.RefillHold <= 0 {
		cfg.RefillHold = 250 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	sp := &singleUsePools{rt: rt, cfg: cfg, pools: map[poolKey]*sparePool{}, inUse: map[string]*warmContainer{}, kick: make(chan struct{}, 1)}
	ctx, stop := context.WithCancel(context.Background())
	sp.refillCtx, sp.stopRefill = ctx, stop
	sp.refilling.Add(1)
	go sp.refill(ctx)
	return sp
}

// wake tells the refill worker to look again.
func (sp *singleUsePools) wake() {
	select {
	case sp.kick <- struct{}{}:
	default:
	}
}

// refill starts the containers the pools need and removes the spares that
// waited too long, until ctx ends (close). It sleeps until woken or until
// the next spare would expire or the next held-back start may go.
func (sp *singleUsePools) refill(ctx context.Context) {
	defer sp.refilling.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Reset(sp.tend(ctx))
		select {
		case <-ctx.Done():
			return
		case <-sp.kick:
		case <-timer.C:
		}
	}
}

// tend does what each pool needs now and says how long until something is
// due.
func (sp *singleUsePools) tend(ctx context.Context) time.Duration {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	now := sp.cfg.Now()
	next := time.Hour
	for key, p := range sp.pools {
		for len(p.spare) > 0 && now.Sub(p.spare[0].since) >= sp.cfg.IdleExpiry {
			sp.removeLater(p.spare[0].c)
			p.spare = p.spare[1:]
			p.target = max(p.target-1, 0)
		}
		if len(p.spare) > 0 {
			next = min(next, p.spare[0].since.Add(sp.cfg.IdleExpiry).Sub(now))
		}
		for sp.starting < sp.cfg.Starts && sp.needsStart(p, now) {
			p.starting++
			sp.starting++
			sp.starts.Add(1)
			go sp.start(ctx, p)
		}
		if p.retryAt.After(now) && p.target > len(p.spare)+p.starting {
			next = min(next, p.retryAt.Sub(now))
		}
		if until := sp.refillHeldUntil(p); until.After(now) && p.target > len(p.spare)+p.starting {
			next = min(next, until.Sub(now))
		}
		if p.target == 0 && len(p.spare) == 0 && p.starting == 0 && len(p.waiting) == 0 && p.running == 0 {
			delete(sp.pools, key)
		}
	}
	return max(next, time.Millisecond)
}

// needsStart says whether p needs one more container started: for a run
// that waits, or, unless starts are held back (after a failed start, or
// while the pool's runs are in progress), to reach its target.
func (sp *singleUsePools) needsStart(p *sparePool, now time.Time) bool {
	if len(p.waiting) > p.starting {
		return true
	}
	return len(p.spare)+p.starting-len(p.waiting) < p.target && !now.Before(p.retryAt) && !now.Before(sp.refillHeldUntil(p))
}

// refillHeldUntil is when p's spares may be started again while its runs
// are in progress (RefillHold); the zero time when none is.
func (sp *singleUsePools) refillHeldUntil(p *sparePool) time.Time {
	if p.running == 0 {
		return time.Time{}
	}
	return p.busySince.Add(sp.cfg.RefillHold)
}

// taken counts a run that took one of p's containers.
func (sp *singleUsePools) taken(p *sparePool) {
	if p.running == 0 {
		p.busySince = sp.cfg.Now()
	}
	p.running++
}

// done counts the end of a run that held one of key's containers (its
// command is over, or it never started), and wakes the refill worker: the
// starts held back for it may go.
func (sp *singleUsePools) done(key poolKey) {
	if p := sp.pools[key]; p != nil && p.running > 0 {
		p.running--
	}
	sp.wake()
}

// start starts one container for p and hands it to the first run waiting,
// or keeps it as a spare.
func (sp *singleUsePools) start(ctx context.Context, p *sparePool) {
	defer sp.starts.Done()
	sp.mu.Lock()
	prime := slices.Clone(p.executables)
	sp.mu.Unlock()
	c, err := sp.rt.startAgent(ctx, p.key, run.ModeSingleUse, prime)
	sp.mu.Lock()
	defer sp.mu.Unlock()
	p.starting--
	sp.starting--
	sp.wake()
	if err != nil {
		if ctx.Err() != nil {
			return // closing
		}
		wait := p.retry.NextBackOff()
		p.retryAt = sp.cfg.Now().Add(wait)
		sp.rt.cfg.Logger.Warn().Err(err).Str("image", p.key.image).Dur("retry_in", wait).Msg("a single-use container did not start")
		if len(p.waiting) > 0 {
			p.waiting[0] <- startResult{err: err}
			p.waiting = p.waiting[1:]
		}
		return
	}
	p.retry.Reset()
	p.retryAt = time.Time{}
	if sp.closed {
		sp.removeLater(c)
		return
	}
	if len(p.waiting) > 0 {
		sp.inUse[c.id] = c
		sp.taken(p)
		p.waiting[0] <- startResult{c: c}
		p.waiting = p.waiting[1:]
		return
	}
	p.spare = append(p.spare, spareContainer{c: c, since: sp.cfg.Now()})
}

func (sp *singleUsePools) poolLocked(key poolKey) *sparePool {
	p := sp.pools[key]
	if p == nil {
		retry := backoff.NewExponentialBackOff()
		retry.InitialInterval, retry.MaxInterval = 200*time.Millisecond, 30*time.Second
		p = &sparePool{key: key, retry: retry}
		sp.pools[key] = p
	}
	return p
}

// acquire takes the oldest spare, or waits for the next container started
// for key, for a run of argv; a run that has to wait raises the pool's
// target.
func (sp *singleUsePools) acquire(ctx context.Context, key poolKey, argv []string) (*warmContainer, error) {
	sp.mu.Lock()
	if sp.closed {
		sp.mu.Unlock()
		return nil, executor.Errorf(executor.ErrUnavailable, nil, "the single-use pools are closed")
	}
	p := sp.poolLocked(key)
	if len(argv) > 0 {
		p.noteExecutableLocked(argv[0])
	}
	for len(p.spare) > 0 {
		c := p.spare[0].c
		p.spare = p.spare[1:]
		if !alive(c) {
			sp.rt.cfg.Logger.Warn().Str("container_id", c.id).Str("image", key.image).Msg("a spare single-use container ended before a run took it; removed")
			sp.removeLater(c)
			continue
		}
		sp.inUse[c.id] = c
		sp.taken(p)
		sp.mu.Unlock()
		sp.wake() // for its replacement, once the hold allows
		return c, nil
	}
	p.target = min(p.target+1, sp.cfg.MaxSpare)
	got := make(chan startResult, 1)
	p.waiting = append(p.waiting, got)
	sp.mu.Unlock()
	sp.wake()
	select {
	case res := <-got:
		if res.err != nil {
			return nil, res.err
		}
		return res.c, nil
	case <-ctx.Done():
		sp.mu.Lock()
		defer sp.mu.Unlock()
		if i := slices.Index(p.waiting, got); i >= 0 {
			p.waiting = slices.Delete(p.waiting, i, i+1)
		} else if res := <-got; res.c != nil {
			// Handed over as the run gave up: unused, it is a spare again.
			sp.putBackLocked(key, res.c)
			sp.done(key)
		}
		return nil, executor.Errorf(executor.ErrUnavailable, ctx.Err(), "no single-use container for %s became free", key.image)
	}
}

// putBackLocked returns an unused container to its pool's spares.
func (sp *singleUsePools) putBackLocked(key poolKey, c *warmContainer) {
	delete(sp.inUse, c.id)
	if sp.closed {
		sp.removeLater(c)
		return
	}
	p := sp.poolLocked(key)
	p.spare = append(p.spare, spareContainer{c: c, since: sp.cfg.Now()})
}

// alive says whether c's agent still waits for its request: a spare's
// agent sends nothing until then, so anything read, or the end of its
// output, means it is gone (killed from outside, or its container died).
func alive(c *warmContainer) bool {
	select {
	case <-c.frames:
		return false
	default:
		return true
	}
}

// removeLater removes c in the background; close waits for it.
func (sp *singleUsePools) removeLater(c *warmContainer) {
	sp.removing.Add(1)
	go func() {
		defer sp.removing.Done()
		if err := sp.remove(context.Background(), c); err != nil {
			sp.rt.cfg.Logger.Warn().Err(err).Str("container_id", c.id).Msg("single-use container not removed")
		}
	}()
}

// remove removes c, gone already or not.
func (sp *singleUsePools) remove(ctx context.Context, c *warmContainer) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c.conn.Close()
	err := sp.rt.cfg.Engine.ContainerRemove(ctx, c.id, container.RemoveOptions{Force: true})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// release is a run's Release: its container goes.
func (sp *singleUsePools) release(c *warmContainer) func(context.Context) error {
	return func(ctx context.Context) error {
		sp.mu.Lock()
		delete(sp.inUse, c.id)
		sp.mu.Unlock()
		return sp.remove(ctx, c)
	}
}

// run forks one command in a container that serves it alone.
func (sp *singleUsePools) run(ctx context.Context, spec executor.Spec, digest string, sink executor.Sink) (executor.Outcome, error) {
	if err := agentUserAllowed(spec); err != nil {
		return executor.Outcome{}, err
	}
	key := keyFor(spec.Image, spec.Limits)
	c, err := sp.acquire(ctx, key, spec.Argv)
	if err != nil {
		return executor.Outcome{}, err
	}
	defer func() {
		sp.mu.Lock()
		sp.done(key)
		sp.mu.Unlock()
	}()
	// Stored before the command starts: the run given again after a
	// restart finds the container in its stream and is recorded lost,
	// never run twice (Executor.Execute); reconcile removes the container,
	// which still has a spare's name. Renaming it after its run, as this
	// did before, cost a dockerd call (about 4 ms) on every run's path.
	if err := sink.ContainerTaken(c.id, digest); err != nil {
		// Removed, not put back: the failed append may still have landed,
		// and a container is never named by two runs' streams.
		sp.mu.Lock()
		delete(sp.inUse, c.id)
		sp.removeLater(c)
		sp.mu.Unlock()
		return executor.Outcome{}, executor.Errorf(executor.ErrUnavailable, err, "cannot record single-use container %.12s taken for run %s", c.id, spec.RunID)
	}
	out, _, err := sp.rt.invokeAgent(ctx, c, spec, sink)
	out.ContainerID, out.Release = c.id, sp.release(c)
	return out, err
}

// close stops the refill worker, lets the starts in flight end, and
// removes every container the pools hold: spares, and those of runs not
// yet released (the executor stops before the runtime closes, so none
// should be running).
func (sp *singleUsePools) close(ctx context.Context) error {
	sp.mu.Lock()
	if sp.closed {
		sp.mu.Unlock()
		return nil
	}
	sp.closed = true
	for _, p := range sp.pools {
		for _, got := range p.waiting {
			got <- startResult{err: executor.Errorf(executor.ErrUnavailable, nil, "the single-use pools are closed")}
		}
		p.waiting = nil
		for _, s := range p.spare {
			sp.removeLater(s.c)
		}
		p.spare = nil
	}
	for id, c := range sp.inUse {
		sp.removeLater(c)
		delete(sp.inUse, id)
	}
	sp.mu.Unlock()
	sp.stopRefill()
	done := make(chan struct{})
	go func() {
		sp.refilling.Wait()
		sp.starts.Wait() // a start that ends now removes its container itself
		sp.removing.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WarmPoolStatus is one warm pool: its image, the containers started
// (Live, idle or busy) and those idle now.
type WarmPoolStatus struct {
	Image      string
	Live, Idle int
}

// WarmStatus reports each warm pool.
func (r *Runtime) WarmStatus() []WarmPoolStatus {
	wp := r.warm
	wp.mu.Lock()
	defer wp.mu.Unlock()
	out := make([]WarmPoolStatus, 0, len(wp.pools))
	for key, p := range wp.pools {
		out = append(out, WarmPoolStatus{Image: key.image, Live: p.live, Idle: len(p.idle)})
	}
	return out
}

// SingleUseStatus reports each single-use pool.
func (r *Runtime) SingleUseStatus() []SingleUsePoolStatus {
	sp := r.single
	sp.mu.Lock()
	defer sp.mu.Unlock()
	out := make([]SingleUsePoolStatus, 0, len(sp.pools))
	for key, p := range sp.pools {
		out = append(out, SingleUsePoolStatus{Image: key.image, Target: p.target, Spare: len(p.spare), Starting: p.starting, Waiting: len(p.waiting), Running: p.running})
	}
	return out
}

// agentUserAllowed refuses a run an agent cannot start: the agent runs as
// root, and a command with its uid could reach it (and, in a warm
// container, through it the runs after its own).
func agentUserAllowed(spec executor.Spec) error {
	switch {
	case spec.User == nil:
		return executor.Errorf(executor.ErrInvalidSpec, nil, "this run names no user (it was requested before runs did), so it would run as the image's user, root, which a %s container's agent is: run it fresh", spec.Mode)
	case spec.User.UID == 0:
		return executor.Errorf(executor.ErrInvalidSpec, nil, "a %s command cannot run as uid 0 (root), the user of the %s container's agent: it must run fresh (execution mode: fresh) or as another user", spec.Mode, spec.Mode)
	}
	return nil
}

// PoolContainers counts the containers the warm and single-use pools hold
// (started or starting, idle or busy), for an executor's heartbeat.
func (r *Runtime) PoolContainers() int {
	n := 0
	r.warm.mu.Lock()
	for _, p := range r.warm.pools {
		n += p.live
	}
	r.warm.mu.Unlock()
	for _, s := range r.SingleUseStatus() {
		n += s.Spare + s.Starting
	}
	return n
}
