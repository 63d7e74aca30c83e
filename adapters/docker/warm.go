package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/docker/agentproto"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/executor"
)

// WarmConfig configures warm mode. Zero fields take the defaults named.
type WarmConfig struct {
	// AgentPath is the static logbook-agent binary, mounted read-only
	// into each warm and single-use container as AgentMount says.
	// Required for warm runs; FindAgent locates it.
	AgentPath string
	// AgentMount is AgentBind (AgentPath is a path on the Docker host,
	// bind-mounted: the default) or AgentVolume (the agent is copied into
	// a volume of this runtime's, mounted: for a runtime in a container
	// or against a remote daemon, whose AgentPath the Docker host has
	// not). DefaultAgentMount chooses.
	AgentMount string
	// PoolSize is how many containers one image (with one set of limits)
	// may keep started (8). The pool grows toward it while runs wait: a
	// run that has waited for a busy container longer than runs have
	// lately held one (twice that, see patience) gets a container started
	// in the background, and takes whichever comes first, a busy
	// container freeing up or the new one. It shrinks as containers stay
	// idle for IdleExpiry.
	PoolSize int
	// Prewarm is how many containers Runtime.Prewarm starts for an image
	// (2, at most PoolSize).
	Prewarm int
	// IdleExpiry removes a container idle this long (5m).
	IdleExpiry time.Duration
	// MaxInvocations recycles a container after this many runs (1,000).
	// The agent proves the container clean after every run (processes,
	// writable paths, IPC objects), so recycling is a backstop for what
	// that cannot see; each recycle costs a container's removal and, under
	// load, a start, hundreds of ms of the machine's CPU taken from the
	// runs in flight.
	MaxInvocations int
}

// agentTarget is where the agent is mounted inside a warm container.
const agentTarget = "/.logbook/agent"

// FindAgent locates logbook-agent: $LOGBOOK_AGENT_PATH, else next to the
// running executable.
func FindAgent() (string, error) {
	if p := os.Getenv("LOGBOOK_AGENT_PATH"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("LOGBOOK_AGENT_PATH=%s: %w", p, err)
		}
		return p, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	p := filepath.Join(filepath.Dir(self), "logbook-agent")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("logbook-agent is not next to %s and LOGBOOK_AGENT_PATH is unset: %w", self, err)
	}
	return p, nil
}

// poolKey groups containers that can serve the same runs: container-wide
// limits are fixed when a container starts.
type poolKey struct {
	image              string
	memory, cpus, pids int64
}

type pool struct {
	idle     []*warmContainer // most recently used last
	live     int              // started or starting, idle or busy
	starting int              // started in the background for waiting runs
	// impatient counts the runs that have waited longer than patience:
	// the pool starts a container for each of them, up to PoolSize.
	impatient int
	// held is how long runs have lately kept a container, from taking it
	// to its return after the agent's clean-up (a moving average).
	held time.Duration
	// failedAt is when a start in the background last failed: the pool
	// does not grow again for growBackoff, its runs wait for busy ones.
	failedAt time.Time
}

// growBackoff is how long a pool whose background start failed waits
// before it tries to grow again.
const growBackoff = time.Second

// How long a run waits for a busy container before the pool grows for it:
// twice the time runs have lately held a container, within these bounds,
// and firstPatience before any run has returned one.
const (
	minPatience   = 5 * time.Millisecond
	maxPatience   = 250 * time.Millisecond
	firstPatience = 50 * time.Millisecond
)

// patience is how long a run waits for one of p's busy containers before a
// container is started for it. A container start costs the machine far
// more than a warm run (here 200 ms to a second of CPU against 20 to 30
// ms), and it slows the runs in flight, so the pool grows only for runs
// that waited longer than a busy container usually takes to free up.
func (p *pool) patience() time.Duration {
	if p.held == 0 {
		return firstPatience
	}
	return min(max(2*p.held, minPatience), maxPatience)
}

