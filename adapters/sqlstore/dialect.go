// Package sqlstore is the event store shared by the SQL adapters: one
// group-committing writer that serializes appends for a gap-free, hash-chained
// global order, and the reads. adapters/postgres and adapters/sqlite supply a
// Dialect for what differs.
package sqlstore

import (
	"context"
	"database/sql"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Dialect is what differs between databases.
type Dialect interface {
	// Name is "postgres" or "sqlite".
	Name() string
	// Rebind turns the shared `$1` placeholders into the dialect's own.
	Rebind(query string) string
	// LockAppends serializes appenders across processes for the rest of tx.
	LockAppends(ctx context.Context, tx *sql.Tx) error
	// AfterAppend runs in the append transaction once rows are inserted
	// (Postgres sends NOTIFY here, delivered on commit).
	AfterAppend(ctx context.Context, tx *sql.Tx, head int64) error
	// EncodeID, EncodeJSON and EncodeTime turn values into query arguments
	// for the dialect's column types.
	EncodeID(id uuid.UUID) any
	EncodeJSON(b []byte) any
	EncodeTime(t time.Time) any
	// DecodeTime reads recorded_at back.
	DecodeTime(src any) (time.Time, error)
	// IsUniqueViolation reports a unique-constraint failure.
	IsUniqueViolation(err error) bool
	// MaxParams is how many bound parameters one statement may carry.
	MaxParams() int
}

var dollarParam = regexp.MustCompile(`\$(\d+)`)

// RebindQuestion rewrites `$1` to `?1`, SQLite's numbered form.
func RebindQuestion(query string) string { return dollarParam.ReplaceAllString(query, "?$1") }

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
