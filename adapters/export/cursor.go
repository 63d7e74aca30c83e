package export

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/logbookhq/logbook/adapters/sqlstore"
)

// Cursor is a destination's place in the log, as stored in export_cursors
// (migrations/*/00040_export_cursors.sql).
type Cursor struct {
	Destination string
	// Position is the last event the destination acknowledged (0: none);
	// Hash is its chain hash and RecordedAt when it was recorded.
	Position   int64
	Hash       string
	RecordedAt time.Time
	AckedAt    time.Time
	// LastError is the latest failure to deliver since the last delivery
	// ("" after a success).
	LastError   string
	LastErrorAt time.Time
}

// Cursors keeps cursors beside the events. Writes go to Write (SQLite's
// one write connection), reads to Read.
type Cursors struct {
	Read, Write *sql.DB
	Rebind      func(string) string // $1 → the dialect's placeholders
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// Init stores a destination's first cursor, unless it has one.
func (c Cursors) Init(ctx context.Context, cur Cursor) error {
	_, err := c.Write.ExecContext(ctx, c.Rebind(`INSERT INTO export_cursors (destination, position, hash, recorded_at, acked_at, last_error, last_error_at)
VALUES ($1, $2, $3, $4, 0, '', 0) ON CONFLICT (destination) DO NOTHING`), cur.Destination, cur.Position, cur.Hash, micros(cur.RecordedAt))
	return err
}

// Load reads a destination's cursor; false when it has none.
func (c Cursors) Load(ctx context.Context, destination string) (Cursor, bool, error) {
	cur, err := scanCursor(c.Read.QueryRowContext(ctx, c.Rebind(`SELECT destination, position, hash, recorded_at, acked_at, last_error, last_error_at
FROM export_cursors WHERE destination = $1`), destination))
	if errors.Is(err, sql.ErrNoRows) {
		return Cursor{Destination: destination}, false, nil
	}
	return cur, err == nil, err
}

// ErrCursorMoved says a destination's cursor is not where its exporter
// left it: another exporter of the same destination (a second server on
// the database) moved it.
var ErrCursorMoved = errors.New("the cursor was moved by another exporter of this destination (is a second server running on this database?)")

// Ack moves a destination's cursor from expected to what it acknowledged,
// and clears its last failure; ErrCursorMoved when the stored position is
// not expected. The position may go back: a destination that lost what
// it was sent is sent it again.
func (c Cursors) Ack(ctx context.Context, destination string, expected, position int64, hash string, recordedAt, now time.Time) error {
	err := c.update(ctx, `UPDATE export_cursors SET position = $3, hash = $4, recorded_at = $5, acked_at = $6, last_error = '', last_error_at = 0
WHERE destination = $1 AND position = $2`, destination, expected, position, hash, micros(recordedAt), micros(now))
	if errors.Is(err, errNoCursor) {
		return ErrCursorMoved
	}
	return err
}

// Fail records a failure to deliver; the cursor stays.
func (c Cursors) Fail(ctx context.Context, destination, message string, now time.Time) error {
	return c.update(ctx, `UPDATE export_cursors SET last_error = $2, last_error_at = $3 WHERE destination = $1`, destination, message, micros(now))
}

var errNoCursor = errors.New("the destination's cursor is not in export_cursors")

func (c Cursors) update(ctx context.Context, query string, args ...any) error {
	res, err := c.Write.ExecContext(ctx, c.Rebind(query), args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return errNoCursor
	}
	return err
}

// List reads every stored cursor, by destination.
func (c Cursors) List(ctx context.Context) ([]Cursor, error) {
	rows, err := c.Read.QueryContext(ctx, `SELECT destination, position, hash, recorded_at, acked_at, last_error, last_error_at FROM export_cursors ORDER BY destination`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Cursor
	for rows.Next() {
		cur, err := scanCursor(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, cur)
	}
	return out, rows.Err()
}

func scanCursor(row interface{ Scan(...any) error }) (Cursor, error) {
	var cur Cursor
	var recordedAt, ackedAt, errorAt int64
	err := row.Scan(&cur.Destination, &cur.Position, &cur.Hash, &recordedAt, &ackedAt, &cur.LastError, &errorAt)
	cur.RecordedAt, cur.AckedAt, cur.LastErrorAt = fromMicros(recordedAt), fromMicros(ackedAt), fromMicros(errorAt)
	return cur, err
}

// CursorsOf is the cursors kept in store's database.
func CursorsOf(store *sqlstore.Store) Cursors {
	rebind := func(q string) string { return q }
	if store.Dialect() == "sqlite" {
		rebind = sqlstore.RebindQuestion
	}
	return Cursors{Read: store.DB(), Write: store.WriteDB(), Rebind: rebind}
}
