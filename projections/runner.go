package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/internal/stmtcache"
	"github.com/logbookhq/logbook/internal/supervisor"
)

// Source is the event store together with the database its views live in.
// *sqlstore.Store (and so the postgres and sqlite adapters) implements it.
type Source interface {
	eventstore.Store
	// DB is the read pool.
	DB() *sql.DB
	// ViewsWriteDB is the pool views are written through (on SQLite one
	// IMMEDIATE connection to the views file, whose commits do not wait
	// for the disk).
	ViewsWriteDB() *sql.DB
	// Dialect is "postgres" or "sqlite".
	Dialect() string
}

// DBOf is the database of a Source.
func DBOf(src Source) DB {
	return DB{Read: src.DB(), Write: src.ViewsWriteDB(), Dialect: src.Dialect()}
}

// Event is a recorded event with its typed payload, decoded once for every
// view that folds its type.
type Event struct {
	domain.RecordedEvent
	Payload domain.Payload
}

// Batch is what one view transaction applies: the view's events among the
// positions read, in order, and the position its checkpoint advances to
// (the last position read, which may be past the last event of Events).
type Batch struct {
	Events []Event
	Last   int64
}

// Env is what a view may use to ready itself.
type Env struct {
	DB    DB
	Store eventstore.Store
}

// Projection is one view. The runner hands it, in global order and
// exactly once, every event of its Types, in batches; each batch is applied
// and the checkpoint advanced in one transaction.
type Projection interface {
	// Name is the view's checkpoint name, stable forever.
	Name() string
	// Types lists the event types the view folds. Others, and events of
	// types this build does not know, never reach Apply.
	Types() []string
	// Tables lists the view's tables; a rebuild empties them.
	Tables() []string
	// Open readies in-memory state (if any) to resume after checkpoint,
	// when the tables hold everything up to it.
	Open(ctx context.Context, env Env, checkpoint int64) error
	// Apply folds a batch into the view's tables inside tx. An error about
	// one event should be an *EventError naming it.
	Apply(ctx context.Context, tx *Tx, batch Batch) error
	// Committed is called once the batch's transaction committed.
	Committed(last int64)
}

// EventError says which event a view could not apply.
type EventError struct {
	Position int64
	Type     string
	Err      error
}

func (e *EventError) Error() string {
	return fmt.Sprintf("event at position %d (%s): %v", e.Position, e.Type, e.Err)
}

func (e *EventError) Unwrap() error { return e.Err }

// ErrViewFailed is the kind of every error that stops a view.
var ErrViewFailed = errors.New("view failed")

// ViewError stops one view; the others go on.
type ViewError struct {
	View string
	Err  error
}

func (e *ViewError) Error() string {
	return fmt.Sprintf("projection %s stopped: %v", e.View, e.Err)
}

func (e *ViewError) Unwrap() []error { return []error{ErrViewFailed, e.Err} }

// Config tunes a Runner. The zero value is good.
type Config struct {
	// BatchSize is how many positions of the log one read covers and one
	// view transaction applies at most (default 20000, at most 100000).
	BatchSize int
	// SafetyNet bounds how long a live runner trusts the store's change
	// signal alone before it reads again (default 5s).
	SafetyNet time.Duration
	// Quiet and MaxGather shape a live runner's batches: woken by an
	// append, it waits until no append has come for Quiet (2ms), but no
	// longer than MaxGather (100ms) in all, so that under load one batch
	// takes many requests' events, and a lone append is applied a couple
	// of milliseconds later. While the log grows by more than
	// busyEventsPerSecond, the runner waits BusyQuiet (20ms) instead:
	// a run's events, coming over some milliseconds, then fold into one
	// write of its rows (warm runs took 9% less of the server's CPU,
	// docs/benchmarks.md). Quiet below zero applies at once.
	Quiet, BusyQuiet, MaxGather time.Duration
	// LiveBatchSize is how many positions one step applies at most once
	// the views are less than BatchSize behind (default 1000): a view
	// holds SQLite's one write connection for one step at a time, and an
	// append waits for at most that (a step of 100 ms of builtin requests,
	// some 14,000 events, pushed their p99 over 50 ms).
	LiveBatchSize int
}

// busyEventsPerSecond is the rate of the log's growth past which a live
// runner gathers for BusyQuiet.
const busyEventsPerSecond = 500

