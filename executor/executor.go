package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/runbus"
)

// DefaultLimits apply to every run unless its bundle or command says
// otherwise.
var DefaultLimits = run.Limits{
	TimeoutMS:   60_000,
	MemoryBytes: 256 << 20,
	NanoCPUs:    1_000_000_000,
	Pids:        128,
	OutputBytes: 4 << 20,
}

// Config configures an Executor. Zero fields take the defaults named.
type Config struct {
	Runtime   Runtime           // required
	Publisher message.Publisher // required: where run events go
	// Store, when set, is read before each run: a run that already has its
	// terminal event is skipped (a redelivery), and new events continue the
	// stream's versions. Without it the executor records RunRequested itself.
	Store eventstore.Store
	// Claimer, when set (an executor without a store, on a broker), takes
	// each run from the server just before it starts: the answer says
	// whether it may run and what its stream holds, which then ends with
	// this executor's RunClaimed and RunStarting.
	Claimer     Claimer
	EventsTopic string     // TopicRunEvents
	Concurrency int        // runs at once (4)
	Defaults    run.Limits // DefaultLimits, field by field
	// MaxPids caps every run's pids limit, a request recorded under a higher
	// maximum too (run.DefaultMaxPids).
	MaxPids   int64
	KillGrace time.Duration // SIGTERM to SIGKILL (5s)
	Chunking  ChunkerConfig // LimitBytes comes from each run's limits
	// ReleaseTimeout bounds the clean-up after a run (30s).
	ReleaseTimeout time.Duration
	// StartedHold is how long a run whose stream says RunStarting (a
	// claimed run on a broker, or a warm run, which takes itself) holds its
	// ContainerStarted and the output after it for the run's end, so that
	// a short command's events go in one message and one commit (100ms;
	// below zero, never).
	StartedHold time.Duration
	Actor       string         // recorded as the actor of run events ("executor")
	Logger      zerolog.Logger // every line about a run carries run_id and request_id
}