// noteHeld folds one run's hold of a container into p.held.
func (p *pool) noteHeld(d time.Duration) {
	if p.held == 0 {
		p.held = d
		return
	}
	p.held += (d - p.held) / 8
}

type warmPools struct {
	rt  *Runtime
	cfg WarmConfig

	mu     sync.Mutex
	pools  map[poolKey]*pool
	wake   chan struct{} // closed and replaced whenever a container frees up
	closed bool
	stop   chan struct{}
	// startContainer and removeContainer are start and remove; tests of
	// the pool's policy replace them.
	startContainer  func(ctx context.Context, key poolKey) (*warmContainer, error)
	removeContainer func(c *warmContainer)

	janitor  sync.WaitGroup
	growing  sync.WaitGroup // containers started in the background
	settling sync.WaitGroup // containers whose agents are cleaning up after a run
	removing sync.WaitGroup // retired containers being removed
}

type warmContainer struct {
	id          string
	conn        types.HijackedResponse
	w           *agentproto.Writer
	frames      <-chan agentFrame // closed when the container's output ends
	invocations int
	lastUsed    time.Time
	takenAt     time.Time // when the run holding it took it; zero while idle
}

type agentFrame struct {
	typ  byte
	body []byte
}

func newWarmPools(rt *Runtime, cfg WarmConfig) *warmPools {
	if cfg.PoolSize <= 0 {
		cfg.PoolSize = 8
	}
	if cfg.Prewarm <= 0 {
		cfg.Prewarm = 2
	}
	cfg.Prewarm = min(cfg.Prewarm, cfg.PoolSize)
	if cfg.IdleExpiry <= 0 {
		cfg.IdleExpiry = 5 * time.Minute
	}
	if cfg.MaxInvocations <= 0 {
		cfg.MaxInvocations = 1000
	}
	wp := &warmPools{rt: rt, cfg: cfg, pools: map[poolKey]*pool{}, wake: make(chan struct{}), stop: make(chan struct{})}
	wp.startContainer = wp.start
	wp.removeContainer = wp.remove
	wp.janitor.Add(1)
	go wp.expireIdle()
	return wp
}

func keyFor(image string, l run.Limits) poolKey {
	return poolKey{image: image, memory: l.MemoryBytes, cpus: l.NanoCPUs, pids: l.Pids}
}