// Runner feeds views from the ordered log, each from its own checkpoint.
// One Runner per view at a time is expected; a second one on the same view
// finds its checkpoint moved and stops that view instead of applying twice.
type Runner struct {
	src   Source
	feed  FeedReader
	db    DB
	cfg   Config
	views []*viewState

	// stepping serializes reads and applies (CatchUp, Run, Rebuild); mu
	// guards the views' checkpoints and errors, which others read while a
	// step applies.
	stepping   sync.Mutex
	analyzedAt int64 // the log's head when the views' statistics were last refreshed
	mu         sync.Mutex
	changed    chan struct{} // closed and replaced after every commit
	opened     bool
	// stmts prepares the views' statements once, on SQLite (nil elsewhere).
	stmts *stmtcache.Cache
	// interrupted is the first failure of this step that a retry can get
	// past (a lost connection, a failed commit): the step ends with it,
	// the view does not stop, and the next step opens the views again at
	// their stored checkpoints. Written by the views' goroutines under mu.
	interrupted error
}

// FeedReader is the lean read of the ordered log that views replay:
// positions from through to (inclusive), only the events of the given
// types, with their position, stream, version, type, data and recording
// time.
// *sqlstore.Store implements it; a Source without it is read with ReadAll.
type FeedReader interface {
	ReadFeed(ctx context.Context, from, to int64, types []string) ([]domain.RecordedEvent, error)
}

// readAllFeed adapts ReadAll to FeedReader.
type readAllFeed struct{ store eventstore.Store }

func (f readAllFeed) ReadFeed(ctx context.Context, from, to int64, types []string) ([]domain.RecordedEvent, error) {
	wanted := map[string]bool{}
	for _, t := range types {
		wanted[t] = true
	}
	var out []domain.RecordedEvent
	for from <= to {
		events, err := eventstore.ReadLive(ctx, f.store, from, int(min(to-from+1, 10000)))
		if err != nil {
			return nil, err
		}
		if len(events) == 0 {
			break
		}
		for _, e := range events {
			if e.Position > to {
				return out, nil
			}
			if len(types) == 0 || wanted[e.Type] {
				out = append(out, e)
			}
		}
		from = events[len(events)-1].Position + 1
	}
	return out, nil
}

type viewState struct {
	p          Projection
	types      map[string]bool
	checkpoint int64
	err        error
}

// NewRunner builds a runner over src for views (names must be unique).
func NewRunner(src Source, cfg Config, views ...Projection) (*Runner, error) {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 20000
	}
	cfg.BatchSize = min(cfg.BatchSize, 100000)
	if cfg.SafetyNet <= 0 {
		cfg.SafetyNet = 5 * time.Second
	}
	if cfg.LiveBatchSize <= 0 {
		cfg.LiveBatchSize = 1000
	}
	cfg.LiveBatchSize = min(cfg.LiveBatchSize, cfg.BatchSize)
	if cfg.Quiet == 0 {
		cfg.Quiet = 2 * time.Millisecond
	}
	if cfg.BusyQuiet == 0 {
		cfg.BusyQuiet = 20 * time.Millisecond
	}
	if cfg.MaxGather <= 0 {
		cfg.MaxGather = 100 * time.Millisecond
	}
	r := &Runner{src: src, db: DBOf(src), cfg: cfg, changed: make(chan struct{})}
	if r.db.Dialect == "sqlite" {
		r.stmts = stmtcache.New(r.db.Write)
	}
	r.feed, _ = src.(FeedReader)
	if r.feed == nil {
		r.feed = readAllFeed{src}
	}
	seen := map[string]bool{}
	for _, p := range views {
		if seen[p.Name()] {
			return nil, fmt.Errorf("projection %s is given twice", p.Name())
		}
		seen[p.Name()] = true
		types := map[string]bool{}
		for _, t := range p.Types() {
			types[t] = true
		}
		r.views = append(r.views, &viewState{p: p, types: types})
	}
	return r, nil
}

// Names lists the runner's views in order.
func (r *Runner) Names() []string {
	names := make([]string, len(r.views))
	for i, v := range r.views {
		names[i] = v.p.Name()
	}
	return names
}

// Open reads each view's checkpoint (creating it at 0) and readies the
// views to resume after it. CatchUp, Run and Rebuild call it when needed.
func (r *Runner) Open(ctx context.Context) error {
	r.stepping.Lock()
	defer r.stepping.Unlock()
	return r.open(ctx, r.views)
}

