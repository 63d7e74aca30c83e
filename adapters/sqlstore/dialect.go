// Package sqlstore is the event store shared by the SQL adapters: one
// group-committing writer that serializes appends for a gap-free, hash-chained
// global order, and the reads. adapters/postgres and adapters/sqlite supply a
// Dialect for what differs.
package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/internal/sqlparams"
	"github.com/logbookhq/logbook/internal/stmtcache"
)

// Dialect is what differs between databases.
type Dialect interface {
	// Name is "postgres" or "sqlite".
	Name() string
	// Rebind turns the shared `$1` placeholders into the dialect's own.
	Rebind(query string) string
	// LockAppends serializes appenders across processes for the rest of tx.
	LockAppends(ctx context.Context, tx *sql.Tx) error
	// ReadBatchState reads, under the append lock, the head and what is
	// already stored of these event ids and streams.
	ReadBatchState(ctx context.Context, tx *sql.Tx, ids []uuid.UUID, streams []string) (BatchState, error)
	// Insert writes rows and signals the append to other processes where the
	// database can (Postgres NOTIFY, delivered on commit).
	Insert(ctx context.Context, tx *sql.Tx, rows []domain.RecordedEvent) error
	// DecodeTime reads recorded_at back.
	DecodeTime(src any) (time.Time, error)
	// IsUniqueViolation reports a unique-constraint failure.
	IsUniqueViolation(err error) bool
	// NowMillisSQL is an SQL expression for the database's clock in Unix
	// milliseconds: leases are timed by it, never by a process's clock.
	NowMillisSQL() string
	// ShareLockSQL ends a SELECT of lease rows read under the append lock,
	// so that a takeover waits for the append to commit ("" where the
	// append's transaction already excludes every other writer).
	ShareLockSQL() string
}

// OptimisticAppender is what a dialect implements to append in one round
// trip when this process is the only writer.
type OptimisticAppender interface {
	// AppendIfUnchanged takes the append lock and inserts rows, committing,
	// only if the head is still head and every stream in versions is at the
	// version given (-1: no events) and no row's id is stored. ok is false,
	// with nothing written, when any of that does not hold.
	AppendIfUnchanged(ctx context.Context, head int64, versions map[string]int64, rows []domain.RecordedEvent) (ok bool, err error)
}

// BatchState is what the writer needs to know before it appends a batch.
type BatchState struct {
	Head     int64  // 0 when the store is empty
	HeadHash []byte // the hash at Head
	Existing map[uuid.UUID]StoredRef
	Versions map[string]int64 // last version per stream that has events
}

// StoredRef locates a stored event.
type StoredRef struct {
	Stream   string
	Version  int64
	Position int64
}

// RebindQuestion rewrites `$1` for SQLite (sqlparams.ToSQLite).
func RebindQuestion(query string) string { return sqlparams.ToSQLite(query) }

// Portable implements the batch reads and inserts with plain SQL in
// statements of at most MaxParams parameters, for databases without arrays.
type Portable struct {
	Rebind    func(string) string
	MaxParams int
	// Statements, when set, prepares each statement once (on the write
	// pool the writer's transactions run on), and the statements come in
	// a few fixed shapes (stmtcache.Shapes), so none is parsed twice.
	Statements *stmtcache.Cache
	// Encode turns an event's id, JSON and time into column arguments.
	EncodeID   func(uuid.UUID) any
	EncodeJSON func([]byte) any
	EncodeTime func(time.Time) any
}

// ReadBatchState implements Dialect.ReadBatchState.
func (p Portable) ReadBatchState(ctx context.Context, tx *sql.Tx, ids []uuid.UUID, streams []string) (BatchState, error) {
	state := BatchState{Existing: map[uuid.UUID]StoredRef{}, Versions: map[string]int64{}}
	rows, err := p.query(ctx, tx, headQuery)
	if err != nil {
		return state, err
	}
	if rows.Next() {
		err = rows.Scan(&state.Head, &state.HeadHash)
	}
	rows.Close()
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return state, err
	}
	idArgs := make([]any, len(ids))
	for i, id := range ids {
		idArgs[i] = p.EncodeID(id)
	}
	err = p.inChunks(idArgs, func(chunk []any, in string) error {
		return p.eachRow(ctx, tx, "SELECT id, stream_id, version, position FROM events WHERE id IN ("+in+")", chunk, func(rows *sql.Rows) error {
			var (
				id  string
				ref StoredRef
			)
			if err := rows.Scan(&id, &ref.Stream, &ref.Version, &ref.Position); err != nil {
				return err
			}
			parsed, err := uuid.Parse(id)
			if err != nil {
				return fmt.Errorf("stored event id %q: %w", id, err)
			}
			state.Existing[parsed] = ref
			return nil
		})
	})
	if err != nil {
		return state, err
	}
	err = p.StreamVersions(ctx, tx, streams, state.Versions)
	return state, err
}

