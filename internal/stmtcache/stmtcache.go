// Package stmtcache keeps prepared statements by their text, so that a
// statement run again is not parsed again: SQLite (modernc) parses every
// statement it is handed, and a parse cost more than the insert it
// prepared. With Shapes, the text of a batch's statements does not depend
// on how many rows the batch has, so a handful of texts serve every batch.
package stmtcache

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// Cache holds the statements prepared on one database, by text. database/sql
// prepares a statement again on each connection that runs it, once.
type Cache struct {
	db     *sql.DB
	mu     sync.Mutex
	stmts  map[string]*sql.Stmt
	wanted map[string]bool // run in a transaction before they were prepared
}

// New returns an empty cache over db.
func New(db *sql.DB) *Cache {
	return &Cache{db: db, stmts: map[string]*sql.Stmt{}, wanted: map[string]bool{}}
}

// Prepare returns the statement for query, preparing it the first time.
func (c *Cache) Prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.stmts[query]; ok {
		return s, nil
	}
	s, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = s
	return s, nil
}

// PrepareAll prepares queries now, so that transactions find them
// prepared: a statement is never prepared during a transaction, whose
// connection may be the pool's only one (SQLite's writer), which
// preparing on the pool would wait for.
func (c *Cache) PrepareAll(ctx context.Context, queries []string) error {
	for _, q := range queries {
		if _, err := c.Prepare(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// prepared is query's statement, if it was prepared.
func (c *Cache) prepared(query string) (*sql.Stmt, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.stmts[query]
	return s, ok
}

// Exec runs query in tx, through its statement when it was prepared, else
// parsed as usual and noted for PrepareWanted.
func (c *Cache) Exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if s, ok := c.prepared(query); ok {
		return tx.StmtContext(ctx, s).ExecContext(ctx, args...)
	}
	c.want(query)
	return tx.ExecContext(ctx, query, args...)
}

func (c *Cache) want(query string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wanted[query] = true
}

// PrepareWanted prepares the statements transactions ran unprepared. Call
// it between transactions, when the pool has a connection to prepare on.
func (c *Cache) PrepareWanted(ctx context.Context) error {
	c.mu.Lock()
	queries := make([]string, 0, len(c.wanted))
	for q := range c.wanted {
		queries = append(queries, q)
	}
	clear(c.wanted)
	c.mu.Unlock()
	return c.PrepareAll(ctx, queries)
}

// Query runs query in tx, through its statement when PrepareAll prepared
// it, else parsed as usual.
func (c *Cache) Query(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	if s, ok := c.prepared(query); ok {
		return tx.StmtContext(ctx, s).QueryContext(ctx, args...)
	}
	c.want(query)
	return tx.QueryContext(ctx, query, args...)
}

// Close closes every statement.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, s := range c.stmts {
		errs = append(errs, s.Close())
		delete(c.stmts, q)
	}
	return errors.Join(errs...)
}

// Shapes splits n rows into the sizes of the statements that write them:
// as many statements of max rows as fit, then powers of two, largest
// first. Whatever n is, the sizes come from at most a few values (max and
// the powers of two below it), so the statements' texts do too.
func Shapes(n, max int) []int {
	if max < 1 {
		max = 1
	}
	var sizes []int
	for n >= max {
		sizes = append(sizes, max)
		n -= max
	}
	for size := highestPowerOfTwo(max); n > 0; size /= 2 {
		for n >= size {
			sizes = append(sizes, size)
			n -= size
		}
	}
	return sizes
}

func highestPowerOfTwo(n int) int {
	p := 1
	for p*2 <= n {
		p *= 2
	}
	return p
}

// QueryContext runs query on the database through its prepared statement.
func (c *Cache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := c.Prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// QueryRowContext runs a one-row query on the database through its
// prepared statement; a failure to prepare comes back from Scan.
func (c *Cache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := c.Prepare(ctx, query)
	if err != nil {
		// A Row carries its error only when made by database/sql: run the
		// query unprepared, which fails (or works) the same way.
		return c.db.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}