// open readies views at their checkpoints, recreating first any indexes
// a rebuild that stopped half way left dropped; the caller holds
// r.stepping.
func (r *Runner) open(ctx context.Context, views []*viewState) error {
	for _, v := range views {
		if err := restoreIndexes(ctx, r.db, v.p.Tables()); err != nil {
			return fmt.Errorf("open projection %s: %w", v.p.Name(), err)
		}
	}
	return r.openAfterReset(ctx, views)
}

// openAfterReset is open without recreating indexes, for views a rebuild
// has just emptied.
func (r *Runner) openAfterReset(ctx context.Context, views []*viewState) error {
	for _, v := range views {
		name := v.p.Name()
		if _, err := r.db.Write.ExecContext(ctx, r.db.rebind("INSERT INTO view_checkpoints (name, position) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING"), name); err != nil {
			return fmt.Errorf("create checkpoint of %s: %w", name, err)
		}
		var position int64
		if err := r.db.Read.QueryRowContext(ctx, r.db.rebind("SELECT position FROM view_checkpoints WHERE name = $1"), name).Scan(&position); err != nil {
			return fmt.Errorf("read checkpoint of %s: %w", name, err)
		}
		if err := v.p.Open(ctx, Env{DB: r.db, Store: r.src}, position); err != nil {
			return fmt.Errorf("open projection %s at position %d: %w", name, position, err)
		}
		r.mu.Lock()
		v.checkpoint, v.err = position, nil
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.opened = true
	r.mu.Unlock()
	return nil
}

func (r *Runner) ensureOpen(ctx context.Context) error {
	r.mu.Lock()
	opened := r.opened
	r.mu.Unlock()
	if opened {
		return nil
	}
	return r.Open(ctx)
}

// Progress reports a catch-up: the position reached by the slowest healthy
// view, the head when the catch-up began, and the events read so far.
// Indexing is set once a rebuild has read everything and builds the
// indexes it dropped.
type Progress struct {
	Position int64
	Head     int64
	Read     int64
	Indexing bool
}

// Stats sums up a catch-up or rebuild.
type Stats struct {
	Events   int64         `json:"events"` // positions of the log read
	Head     int64         `json:"head"`
	Duration time.Duration `json:"-"`
}

// EventsPerSecond is the read rate of the catch-up.
func (s Stats) EventsPerSecond() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Events) / s.Duration.Seconds()
}

// CatchUp applies everything stored up to the current head, then returns.
// Views that fail are reported in the returned error (joined *ViewError);
// the others are caught up all the same.
func (r *Runner) CatchUp(ctx context.Context, progress func(Progress)) (Stats, error) {
	if err := r.ensureOpen(ctx); err != nil {
		return Stats{}, err
	}
	r.stepping.Lock()
	defer r.stepping.Unlock()
	stats, err := r.catchUp(ctx, progress)
	if err != nil {
		return stats, err
	}
	r.refreshStatistics(ctx)
	return stats, r.failures()
}

// fetched is one read of the log, decoded once for every view: the events
// of the types some healthy view folds among positions from..to.
type fetched struct {
	from, to   int64
	events     []Event
	decodeErrs map[int64]error
}

// catchUp reads the log from the slowest healthy view's checkpoint up to
// the head, in batches, and applies each batch to every healthy view that
// has not seen it, the views in parallel, each in its own transactions.
// The next batch is read and decoded while the views apply this one. The
// error is a failed read or ctx's; a view that stops is recorded in its
// state (see failures). The caller holds r.stepping.
func (r *Runner) catchUp(ctx context.Context, progress func(Progress)) (Stats, error) {
	start := time.Now()
	head, _, err := r.src.Head(ctx)
	if err != nil {
		return Stats{}, err
	}
	stats := Stats{Head: head}
	from, types, ok := r.plan()
	if !ok || from > head {
		stats.Duration = time.Since(start)
		return stats, nil
	}
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	batches := make(chan fetched, 2)
	var readErr error // written before batches is closed
	go func() {
		defer close(batches)
		for pos := from; pos <= head; {
			size := r.cfg.BatchSize
			if head-pos < int64(r.cfg.BatchSize) {
				size = r.cfg.LiveBatchSize // near the head: short steps
			}
			to := min(pos+int64(size)-1, head)
			f, err := r.fetch(readCtx, pos, to, types)
			if err != nil {
				readErr = err
				return
			}
			select {
			case batches <- f:
			case <-readCtx.Done():
				return
			}
			pos = to + 1
		}
	}()
	defer func() {
		stopReading()
		for range batches { // let the reader finish before returning
		}
	}()
	for f := range batches {
		r.applyAll(ctx, f)
		if ctx.Err() != nil {
			stats.Duration = time.Since(start)
			return stats, ctx.Err()
		}
		if err := r.takeInterruption(); err != nil {
			stats.Duration = time.Since(start)
			return stats, err
		}
		stats.Events += f.to - f.from + 1
		if progress != nil {
			progress(Progress{Position: r.low(), Head: head, Read: stats.Events})
		}
		if r.healthy() == 0 {
			// Every view stopped: nothing left to read for (the deferred
			// drain waits for the reader; its error no longer matters).
			stats.Duration = time.Since(start)
			return stats, nil
		}
	}
	// batches is closed: the reader has returned, and readErr is settled.
	stats.Duration = time.Since(start)
	if readErr != nil && ctx.Err() == nil {
		return stats, readErr
	}
	return stats, ctx.Err()
}

