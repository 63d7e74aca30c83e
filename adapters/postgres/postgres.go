// Package postgres is the PostgreSQL event store (github.com/lib/pq). Appends
// are serialized by a transaction-scoped advisory lock, so the global order
// has no gaps and never shows a lower position late, even with several
// Logbook processes writing; feeds wake on LISTEN/NOTIFY.
package postgres

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/migrations"
)

// Store is the PostgreSQL event store.
type Store struct {
	*sqlstore.Store
	schema string
}

// Schema is the schema holding the events table.
func (s *Store) Schema() string { return s.schema }

// Open connects, applies the migrations (under a session lock, so several
// processes may start at once), and starts listening for appends.
func Open(ctx context.Context, url string, cfg sqlstore.Config) (*Store, error) {
	db, err := sql.Open("postgres", url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	var schema string
	if err := db.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	d := newDialect(schema)
	if err := migrate(ctx, db, d.lockKey); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	notifier := &sqlstore.Notifier{}
	listener := pq.NewListener(url, 100*time.Millisecond, 10*time.Second, func(ev pq.ListenerEventType, err error) {
		// After a reconnect notifications may have been missed: wake feeds
		// so they read what they missed.
		if ev == pq.ListenerEventReconnected {
			notifier.Broadcast()
		}
	})
	if err := listener.Listen(d.channel); err != nil {
		listener.Close()
		db.Close()
		return nil, fmt.Errorf("postgres: listen: %w", err)
	}
	listenerDone := make(chan struct{})
	go func() {
		defer close(listenerDone)
		for range listener.Notify {
			notifier.Broadcast()
		}
	}()
	closeListener := func() error {
		err := listener.Close()
		<-listenerDone
		return err
	}
	st := sqlstore.New(db, db, d, notifier, cfg, closeListener, db.Close)
	return &Store{Store: st, schema: schema}, nil
}

func migrate(ctx context.Context, db *sql.DB, lockKey int64) error {
	// Lock per schema, retried every second for up to five minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockKey^1), lock.WithLockTimeout(1, 300))
	if err != nil {
		return err
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.Postgres(), goose.WithSessionLocker(locker))
	if err != nil {
		return err
	}
	_, err = provider.Up(ctx)
	return err
}

type dialect struct {
	lockKey int64
	channel string
}

// newDialect derives the advisory lock key and the NOTIFY channel from the
// schema, so stores in different schemas of one database do not contend.
func newDialect(schema string) dialect {
	sum := sha256.Sum256([]byte("logbook.events:" + schema))
	var key int64
	for _, b := range sum[:8] {
		key = key<<8 | int64(b)
	}
	return dialect{lockKey: key, channel: "logbook_events_" + hex.EncodeToString(sum[:8])}
}

func (dialect) Name() string               { return "postgres" }
func (dialect) Rebind(query string) string { return query }
func (dialect) EncodeID(id uuid.UUID) any  { return id.String() }
func (dialect) EncodeJSON(b []byte) any    { return string(b) } // json columns take text; []byte would be sent as bytea
func (dialect) EncodeTime(t time.Time) any { return t }
func (dialect) MaxParams() int             { return 65000 }

func (d dialect) LockAppends(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", d.lockKey)
	return err
}

func (d dialect) AfterAppend(ctx context.Context, tx *sql.Tx, head int64) error {
	_, err := tx.ExecContext(ctx, "SELECT pg_notify($1, $2)", d.channel, fmt.Sprint(head))
	return err
}

func (dialect) DecodeTime(src any) (time.Time, error) {
	if t, ok := src.(time.Time); ok {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("recorded_at has unexpected type %T", src)
}

func (dialect) IsUniqueViolation(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "23505"
}