// Validate reports every missing required field.
func (c Config) Validate() error {
	var errs []error
	if c.Runtime == nil {
		errs = append(errs, errors.New("executor config: Runtime is required"))
	}
	if c.Publisher == nil {
		errs = append(errs, errors.New("executor config: Publisher is required"))
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("executor config: Concurrency %d is negative", c.Concurrency))
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	if c.EventsTopic == "" {
		c.EventsTopic = TopicRunEvents
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	c.Defaults = c.Defaults.Or(DefaultLimits)
	if c.MaxPids <= 0 {
		c.MaxPids = run.DefaultMaxPids
	}
	if c.KillGrace <= 0 {
		c.KillGrace = 5 * time.Second
	}
	if c.ReleaseTimeout <= 0 {
		c.ReleaseTimeout = 30 * time.Second
	}
	if c.StartedHold == 0 {
		c.StartedHold = 100 * time.Millisecond
	}
	if c.Actor == "" {
		c.Actor = "executor"
	}
}

// Executor runs requested commands, at most Concurrency at a time, and
// publishes each run's events. A command never runs twice for one run id:
// a run in flight here, a run whose stream shows a terminal event, and (in
// the docker runtime) a run whose container name exists are skipped, and a
// run whose stream says its command may have begun (a container, or
// RunStarting) is recorded lost (or, on a bus with claims, skipped: its
// claim settles it).
type Executor struct {
	cfg   Config
	host  string // named in the RunClaimed of a warm run it takes itself
	slots chan struct{}
	base  context.Context
	stop  context.CancelCauseFunc
	// drain outlives base: runs stopped at shutdown still publish their
	// end under it, until Shutdown's own deadline passes (abandon).
	drain   context.Context
	abandon context.CancelFunc

	mu      sync.Mutex
	active  map[string]*activeRun
	early   map[string]runbus.CancelRequest // cancels that arrived before their run
	earlyQ  []string                        // the order early cancels arrived, to bound them
	running sync.WaitGroup
}

type activeRun struct {
	rec    *recorder
	cancel context.CancelCauseFunc
}

const maxEarlyCancels = 4096

// errShutdown is the cause of runs stopped because the executor closes.
var errShutdown = errors.New("executor shut down")

// cancelCause is the cause of a run stopped on request.
type cancelCause struct{ req runbus.CancelRequest }

func (c cancelCause) Error() string { return "cancelled by request" }

// NewExecutorWithConfig builds an executor.
func NewExecutorWithConfig(cfg Config) (*Executor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	base, stop := context.WithCancelCause(cfg.Logger.WithContext(context.Background()))
	drain, abandon := context.WithCancel(cfg.Logger.WithContext(context.Background()))
	host, _ := os.Hostname()
	return &Executor{
		cfg:     cfg,
		host:    host,
		slots:   make(chan struct{}, cfg.Concurrency),
		base:    base,
		stop:    stop,
		drain:   drain,
		abandon: abandon,
		active:  map[string]*activeRun{},
		early:   map[string]runbus.CancelRequest{},
	}, nil
}

// HandleRunRequested is the router handler of the run.requested topic. It
// returns when the run's terminal event is published, so the message is
// acknowledged only then (at-least-once delivery; a redelivery is skipped).
func (e *Executor) HandleRunRequested(msg *message.Message) error {
	req, err := runbus.DecodeRunRequest(msg)
	if err != nil {
		return err
	}
	return e.Execute(req)
}

// HandleCancel is the router handler of the run.cancel topic. Every executor
// sees every cancel; the one holding the run stops it, and a cancel that
// arrives before its run is remembered so the run ends RunCancelled.
func (e *Executor) HandleCancel(msg *message.Message) error {
	c, err := runbus.DecodeCancel(msg)
	if err != nil {
		return err
	}
	e.Cancel(c)
	return nil
}

// Cancel stops run c.RunID if this executor holds it, recording
// RunCancelRequested then RunCancelled. It reports whether the run was here.
func (e *Executor) Cancel(c runbus.CancelRequest) bool {
	e.mu.Lock()
	a := e.active[c.RunID]
	if a == nil || a.cancel == nil {
		if _, seen := e.early[c.RunID]; !seen {
			e.early[c.RunID] = c
			e.earlyQ = append(e.earlyQ, c.RunID)
			if len(e.earlyQ) > maxEarlyCancels {
				delete(e.early, e.earlyQ[0])
				e.earlyQ = e.earlyQ[1:]
			}
		}
		e.mu.Unlock()
		return false
	}
	e.mu.Unlock()
	zerolog.Ctx(e.base).Info().Str("run_id", c.RunID).Str("actor", c.Actor).Str("reason", c.Reason).Msg("stopping a run on request")
	if err := a.rec.record(run.RunCancelRequested{Actor: c.Actor, Reason: c.Reason}); err != nil {
		zerolog.Ctx(e.base).Warn().Err(err).Str("run_id", c.RunID).Msg("cancel request not recorded")
	}
	a.cancel(cancelCause{c})
	return true
}

// Shutdown stops every run in flight (they end RunCancelled) and waits for
// them and their clean-up, or for ctx.
func (e *Executor) Shutdown(ctx context.Context) error {
	e.stop(errShutdown)
	done := make(chan struct{})
	go func() { e.running.Wait(); close(done) }()
	select {
	case <-done:
		e.abandon()
		return nil
	case <-ctx.Done():
		e.abandon() // publishes still retrying give up
		return fmt.Errorf("executor shutdown: runs still in flight: %w", ctx.Err())
	}
}

// Execute runs one request to its terminal event. It returns an error only
// when the run could not be looked at (the store failed) or the executor is
// shutting down; the caller retries. A run's own failure is its terminal
// event, not an error.
func (e *Executor) Execute(req runbus.RunRequest) error {
	log := e.cfg.Logger.With().Str("run_id", req.RunID).Str("request_id", req.Request.RequestID).Logger()
	ctx := log.WithContext(e.base)
	if err := run.ValidateID(req.RunID); err != nil {
		return fmt.Errorf("%w: %v", runbus.ErrBadMessage, err)
	}

	e.mu.Lock()
	if e.active[req.RunID] != nil {
		e.mu.Unlock()
		log.Info().Msg("run already in flight here; redelivery skipped")
		return nil
	}
	entry := &activeRun{}
	e.active[req.RunID] = entry
	e.running.Add(1)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.active, req.RunID)
		e.mu.Unlock()
		e.running.Done()
	}()

	select {
	case e.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("run %s not started: %w", req.RunID, context.Cause(ctx))
	}
	defer func() { <-e.slots }()

	var past []domain.Payload
	switch {
	case e.cfg.Claimer != nil:
		var err error
		if past, err = e.cfg.Claimer.Claim(ctx, req); err != nil {
			if errors.Is(err, ErrClaimDone) {
				log.Info().Err(err).Msg("run not taken")
				return nil
			}
			return err
		}
	case req.TakeJustRequested():
		// The dispatcher in this process has just created the run's
		// stream with its RunRequested alone, and this is the request's
		// first handling: the read would return that event.
		past = []domain.Payload{req.Request}
	case e.cfg.Store != nil:
		var err error
		if past, _, err = readRun(ctx, e.cfg.Store, req.RunID); err != nil {
			return err
		}
	}
	state := run.Fold(past)
	switch {
	case state.Finished():
		log.Info().Str("terminal", state.Terminal).Msg("run already finished; redelivery skipped")
		return nil
	case e.cfg.Claimer != nil && (state.Created || state.Started):
		log.Warn().Msg("run was started by an earlier executor; the reconciler settles it, not a second run")
		return nil
	}

	md := domain.Metadata{CorrelationID: req.Request.RequestID, CausationID: req.EventID, Actor: e.cfg.Actor}
	rec := newRecorder(e.drain, e.cfg.Publisher, e.cfg.EventsTopic, req.RunID, md, past)
	if e.cfg.Claimer == nil && (state.Created || state.Started || state.Starting) {
		// A run given again (after a restart, its request republished)
		// whose command may have begun before, and is not in flight here.
		// Reconcile ran before this executor took work, recorded the runs
		// of the containers it found, and removed them all; a warm or
		// single-use container does not name its run, so the run of one
		// is settled here: whatever began is not running now, and its end
		// was never recorded. It is never run a second time.
		reason := "the command began before the executor restarted, and its end was not recorded; it is not run again"
		if id := containerOf(past); id != "" {
			reason = fmt.Sprintf("the command began in container %.12s before the executor restarted, and its end was not recorded; it is not run again", id)
		}
		log.Warn().Str("reason", reason).Msg("run recorded lost")
		if err := rec.record(run.RunLost{Reason: reason}); err != nil {
			return err
		}
		return e.discardLeftover(ctx, log, rec, state)
	}
	if !state.Requested {
		if err := rec.record(req.Request); err != nil {
			return err
		}
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	e.mu.Lock()
	early, cancelledEarly := e.early[req.RunID]
	if !cancelledEarly {
		entry.rec, entry.cancel = rec, cancel
	}
	e.mu.Unlock()
	if cancelledEarly || state.CancelRequested {
		if cancelledEarly {
			if err := rec.record(run.RunCancelRequested{Actor: early.Actor, Reason: early.Reason}); err != nil {
				return err
			}
		}
		log.Info().Msg("run cancelled before it started")
		return rec.record(run.RunCancelled{Reason: "cancelled before it started"})
	}
	if e.cfg.Claimer == nil && req.Request.Mode == run.ModeWarm {
		// A warm container's agent forks the command as soon as it has
		// the request, and nothing else says the run began until its
		// ContainerStarted is stored. So the run takes itself first, in
		// one commit, as a claim does on a broker: a crash after the fork
		// then leaves a run that is recorded lost after the restart, not
		// run again. (A fresh or single-use run stores ContainerCreated
		// before its command starts instead.)
		if err := rec.recordTogether(run.RunClaimed{Executor: e.cfg.Actor, Host: e.host, Group: req.Request.Group}, run.RunStarting{Executor: e.cfg.Actor}); err != nil {
			return err
		}
	}
	if e.cfg.StartedHold > 0 {
		rec.holdStarted(e.cfg.StartedHold, log) // a run whose stream says RunStarting
	}
	return e.runCommand(runCtx, log, req, rec)
}

