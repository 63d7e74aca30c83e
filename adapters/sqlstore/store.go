package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/internal/stmtcache"
)

// ErrClosed is returned by appends after Close.
var ErrClosed = errors.New("event store is closed")

// ErrNoStore says a database holds no Logbook store, for an open that must
// not create one (a read-only command).
var ErrNoStore = errors.New("no Logbook event store")

// ErrInUse says another process serves the store and this one may not.
var ErrInUse = errors.New("the event store is in use by another server")

// ErrMigration says the database's schema could not be brought to this
// build's: a failed migration, or a database migrated by a newer build.
var ErrMigration = errors.New("the database schema cannot be migrated")

// Columns lists the events table's columns in the order rows are written and read.
const Columns = "position, stream_id, version, id, type, data, metadata, recorded_at, prev_hash, hash"

// Config tunes a Store. Zero values take the defaults.
type Config struct {
	// MaxBatchEvents caps how many events one group commit writes (default 2000).
	MaxBatchEvents int
	// CommitTimeout bounds one append transaction (default 30s).
	CommitTimeout time.Duration
	// MaxLinger is how long the writer waits for appenders that were in the
	// previous group commit to come back before committing without them
	// (default 1ms; negative: never wait).
	MaxLinger time.Duration
	// Now is the clock (default time.Now); tests pin it.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.MaxBatchEvents <= 0 {
		c.MaxBatchEvents = 2000
	}
	if c.CommitTimeout <= 0 {
		c.CommitTimeout = 30 * time.Second
	}
	if c.MaxLinger == 0 {
		c.MaxLinger = time.Millisecond
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Store implements eventstore.Store over database/sql.
type Store struct {
	read     *sql.DB
	reads    *stmtcache.Cache // the reads' statements, prepared once
	write    *sql.DB
	derived  *sql.DB // the views' and the Merkle tree's writes (Pools)
	dialect  Dialect
	cfg      Config
	notifier *Notifier

	requests chan *appendRequest
	cache    writerCache // the writer goroutine's own
	recent   *recentEvents
	stats    struct{ optimistic, locked atomic.Int64 }
	observer atomic.Pointer[CommitObserver]
	done     chan struct{} // closed by Close
	stopped  chan struct{} // closed when the writer has exited
	closing  sync.Once
	writerWG sync.WaitGroup
	onClose  []func() error
}

// Pools are the database pools a store works through.
type Pools struct {
	// Read serves every read.
	Read *sql.DB
	// Write writes the log and what is not derived from it; SQLite's is a
	// single connection. It may be Read.
	Write *sql.DB
	// Derived writes what is folded from the log: the views and the
	// Merkle tree. On SQLite it is a connection to the views file, so
	// those writes never hold the log's write lock, and it commits with
	// synchronous NORMAL; nil: Write.
	Derived *sql.DB
}

// New starts a store. onClose runs at Close after the writer stopped
// (listeners, pools).
func New(pools Pools, dialect Dialect, notifier *Notifier, cfg Config, onClose ...func() error) *Store {
	cfg.setDefaults()
	if pools.Derived == nil {
		pools.Derived = pools.Write
	}
	s := &Store{
		read:     pools.Read,
		reads:    stmtcache.New(pools.Read),
		write:    pools.Write,
		derived:  pools.Derived,
		dialect:  dialect,
		cfg:      cfg,
		notifier: notifier,
		recent:   newRecentEvents(recentMaxEvents, recentMaxBytes),
		requests: make(chan *appendRequest, 4096),
		done:     make(chan struct{}),
		stopped:  make(chan struct{}),
		onClose:  onClose,
	}
	s.writerWG.Add(1)
	go s.writer()
	return s
}

var _ eventstore.Store = (*Store)(nil)

// appendRequest is one Append (one part) or AppendMulti (several parts,
// on distinct streams): all of its parts are written, or none.
type appendRequest struct {
	ctx   context.Context
	parts []appendPart
	size  int // events in all parts
	reply chan appendReply
	// fence, when set, is the lease the append was made under; fenced is
	// set by checkFences when the lease has a newer term.
	fence  *eventstore.Lease
	fenced error
}

type appendPart struct {
	stream   string
	expected eventstore.ExpectedVersion
	events   []domain.NewEvent
	metadata [][]byte
}

type appendReply struct {
	results []eventstore.AppendResult // one per part
	err     error
}

// Append queues the events for the writer and waits for the commit. If ctx
// ends first the append may or may not have been written; retrying with the
// same event ids is safe.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...domain.NewEvent) (eventstore.AppendResult, error) {
	if err := eventstore.Validate(stream, expected, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	results, err := s.submit(ctx, []eventstore.StreamAppend{{Stream: stream, Expected: expected, Events: events}})
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	return results[0], nil
}

// AppendMulti implements eventstore.Store: the parts go to the writer as one
// request, planned together and written in one transaction, so a crash or
// a conflict leaves all of them or none.
func (s *Store) AppendMulti(ctx context.Context, parts ...eventstore.StreamAppend) ([]eventstore.AppendResult, error) {
	if err := eventstore.ValidateMulti(parts); err != nil {
		return nil, err
	}
	return s.submit(ctx, parts)
}

// CommitObserver is told how the writer does, for metrics. Its methods are
// called on the hot path and must not block.
type CommitObserver interface {
	// Committed reports one group commit that wrote: the append requests
	// it carried, the events it wrote and how long its transaction took.
	Committed(requests, events int, took time.Duration)
	// Appended reports one Append or AppendMulti, from its call to its
	// result, and whether it failed.
	Appended(took time.Duration, failed bool)
}

// Observe makes o the store's observer (nil: none).
func (s *Store) Observe(o CommitObserver) {
	if o == nil {
		s.observer.Store(nil)
		return
	}
	s.observer.Store(&o)
}

// submit encodes the metadata, queues the request for the writer and waits
// for the commit.
func (s *Store) submit(ctx context.Context, parts []eventstore.StreamAppend) (results []eventstore.AppendResult, err error) {
	if o := s.observer.Load(); o != nil {
		start := time.Now()
		defer func() { (*o).Appended(time.Since(start), err != nil) }()
	}
	req := &appendRequest{ctx: ctx, parts: make([]appendPart, len(parts)), reply: make(chan appendReply, 1)}
	if l, ok := eventstore.FenceOf(ctx); ok {
		req.fence = &l
	}
	for i, p := range parts {
		metadata := make([][]byte, len(p.Events))
		for j, e := range p.Events {
			md, err := json.Marshal(e.Metadata)
			if err != nil {
				return nil, fmt.Errorf("%w: metadata of event %s: %v", eventstore.ErrInvalidEvent, e.ID, err)
			}
			if len(e.Data)+len(md) > eventstore.MaxEventBytes {
				return nil, fmt.Errorf("%w: event %s (%s) is %d bytes with metadata, over the %d-byte (4 MiB) event size limit",
					eventstore.ErrInvalidEvent, e.ID, e.Type, len(e.Data)+len(md), eventstore.MaxEventBytes)
			}
			metadata[j] = md
		}
		req.parts[i] = appendPart{stream: p.Stream, expected: p.Expected, events: p.Events, metadata: metadata}
		req.size += len(p.Events)
	}
	select {
	case <-s.done:
		return nil, ErrClosed
	default:
	}
	select {
	case s.requests <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		return nil, ErrClosed
	}
	select {
	case r := <-req.reply:
		return r.results, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.stopped:
		select {
		case r := <-req.reply:
			return r.results, r.err
		default:
			return nil, ErrClosed
		}
	}
}

// writer is the single goroutine that writes. It takes whatever requests
// queued while the previous commit ran and commits them together (group
// commit): no added latency when idle, large transactions under load.
func (s *Store) writer() {
	defer s.writerWG.Done()
	defer close(s.stopped)
	expect := 1
	for {
		var first *appendRequest
		select {
		case first = <-s.requests:
		case <-s.done:
			s.failQueued()
			return
		}
		batch := s.gather(first, expect)
		// Expect as many appenders next time: while they keep coming back,
		// the writer waits a moment for all of them instead of committing
		// whoever happened to be first.
		expect = len(batch)
		s.commit(batch)
	}
}

// gather collects the requests to commit with first: whatever is queued, and,
// when fewer than expect appenders have come back since the last commit,
// whatever arrives within MaxLinger.
func (s *Store) gather(first *appendRequest, expect int) []*appendRequest {
	batch := []*appendRequest{first}
	size := first.size
	var linger <-chan time.Time
	for size < s.cfg.MaxBatchEvents {
		select {
		case r := <-s.requests:
			batch = append(batch, r)
			size += r.size
			continue
		default:
		}
		if len(batch) >= expect || s.cfg.MaxLinger <= 0 {
			return batch
		}
		if linger == nil {
			timer := time.NewTimer(s.cfg.MaxLinger)
			defer timer.Stop()
			linger = timer.C
		}
		select {
		case r := <-s.requests:
			batch = append(batch, r)
			size += r.size
		case <-linger:
			return batch
		}
	}
	return batch
}

func (s *Store) failQueued() {
	for {
		select {
		case r := <-s.requests:
			r.reply <- appendReply{err: ErrClosed}
		default:
			return
		}
	}
}

// commit writes a batch in one transaction. A database error fails every
// request in it, with nothing written. A unique violation means another
// process appended without our lock: the requests are retried one by one so
// only the one that conflicts fails.
func (s *Store) commit(batch []*appendRequest) {
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.reply <- appendReply{err: err}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	start := time.Now()
	replies, err := s.tryCommit(live)
	if o := s.observer.Load(); o != nil && err == nil {
		events := 0
		for _, r := range live {
			events += r.size
		}
		(*o).Committed(len(live), events, time.Since(start))
	}
	if err != nil {
		// A commit that failed may still have been made (a lost
		// connection): the database may hold more than was kept.
		s.recent.behind()
	}
	if err != nil && s.dialect.IsUniqueViolation(err) && len(live) > 1 {
		for _, r := range live {
			s.commit([]*appendRequest{r})
		}
		return
	}
	for i, r := range live {
		if err != nil {
			r.reply <- appendReply{err: s.writeError(err)}
			continue
		}
		r.reply <- replies[i]
	}
	if err == nil {
		s.notifier.Broadcast()
	}
}

func (s *Store) writeError(err error) error {
	if s.dialect.IsUniqueViolation(err) {
		return fmt.Errorf("%w: another writer appended to the stream concurrently (%v)", eventstore.ErrWrongExpectedVersion, err)
	}
	return fmt.Errorf("append to %s event store failed, nothing was written: %w", s.dialect.Name(), err)
}

// tryCommit writes a batch. Where the dialect can, it first tries the
// optimistic path: one round trip that checks, under the append lock, that
// nothing changed since this writer's last commit. Otherwise, or when
// something did change, it takes the locked path: lock, read the state,
// decide, insert, commit.
func (s *Store) tryCommit(batch []*appendRequest) ([]appendReply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CommitTimeout)
	defer cancel()
	// A fenced append reads its lease under the append lock: the locked path.
	if fast, ok := s.dialect.(OptimisticAppender); ok && s.cache.valid && !anyFenced(batch) {
		replies, done, err := s.tryOptimistic(ctx, fast, batch)
		if err != nil {
			s.cache = writerCache{}
			return nil, err
		}
		if done {
			s.stats.optimistic.Add(1)
			return replies, nil
		}
	}
	s.stats.locked.Add(1)
	replies, err := s.tryLocked(ctx, batch)
	if err != nil {
		s.cache = writerCache{}
	}
	return replies, err
}

