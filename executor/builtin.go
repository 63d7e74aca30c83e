package executor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/runbus"
)

// BuiltinConfig configures a BuiltinExecutor. Zero fields take the
// defaults named.
type BuiltinConfig struct {
	Store    eventstore.Store  // required
	Builtins dispatch.Builtins // required: the registry the dispatcher decides with
	Facts    dispatch.Facts    // required: the live facts the builtins read
	// Recorded is told the changes a run recorded, at once, so the facts
	// read their own writes before the log's feed brings them (nil: not
	// told).
	Recorded func([]dispatch.Change)
	// Timeout bounds one run (30s); it ends RunTimedOut past it.
	Timeout time.Duration
	// Actor is the actor of a run's own events ("dispatcher"); the
	// changes it records carry the invoking user.
	Actor  string
	Logger zerolog.Logger
}

// Validate reports what is missing.
func (c BuiltinConfig) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("builtin executor config: Store is required"))
	}
	if c.Builtins == nil {
		errs = append(errs, errors.New("builtin executor config: Builtins is required"))
	}
	if c.Facts == nil {
		errs = append(errs, errors.New("builtin executor config: Facts is required"))
	}
	return errors.Join(errs...)
}

// BuiltinExecutor runs builtin commands (RunRequested with Mode builtin) in
// this process, a sibling of Executor for commands that need no container.
// The dispatcher publishes their runs on runbus.TopicBuiltinRequested, as
// it publishes container runs; each runs with its own context (the run's
// timeout, and shutdown), and what it printed, its end and the changes it
// decided are recorded in one atomic append after its RunRequested. A
// crash leaves all of them or none, and a run without an end is published
// again when the dispatcher resumes; one that ended is never run again.
// Builtins that record changes run one at a time, each deciding on what
// the one before recorded; the others run side by side, so a slow history
// query holds up neither decisions nor other commands.
type BuiltinExecutor struct {
	cfg      BuiltinConfig
	changing sync.Mutex // held by a builtin that may record changes
	base     context.Context
	stop     context.CancelFunc

	mu      sync.Mutex
	active  map[string]bool
	running sync.WaitGroup
}

// NewBuiltinExecutor builds a builtin executor.
func NewBuiltinExecutor(cfg BuiltinConfig) (*BuiltinExecutor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Actor == "" {
		cfg.Actor = "dispatcher"
	}
	base, stop := context.WithCancel(cfg.Logger.WithContext(context.Background()))
	return &BuiltinExecutor{cfg: cfg, base: base, stop: stop, active: map[string]bool{}}, nil
}

// AddHandler subscribes the builtin executor to builtin runs.
func (b *BuiltinExecutor) AddHandler(r *message.Router, requests message.Subscriber) {
	r.AddConsumerHandler("builtin.run_requested", runbus.TopicBuiltinRequested, requests, b.Handle)
}

// Handle is the router handler of runbus.TopicBuiltinRequested: the message
// is acknowledged once the run's end is recorded (or it ended before).
func (b *BuiltinExecutor) Handle(msg *message.Message) error {
	req, err := runbus.DecodeRunRequest(msg)
	if err != nil {
		return err
	}
	return b.Execute(req)
}

// Shutdown ends the runs in flight (their contexts end; a builtin that
// stops early ends failed) and waits for them, or for ctx.
func (b *BuiltinExecutor) Shutdown(ctx context.Context) error {
	b.stop()
	done := make(chan struct{})
	go func() { b.running.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("builtin executor shutdown: runs still in flight: %w", ctx.Err())
	}
}

// Execute runs one builtin run to its recorded end. It returns an error
// when the run could not be looked at or recorded (the store failed) or
// the executor is stopping: the caller delivers it again.
func (b *BuiltinExecutor) Execute(req runbus.RunRequest) error {
	b.running.Add(1)
	defer b.running.Done()
	return b.execute(req)
}

// Start runs req in its own goroutine, which Shutdown waits for; a failure
// is logged. It serves a dispatcher that runs without a message bus
// (InProcessBuiltins).
func (b *BuiltinExecutor) Start(req runbus.RunRequest) {
	b.running.Add(1)
	go func() {
		defer b.running.Done()
		if err := b.execute(req); err != nil {
			b.cfg.Logger.Error().Err(err).Str("run_id", req.RunID).Str("request_id", req.Request.RequestID).Msg("a builtin run was not recorded")
		}
	}()
}

func (b *BuiltinExecutor) execute(req runbus.RunRequest) error {
	log := b.cfg.Logger.With().Str("run_id", req.RunID).Str("request_id", req.Request.RequestID).Logger()
	if err := run.ValidateID(req.RunID); err != nil {
		return fmt.Errorf("%w: %v", runbus.ErrBadMessage, err)
	}
	if req.Request.Mode != dispatch.ModeBuiltin {
		return fmt.Errorf("%w: run %s is not a builtin run (mode %q)", runbus.ErrBadMessage, req.RunID, req.Request.Mode)
	}
	b.mu.Lock()
	if b.active[req.RunID] {
		b.mu.Unlock()
		log.Debug().Msg("builtin run already in flight here; redelivery skipped")
		return nil
	}
	b.active[req.RunID] = true
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.active, req.RunID)
		b.mu.Unlock()
	}()
	ctx := log.WithContext(b.base)
	if ctx.Err() != nil {
		return fmt.Errorf("builtin run %s not started: the executor is stopping", req.RunID)
	}

	// The stored RunRequested dates the output and derives the ids; a run
	// with more than it has ended (an earlier attempt, or a process before
	// a crash, recorded it).
	stored, err := b.cfg.Store.ReadStream(ctx, run.Stream(req.RunID), 0, 2)
	if err != nil {
		return fmt.Errorf("builtin run %s: %w", req.RunID, err)
	}
	if len(stored) == 0 {
		return fmt.Errorf("%w: builtin run %s has no RunRequested in the store", runbus.ErrBadMessage, req.RunID)
	}
	if len(stored) > 1 {
		return nil
	}
	requested := stored[0]

	changes := b.cfg.Builtins.Changes(req.Request)
	if changes {
		b.changing.Lock()
		defer b.changing.Unlock()
	}
	runCtx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	return b.record(runCtx, log, req, requested)
}