// discardLeftover removes the container made or taken for a run recorded
// lost when it was given again, and records the removal, as reconcile does
// for the containers it can tie to their run (a single-use container keeps
// its spare's name, so reconcile removed it without knowing the run).
func (e *Executor) discardLeftover(ctx context.Context, log zerolog.Logger, rec *recorder, state run.State) error {
	leftovers, ok := e.cfg.Runtime.(LeftoverRuntime)
	if !ok || !state.Created || state.Removed || state.ContainerID == "" {
		return nil
	}
	if err := leftovers.Discard(ctx, Leftover{ContainerID: state.ContainerID}); err != nil {
		log.Warn().Err(err).Str("container_id", state.ContainerID).Msg("the lost run's container not removed")
		return nil
	}
	return rec.record(run.ContainerRemoved{ContainerID: state.ContainerID})
}

// containerOf is the container a run's past names last: the one made for
// it, or the warm one it started in.
func containerOf(past []domain.Payload) string {
	id := ""
	for _, p := range past {
		switch p := p.(type) {
		case run.ContainerCreated:
			id = p.ContainerID
		case run.ContainerStarted:
			if p.ContainerID != "" {
				id = p.ContainerID
			}
		}
	}
	return id
}

func (e *Executor) runCommand(ctx context.Context, log zerolog.Logger, req runbus.RunRequest, rec *recorder) error {
	limits := req.Request.Limits.Or(e.cfg.Defaults)
	if limits.Pids > e.cfg.MaxPids {
		log.Info().Int64("pids", limits.Pids).Int64("max_pids", e.cfg.MaxPids).Msg("pids limit held to the site's maximum")
		limits.Pids = e.cfg.MaxPids
	}
	mode := req.Request.Mode
	if mode == "" {
		mode = run.ModeFresh
	}
	spec := Spec{
		RunID:     req.RunID,
		RequestID: req.Request.RequestID,
		Image:     req.Request.Image,
		Argv:      req.Request.Argv,
		Env:       runEnv(req),
		Stdin:     req.Request.Input,
		Limits:    limits,
		User:      req.Request.User,
		Mode:      mode,
		KillGrace: e.cfg.KillGrace,
	}
	if len(spec.Argv) == 0 || spec.Argv[0] == "" {
		return rec.record(run.RunFailed{Reason: "the command has no executable (empty argv)"})
	}

	secrets, missing := runSecrets(req)
	if len(missing) > 0 {
		// The value changed or went after the run was requested (or the
		// server has no vault): say so rather than run without it.
		reason := fmt.Sprintf("the secret %s (%s) is not available any more: it was changed or removed after the run was requested, or this server cannot read secrets; run the command again", missing[0].Name, secretRefText(missing[0]))
		return rec.record(run.RunFailed{Reason: reason, Result: run.Result{}})
	}
	redactor := NewRedactor(secrets)

	chunking := e.cfg.Chunking
	chunking.LimitBytes = limits.OutputBytes
	chunker := NewChunker(chunking,
		func(c run.OutputChunk) error { return rec.record(c) },
		func(t run.OutputTruncated) error {
			log.Info().Int64("limit_bytes", t.LimitBytes).Msg("output over the cap; the rest is dropped")
			return rec.record(t)
		})
	sink := &runSink{rec: rec, chunker: chunker, log: log, image: spec.Image,
		stdout: redactor.Writer(chunker.Writer(run.Stdout)), stderr: redactor.Writer(chunker.Writer(run.Stderr))}

	log.Debug().Str("image", spec.Image).Str("mode", string(mode)).Msg("run starting")
	outcome, runErr := e.cfg.Runtime.Run(ctx, spec, sink)
	rec.end()
	// The events held for the terminal event go out however the run ends
	// here, even without one.
	defer func() {
		if err := rec.flush(); err != nil {
			log.Error().Err(err).Msg("the run's last events not recorded")
		}
	}()
	// What each stream held back for a value split across writes goes to
	// the chunker, redacted, before the chunker's last flush.
	if err := errors.Join(sink.stdout.Close(), sink.stderr.Close(), chunker.Close()); err != nil {
		log.Error().Err(err).Msg("output not fully recorded")
	}
	if runErr != nil {
		runErr = redactedError{err: runErr, text: redactor.String(runErr.Error())}
	}
	if errors.Is(runErr, ErrAlreadyExists) && e.cfg.Claimer != nil {
		// The claim made this run ours alone, and its stream shows no
		// container: this one was left by an executor that stopped on
		// this host before it could say so. Whether the command ran is
		// unknown, so it is not run again.
		log.Warn().Err(runErr).Msg("the run's container was left on this host by an executor that stopped; the run is lost")
		return rec.record(run.RunLost{Reason: "an executor that stopped had already made this run's container on this host, so whether the command ran is unknown; it is not run again"})
	}
	if errors.Is(runErr, ErrAlreadyExists) {
		log.Warn().Err(runErr).Msg("run already has a container; redelivery skipped")
		return nil
	}

	if runErr == nil && outcome.Started {
		if err := rec.record(run.ContainerStopped{
			ExitCode: outcome.ExitCode, OOMKilled: outcome.OOMKilled, Signal: outcome.Signal,
			DurationMS: outcome.Duration.Milliseconds(),
		}); err != nil {
			log.Error().Err(err).Msg("ContainerStopped not recorded")
		}
	}
	head, complete := chunker.Stdout()
	result, parseErr := run.ParseCogOutput(head, complete)
	terminal := decideTerminal(outcome, runErr, context.Cause(ctx), limits, result, parseErr)
	if len(req.Request.Secrets) > 0 {
		total, bySecret := redactor.Counts()
		if total > 0 {
			log.Info().Int("replacements", total).Msg("secret values redacted from the output")
		}
		if err := rec.record(run.OutputRedacted{Replacements: total, BySecret: bySecret}); err != nil {
			log.Error().Err(err).Msg("OutputRedacted not recorded")
		}
	}
	if err := rec.record(terminal); err != nil {
		log.Error().Err(err).Str("terminal", terminal.EventType()).Msg("terminal event not recorded")
		return err
	}
	log.Info().Str("terminal", terminal.EventType()).Int("exit_code", outcome.ExitCode).
		Dur("duration", outcome.Duration).Msg("run finished")

	if outcome.Release != nil {
		e.running.Add(1)
		go e.release(log, rec, outcome)
	}
	return nil
}