func (s *Store) tryLocked(ctx context.Context, batch []*appendRequest) ([]appendReply, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := s.dialect.LockAppends(ctx, tx); err != nil {
		return nil, err
	}
	if err := s.checkFences(ctx, tx, batch); err != nil {
		return nil, err
	}
	var (
		ids     []uuid.UUID
		streams []string
		seen    = map[string]bool{}
	)
	for _, r := range batch {
		for _, p := range r.parts {
			if !seen[p.stream] {
				seen[p.stream] = true
				streams = append(streams, p.stream)
			}
			for _, e := range p.events {
				ids = append(ids, e.ID)
			}
		}
	}
	state, err := s.dialect.ReadBatchState(ctx, tx, ids, streams)
	if err != nil {
		return nil, err
	}
	if state.Head == 0 {
		state.HeadHash = eventstore.GenesisHash
	}
	replies, rows := s.plan(batch, state)
	if len(rows) > 0 {
		if err := s.dialect.Insert(ctx, tx, rows); err != nil {
			return nil, err
		}
		if err := tx.Commit(); err != nil {
			return nil, err
		}
	}
	s.remember(state, rows)
	return replies, nil
}

// tryOptimistic plans the batch against what this writer knows from its own
// last commit, and asks the database to insert the rows only if that is
// still the truth. done is false when it is not (another process appended),
// when the batch holds an Any append to a stream this writer has not seen,
// or when nothing would be written; the locked path then decides.
func (s *Store) tryOptimistic(ctx context.Context, fast OptimisticAppender, batch []*appendRequest) ([]appendReply, bool, error) {
	state := BatchState{Head: s.cache.head, HeadHash: s.cache.hash, Existing: map[uuid.UUID]StoredRef{}, Versions: map[string]int64{}}
	// Only the streams this writer has not seen are checked: while the
	// head is where this writer left it, nobody else appended, so the
	// versions it remembers are the truth.
	seen := map[string]bool{}
	assumed := map[string]int64{}
	for _, r := range batch {
		for _, p := range r.parts {
			if seen[p.stream] {
				continue
			}
			seen[p.stream] = true
			v, known := s.cache.versions[p.stream]
			switch {
			case known:
			case p.expected == eventstore.NoStream:
				v = -1
				assumed[p.stream] = v
			case p.expected >= 0:
				v = int64(p.expected)
				assumed[p.stream] = v
			default:
				return nil, false, nil
			}
			if v >= 0 {
				state.Versions[p.stream] = v
			}
		}
	}
	replies, rows := s.plan(batch, state)
	if len(rows) == 0 {
		return nil, false, nil
	}
	ok, err := fast.AppendIfUnchanged(ctx, s.cache.head, assumed, rows)
	if err != nil || !ok {
		return nil, false, err
	}
	s.remember(state, rows)
	return replies, true, nil
}

