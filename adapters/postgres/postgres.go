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
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/migrations"
)

// Store is the PostgreSQL event store.
type Store struct {
	*sqlstore.Store
	schema string
	url    string
}

// URL is the connection URL the store was opened with.
func (s *Store) URL() string { return s.url }

// Schema is the schema holding the events table.
func (s *Store) Schema() string { return s.schema }

// Options are the PostgreSQL store's settings.
type Options struct {
	Store sqlstore.Config
	// MustExist opens only a schema that holds a Logbook store already:
	// read-only commands never create one (sqlstore.ErrNoStore).
	MustExist bool
}

// Open connects, applies the migrations (under a session lock, so several
// processes may start at once), and starts listening for appends.
func Open(ctx context.Context, url string, cfg sqlstore.Config) (*Store, error) {
	return OpenWith(ctx, url, Options{Store: cfg})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg := opts.Store
	// binary_parameters lets lib/pq send a query and its arguments in one
	// round trip instead of two.
	if !strings.Contains(url, "binary_parameters=") {
		url = withParam(url, "binary_parameters", "yes")
	}
	// A server that dies in the middle of a transaction without closing its
	// connection (its host gone, a network cut) would hold the append lock
	// until TCP gives up, hours later, and no other server could record
	// anything: PostgreSQL ends such a session after 30s. Every transaction
	// of the store's runs its statements back to back.
	if !strings.Contains(url, "idle_in_transaction_session_timeout=") {
		url = withParam(url, "idle_in_transaction_session_timeout", "30000")
	}
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
	if opts.MustExist {
		var exists bool
		if err := db.QueryRowContext(ctx, "SELECT to_regclass('events') IS NOT NULL").Scan(&exists); err != nil {
			db.Close()
			return nil, fmt.Errorf("postgres: %w", err)
		}
		if !exists {
			db.Close()
			return nil, fmt.Errorf("%w in schema %s: it has no events table", sqlstore.ErrNoStore, schema)
		}
	}
	d := newDialect(db, schema)
	if err := migrate(ctx, db, d.lockKey); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w: %w", sqlstore.ErrMigration, err)
	}
	// Prepared once (database/sql prepares it again on each connection
	// that runs it): a call then skips the server's parse, 0.05 ms of
	// the 1.1 ms between two group commits in `bench store`.
	if d.appendStmt, err = db.PrepareContext(ctx, appendCall); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: prepare the append: %w", err)
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
	st := sqlstore.New(sqlstore.Pools{Read: db, Write: db}, d, notifier, cfg, closeListener, d.appendStmt.Close, db.Close)
	return &Store{Store: st, schema: schema, url: url}, nil
}

func withParam(url, key, value string) string {
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + key + "=" + value
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
	return sqlstore.Migrate(ctx, provider)
}

type dialect struct {
	db         *sql.DB   // for the one-round-trip append, outside any transaction
	appendStmt *sql.Stmt // appendCall, prepared
	lockKey    int64
	channel    string
}

// newDialect derives the advisory lock key and the NOTIFY channel from the
// schema, so stores in different schemas of one database do not contend.
func newDialect(db *sql.DB, schema string) dialect {
	sum := sha256.Sum256([]byte("logbook.events:" + schema))
	var key int64
	for _, b := range sum[:8] {
		key = key<<8 | int64(b)
	}
	return dialect{db: db, lockKey: key, channel: "logbook_events_" + hex.EncodeToString(sum[:8])}
}

func (dialect) Name() string               { return "postgres" }
func (dialect) Rebind(query string) string { return query }
func (dialect) NowMillisSQL() string {
	return "(extract(epoch from clock_timestamp()) * 1000)::bigint"
}
func (dialect) ShareLockSQL() string { return " FOR SHARE" }

func (d dialect) LockAppends(ctx context.Context, tx *sql.Tx) error {
	// A statement of its own: a statement's snapshot is taken when it starts,
	// so reads that must see the previous holder's commit come after it.
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", d.lockKey)
	return err
}