// StreamVersions reads the last version of each of streams that has
// events into versions.
func (p Portable) StreamVersions(ctx context.Context, tx *sql.Tx, streams []string, versions map[string]int64) error {
	streamArgs := make([]any, len(streams))
	for i, st := range streams {
		streamArgs[i] = st
	}
	// One indexed lookup of the last version per stream, not an aggregate
	// over every event of a long stream (a run's output can be thousands).
	return p.inChunks(streamArgs, func(chunk []any, _ string) error {
		return p.eachRow(ctx, tx, p.Rebind(streamLookups(len(chunk))), chunk, func(rows *sql.Rows) error {
			var (
				stream  string
				version int64
			)
			if err := rows.Scan(&stream, &version); err != nil {
				return err
			}
			versions[stream] = version
			return nil
		})
	})
}

// Head reads the last position in tx (0 when the store is empty).
func (p Portable) Head(ctx context.Context, tx *sql.Tx) (int64, error) {
	var head int64
	err := p.eachRow(ctx, tx, headQuery, nil, func(rows *sql.Rows) error {
		var hash []byte
		return rows.Scan(&head, &hash)
	})
	return head, err
}

// headQuery reads the last position and its hash.
const headQuery = "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1"

// Insert implements Dialect.Insert with multi-row VALUES statements.
func (p Portable) Insert(ctx context.Context, tx *sql.Tx, rows []domain.RecordedEvent) error {
	const width = 10
	start := 0
	for _, size := range p.sizes(len(rows), max(p.MaxParams/width, 1)) {
		chunk := rows[start : start+size]
		start += size
		args := make([]any, 0, len(chunk)*width)
		for _, e := range chunk {
			args = append(args, e.Position, e.Stream, e.Version, p.EncodeID(e.ID), e.Type,
				p.EncodeJSON(e.Data), p.EncodeJSON(e.RawMetadata), p.EncodeTime(e.RecordedAt), e.PrevHash, e.Hash)
		}
		query := p.Rebind("INSERT INTO events (" + Columns + ") VALUES " + placeholders(len(chunk), width, 1))
		if err := p.exec(ctx, tx, query, args...); err != nil {
			return err
		}
	}
	return nil
}

// StatementTexts lists every statement the writer's transactions run, in
// every shape (see Statements), for PrepareAll.
func (p Portable) StatementTexts() []string {
	texts := []string{headQuery}
	limit := max(p.MaxParams, 1)
	for _, n := range shapeSizes(limit) {
		in := strings.TrimSuffix(strings.TrimPrefix(placeholders(1, n, 1), "("), ")")
		texts = append(texts, "SELECT id, stream_id, version, position FROM events WHERE id IN ("+p.Rebind(in)+")", p.Rebind(streamLookups(n)))
	}
	for _, n := range shapeSizes(max(p.MaxParams/10, 1)) {
		texts = append(texts, p.Rebind("INSERT INTO events ("+Columns+") VALUES "+placeholders(n, 10, 1)))
	}
	return texts
}

// shapeSizes are the sizes stmtcache.Shapes gives for a limit: the limit
// and the powers of two below it.
func shapeSizes(limit int) []int {
	sizes := []int{limit}
	for p := 1; p < limit; p *= 2 {
		sizes = append(sizes, p)
	}
	return sizes
}

// streamLookups is one indexed lookup of the last version per stream, for
// n streams.
func streamLookups(n int) string {
	lookups := make([]string, n)
	for i := range n {
		lookups[i] = "SELECT stream_id, version FROM (SELECT stream_id, version FROM events WHERE stream_id = $" + strconv.Itoa(i+1) + " ORDER BY version DESC LIMIT 1)"
	}
	return strings.Join(lookups, " UNION ALL ")
}

// sizes splits n items into statements of at most limit: in the fixed
// shapes when statements are prepared (their text then repeats), else in
// as few statements as fit.
func (p Portable) sizes(n, limit int) []int {
	if p.Statements != nil {
		return stmtcache.Shapes(n, limit)
	}
	var out []int
	for ; n > 0; n -= min(n, limit) {
		out = append(out, min(n, limit))
	}
	return out
}

func (p Portable) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	var err error
	if p.Statements != nil {
		_, err = p.Statements.Exec(ctx, tx, query, args...)
	} else {
		_, err = tx.ExecContext(ctx, query, args...)
	}
	return err
}

func (p Portable) query(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	if p.Statements != nil {
		return p.Statements.Query(ctx, tx, query, args...)
	}
	return tx.QueryContext(ctx, query, args...)
}

// inChunks runs fn over args in slices small enough for one statement.
func (p Portable) inChunks(args []any, fn func(chunk []any, in string) error) error {
	start := 0
	for _, size := range p.sizes(len(args), max(p.MaxParams, 1)) {
		chunk := args[start : start+size]
		start += size
		in := strings.TrimSuffix(strings.TrimPrefix(placeholders(1, len(chunk), 1), "("), ")")
		if err := fn(chunk, p.Rebind(in)); err != nil {
			return err
		}
	}
	return nil
}

func (p Portable) eachRow(ctx context.Context, tx *sql.Tx, query string, args []any, scan func(*sql.Rows) error) error {
	rows, err := p.query(ctx, tx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// placeholders returns "($1,$2,...),($n+1,...)" for rows of width columns,
// numbered from start.
func placeholders(rows, width, start int) string {
	var b strings.Builder
	n := start
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := 0; c < width; c++ {
			if c > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			n++
		}
		b.WriteByte(')')
	}
	return b.String()
}