// plan decides each request of a batch against state (which it updates):
// duplicate, conflict, or rows to write with their positions, versions and
// hashes.
func (s *Store) plan(batch []*appendRequest, state BatchState) ([]appendReply, []domain.RecordedEvent) {
	head, headHash, existing, versions := state.Head, state.HeadHash, state.Existing, state.Versions
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	replies := make([]appendReply, len(batch))
	var rows []domain.RecordedEvent
	for i, r := range batch {
		if r.fenced != nil {
			replies[i] = appendReply{err: r.fenced}
			continue
		}
		if dups, err, ok := duplicateOutcome(r, existing); ok {
			replies[i] = appendReply{results: dups, err: err}
			continue
		}
		if err := conflict(r, versions); err != nil {
			replies[i] = appendReply{err: err}
			continue
		}
		results := make([]eventstore.AppendResult, len(r.parts))
		for k, p := range r.parts {
			current, ok := versions[p.stream]
			if !ok {
				current = -1
			}
			res := eventstore.AppendResult{FirstPosition: head + 1}
			for j, e := range p.events {
				head++
				current++
				rec := domain.RecordedEvent{
					ID: e.ID, Stream: p.stream, Version: current, Position: head, Type: e.Type,
					Data: e.Data, RawMetadata: p.metadata[j], RecordedAt: now, PrevHash: headHash,
				}
				rec.Hash = eventstore.ChainHash(headHash, rec)
				headHash = rec.Hash
				rows = append(rows, rec)
				existing[e.ID] = StoredRef{Stream: p.stream, Version: current, Position: head}
			}
			versions[p.stream] = current
			res.LastPosition, res.LastVersion = head, current
			results[k] = res
		}
		replies[i] = appendReply{results: results}
	}
	return replies, rows
}