// release cleans up after a run under a fresh context: the run's own
// context may be cancelled, and clean-up must happen anyway.
func (e *Executor) release(log zerolog.Logger, rec *recorder, outcome Outcome) {
	defer e.running.Done()
	ctx, cancel := context.WithTimeout(log.WithContext(context.Background()), e.cfg.ReleaseTimeout)
	defer cancel()
	if err := outcome.Release(ctx); err != nil {
		log.Error().Err(err).Str("container_id", outcome.ContainerID).Msg("run clean-up failed")
		return
	}
	if outcome.ContainerID != "" && rec.snapshot().Created {
		if err := rec.record(run.ContainerRemoved{ContainerID: outcome.ContainerID}); err != nil {
			log.Error().Err(err).Msg("ContainerRemoved not recorded")
		}
	}
}

// decideTerminal picks the one terminal event of a run from how it ended.
func decideTerminal(o Outcome, runErr, cause error, limits run.Limits, result run.Result, parseErr error) domain.Payload {
	var cancelled cancelCause
	switch {
	case runErr != nil && o.Started:
		return run.RunLost{Reason: fmt.Sprintf("the command started but its end was not observed: %v", runErr)}
	case runErr != nil:
		return run.RunFailed{Reason: runErr.Error()}
	case o.TimedOut:
		return run.RunTimedOut{TimeoutMS: limits.TimeoutMS, Result: result}
	case o.Stopped && errors.As(cause, &cancelled):
		reason := "cancelled"
		if cancelled.req.Actor != "" {
			reason += " by " + cancelled.req.Actor
		}
		if cancelled.req.Reason != "" {
			reason += ": " + cancelled.req.Reason
		}
		return run.RunCancelled{Reason: reason, Result: result}
	case o.Stopped:
		return run.RunCancelled{Reason: fmt.Sprintf("stopped: %v", cause), Result: result}
	case o.OOMKilled:
		return run.RunFailed{Reason: fmt.Sprintf("killed for running out of memory (limit %d MiB)", limits.MemoryBytes>>20), Result: result}
	case o.ExitCode != 0:
		reason := fmt.Sprintf("exited with code %d", o.ExitCode)
		if o.Signal != "" {
			reason += " (" + o.Signal + ")"
		}
		return run.RunFailed{Reason: reason, Result: result}
	case parseErr != nil:
		return run.RunFailed{Reason: parseErr.Error(), Result: result}
	case result.Aborted:
		return run.RunFailed{Reason: "the command aborted the pipeline (COGCMD_ACTION: abort)", Result: result}
	default:
		return run.RunSucceeded{Result: result}
	}
}