// Prewarm starts containers for image until its pool is full, so the first
// warm runs do not pay for a container start.
func (r *Runtime) Prewarm(ctx context.Context, image string, limits run.Limits) error {
	if _, err := r.checkImage(ctx, image); err != nil {
		return err
	}
	wp, key := r.warm, keyFor(image, limits)
	wp.mu.Lock()
	p := wp.poolLocked(key)
	need := wp.cfg.Prewarm - p.live
	p.live += max(need, 0)
	wp.mu.Unlock()
	errs := make([]error, max(need, 0))
	var wg sync.WaitGroup
	for i := range need {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := wp.startContainer(ctx, key)
			if err != nil {
				errs[i] = err
				wp.mu.Lock()
				p.live--
				wp.mu.Unlock()
				return
			}
			wp.release(key, c, true)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (wp *warmPools) poolLocked(key poolKey) *pool {
	p := wp.pools[key]
	if p == nil {
		p = &pool{}
		wp.pools[key] = p
	}
	return p
}

// acquire returns an idle container. With none idle, the pool's first
// container is started for this run (so a start's error is the run's);
// otherwise the run waits for a busy one to free up, and once it has waited
// longer than the pool's patience, a container is started for it in the
// background while the pool has room.
func (wp *warmPools) acquire(ctx context.Context, key poolKey) (*warmContainer, error) {
	var patience <-chan time.Time // nil once it has run out, or before the run waits
	impatient := false            // counted in p.impatient
	for {
		wp.mu.Lock()
		p := wp.poolLocked(key)
		leaving := func() {
			if impatient {
				p.impatient--
				impatient = false
			}
		}
		if wp.closed {
			leaving()
			wp.mu.Unlock()
			return nil, executor.Errorf(executor.ErrUnavailable, nil, "the warm pools are closed")
		}
		if n := len(p.idle); n > 0 {
			c := p.idle[n-1]
			p.idle = p.idle[:n-1]
			c.takenAt = time.Now()
			leaving()
			wp.mu.Unlock()
			return c, nil
		}
		if p.live == 0 {
			p.live++
			leaving()
			wp.mu.Unlock()
			c, err := wp.startContainer(ctx, key)
			if err != nil {
				wp.mu.Lock()
				p.live--
				wp.broadcastLocked()
				wp.mu.Unlock()
				return nil, err
			}
			c.takenAt = time.Now()
			return c, nil
		}
		if impatient && p.live < wp.cfg.PoolSize && p.starting < p.impatient && time.Since(p.failedAt) >= growBackoff {
			p.live++
			p.starting++
			wp.growing.Add(1)
			go wp.grow(key, p)
		}
		if patience == nil && !impatient {
			t := time.NewTimer(p.patience())
			defer t.Stop()
			patience = t.C
		}
		wake := wp.wake
		wp.mu.Unlock()
		select {
		case <-wake:
		case <-patience:
			patience = nil
			wp.mu.Lock()
			p.impatient++
			impatient = true
			wp.mu.Unlock()
		case <-ctx.Done():
			wp.mu.Lock()
			leaving()
			wp.mu.Unlock()
			return nil, executor.Errorf(executor.ErrUnavailable, ctx.Err(), "no warm container for %s became free", key.image)
		}
	}
}

// grow starts a container for p in the background and puts it with the
// idle ones, for whichever run takes it first.
func (wp *warmPools) grow(key poolKey, p *pool) {
	defer wp.growing.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-wp.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	c, err := wp.startContainer(ctx, key)
	wp.mu.Lock()
	p.starting--
	if err != nil {
		p.live--
		p.failedAt = time.Now()
		wp.broadcastLocked()
		wp.mu.Unlock()
		wp.rt.cfg.Logger.Warn().Err(err).Str("image", key.image).Msg("a warm container for waiting runs did not start; they wait for busy ones")
		return
	}
	wp.mu.Unlock()
	wp.release(key, c, true)
}

func (wp *warmPools) broadcastLocked() {
	close(wp.wake)
	wp.wake = make(chan struct{})
}

// release returns c to its pool, or retires it (after MaxInvocations, a
// command that did not end cleanly, or when the pools close).
func (wp *warmPools) release(key poolKey, c *warmContainer, healthy bool) {
	wp.mu.Lock()
	defer wp.mu.Unlock()
	p := wp.pools[key]
	if !c.takenAt.IsZero() {
		p.noteHeld(time.Since(c.takenAt))
		c.takenAt = time.Time{}
	}
	if healthy && !wp.closed && c.invocations < wp.cfg.MaxInvocations {
		c.lastUsed = time.Now()
		p.idle = append(p.idle, c)
	} else {
		p.live--
		wp.retireLocked(c)
	}
	wp.broadcastLocked()
}

// retireLocked removes c in the background; close waits for it.
func (wp *warmPools) retireLocked(c *warmContainer) {
	wp.removing.Add(1)
	go func() {
		defer wp.removing.Done()
		wp.removeContainer(c)
	}()
}

func (wp *warmPools) remove(c *warmContainer) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.conn.Close()
	if err := wp.rt.cfg.Engine.ContainerRemove(ctx, c.id, container.RemoveOptions{Force: true}); err != nil {
		wp.rt.cfg.Logger.Warn().Err(err).Str("container_id", c.id).Msg("warm container not removed")
	}
}

func (wp *warmPools) expireIdle() {
	defer wp.janitor.Done()
	t := time.NewTicker(max(wp.cfg.IdleExpiry/4, 50*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-wp.stop:
			return
		case <-t.C:
		}
		wp.mu.Lock()
		for _, p := range wp.pools {
			kept := p.idle[:0]
			for _, c := range p.idle {
				if time.Since(c.lastUsed) > wp.cfg.IdleExpiry {
					p.live--
					wp.retireLocked(c)
					continue
				}
				kept = append(kept, c)
			}
			p.idle = kept
		}
		wp.mu.Unlock()
	}
}

// close removes idle containers now and busy ones as they finish.
func (wp *warmPools) close(ctx context.Context) error {
	wp.mu.Lock()
	if wp.closed {
		wp.mu.Unlock()
		return nil
	}
	wp.closed = true
	close(wp.stop)
	var idle []*warmContainer
	for _, p := range wp.pools {
		idle = append(idle, p.idle...)
		p.live -= len(p.idle)
		p.idle = nil
	}
	wp.broadcastLocked()
	wp.mu.Unlock()
	wp.janitor.Wait()
	wp.growing.Wait() // each puts its container back, to be retired
	wp.mu.Lock()
	for _, c := range idle {
		wp.retireLocked(c)
	}
	wp.mu.Unlock()
	done := make(chan struct{})
	go func() { wp.settling.Wait(); wp.removing.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// start creates and starts a warm container.
func (wp *warmPools) start(ctx context.Context, key poolKey) (*warmContainer, error) {
	return wp.rt.startAgent(ctx, key, run.ModeWarm, nil)
}

// startAgent creates and starts a hardened container running the agent,
// for warm mode or (one run, then removed) single-use mode, and waits for
// the agent's Ready frame. The agent reads the files prime names before it
// is ready (agentproto.PrimeArg).
func (r *Runtime) startAgent(ctx context.Context, key poolKey, mode run.Mode, prime []string) (*warmContainer, error) {
	agentMount, err := r.agentMount(ctx, key.image, mode)
	if err != nil {
		return nil, err
	}
	eng := r.cfg.Engine
	limits := run.Limits{MemoryBytes: key.memory, NanoCPUs: key.cpus, Pids: key.pids}
	labels := map[string]string{LabelManaged: "true", LabelOwner: r.cfg.Owner, LabelPool: key.image}
	entrypoint, namePrefix := []string{agentTarget}, "logbook-warm-"
	if mode == run.ModeSingleUse {
		labels[LabelSingleUse] = "true"
		entrypoint, namePrefix = []string{agentTarget, agentproto.OneRunArg}, "logbook-spare-"
	}
	for _, path := range prime {
		entrypoint = append(entrypoint, agentproto.PrimeArg+path)
	}
	cfg, host := r.hardened(key.image, entrypoint, nil, labels, limits)
	cfg.StdinOnce = false // one attached stdin serves every invocation
	// The agent is root, whatever the image says, with only what it needs:
	// to run each command as its user, and to end every process of a run.
	cfg.User = "0:0"
	host.CapAdd = []string{"SETUID", "SETGID", "KILL"}
	host.Mounts = []mount.Mount{agentMount}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	// The create runs to its end whatever ctx says: one cut short can still
	// make a container, whose id this runtime would never learn, and which
	// only a reconcile would remove.
	createCtx, cancelCreate := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	created, err := eng.ContainerCreate(createCtx, cfg, host, nil, nil, namePrefix+hex.EncodeToString(suffix))
	cancelCreate()
	if err != nil {
		return nil, executor.Errorf(executor.ErrUnavailable, err, "cannot create a %s container for %s", mode, key.image)
	}
	c := &warmContainer{id: created.ID}
	fail := func(err error, format string, args ...any) (*warmContainer, error) {
		if c.conn.Conn != nil {
			c.conn.Close()
		}
		rmCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = eng.ContainerRemove(rmCtx, c.id, container.RemoveOptions{Force: true})
		return nil, executor.Errorf(executor.ErrUnavailable, err, format, args...)
	}
	c.conn, err = eng.ContainerAttach(ctx, c.id, container.AttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return fail(err, "cannot attach to %s container %s", mode, c.id)
	}
	c.w = agentproto.NewWriter(c.conn.Conn)
	c.frames = readAgent(c.conn.Reader, r.cfg.Logger.With().Str("container_id", c.id).Logger())
	if err := eng.ContainerStart(ctx, c.id, container.StartOptions{}); err != nil {
		return fail(err, "cannot start a %s container for %s", mode, key.image)
	}
	select {
	case f, ok := <-c.frames:
		if !ok || f.typ != agentproto.Ready {
			return fail(nil, "the agent in %s container %s did not start (is %s a static linux binary?)", mode, c.id, r.cfg.Warm.AgentPath)
		}
	case <-time.After(30 * time.Second):
		return fail(nil, "the agent in %s container %s did not answer within 30s", mode, c.id)
	case <-ctx.Done():
		return fail(ctx.Err(), "starting a %s container for %s", mode, key.image)
	}
	return c, nil
}

// readAgent demultiplexes the container's output: the agent's stdout holds
// frames, its stderr is logged.
func readAgent(r io.Reader, log zerolog.Logger) <-chan agentFrame {
	frames := make(chan agentFrame, 64)
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, logWriter{log}, r)
		pw.CloseWithError(err)
	}()
	go func() {
		defer close(frames)
		fr := agentproto.NewReader(pr)
		for {
			typ, body, err := fr.Next()
			if err != nil {
				pr.CloseWithError(err)
				return
			}
			frames <- agentFrame{typ, body}
		}
	}()
	return frames
}

type logWriter struct{ log zerolog.Logger }

func (l logWriter) Write(p []byte) (int, error) {
	l.log.Warn().Str("agent_stderr", string(p)).Msg("warm agent said")
	return len(p), nil
}

// run forks one command in a warm container.
func (wp *warmPools) run(ctx context.Context, spec executor.Spec, sink executor.Sink) (executor.Outcome, error) {
	if err := agentUserAllowed(spec); err != nil {
		return executor.Outcome{}, err
	}
	key := keyFor(spec.Image, spec.Limits)
	c, err := wp.acquire(ctx, key)
	if err != nil {
		return executor.Outcome{}, err
	}
	out, healthy, err := wp.rt.invokeAgent(ctx, c, spec, sink)
	if healthy {
		wp.settle(key, c, spec)
	} else {
		wp.release(key, c, false)
	}
	return out, err
}

// settle returns c to its pool once its agent reports the container as it
// was before the run, and retires it otherwise. It waits in the background:
// the run's end is recorded without waiting for the clean-up.
func (wp *warmPools) settle(key poolKey, c *warmContainer, spec executor.Spec) {
	wp.mu.Lock()
	if wp.closed {
		wp.mu.Unlock()
		wp.release(key, c, false)
		return
	}
	wp.settling.Add(1)
	wp.mu.Unlock()
	go func() {
		defer wp.settling.Done()
		wp.release(key, c, wp.awaitClean(c, spec))
	}()
}

// cleanReportWait bounds the wait for an agent's clean-up report.
const cleanReportWait = time.Minute

// awaitClean reads the agent's report on the clean-up after a run.
func (wp *warmPools) awaitClean(c *warmContainer, spec executor.Spec) bool {
	log := wp.rt.cfg.Logger.With().Str("run_id", spec.RunID).Str("request_id", spec.RequestID).Str("container_id", c.id).Logger()
	start := time.Now()
	t := time.NewTimer(cleanReportWait)
	defer t.Stop()
	select {
	case f, ok := <-c.frames:
		var report agentproto.CleanBody
		switch {
		case !ok:
			log.Warn().Msg("warm container ended while cleaning up after a run; retired")
		case f.typ != agentproto.Clean || json.Unmarshal(f.body, &report) != nil:
			log.Warn().Str("frame", string(f.typ)).Msg("the agent sent something else than its clean-up report; container retired")
		case !report.OK:
			log.Warn().Str("left", report.Problem).Msg("warm container not clean after a run; retired")
		default:
			log.Debug().Dur("clean_up", time.Since(start)).Msg("warm container clean after the run")
			return true
		}
	case <-t.C:
		log.Warn().Dur("waited", cleanReportWait).Msg("the agent did not report its clean-up; container retired")
	}
	return false
}

// invokeAgent runs one command through the agent in c: healthy says the
// container may serve another run (warm mode).
func (r *Runtime) invokeAgent(ctx context.Context, c *warmContainer, spec executor.Spec, sink executor.Sink) (out executor.Outcome, healthy bool, err error) {
	c.invocations++
	req := agentproto.RequestBody{Argv: spec.Argv, Env: spec.Env, TimeoutMS: spec.Limits.TimeoutMS, KillGraceMS: spec.KillGrace.Milliseconds(),
		UID: spec.User.UID, GID: spec.User.GID}
	if err := errors.Join(c.w.WriteJSON(agentproto.Request, req), c.w.Write(agentproto.Stdin, spec.Stdin)); err != nil {
		return out, false, executor.Errorf(executor.ErrUnavailable, err, "cannot reach the agent in %s container %s", spec.Mode, c.id)
	}
	// The agent enforces the timeout; this only catches an agent that
	// stopped answering.
	safety := time.NewTimer(spec.Limits.Timeout() + 2*spec.KillGrace + 10*time.Second)
	defer safety.Stop()
	done := ctx.Done()
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return r.agentDied(c, out)
			}
			switch f.typ {
			case agentproto.Started:
				out.Started = true
				sink.ContainerStarted(c.id, spec.Mode == run.ModeWarm)
			case agentproto.Stdout:
				_, _ = sink.Stdout().Write(f.body)
			case agentproto.Stderr:
				_, _ = sink.Stderr().Write(f.body)
			case agentproto.Exit:
				var exit agentproto.ExitBody
				if err := json.Unmarshal(f.body, &exit); err != nil {
					return out, false, executor.Errorf(executor.ErrUnavailable, err, "the agent in %s sent a bad exit frame", c.id)
				}
				if exit.StartError != "" {
					return out, true, executor.Errorf(executor.ErrInvalidSpec, nil, "cannot start %q in image %s: %s", spec.Argv[0], spec.Image, exit.StartError)
				}
				out.ExitCode, out.Signal = exit.ExitCode, exit.Signal
				out.TimedOut, out.Stopped = exit.TimedOut, exit.Stopped
				out.Duration = time.Duration(exit.DurationUS) * time.Microsecond
				return out, !exit.TimedOut && !exit.Stopped && exit.Signal == "", nil
			}
		case <-done:
			done = nil
			_ = c.w.Write(agentproto.Kill, nil)
		case <-safety.C:
			return out, false, executor.Errorf(executor.ErrUnavailable, nil, "the agent in %s container %s stopped answering", spec.Mode, c.id)
		}
	}
}

// agentDied explains an agent's container that ended mid-run: most often
// the container-wide memory limit.
func (r *Runtime) agentDied(c *warmContainer, out executor.Outcome) (executor.Outcome, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The attach stream ends as the container exits, which the daemon may
	// not have recorded yet.
	waitC, errC := r.cfg.Engine.ContainerWait(ctx, c.id, container.WaitConditionNotRunning)
	select {
	case <-waitC:
	case err := <-errC:
		return out, false, executor.Errorf(executor.ErrUnavailable, err, "container %s ended during the run", c.id)
	}
	if !out.Started {
		return out, false, executor.Errorf(executor.ErrUnavailable, nil, "container %s ended before the command started", c.id)
	}
	if err := r.inspectExit(ctx, c.id, &out); err != nil {
		return out, false, executor.Errorf(executor.ErrUnavailable, err, "container %s ended during the run", c.id)
	}
	return out, false, nil
}