// writerCache is what the writer knows from its own last commit. Only the
// writer goroutine touches it.
type writerCache struct {
	valid    bool
	head     int64
	hash     []byte
	versions map[string]int64
}

// maxCachedStreams bounds the stream versions the writer remembers.
const maxCachedStreams = 50000

// remember records the state after a commit: the head, the version of
// every stream the batch read or wrote, and the rows among the recent
// events.
func (s *Store) remember(state BatchState, rows []domain.RecordedEvent) {
	s.recent.add(rows)
	// A head other than this writer's last means another process appended
	// since: any stream this writer remembers may have moved, so only what
	// was just read is kept (the optimistic path trusts what it remembers).
	moved := !s.cache.valid || state.Head != s.cache.head
	if moved || s.cache.versions == nil || len(s.cache.versions) > maxCachedStreams {
		s.cache.versions = make(map[string]int64, 1024)
	}
	s.cache.valid, s.cache.head, s.cache.hash = true, state.Head, state.HeadHash
	for stream, v := range state.Versions {
		s.cache.versions[stream] = v
	}
	for _, e := range rows {
		s.cache.head, s.cache.hash = e.Position, e.Hash
		s.cache.versions[e.Stream] = e.Version
	}
}

// conflict checks every part's expected version before any is written: the
// first that does not match fails the whole request.
func conflict(r *appendRequest, versions map[string]int64) error {
	for _, p := range r.parts {
		current, ok := versions[p.stream]
		if !ok {
			current = -1
		}
		if !p.expected.Matches(current) {
			return &eventstore.VersionConflictError{Stream: p.stream, Expected: p.expected, Actual: current}
		}
	}
	return nil
}