// runEnv is the command's environment: the Cog protocol's variables, then
// the request's named variables: its plain configuration values, recorded
// in the request, and the values that came with the message (its secrets).
// A request variable never overrides a COG_ one.
func runEnv(req runbus.RunRequest) []string {
	env := run.CogEnv(req.RunID, req.Request)
	config := map[string]string{}
	for _, c := range req.Request.Config {
		config[c.Name] = c.Value
	}
	for _, name := range req.Request.EnvNames {
		v, ok := config[name]
		if secret, given := req.Env[name]; given {
			v, ok = secret, true
		}
		if !ok || name == "" || slices.ContainsFunc(env, func(kv string) bool { return len(kv) > len(name) && kv[:len(name)+1] == name+"=" }) {
			continue
		}
		env = append(env, name+"="+v)
	}
	return env
}

// runSecrets are the values of the run's secrets, by name, from the
// message; missing lists the secrets the message lacks.
func runSecrets(req runbus.RunRequest) (map[string]string, []run.SecretRef) {
	secrets := map[string]string{}
	var missing []run.SecretRef
	for _, ref := range req.Request.Secrets {
		v, ok := req.Env[ref.Name]
		if !ok {
			missing = append(missing, ref)
			continue
		}
		secrets[ref.Name] = v
	}
	return secrets, missing
}