// takeInterruption returns the step's interruption, if a view had one, and
// marks the views to be opened again from their stored checkpoints: a
// commit whose outcome is unknown may have moved one.
func (r *Runner) takeInterruption() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.interrupted
	if err != nil {
		r.interrupted = nil
		r.opened = false
	}
	return err
}

// minEventsBetweenAnalyses keeps a young log from being analyzed at every
// doubling; tests lower it.
var minEventsBetweenAnalyses int64 = 5000

// refreshStatistics analyzes the healthy views' tables on SQLite each time
// the log has doubled since they were last analyzed by this runner (at
// least 5000 events), so the planner's picture grows with the tables.
// Postgres analyzes on its own (autovacuum). A failure only costs speed, so
// it is logged. The caller holds r.stepping.
func (r *Runner) refreshStatistics(ctx context.Context) {
	low := r.low()
	if r.db.Dialect != "sqlite" || low < 2*r.analyzedAt || low-r.analyzedAt < minEventsBetweenAnalyses {
		return
	}
	var tables []string
	r.mu.Lock()
	for _, v := range r.views {
		if v.err == nil {
			tables = append(tables, v.p.Tables()...)
		}
	}
	r.mu.Unlock()
	if err := analyze(ctx, r.db, tables); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("refreshing the views' statistics failed; history queries may pick slower plans")
		return
	}
	r.analyzedAt = low
}

// plan is where the next read starts (after the slowest healthy view's
// checkpoint) and the event types the healthy views fold; ok is false when
// no view is healthy.
func (r *Runner) plan() (from int64, types []string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	wanted := map[string]bool{}
	for _, v := range r.views {
		if v.err != nil {
			continue
		}
		if !ok || v.checkpoint+1 < from {
			from = v.checkpoint + 1
		}
		ok = true
		for t := range v.types {
			wanted[t] = true
		}
	}
	types = slices.Sorted(mapKeys(wanted))
	return from, types, ok
}

// fetch reads positions from..to, only the given types, and decodes them.
func (r *Runner) fetch(ctx context.Context, from, to int64, types []string) (fetched, error) {
	recorded, err := r.feed.ReadFeed(ctx, from, to, types)
	if err != nil {
		return fetched{}, fmt.Errorf("read the log from position %d to %d: %w", from, to, err)
	}
	f := fetched{from: from, to: to, events: make([]Event, 0, len(recorded))}
	for _, e := range recorded {
		p, err := domain.Decode(e)
		if err != nil {
			if f.decodeErrs == nil {
				f.decodeErrs = map[int64]error{}
			}
			f.decodeErrs[e.Position] = err
		}
		f.events = append(f.events, Event{RecordedEvent: e, Payload: p})
	}
	return f, nil
}