// duplicateOutcome decides a request whose ids are already stored: all of
// them, each part in its stream and order, is an idempotent repeat; some of
// them, or elsewhere, is an error. ok is false when no id is stored.
func duplicateOutcome(r *appendRequest, existing map[uuid.UUID]StoredRef) ([]eventstore.AppendResult, error, bool) {
	stored, total := 0, 0
	for _, p := range r.parts {
		total += len(p.events)
		for _, e := range p.events {
			if _, ok := existing[e.ID]; ok {
				stored++
			}
		}
	}
	if stored == 0 {
		return nil, nil, false
	}
	results := make([]eventstore.AppendResult, len(r.parts))
	for k, p := range r.parts {
		same := stored == total
		var first, last StoredRef
		for i, e := range p.events {
			if !same {
				break
			}
			ref := existing[e.ID]
			same = ref.Stream == p.stream && (i == 0 || ref.Version == last.Version+1)
			if i == 0 {
				first = ref
			}
			last = ref
		}
		if !same {
			return nil, duplicateError(r, existing), true
		}
		results[k] = eventstore.AppendResult{FirstPosition: first.Position, LastPosition: last.Position, LastVersion: last.Version, Duplicate: true}
	}
	return results, nil, true
}

// duplicateError names the first stored event of a request that is not a
// whole repeat.
func duplicateError(r *appendRequest, existing map[uuid.UUID]StoredRef) error {
	for _, p := range r.parts {
		for _, e := range p.events {
			if ref, ok := existing[e.ID]; ok {
				return fmt.Errorf("%w: event %s (%s) for %s is already stored in %s at version %d (position %d), and the rest of this append does not repeat that earlier append",
					eventstore.ErrDuplicateEvent, e.ID, e.Type, p.stream, ref.Stream, ref.Version, ref.Position)
			}
		}
	}
	panic("unreachable: duplicateError of a request with no stored event")
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from int64, limit int) ([]domain.RecordedEvent, error) {
	return s.query(ctx, "SELECT "+Columns+" FROM events WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3", stream, max(from, 0), readLimit(limit))
}

