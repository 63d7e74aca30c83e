package export

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain/bundleconfig"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/internal/supervisor"
)

// Sink delivers records to one destination.
type Sink interface {
	// Send delivers records, in order, and returns once the destination
	// acknowledged every one: fsync for a file, a write and flush for
	// syslog, a 2xx for a webhook. An error means some may not have
	// arrived; they are all sent again.
	Send(ctx context.Context, records []Record) error
	// Close releases the sink's file or connection.
	Close() error
}

// idler is a sink with work to do while the log is quiet: a file due for
// rotation, a connection whose receiver went away.
type idler interface {
	Idle(ctx context.Context) error
}

// rewinder is a sink that can lose what it had been told was delivered
// (syslog over TCP has no acknowledgement of its own): after a failure,
// Rewind is the position to send again from, 0 for none.
type rewinder interface {
	Rewind() int64
}

// resumer is a sink that holds durably what it received (a file): Holds
// is the last position it holds, 0 when it cannot tell.
type resumer interface {
	Holds() int64
}

// Options are what an Exporter runs on.
type Options struct {
	Store   eventstore.Store
	Cursors Cursors
	// Vault reveals a webhook's HMAC key named by SECRET (nil: only
	// SECRET_FILE works).
	Vault  bundleconfig.Vault
	Logger zerolog.Logger
	// Now is the clock (time.Now).
	Now func() time.Time
	// NewBackOff gives the delays between attempts at one batch
	// (exponential from 500ms to 30s with jitter, never giving up).
	NewBackOff func() backoff.BackOff
	// SafetyNet bounds how long a quiet exporter trusts the store's change
	// signal alone (5s), as eventstore.Follow does.
	SafetyNet time.Duration
	// NewSink replaces the sink the destination's kind makes (tests).
	NewSink func(ctx context.Context) (Sink, error)
}

// Exporter follows the log for one destination.
type Exporter struct {
	cfg  Config
	opts Options
	log  zerolog.Logger
}