// Run catches up, then follows the log as it grows until ctx ends (nil).
// It reports itself ready to its supervisor once caught up. A failure a
// retry can get past (a lost connection) ends Run with the error, and the
// next Run resumes every view from its stored checkpoint. A view that
// stops on an event it cannot read is logged and reported by Status; the
// others go on, and when none is left Run reports itself unready and
// waits for ctx, since restarting cannot help.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.ensureOpen(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	timer := time.NewTimer(r.cfg.SafetyNet)
	defer timer.Stop()
	var lastStep time.Time
	for {
		// Subscribe before reading, so an append between the read and the
		// wait still wakes us.
		changed := r.src.Changed()
		r.stepping.Lock()
		step := time.Now()
		stats, err := r.catchUp(ctx, nil)
		busy := busyGrowth(stats.Events, step.Sub(lastStep))
		lastStep = step
		if err == nil {
			r.refreshStatistics(ctx)
		}
		r.stepping.Unlock()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if r.healthy() == 0 {
			supervisor.Unready(ctx, r.failures())
			<-ctx.Done()
			return nil
		}
		supervisor.Ready(ctx)
		timer.Reset(r.cfg.SafetyNet)
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			if !r.gather(ctx, busy) {
				return nil
			}
		case <-timer.C:
		}
	}
}

// gather waits, after a wake, while appends keep coming (see Config.Quiet
// and MaxGather), so the next step applies them in one batch; busy says the
// log grew faster than busyEventsPerSecond over the last step. It reports
// false when ctx ended.
func (r *Runner) gather(ctx context.Context, busy bool) bool {
	if r.cfg.Quiet < 0 {
		return true
	}
	wait := r.cfg.Quiet
	if busy {
		wait = r.cfg.BusyQuiet
	}
	deadline := time.NewTimer(r.cfg.MaxGather)
	defer deadline.Stop()
	quiet := time.NewTimer(wait)
	defer quiet.Stop()
	for {
		changed := r.src.Changed()
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return true
		case <-quiet.C:
			return true
		case <-changed:
			quiet.Reset(wait)
		}
	}
}

// busyGrowth says whether a log that grew by events positions in the time
// since the last step grows faster than busyEventsPerSecond.
func busyGrowth(events int64, since time.Duration) bool {
	return since > 0 && float64(events) > busyEventsPerSecond*since.Seconds()
}

// Rebuild empties the named views (every view when names is empty) and
// resets their checkpoints to 0 in one transaction each, then catches them
// up from the start of the log. Views not named keep their rows and
// checkpoints.
func (r *Runner) Rebuild(ctx context.Context, names []string, progress func(Progress)) (Stats, error) {
	targets, err := r.pick(names)
	if err != nil {
		return Stats{}, err
	}
	start := time.Now()
	r.stepping.Lock()
	defer r.stepping.Unlock()
	restoreCache, err := r.growSQLiteCache(ctx)
	if err != nil {
		return Stats{}, err
	}
	defer restoreCache()
	r.mu.Lock()
	opened := r.opened
	r.mu.Unlock()
	if !opened {
		// Only the views kept as they are need readying at their
		// checkpoints; readying the rebuilt ones there first would replay
		// the log for nothing.
		var kept []*viewState
		for _, v := range r.views {
			if !slices.Contains(targets, v) {
				kept = append(kept, v)
			}
		}
		if err := r.open(ctx, kept); err != nil {
			return Stats{}, err
		}
	}
	for _, v := range targets {
		if err := r.reset(ctx, v); err != nil {
			return Stats{}, err
		}
	}
	if err := r.openAfterReset(ctx, targets); err != nil {
		return Stats{}, err
	}
	stats, err := r.catchUp(ctx, progress)
	if err != nil {
		return stats, err
	}
	if progress != nil {
		progress(Progress{Position: r.low(), Head: stats.Head, Read: stats.Events, Indexing: true})
	}
	// Even a view that stopped gets its indexes back: it holds what it
	// applied, and the API reads it. Each table's indexes are built on
	// their own connection, so the tables are indexed side by side (on
	// SQLite the single write connection takes them in turn).
	var (
		wg     sync.WaitGroup
		errsMu sync.Mutex
		errs   []error
	)
	for _, v := range targets {
		for _, table := range v.p.Tables() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := restoreIndexes(ctx, r.db, []string{table})
				if err == nil {
					err = analyze(ctx, r.db, []string{table})
				}
				if err != nil {
					errsMu.Lock()
					errs = append(errs, fmt.Errorf("projection %s: %w", v.p.Name(), err))
					errsMu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return stats, err
	}
	r.analyzedAt = stats.Head
	stats.Duration = time.Since(start)
	return stats, r.failures()
}

// rebuildCacheKiB is SQLite's page cache for the write connection during a
// rebuild: the views' primary keys take rows in random order, and with the
// default 2 MB cache nearly every insert reads its index pages back from
// the file, one system call each.
const rebuildCacheKiB = 256 * 1024

// growSQLiteCache raises the write connection's page cache for a rebuild
// and returns what puts it back. Elsewhere it does nothing.
func (r *Runner) growSQLiteCache(ctx context.Context) (restore func(), err error) {
	if r.db.Dialect != "sqlite" {
		return func() {}, nil
	}
	// The write pool is one connection, so the pragma stays with it.
	var old int64
	if err := r.db.Write.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&old); err != nil {
		return nil, fmt.Errorf("read the SQLite cache size: %w", err)
	}
	if _, err := r.db.Write.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = -%d", rebuildCacheKiB)); err != nil {
		return nil, fmt.Errorf("grow the SQLite cache for the rebuild: %w", err)
	}
	return func() {
		if _, err := r.db.Write.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA cache_size = %d", old)); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("could not put the SQLite cache size back after the rebuild")
		}
	}, nil
}

