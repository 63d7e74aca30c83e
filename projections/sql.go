package projections

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/logbookhq/logbook/internal/sqlparams"
	"github.com/logbookhq/logbook/internal/stmtcache"
)

// DB is where the views live: the event store's database (on SQLite, its
// views file, which the read pool sees beside the log). Reads use the read
// pool; view writes use the views' write pool, which on SQLite is the
// single connection to the views file that begins transactions IMMEDIATE,
// so a view write never fails on a lock upgrade.
type DB struct {
	Read    *sql.DB
	Write   *sql.DB
	Dialect string // "postgres" or "sqlite"
}

// rebind turns the shared `$1` placeholders into SQLite's
// (sqlparams.ToSQLite).
func (db DB) rebind(query string) string {
	if db.Dialect == "sqlite" {
		return sqlparams.ToSQLite(query)
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
	// stmts, on SQLite, runs statements prepared once (the runner prepares
	// what a transaction ran unprepared, after it commits); nil runs each
	// as it comes.
	stmts *stmtcache.Cache
}

// Exec runs a statement written with `$n` placeholders.
func (t *Tx) Exec(ctx context.Context, query string, args ...any) error {
	if t.stmts != nil {
		_, err := t.stmts.Exec(ctx, t.tx, t.db.rebind(query), args...)
		return err
	}
	_, err := t.tx.ExecContext(ctx, t.db.rebind(query), args...)
	return err
}

// Query runs a query written with `$n` placeholders.
func (t *Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if t.stmts != nil {
		return t.stmts.Query(ctx, t.tx, t.db.rebind(query), args...)
	}
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
	if len(rows) == 0 {
		return nil
	}
	if t.db.Dialect == "postgres" {
		return t.insertArrays(ctx, table, cols, rows, suffix)
	}
	perStatement := max(1, t.db.maxParams()/len(cols))
	head := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES "
	// Statements in a few fixed shapes, so their texts repeat and each is
	// prepared once.
	start := 0
	for _, size := range stmtcache.Shapes(len(rows), perStatement) {
		chunk := rows[start : start+size]
		start += size
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

// insertArrays writes rows in one Postgres statement that unnests one array
// per column. Its text is the same however many rows there are, and the
// server parses one literal per column instead of binding a parameter per
// value, which is several times cheaper for the thousands of rows of a
// rebuild's batch.
func (t *Tx) insertArrays(ctx context.Context, table string, cols []string, rows [][]any, suffix string) error {
	arrays := make([]any, len(cols))
	casts := make([]string, len(cols))
	var b []byte
	for j := range cols {
		kind, err := pgArrayType(rows[0][j])
		if err != nil {
			return fmt.Errorf("write %d rows to %s: column %s: %w", len(rows), table, cols[j], err)
		}
		b = append(b[:0], '{')
		for i, row := range rows {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendArrayElement(b, row[j]); err != nil {
				return fmt.Errorf("write %d rows to %s: column %s: %w", len(rows), table, cols[j], err)
			}
		}
		b = append(b, '}')
		arrays[j] = string(b)
		casts[j] = fmt.Sprintf("$%d::%s[]", j+1, kind)
	}
	query := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") SELECT * FROM unnest(" + strings.Join(casts, ", ") + ")" + suffix
	if err := t.Exec(ctx, query, arrays...); err != nil {
		return fmt.Errorf("write %d rows to %s: %w", len(rows), table, err)
	}
	return nil
}

// pgArrayType is the Postgres element type for a Go column value.
func pgArrayType(v any) (string, error) {
	switch v.(type) {
	case string:
		return "text", nil
	case int, int64, sql.NullInt64:
		return "bigint", nil
	case bool:
		return "boolean", nil
	case []byte:
		return "bytea", nil
	}
	return "", fmt.Errorf("no array type for %T", v)
}

// appendArrayElement appends v as an element of a Postgres array literal.
func appendArrayElement(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		b = append(b, '"')
		for i := 0; i < len(v); i++ {
			if v[i] == '"' || v[i] == '\\' {
				b = append(b, '\\')
			}
			b = append(b, v[i])
		}
		return append(b, '"'), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case sql.NullInt64:
		if !v.Valid {
			return append(b, "NULL"...), nil
		}
		return strconv.AppendInt(b, v.Int64, 10), nil
	case bool:
		if v {
			return append(b, 't'), nil
		}
		return append(b, 'f'), nil
	case []byte:
		// The bytea hex form, its backslash escaped for the array.
		b = append(b, `"\\x`...)
		b = hex.AppendEncode(b, v)
		return append(b, '"'), nil
	}
	return b, fmt.Errorf("no array element for %T", v)
}