// ReadBatchState reads the head, the stored ids and the stream versions in
// one round trip. Each stream's version is one backward step on the
// (stream_id, version) index, however long the stream.
func (dialect) ReadBatchState(ctx context.Context, tx *sql.Tx, ids []uuid.UUID, streams []string) (sqlstore.BatchState, error) {
	state := sqlstore.BatchState{Existing: map[uuid.UUID]sqlstore.StoredRef{}, Versions: map[string]int64{}}
	idTexts := make([]string, len(ids))
	for i, id := range ids {
		idTexts[i] = id.String()
	}
	rows, err := tx.QueryContext(ctx, `
		SELECT 0, position, '', 0, hash, NULL FROM (SELECT position, hash FROM events ORDER BY position DESC LIMIT 1) AS head
		UNION ALL
		SELECT 1, position, stream_id, version, NULL, id::text FROM events WHERE id = ANY($1::uuid[])
		UNION ALL
		SELECT 2, 0, s.stream_id, last.version, NULL, NULL
		FROM unnest($2::text[]) AS s(stream_id)
		CROSS JOIN LATERAL (SELECT version FROM events WHERE stream_id = s.stream_id ORDER BY version DESC LIMIT 1) AS last`,
		pq.StringArray(idTexts), pq.StringArray(streams))
	if err != nil {
		return state, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			kind int
			ref  sqlstore.StoredRef
			hash []byte
			id   sql.NullString
		)
		if err := rows.Scan(&kind, &ref.Position, &ref.Stream, &ref.Version, &hash, &id); err != nil {
			return state, err
		}
		switch kind {
		case 0:
			state.Head, state.HeadHash = ref.Position, hash
		case 1:
			parsed, err := uuid.Parse(id.String)
			if err != nil {
				return state, fmt.Errorf("stored event id %q: %w", id.String, err)
			}
			state.Existing[parsed] = ref
		case 2:
			state.Versions[ref.Stream] = ref.Version
		}
	}
	return state, rows.Err()
}

// Insert writes every row in one statement from arrays and queues the NOTIFY
// that wakes other processes' feeds on commit.
func (d dialect) Insert(ctx context.Context, tx *sql.Tx, rows []domain.RecordedEvent) error {
	cols := columnArrays(rows)
	_, err := tx.ExecContext(ctx, `
		WITH inserted AS (
			INSERT INTO events (`+sqlstore.Columns+`)
			SELECT p, s, v, i, t, d::json, m::json, r, ph, h
			FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::bytea[], $10::bytea[])
				AS u(p, s, v, i, t, d, m, r, ph, h)
		)
		SELECT pg_notify($11, $12)`,
		append(cols, d.channel, fmt.Sprint(rows[len(rows)-1].Position))...)
	return err
}

// InsertPacks implements sqlstore.PackInserter: a batch of the Merkle
// tree's packs in one statement, as the events go in.
func (dialect) InsertPacks(ctx context.Context, tx *sql.Tx, from int64, packs [][]byte) error {
	leaves := make(pq.Int64Array, len(packs))
	for i := range packs {
		leaves[i] = from + int64(i)
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO merkle_tree_packs (leaf, hashes) SELECT * FROM unnest($1::bigint[], $2::bytea[])", leaves, pq.ByteaArray(packs))
	return err
}

// AppendIfUnchanged implements sqlstore.OptimisticAppender with the
// logbook_append function (migrations/postgres/00003): one round trip, the
// lock, the checks, the insert, the NOTIFY and the commit together.
func (d dialect) AppendIfUnchanged(ctx context.Context, head int64, versions map[string]int64, rows []domain.RecordedEvent) (bool, error) {
	streams := make(pq.StringArray, 0, len(versions))
	assumed := make(pq.Int64Array, 0, len(versions))
	for stream, v := range versions {
		streams = append(streams, stream)
		assumed = append(assumed, v)
	}
	args := append([]any{d.lockKey, head, streams, assumed}, columnArrays(rows)...)
	args = append(args, d.channel)
	var outcome string
	err := d.appendStmt.QueryRowContext(ctx, args...).Scan(&outcome)
	if err != nil {
		return false, err
	}
	return outcome == "ok", nil
}

// appendCall calls logbook_append (AppendIfUnchanged).
const appendCall = `SELECT logbook_append($1, $2, $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::bigint[], $8::uuid[], $9::text[], $10::text[], $11::text[], $12::timestamptz[], $13::bytea[], $14::bytea[], $15)`

// columnArrays turns rows into one array argument per column, in
// sqlstore.Columns order.
func columnArrays(rows []domain.RecordedEvent) []any {
	n := len(rows)
	var (
		positions = make(pq.Int64Array, n)
		streams   = make(pq.StringArray, n)
		versions  = make(pq.Int64Array, n)
		ids       = make(pq.StringArray, n)
		types     = make(pq.StringArray, n)
		data      = make(pq.StringArray, n)
		metadata  = make(pq.StringArray, n)
		times     = make(pq.StringArray, n)
		prevs     = make(pq.ByteaArray, n)
		hashes    = make(pq.ByteaArray, n)
	)
	for i, e := range rows {
		positions[i], streams[i], versions[i], ids[i], types[i] = e.Position, e.Stream, e.Version, e.ID.String(), e.Type
		data[i], metadata[i] = string(e.Data), string(e.RawMetadata)
		times[i] = e.RecordedAt.UTC().Format(time.RFC3339Nano)
		prevs[i], hashes[i] = e.PrevHash, e.Hash
	}
	return []any{positions, streams, versions, ids, types, data, metadata, times, prevs, hashes}
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