func (r *Runner) pick(names []string) ([]*viewState, error) {
	if len(names) == 0 {
		return r.views, nil
	}
	var out []*viewState
	for _, name := range names {
		i := slices.IndexFunc(r.views, func(v *viewState) bool { return v.p.Name() == name })
		if i < 0 {
			return nil, fmt.Errorf("no projection named %q; the projections are %v", name, r.Names())
		}
		out = append(out, r.views[i])
	}
	return out, nil
}

// Emptier is a view that empties its own tables for a rebuild, in the
// rebuild's transaction, before the runner deletes what is left.
type Emptier interface {
	Empty(ctx context.Context, tx *sql.Tx, dialect string) error
}

func (r *Runner) reset(ctx context.Context, v *viewState) error {
	tx, err := r.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if e, ok := v.p.(Emptier); ok {
		if err := e.Empty(ctx, tx, r.db.Dialect); err != nil {
			return fmt.Errorf("empty %s: %w", v.p.Name(), err)
		}
	}
	for _, table := range v.p.Tables() {
		if err := deferIndexes(ctx, tx, r.db, table); err != nil {
			return err
		}
		empty := "DELETE FROM " + table
		if r.db.Dialect == "postgres" {
			empty = "TRUNCATE " + table // no dead rows left for the rebuild to wade through
		}
		if _, err := tx.ExecContext(ctx, empty); err != nil {
			return fmt.Errorf("empty %s: %w", table, err)
		}
	}
	if _, err := tx.ExecContext(ctx, r.db.rebind("UPDATE view_checkpoints SET position = 0 WHERE name = $1"), v.p.Name()); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	zerolog.Ctx(ctx).Info().Str("projection", v.p.Name()).Int64("position", 0).Msg("projection emptied for rebuild")
	return nil
}

// applyAll applies a batch to every healthy view that has not seen all of
// it, each view in its own goroutine and transaction (on SQLite the single
// write connection takes them in turn). A view that fails stops; the
// others go on.
func (r *Runner) applyAll(ctx context.Context, f fetched) {
	r.mu.Lock()
	var due []*viewState
	for _, v := range r.views {
		if v.err == nil && v.checkpoint < f.to {
			due = append(due, v)
		}
	}
	r.mu.Unlock()
	if r.db.Dialect == "sqlite" {
		r.applyTogether(ctx, due, f)
		return
	}
	var wg sync.WaitGroup
	for _, v := range due {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.applyView(ctx, v, f)
		}()
	}
	wg.Wait()
}

// viewBatch is what of the batch a view has not applied: its events of the
// types it folds, stopping just before an event it cannot read
// (unreadable says which).
func viewBatch(v *viewState, f fetched) (batch Batch, unreadable error) {
	batch = Batch{Last: f.to}
	for _, e := range f.events {
		if e.Position <= v.checkpoint || !v.types[e.Type] {
			continue
		}
		if err := f.decodeErrs[e.Position]; err != nil {
			// Apply what comes before it, so the view stops right there.
			unreadable = &EventError{Position: e.Position, Type: e.Type, Err: err}
			batch.Last = e.Position - 1
			break
		}
		batch.Events = append(batch.Events, e)
	}
	return batch, unreadable
}

// applyView hands a view its events of the batch that it has not applied,
// in a transaction of its own. Only this goroutine writes v's checkpoint
// while a step runs.
func (r *Runner) applyView(ctx context.Context, v *viewState, f fetched) {
	batch, unreadable := viewBatch(v, f)
	var failed error
	if batch.Last > v.checkpoint {
		failed = r.apply(ctx, v, batch)
	}
	if failed == nil {
		failed = unreadable
	}
	r.settle(ctx, v, failed)
}