// record runs the builtin and appends its changes, output and end after
// its RunRequested, with ids derived from it, so recording the same run
// twice is a no-op. When a stream the builtin changes moved on while it
// ran (another process wrote to it), it runs once more on the new state,
// and after that ends failed, saying so. A builtin answers at once, so its
// output is dated when its run was requested: it plays back at offset 0.
func (b *BuiltinExecutor) record(ctx context.Context, log zerolog.Logger, req runbus.RunRequest, requested domain.RecordedEvent) error {
	md := domain.Metadata{CorrelationID: req.Request.RequestID, CausationID: requested.ID.String(), Actor: b.cfg.Actor}
	changeMD := md
	if req.Request.Invocation.Username != "" {
		changeMD.Actor = req.Request.Invocation.Username // who ran the command made the change
	}
	var err error
	for attempt := 0; ; attempt++ {
		var out dispatch.BuiltinRun
		switch {
		case attempt < 2:
			out = b.cfg.Builtins.Execute(ctx, req.Request, req.RunID, b.cfg.Facts, requested.RecordedAt)
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				// Past its time, whatever it made of that: no changes.
				out = dispatch.BuiltinRun{Events: dispatch.OutputEvents(run.RunTimedOut{TimeoutMS: b.cfg.Timeout.Milliseconds()}, requested.RecordedAt)}
			}
		default:
			// Still conflicting: end the run failed, with no changes.
			reason := fmt.Sprintf("%s changed while this command ran; run it again", conflictStream(err))
			out = dispatch.BuiltinRun{Events: dispatch.OutputEvents(run.RunFailed{Reason: reason, Result: dispatch.BodyResult(reason)}, requested.RecordedAt)}
		}
		parts, perr := builtinParts(requested.ID, req.RunID, out, md, changeMD)
		if perr != nil {
			return fmt.Errorf("%w: builtin run %s: %v", runbus.ErrBadMessage, req.RunID, perr)
		}
		// The record outlives the run's timeout: a run that timed out is
		// recorded so.
		recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		_, err = b.cfg.Store.AppendMulti(recordCtx, parts...)
		cancel()
		var conflict *eventstore.VersionConflictError
		switch {
		case err == nil:
			if b.cfg.Recorded != nil && len(out.Changes) > 0 {
				b.cfg.Recorded(out.Changes)
			}
			return nil
		case errors.As(err, &conflict) && conflict.Stream == run.Stream(req.RunID):
			return nil // the run already ended: recorded by an earlier attempt or process
		case errors.As(err, &conflict) && attempt < 2:
			log.Info().Str("stream", conflict.Stream).Msg("a stream the builtin changes moved on while it ran; running it again")
			continue
		default:
			return fmt.Errorf("append the builtin run %s: %w", req.RunID, err)
		}
	}
}

func conflictStream(err error) string {
	var conflict *eventstore.VersionConflictError
	if errors.As(err, &conflict) {
		return conflict.Stream
	}
	return "a stream"
}

// builtinParts encodes a builtin run's changes and its own events with ids
// derived from its RunRequested: its changes first, then its run stream.
func builtinParts(requested uuid.UUID, runID string, out dispatch.BuiltinRun, md, changeMD domain.Metadata) ([]eventstore.StreamAppend, error) {
	parts, err := dispatch.EncodeChanges(out.Changes, changeMD, requested)
	if err != nil {
		return nil, err
	}
	events, err := dispatch.BuiltinRunEvents(requested, out.Events, md)
	if err != nil {
		return nil, err
	}
	return append(parts, eventstore.StreamAppend{Stream: run.Stream(runID), Expected: eventstore.Exact(0), Events: events}), nil
}

// InProcessBuiltins is the publisher of a dispatcher that runs without a
// message bus (benchmarks, tests of the dispatcher and its readers): it
// hands builtin runs straight to a builtin executor, each in its own
// goroutine, and every other message to Next (nil: dropped).
type InProcessBuiltins struct {
	Executor *BuiltinExecutor
	Next     message.Publisher
}

// Publish implements message.Publisher.
func (p InProcessBuiltins) Publish(topic string, msgs ...*message.Message) error {
	if topic != runbus.TopicBuiltinRequested {
		if p.Next == nil {
			return nil
		}
		return p.Next.Publish(topic, msgs...)
	}
	for _, msg := range msgs {
		req, err := runbus.DecodeRunRequest(msg)
		if err != nil {
			return err
		}
		p.Executor.Start(req)
	}
	return nil
}

// Close implements message.Publisher; the executor is shut down on its own.
func (p InProcessBuiltins) Close() error { return nil }
