package projections

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// DB is where the views live: the event store's database. Reads use the
// read pool; view writes use the write pool, which on SQLite is the single
// connection that begins transactions IMMEDIATE, so a view write never
// fails on a lock upgrade.
type DB struct {
	Read    *sql.DB
	Write   *sql.DB
	Dialect string // "postgres" or "sqlite"
}

var dollarParam = regexp.MustCompile(`\$(\d+)`)

// rebind turns the shared `$1` placeholders into SQLite's `?1`.
func (db DB) rebind(query string) string {
	if db.Dialect == "sqlite" {
		return dollarParam.ReplaceAllString(query, "?$1")
	}
	return query
}

// maxParams is how many parameters one statement binds: Postgres allows
// 65535; modernc's SQLite binds in time that grows faster than linearly, so
// it gets small statements.
func (db DB) maxParams() int {
	if db.Dialect == "sqlite" {
		return 900
	}
	return 20000
}

func (db DB) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.Read.QueryContext(ctx, db.rebind(query), args...)
}

// Tx is one view transaction: the view's rows and its checkpoint.
type Tx struct {
	tx *sql.Tx
	db DB
}

// Exec runs a statement written with `$n` placeholders.
func (t *Tx) Exec(ctx context.Context, query string, args ...any) error {
	_, err := t.tx.ExecContext(ctx, t.db.rebind(query), args...)
	return err
}

// Query runs a query written with `$n` placeholders.
func (t *Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.db.rebind(query), args...)
}

// upsert writes rows (each with len(cols) values) into table, replacing the
// non-key columns of rows whose key already exists. The rows must have
// distinct keys: Postgres refuses to update one row twice in a statement.
func (t *Tx) upsert(ctx context.Context, table string, cols []string, keys int, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	conflict := " ON CONFLICT (" + strings.Join(cols[:keys], ", ") + ") DO NOTHING"
	if keys < len(cols) {
		sets := make([]string, 0, len(cols)-keys)
		for _, c := range cols[keys:] {
			sets = append(sets, c+" = excluded."+c)
		}
		conflict = " ON CONFLICT (" + strings.Join(cols[:keys], ", ") + ") DO UPDATE SET " + strings.Join(sets, ", ")
	}
	return t.insertRows(ctx, table, cols, rows, conflict)
}

// insertIgnore writes rows, keeping the stored row when a key exists.
func (t *Tx) insertIgnore(ctx context.Context, table string, cols []string, keys int, rows [][]any) error {
	return t.insertRows(ctx, table, cols, rows, " ON CONFLICT ("+strings.Join(cols[:keys], ", ")+") DO NOTHING")
}

func (t *Tx) insertRows(ctx context.Context, table string, cols []string, rows [][]any, suffix string) error {
	perStatement := max(1, t.db.maxParams()/len(cols))
	head := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES "
	for start := 0; start < len(rows); start += perStatement {
		chunk := rows[start:min(start+perStatement, len(rows))]
		var b strings.Builder
		b.WriteString(head)
		args := make([]any, 0, len(chunk)*len(cols))
		for i, row := range chunk {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('(')
			for j := range cols {
				if j > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "$%d", len(args)+j+1)
			}
			b.WriteByte(')')
			args = append(args, row...)
		}
		b.WriteString(suffix)
		if err := t.Exec(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("write %d rows to %s: %w", len(chunk), table, err)
		}
	}
	return nil
}

// inChunks calls fn with the keys split into lists small enough for one
// statement, and the matching "$1, $2, ..." placeholder text.
func inChunks[K any](db DB, keys []K, fn func(args []any, placeholders string) error) error {
	size := db.maxParams()
	for start := 0; start < len(keys); start += size {
		chunk := keys[start:min(start+size, len(keys))]
		args := make([]any, len(chunk))
		marks := make([]string, len(chunk))
		for i, k := range chunk {
			args[i] = k
			marks[i] = fmt.Sprintf("$%d", i+1)
		}
		if err := fn(args, strings.Join(marks, ", ")); err != nil {
			return err
		}
	}
	return nil
}

// micros stores a time as unix microseconds; the zero time is NULL.
func micros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// timeOf reads back a micros column.
func timeOf(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMicro(n.Int64).UTC()
}