// applyTogether hands every due view its events of the batch in one
// transaction, each view inside a savepoint so that one view's failure
// leaves the others' rows. This is SQLite's way: the views file's single
// write connection would take the views' transactions in turn anyway, and
// one commit writes the WAL once instead of once per view. That connection
// commits without waiting for the disk (synchronous NORMAL): the rows and
// their checkpoints go together, a crash can lose only the last of them
// whole, and the runner then applies those events again.
func (r *Runner) applyTogether(ctx context.Context, due []*viewState, f fetched) {
	steps := make([]viewStep, len(due))
	work := false
	for i, v := range due {
		steps[i].v = v
		steps[i].batch, steps[i].unreadable = viewBatch(v, f)
		work = work || steps[i].batch.Last > v.checkpoint
	}
	if work {
		r.applyInTurns(ctx, steps)
	}
	if work && r.stmts != nil {
		// The write connection is free again: prepare what this batch ran
		// unprepared, for the next batches. A failure only costs speed.
		if err := r.stmts.PrepareWanted(ctx); err != nil && ctx.Err() == nil {
			zerolog.Ctx(ctx).Debug().Err(err).Msg("preparing the views' statements")
		}
	}
	for i := range steps {
		st := &steps[i]
		if st.applied {
			r.committed(ctx, st.v, st.batch)
		}
		failed := st.failed
		if failed == nil {
			failed = st.unreadable
		}
		r.settle(ctx, st.v, failed)
	}
}

// viewStep is one view's part of a batch applied together.
type viewStep struct {
	v          *viewState
	batch      Batch
	unreadable error
	failed     error
	applied    bool // and committed, once applyInTurns returns
}

// applyInTurns applies each step with work inside a savepoint of one
// views' transaction. When it fails, the views it applied are interrupted.
func (r *Runner) applyInTurns(ctx context.Context, steps []viewStep) {
	interrupt := func(err error) {
		for j := range steps {
			if st := &steps[j]; st.applied {
				st.applied, st.failed = false, fmt.Errorf("commit positions %d to %d: %w", st.v.checkpoint+1, st.batch.Last, err)
			}
		}
	}
	tx, err := r.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return // nothing applied: the views stay where they are
	}
	for i := range steps {
		st := &steps[i]
		if st.batch.Last <= st.v.checkpoint {
			continue
		}
		savepoint := fmt.Sprintf("view_%d", i)
		_, err := tx.ExecContext(ctx, "SAVEPOINT "+savepoint)
		if err == nil {
			if st.failed = r.applyIn(ctx, tx, st.v, st.batch); st.failed != nil {
				_, err = tx.ExecContext(ctx, "ROLLBACK TO "+savepoint)
			} else {
				st.applied = true
			}
		}
		if err == nil {
			_, err = tx.ExecContext(ctx, "RELEASE "+savepoint)
		}
		if err != nil {
			tx.Rollback() //nolint:errcheck // rolled back: the error that matters is err
			interrupt(err)
			return
		}
	}
	if err := tx.Commit(); err != nil {
		interrupt(err)
	}
}

// settle notes a view's failure, if any: one a retry cannot get past stops
// the view; any other interrupts the step.
func (r *Runner) settle(ctx context.Context, v *viewState, failed error) {
	if failed == nil || ctx.Err() != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !stopsTheView(failed) {
		if r.interrupted == nil {
			r.interrupted = fmt.Errorf("projection %s at position %d: %w", v.p.Name(), v.checkpoint, failed)
		}
		return
	}
	v.err = &ViewError{View: v.p.Name(), Err: failed}
	zerolog.Ctx(ctx).Error().Err(failed).Str("projection", v.p.Name()).Int64("position", v.checkpoint).Msg("projection stopped")
}

// errCheckpointMoved says another runner applies the view, or a rebuild
// reset it, while this runner applied a batch.
var errCheckpointMoved = errors.New("checkpoint moved")

// stopsTheView says whether a view's failure is one that trying again
// cannot get past: an event the view cannot read or fold stays where it
// is, and a checkpoint another runner moves is that runner's. Anything
// else (a lost connection, a database restarting, a failed commit) ends
// the step instead, and the views resume from their stored checkpoints.
func stopsTheView(err error) bool {
	var ee *EventError
	return errors.As(err, &ee) || errors.Is(err, errCheckpointMoved)
}