// ReadAll implements eventstore.Store.
func (s *Store) ReadAll(ctx context.Context, from int64, limit int) ([]domain.RecordedEvent, error) {
	return s.query(ctx, "SELECT "+Columns+" FROM events WHERE position >= $1 ORDER BY position LIMIT $2", max(from, 1), readLimit(limit))
}

func readLimit(limit int) int {
	if limit <= 0 || limit > 100000 {
		return 100000
	}
	return limit
}

func (s *Store) query(ctx context.Context, query string, args ...any) ([]domain.RecordedEvent, error) {
	rows, err := s.reads.QueryContext(ctx, s.dialect.Rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("read %s event store: %w", s.dialect.Name(), err)
	}
	defer rows.Close()
	var out []domain.RecordedEvent
	for rows.Next() {
		var (
			e        domain.RecordedEvent
			id       string
			recorded any
			data     []byte
			metadata []byte
		)
		if err := rows.Scan(&e.Position, &e.Stream, &e.Version, &id, &e.Type, &data, &metadata, &recorded, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("read %s event store: %w", s.dialect.Name(), err)
		}
		// A row whose id or time was tampered into nonsense is still
		// returned, so that verification can name its position.
		e.ID, _ = uuid.Parse(id)
		e.RecordedAt, _ = s.dialect.DecodeTime(recorded)
		e.Data, e.RawMetadata = data, metadata
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s event store: %w", s.dialect.Name(), err)
	}
	return out, nil
}

// Head implements eventstore.Store.
func (s *Store) Head(ctx context.Context) (int64, []byte, error) {
	var (
		pos  int64
		hash []byte
	)
	err := s.reads.QueryRowContext(ctx, "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1").Scan(&pos, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, nil
	}
	return pos, hash, err
}

// Changed implements eventstore.Store.
func (s *Store) Changed() <-chan struct{} { return s.notifier.Changed() }

// Ping implements eventstore.Store.
func (s *Store) Ping(ctx context.Context) error { return s.read.PingContext(ctx) }

// CommitStats counts the transactions the writer committed (or tried) by
// each path.
type CommitStats struct {
	Optimistic int64 // one round trip, nothing had changed
	Locked     int64 // lock, read, decide, insert, commit
}

// Stats reports the writer's commits so far.
func (s *Store) Stats() CommitStats {
	return CommitStats{Optimistic: s.stats.optimistic.Load(), Locked: s.stats.locked.Load()}
}

// Dialect names the database behind the store.
func (s *Store) Dialect() string { return s.dialect.Name() }

// DB exposes the read pool for the views that live beside the events.
func (s *Store) DB() *sql.DB { return s.read }

// WriteDB exposes the pool that writes the log and what is not derived
// from it (the dispatcher's checkpoint, secrets, sessions). On SQLite it
// is the single connection that begins transactions IMMEDIATE, so writes
// queue behind appends instead of failing to upgrade a read lock; on
// Postgres it is the same pool as DB.
func (s *Store) WriteDB() *sql.DB { return s.write }

// ViewsWriteDB exposes the pool the views are written through. On SQLite
// it is a single connection to the views file, whose transactions take
// that file's write lock only; on Postgres it is WriteDB.
func (s *Store) ViewsWriteDB() *sql.DB { return s.derived }

// Identity is the store's id: random, made once per database by its
// migrations, and the same for every process that opens the database. The
// Docker runtime's owner label carries it, so servers of different stores
// on one Docker host never settle each other's containers.
func (s *Store) Identity(ctx context.Context) (string, error) {
	var id string
	if err := s.read.QueryRowContext(ctx, "SELECT id FROM store_identity WHERE only_row = 1").Scan(&id); err != nil {
		return "", fmt.Errorf("read the store's identity: %w", err)
	}
	return id, nil
}

// Close stops the writer (queued appends fail with ErrClosed) and closes the
// database handles.
func (s *Store) Close() error {
	var errs []error
	s.closing.Do(func() {
		close(s.done)
		s.writerWG.Wait()
		errs = append(errs, s.reads.Close())
		for _, f := range s.onClose {
			errs = append(errs, f())
		}
	})
	return errors.Join(errs...)
}