func secretRefText(ref run.SecretRef) string {
	return fmt.Sprintf("layer %s, version %d", ref.Layer, ref.Version)
}

// redactedError is a runtime's error with the run's secrets redacted from
// its text; errors.Is still sees the original.
type redactedError struct {
	err  error
	text string
}

func (e redactedError) Error() string { return e.text }
func (e redactedError) Unwrap() error { return e.err }

// runSink records what the runtime reports.
type runSink struct {
	rec     *recorder
	chunker *Chunker
	log     zerolog.Logger
	image   string
	// stdout and stderr redact the run's secrets on their way to the
	// chunker.
	stdout, stderr *RedactingWriter
}

func (s *runSink) ContainerCreated(id, digest string) {
	if err := s.rec.record(run.ContainerCreated{ContainerID: id, Image: s.image, ImageDigest: digest}); err != nil {
		s.log.Error().Err(err).Msg("ContainerCreated not recorded")
	}
}

func (s *runSink) ContainerTaken(id, digest string) error {
	return s.rec.recordTaken(run.ContainerCreated{ContainerID: id, Image: s.image, ImageDigest: digest})
}

func (s *runSink) ContainerStarted(id string, warm bool) {
	if err := s.rec.record(run.ContainerStarted{ContainerID: id, Warm: warm}); err != nil {
		s.log.Error().Err(err).Msg("ContainerStarted not recorded")
	}
}

func (s *runSink) Stdout() io.Writer { return s.stdout }
func (s *runSink) Stderr() io.Writer { return s.stderr }

// Held lists the runs this executor holds now, for its heartbeat.
func (e *Executor) Held() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	runs := make([]string, 0, len(e.active))
	for id := range e.active {
		runs = append(runs, id)
	}
	return runs
}

// Slots is how many runs the executor runs at once.
func (e *Executor) Slots() int { return e.cfg.Concurrency }