// New builds the exporter of one destination.
func New(cfg Config, opts Options) (*Exporter, error) {
	if opts.Store == nil || opts.Cursors.Read == nil || opts.Cursors.Write == nil || opts.Cursors.Rebind == nil {
		return nil, errors.New("export: a store and its cursors are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NewBackOff == nil {
		opts.NewBackOff = func() backoff.BackOff {
			b := backoff.NewExponentialBackOff()
			b.InitialInterval, b.MaxInterval = 500*time.Millisecond, 30*time.Second
			return b
		}
	}
	if opts.SafetyNet <= 0 {
		opts.SafetyNet = 5 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	x := &Exporter{cfg: cfg, opts: opts, log: opts.Logger.With().Str("export", cfg.Name).Str("type", string(cfg.Kind)).Logger()}
	if opts.NewSink == nil {
		x.opts.NewSink = x.newSink
	}
	return x, nil
}

// Name is the destination's name.
func (x *Exporter) Name() string { return x.cfg.Name }

func (x *Exporter) newSink(ctx context.Context) (Sink, error) {
	switch x.cfg.Kind {
	case KindFile:
		return openFileSink(x.cfg, x.opts.Now)
	case KindSyslog:
		return newSyslogSink(x.cfg, x.opts.Now)
	case KindWebhook:
		key, err := loadHMACKey(ctx, x.cfg, x.opts.Store, x.opts.Vault)
		if err != nil {
			return nil, err
		}
		return newWebhookSink(x.cfg, key, x.opts.Now), nil
	}
	return nil, fmt.Errorf("export %s: no sink for type %q", x.cfg.Name, x.cfg.Kind)
}

// Run follows the log from the destination's cursor until ctx ends. It
// is a part of the server's supervisor: a store it cannot read or a
// cursor it cannot write ends it with the error, and the supervisor runs
// it again after a backoff, from the stored cursor. A destination that
// does not take a batch is tried again with backoff, for as long as it
// takes, while the part reports itself degraded; appends and the other
// destinations never wait for it.
func (x *Exporter) Run(ctx context.Context) error {
	cur, err := x.start(ctx)
	if err != nil {
		return x.quiet(ctx, fmt.Errorf("export %s: the cursor: %w", x.cfg.Name, err))
	}
	var sink Sink
	retry := x.opts.NewBackOff()
	for sink == nil {
		if sink, err = x.opts.NewSink(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// A key file or directory that is wrong now may be fixed
			// without a restart of the server: keep trying, and say why.
			x.failed(ctx, err)
			if !x.wait(ctx, retry.NextBackOff()) {
				return nil
			}
		}
	}
	defer func() {
		if err := sink.Close(); err != nil {
			x.log.Warn().Err(err).Msg("closing the export destination")
		}
	}()
	if r, ok := sink.(resumer); ok {
		if held := r.Holds(); held > cur.Position {
			// Written and synced before a stop that came ahead of the
			// cursor's write: the file has them, so they are not sent twice.
			if cur, err = x.ackThrough(ctx, cur.Position, held); err != nil {
				return x.quiet(ctx, err)
			}
		}
	}
	stored, next := cur.Position, cur.Position+1
	x.log.Info().Int64("from", next).Msg("exporting")
	timer := time.NewTimer(x.opts.SafetyNet)
	defer timer.Stop()
	for {
		changed := x.opts.Store.Changed()
		events, err := x.opts.Store.ReadAll(ctx, next, x.cfg.Batch)
		if err != nil {
			return x.quiet(ctx, fmt.Errorf("export %s: read the log from position %d: %w", x.cfg.Name, next, err))
		}
		if len(events) == 0 {
			supervisor.Ready(ctx)
			if i, ok := sink.(idler); ok {
				if err := i.Idle(ctx); err != nil {
					x.failed(ctx, err)
					if p := x.rewound(sink, next); p > 0 {
						if err = x.moveBack(ctx, stored, p); err != nil {
							return x.quiet(ctx, err)
						}
						stored, next = p-1, p
						continue
					}
				}
			}
			timer.Reset(x.opts.SafetyNet)
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
			case <-timer.C:
			}
			continue
		}
		records := make([]Record, len(events))
		for i, e := range events {
			records[i] = NewRecord(e)
		}
		rewindTo, err := x.deliver(ctx, sink, records)
		if err != nil {
			return x.quiet(ctx, err)
		}
		if rewindTo > 0 {
			if err = x.moveBack(ctx, stored, rewindTo); err != nil {
				return x.quiet(ctx, err)
			}
			stored, next = rewindTo-1, rewindTo
			continue
		}
		last := events[len(events)-1]
		if err := x.opts.Cursors.Ack(ctx, x.cfg.Name, stored, last.Position, hex.EncodeToString(last.Hash), last.RecordedAt, x.opts.Now()); err != nil {
			return x.quiet(ctx, fmt.Errorf("export %s: store the cursor at %d: %w", x.cfg.Name, last.Position, err))
		}
		stored = last.Position
		supervisor.Ready(ctx)
		x.log.Debug().Int64("from", records[0].Position).Int64("to", last.Position).Msg("exported")
		next = last.Position + 1
	}
}

// quiet is err, or nil once ctx has ended (a stop, not a failure). The
// error is stored for `export status` too, when the store takes it.
func (x *Exporter) quiet(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	_ = x.opts.Cursors.Fail(ctx, x.cfg.Name, err.Error(), x.opts.Now())
	return err
}

// start loads the cursor, storing the first one: before position 1, or
// at the head for a destination that starts there.
func (x *Exporter) start(ctx context.Context) (Cursor, error) {
	cur, ok, err := x.opts.Cursors.Load(ctx, x.cfg.Name)
	if err != nil || ok {
		return cur, err
	}
	if x.cfg.From == FromHead {
		if head, _, err := x.opts.Store.Head(ctx); err != nil {
			return cur, err
		} else if head > 0 {
			if cur, err = x.cursorAt(ctx, head); err != nil {
				return cur, err
			}
		}
	}
	if err := x.opts.Cursors.Init(ctx, cur); err != nil {
		return cur, err
	}
	cur, _, err = x.opts.Cursors.Load(ctx, x.cfg.Name)
	return cur, err
}

// cursorAt is a cursor just after the event at position.
func (x *Exporter) cursorAt(ctx context.Context, position int64) (Cursor, error) {
	cur := Cursor{Destination: x.cfg.Name}
	if position < 1 {
		return cur, nil
	}
	events, err := x.opts.Store.ReadAll(ctx, position, 1)
	if err != nil {
		return cur, err
	}
	if len(events) == 0 || events[0].Position != position {
		return cur, fmt.Errorf("position %d is not in the log", position)
	}
	cur.Position, cur.Hash, cur.RecordedAt = position, hex.EncodeToString(events[0].Hash), events[0].RecordedAt
	return cur, nil
}

// ackThrough moves the cursor from stored to just after position.
func (x *Exporter) ackThrough(ctx context.Context, stored, position int64) (Cursor, error) {
	cur, err := x.cursorAt(ctx, position)
	if err != nil {
		return cur, fmt.Errorf("export %s: the destination holds position %d: %w", x.cfg.Name, position, err)
	}
	if err := x.opts.Cursors.Ack(ctx, x.cfg.Name, stored, cur.Position, cur.Hash, cur.RecordedAt, x.opts.Now()); err != nil {
		return cur, fmt.Errorf("export %s: store the cursor at %d: %w", x.cfg.Name, position, err)
	}
	return cur, nil
}

// moveBack stores the cursor just before position, so a stop now still
// sends again what the destination may have lost.
func (x *Exporter) moveBack(ctx context.Context, stored, position int64) error {
	x.log.Warn().Int64("from", position).Msg("the destination may have lost what it was sent before its connection broke: sending it again")
	_, err := x.ackThrough(ctx, stored, position-1)
	return err
}

// deliver sends one batch until the destination takes it, backing off
// between attempts. It returns a position to go back to when the sink
// says it lost earlier records, and an error only when the cursor cannot
// record a failure (the store is down).
func (x *Exporter) deliver(ctx context.Context, sink Sink, records []Record) (int64, error) {
	b := x.opts.NewBackOff()
	for {
		err := sink.Send(ctx, records)
		if err == nil {
			return 0, nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		x.failed(ctx, err)
		if p := x.rewound(sink, records[0].Position); p > 0 {
			return p, nil
		}
		if !x.wait(ctx, b.NextBackOff()) {
			return 0, ctx.Err()
		}
	}
}

// rewound is where a rewinding sink wants to go back to, when that is
// before next.
func (x *Exporter) rewound(sink Sink, next int64) int64 {
	if r, ok := sink.(rewinder); ok {
		if p := r.Rewind(); p > 0 && p < next {
			return p
		}
	}
	return 0
}

// failed records a failure to deliver: logged, stored for `export
// status`, and the part reported degraded. The error never holds a
// secret: sinks name a webhook by its address without credentials.
func (x *Exporter) failed(ctx context.Context, err error) {
	x.log.Warn().Err(err).Msg("export destination not reachable; retrying")
	supervisor.Unready(ctx, err)
	if ferr := x.opts.Cursors.Fail(ctx, x.cfg.Name, err.Error(), x.opts.Now()); ferr != nil && ctx.Err() == nil {
		x.log.Warn().Err(ferr).Msg("recording the export failure")
	}
}

func (x *Exporter) wait(ctx context.Context, d time.Duration) bool {
	if d == backoff.Stop {
		d = 30 * time.Second
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
