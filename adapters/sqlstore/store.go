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
)

// ErrClosed is returned by appends after Close.
var ErrClosed = errors.New("event store is closed")

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
	write    *sql.DB
	dialect  Dialect
	cfg      Config
	notifier *Notifier

	requests chan *appendRequest
	cache    writerCache // the writer goroutine's own
	stats    struct{ optimistic, locked atomic.Int64 }
	done     chan struct{} // closed by Close
	stopped  chan struct{} // closed when the writer has exited
	closing  sync.Once
	writerWG sync.WaitGroup
	onClose  []func() error
}

// New starts a store. read and write may be the same pool; SQLite uses a
// single-connection pool for write. onClose runs at Close after the writer
// stopped (listeners, pools).
func New(read, write *sql.DB, dialect Dialect, notifier *Notifier, cfg Config, onClose ...func() error) *Store {
	cfg.setDefaults()
	s := &Store{
		read:     read,
		write:    write,
		dialect:  dialect,
		cfg:      cfg,
		notifier: notifier,
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

type appendRequest struct {
	ctx      context.Context
	stream   string
	expected eventstore.ExpectedVersion
	events   []domain.NewEvent
	metadata [][]byte
	reply    chan appendReply
}

type appendReply struct {
	result eventstore.AppendResult
	err    error
}

// Append queues the events for the writer and waits for the commit. If ctx
// ends first the append may or may not have been written; retrying with the
// same event ids is safe.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...domain.NewEvent) (eventstore.AppendResult, error) {
	if err := eventstore.Validate(stream, expected, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	metadata := make([][]byte, len(events))
	for i, e := range events {
		md, err := json.Marshal(e.Metadata)
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("%w: metadata of event %s: %v", eventstore.ErrInvalidEvent, e.ID, err)
		}
		if len(e.Data)+len(md) > eventstore.MaxEventBytes {
			return eventstore.AppendResult{}, fmt.Errorf("%w: event %s (%s) is %d bytes with metadata, over the %d-byte (4 MiB) event size limit",
				eventstore.ErrInvalidEvent, e.ID, e.Type, len(e.Data)+len(md), eventstore.MaxEventBytes)
		}
		metadata[i] = md
	}
	req := &appendRequest{ctx: ctx, stream: stream, expected: expected, events: events, metadata: metadata, reply: make(chan appendReply, 1)}
	select {
	case <-s.done:
		return eventstore.AppendResult{}, ErrClosed
	default:
	}
	select {
	case s.requests <- req:
	case <-ctx.Done():
		return eventstore.AppendResult{}, ctx.Err()
	case <-s.done:
		return eventstore.AppendResult{}, ErrClosed
	}
	select {
	case r := <-req.reply:
		return r.result, r.err
	case <-ctx.Done():
		return eventstore.AppendResult{}, ctx.Err()
	case <-s.stopped:
		select {
		case r := <-req.reply:
			return r.result, r.err
		default:
			return eventstore.AppendResult{}, ErrClosed
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
	size := len(first.events)
	var linger <-chan time.Time
	for size < s.cfg.MaxBatchEvents {
		select {
		case r := <-s.requests:
			batch = append(batch, r)
			size += len(r.events)
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
			size += len(r.events)
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
	replies, err := s.tryCommit(live)
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
	if fast, ok := s.dialect.(OptimisticAppender); ok && s.cache.valid {
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
	var (
		ids     []uuid.UUID
		streams []string
		seen    = map[string]bool{}
	)
	for _, r := range batch {
		if !seen[r.stream] {
			seen[r.stream] = true
			streams = append(streams, r.stream)
		}
		for _, e := range r.events {
			ids = append(ids, e.ID)
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
	assumed := map[string]int64{}
	for _, r := range batch {
		if _, ok := assumed[r.stream]; ok {
			continue
		}
		v, known := s.cache.versions[r.stream]
		switch {
		case known:
		case r.expected == eventstore.NoStream:
			v = -1
		case r.expected >= 0:
			v = int64(r.expected)
		default:
			return nil, false, nil
		}
		assumed[r.stream] = v
		if v >= 0 {
			state.Versions[r.stream] = v
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
		if dup, err, ok := duplicateOutcome(r, existing); ok {
			replies[i] = appendReply{result: dup, err: err}
			continue
		}
		current, ok := versions[r.stream]
		if !ok {
			current = -1
		}
		if !r.expected.Matches(current) {
			replies[i] = appendReply{err: &eventstore.VersionConflictError{Stream: r.stream, Expected: r.expected, Actual: current}}
			continue
		}
		res := eventstore.AppendResult{FirstPosition: head + 1}
		for j, e := range r.events {
			head++
			current++
			rec := domain.RecordedEvent{
				ID: e.ID, Stream: r.stream, Version: current, Position: head, Type: e.Type,
				Data: e.Data, RawMetadata: r.metadata[j], RecordedAt: now, PrevHash: headHash,
			}
			rec.Hash = eventstore.ChainHash(headHash, rec)
			headHash = rec.Hash
			rows = append(rows, rec)
			existing[e.ID] = StoredRef{Stream: r.stream, Version: current, Position: head}
		}
		versions[r.stream] = current
		res.LastPosition, res.LastVersion = head, current
		replies[i] = appendReply{result: res}
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

// remember records the state after a commit: the head and the version of
// every stream the batch read or wrote.
func (s *Store) remember(state BatchState, rows []domain.RecordedEvent) {
	if s.cache.versions == nil || len(s.cache.versions) > maxCachedStreams {
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

// duplicateOutcome decides a request whose ids are already stored: all of
// them, in this stream and order, is an idempotent repeat; some of them, or
// elsewhere, is an error. ok is false when no id is stored.
func duplicateOutcome(r *appendRequest, existing map[uuid.UUID]StoredRef) (eventstore.AppendResult, error, bool) {
	var found []StoredRef
	for _, e := range r.events {
		if ref, ok := existing[e.ID]; ok {
			found = append(found, ref)
		}
	}
	if len(found) == 0 {
		return eventstore.AppendResult{}, nil, false
	}
	same := len(found) == len(r.events)
	for i, ref := range found {
		if !same {
			break
		}
		same = ref.Stream == r.stream && (i == 0 || ref.Version == found[i-1].Version+1)
	}
	if same {
		last := found[len(found)-1]
		return eventstore.AppendResult{FirstPosition: found[0].Position, LastPosition: last.Position, LastVersion: last.Version, Duplicate: true}, nil, true
	}
	for _, e := range r.events {
		if ref, ok := existing[e.ID]; ok {
			return eventstore.AppendResult{}, fmt.Errorf("%w: event %s (%s) for %s is already stored in %s at version %d (position %d), and the rest of this append does not repeat that earlier append",
				eventstore.ErrDuplicateEvent, e.ID, e.Type, r.stream, ref.Stream, ref.Version, ref.Position), true
		}
	}
	panic("unreachable")
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
	rows, err := s.read.QueryContext(ctx, s.dialect.Rebind(query), args...)
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
	err := s.read.QueryRowContext(ctx, "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1").Scan(&pos, &hash)
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

// WriteDB exposes the pool that writes, for views updated in their own
// transactions. On SQLite it is the single connection that begins
// transactions IMMEDIATE, so view writes queue behind appends instead of
// failing to upgrade a read lock; on Postgres it is the same pool as DB.
func (s *Store) WriteDB() *sql.DB { return s.write }

// Close stops the writer (queued appends fail with ErrClosed) and closes the
// database handles.
func (s *Store) Close() error {
	var errs []error
	s.closing.Do(func() {
		close(s.done)
		s.writerWG.Wait()
		for _, f := range s.onClose {
			errs = append(errs, f())
		}
	})
	return errors.Join(errs...)
}