// apply is one view transaction: take the checkpoint row (so a second
// runner on the same view waits, then finds it moved), fold the batch,
// advance the checkpoint, commit.
func (r *Runner) apply(ctx context.Context, v *viewState, batch Batch) error {
	tx, err := r.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if r.db.Dialect == "postgres" {
		// A crash of the database may lose the last view commits, rows and
		// checkpoint together, never one without the other; the runner
		// then applies those events again. So the commit need not wait for
		// its WAL to reach the disk.
		if _, err := tx.ExecContext(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
			return err
		}
	}
	if err := r.applyIn(ctx, tx, v, batch); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit positions %d to %d: %w", v.checkpoint+1, batch.Last, err)
	}
	r.committed(ctx, v, batch)
	return nil
}

// applyIn advances the view's checkpoint from where it was to the batch's
// end (a compare-and-set: another runner's move fails it) and folds the
// batch, in tx.
func (r *Runner) applyIn(ctx context.Context, tx *sql.Tx, v *viewState, batch Batch) error {
	res, err := tx.ExecContext(ctx, r.db.rebind("UPDATE view_checkpoints SET position = $1 WHERE name = $2 AND position = $3"), batch.Last, v.p.Name(), v.checkpoint)
	if err != nil {
		return fmt.Errorf("advance checkpoint to %d: %w", batch.Last, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("%w: the checkpoint is no longer at %d: another runner applies this view, or it was rebuilt meanwhile", errCheckpointMoved, v.checkpoint)
	}
	if err := v.p.Apply(ctx, &Tx{tx: tx, db: r.db, stmts: r.stmts}, batch); err != nil {
		var ee *EventError
		if errors.As(err, &ee) {
			return err
		}
		return fmt.Errorf("positions %d to %d: %w", v.checkpoint+1, batch.Last, err)
	}
	return nil
}

// committed moves a view on once its batch is committed.
func (r *Runner) committed(ctx context.Context, v *viewState, batch Batch) {
	v.p.Committed(batch.Last)
	r.mu.Lock()
	v.checkpoint = batch.Last
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	zerolog.Ctx(ctx).Debug().Str("projection", v.p.Name()).Int64("position", batch.Last).Int("events", len(batch.Events)).Msg("projection advanced")
}

// low is the checkpoint of the slowest healthy view.
func (r *Runner) low() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	low, found := int64(0), false
	for _, v := range r.views {
		if v.err == nil && (!found || v.checkpoint < low) {
			low, found = v.checkpoint, true
		}
	}
	return low
}

func (r *Runner) healthy() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, v := range r.views {
		if v.err == nil {
			n++
		}
	}
	return n
}

func (r *Runner) failures() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, v := range r.views {
		if v.err != nil {
			errs = append(errs, v.err)
		}
	}
	return errors.Join(errs...)
}

// WaitFor blocks until the named view has applied position (and everything
// before it), the view stops (its error), or ctx ends.
func (r *Runner) WaitFor(ctx context.Context, name string, position int64) error {
	targets, err := r.pick([]string{name})
	if err != nil {
		return err
	}
	v := targets[0]
	for {
		r.mu.Lock()
		checkpoint, failed, changed := v.checkpoint, v.err, r.changed
		r.mu.Unlock()
		switch {
		case failed != nil:
			return failed
		case checkpoint >= position:
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// Status is one view's progress against the log.
type Status struct {
	Name       string `json:"name"`
	Checkpoint int64  `json:"checkpoint"`
	Head       int64  `json:"head"`
	Behind     int64  `json:"behind"`
	Error      string `json:"error,omitempty"`
}

// Status reads each view's stored checkpoint and the log's head. A view
// that stopped in this runner carries its error.
func (r *Runner) Status(ctx context.Context) ([]Status, error) {
	head, _, err := r.src.Head(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Status, 0, len(r.views))
	for _, v := range r.views {
		s := Status{Name: v.p.Name(), Head: head}
		err := r.db.Read.QueryRowContext(ctx, r.db.rebind("SELECT position FROM view_checkpoints WHERE name = $1"), s.Name).Scan(&s.Checkpoint)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("read checkpoint of %s: %w", s.Name, err)
		}
		s.Behind = head - s.Checkpoint
		r.mu.Lock()
		if v.err != nil {
			s.Error = v.err.Error()
		}
		r.mu.Unlock()
		out = append(out, s)
	}
	return out, nil
}
