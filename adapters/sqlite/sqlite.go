// Package sqlite is the embedded event store: modernc.org/sqlite (pure Go) in
// WAL mode, one file, no server. Appends from this process wake feeds through
// an in-process signal.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/google/uuid"
	"github.com/pressly/goose/v3"
	"golang.org/x/sys/unix"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/internal/stmtcache"
	"github.com/logbookhq/logbook/migrations"
)

// timeLayout is how recorded_at is stored: fixed-width UTC with
// microseconds, so text order is time order and the value round-trips exactly.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// Store is the SQLite event store.
type Store struct {
	*sqlstore.Store
	path       string
	viewsReset string
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// ViewsReset says why the views file was emptied when the store opened,
// to be folded again from the log; "" when it was not.
func (s *Store) ViewsReset() string { return s.viewsReset }

// Options are the SQLite store's settings.
type Options struct {
	Store sqlstore.Config
	// Synchronous is "full" (the default: a commit survives power loss) or
	// "normal" (a commit survives a crash of Logbook, and the log stays
	// consistent on any crash, but the last commits before a power loss or
	// an OS crash may be lost; appends are about twice as fast).
	Synchronous string
	// MustExist opens only a database that holds a Logbook store already:
	// read-only commands never create one (ErrNoStore).
	MustExist bool
	// Serve takes the server lock (an exclusive flock on <path>-serve.lock)
	// for as long as the store is open, and refuses with ErrInUse while
	// another process holds it: two servers on one file would both run the
	// dispatcher and the views.
	Serve bool
	// CheckpointEvery is how often the checkpointer copies the WAL into
	// the database file (0: every 250 ms).
	CheckpointEvery time.Duration
	// WALRestartFrames is how many frames the WAL holds before the
	// checkpointer tries to start it over from its beginning (0: 10,000).
	WALRestartFrames int
}

// Open opens (creating if needed) the database file at path, applies the
// migrations and starts the writer, with full durability.
func Open(ctx context.Context, path string, cfg sqlstore.Config) (*Store, error) {
	return OpenWith(ctx, path, Options{Store: cfg})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, opts Options) (*Store, error) {
	cfg := opts.Store
	sync := "FULL"
	switch opts.Synchronous {
	case "", "full":
	case "normal":
		sync = "NORMAL"
	default:
		return nil, fmt.Errorf("sqlite synchronous %q is not full or normal", opts.Synchronous)
	}
	if opts.MustExist {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s: the file does not exist (set LOGBOOK_DATA_DIR or --database to the store's location)", sqlstore.ErrNoStore, path)
		}
	} else if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create data directory %s: %w", dir, err)
		}
	}
	if opts.MustExist {
		if err := checkHoldsAStore(ctx, path); err != nil {
			return nil, err
		}
	}
	closers := []func() error{}
	fail := func(err error) (*Store, error) {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i]()
		}
		return nil, err
	}
	if opts.Serve {
		release, err := lockServer(path)
		if err != nil {
			return nil, err
		}
		closers = append(closers, release)
	}
	write, err := sql.Open("sqlite", dsn(path, writerConn, sync))
	if err != nil {
		return fail(err)
	}
	closers = append(closers, write.Close)
	// One writer connection: SQLite allows one writer at a time anyway, and
	// BEGIN IMMEDIATE on it also excludes writers in other processes.
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	statements := stmtcache.New(write)
	closers = append(closers, statements.Close) // before the connection closes
	views := ViewsPath(path)
	var viewsReset string
	err = migrateLocked(ctx, path, func() error {
		if err := migrate(ctx, write); err != nil {
			return err
		}
		viewsReset, err = openViewsFile(ctx, write, path, opts.Serve)
		return err
	})
	if err != nil {
		return fail(fmt.Errorf("%w: %s: %w", sqlstore.ErrMigration, path, err))
	}
	// The views' writes go through a connection of their own to the views
	// file: their transactions take that file's write lock, never the
	// log's, so an append does not wait for a view (docs/ARCHITECTURE.md).
	viewsWrite, err := sql.Open("sqlite", dsn(views, writerConn, viewsSync))
	if err != nil {
		return fail(err)
	}
	closers = append(closers, viewsWrite.Close)
	viewsWrite.SetMaxOpenConns(1)
	viewsWrite.SetConnMaxIdleTime(0)
	// The reads see the log and the views as one database: the views file
	// is attached to each read connection.
	read := sql.OpenDB(attachingConnector{dsn: dsn(path, readerConn, sync), attach: views, as: viewsSchema})
	closers = append(closers, read.Close)
	read.SetMaxOpenConns(8)
	// Keep them all: a connection closed and opened again reads the schema
	// again and loses its prepared statements.
	read.SetMaxIdleConns(8)
	read.SetConnMaxIdleTime(0)
	stopCheckpoints, err := startCheckpointer(path, sync, opts.CheckpointEvery, opts.WALRestartFrames)
	if err != nil {
		return fail(fmt.Errorf("start checkpointing %s: %w", path, err))
	}
	closers = append(closers, stopCheckpoints)
	stopViewsCheckpoints, err := startCheckpointer(views, viewsSync, opts.CheckpointEvery, opts.WALRestartFrames)
	if err != nil {
		return fail(fmt.Errorf("start checkpointing %s: %w", views, err))
	}
	closers = append(closers, stopViewsCheckpoints)
	notifier := &sqlstore.Notifier{}
	var watched atomic.Pointer[sqlstore.Store]
	stopWatching, err := watchOtherWriters(path, notifier, &watched)
	if err != nil {
		return fail(fmt.Errorf("watch %s for appends by other processes: %w", path, err))
	}
	// The store closes in this order: the watcher, the checkpointers, then
	// the connections, then the server lock, so no other server starts on
	// an open file.
	closers = append(closers, stopWatching)
	slices.Reverse(closers)
	d := newDialect(statements, write)
	if err := statements.PrepareAll(ctx, d.StatementTexts()); err != nil {
		return fail(fmt.Errorf("prepare the writer's statements on %s: %w", path, err))
	}
	st := sqlstore.New(sqlstore.Pools{Read: read, Write: write, Derived: viewsWrite}, d, notifier, cfg, closers...)
	st.WatchForeignAppends()
	watched.Store(st)
	return &Store{Store: st, path: path, viewsReset: viewsReset}, nil
}

// checkHoldsAStore looks for the events table through a read-only
// connection, which writes nothing: opening the writer would already turn
// any file into a WAL database.
func checkHoldsAStore(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	var tables int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'").Scan(&tables); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if tables == 0 {
		return fmt.Errorf("%w in %s: it has no events table", sqlstore.ErrNoStore, path)
	}
	return nil
}

// lockServer takes the server lock on path: an exclusive flock on a file
// next to the database, held until release (or the process's death, so a
// killed server never leaves it behind). The file holds the holder's pid,
// to say who has it.
func lockServer(path string) (release func() error, err error) {
	lockPath := path + "-serve.lock"
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the server lock %s: %w", lockPath, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(lockPath)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			who := "another process"
			if pid := strings.TrimSpace(string(holder)); pid != "" {
				who = "process " + pid
			}
			return nil, fmt.Errorf("%w: %s serves %s (it holds %s); stop it, or give this server its own LOGBOOK_DATA_DIR", sqlstore.ErrInUse, who, path, lockPath)
		}
		return nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f.Close, nil // closing the file releases the lock
}

// Checks for another process's appends (sqlstore.CheckForeignAppends):
// at most one per foreignCheckSpacing while the WAL is written (this
// process's own writes are reported too, thousands a second under load),
// and one every foreignCheckEvery in any case, should inotify miss one.
const (
	foreignCheckSpacing = 10 * time.Millisecond
	foreignCheckEvery   = time.Second
)

// walEventSpacing is the least time between two events of the watch on
// the data directory that are taken (see watchOtherWriters).
const walEventSpacing = 5 * time.Millisecond

// watchOtherWriters wakes feeds when another process appends: every commit
// writes the -wal file, and inotify reports it without polling. The write
// can be reported a moment before the commit is visible, so a second wake
// follows shortly after the last write. The store, once open, is also
// told to look for another process's appends (see foreignCheckSpacing),
// and wakes the feeds again when it finds one: its followers caught up
// with its own last commit do not read the database until then.
func watchOtherWriters(path string, notifier *sqlstore.Notifier, store *atomic.Pointer[sqlstore.Store]) (stop func() error, err error) {
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		watcher.Close()
		return nil, err
	}
	if err := watcher.Add(filepath.Dir(abs)); err != nil {
		watcher.Close()
		return nil, err
	}
	wal := abs + "-wal"
	done := make(chan struct{})
	go func() {
		defer close(done)
		trailing := time.NewTimer(time.Hour)
		trailing.Stop()
		defer trailing.Stop()
		spaced := time.NewTimer(time.Hour)
		spaced.Stop()
		defer spaced.Stop()
		every := time.NewTicker(foreignCheckEvery)
		defer every.Stop()
		spacedArmed := false
		var lastCheck time.Time
		// Events are taken at most one per walEventSpacing. fsnotify's
		// reader then waits on this loop, and the kernel merges the writes
		// reported meanwhile into one event: read one by one, this
		// process's own writes to the WAL (thousands a second under load)
		// cost 8% of the server's CPU (docs/benchmarks.md).
		events := watcher.Events
		resume := time.NewTimer(time.Hour)
		resume.Stop()
		defer resume.Stop()
		check := func() {
			lastCheck = time.Now()
			st := store.Load()
			if st == nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			foreign, err := st.CheckForeignAppends(ctx)
			cancel()
			if err == nil && foreign {
				notifier.Broadcast()
			}
		}
		for {
			select {
			case <-trailing.C:
				notifier.Broadcast()
				check()
			case <-spaced.C:
				spacedArmed = false
				check()
			case <-every.C:
				check()
			case <-resume.C:
				events = watcher.Events
			case ev, ok := <-events:
				if !ok {
					return
				}
				events = nil
				resume.Reset(walEventSpacing)
				if ev.Name != wal || !ev.Has(fsnotify.Write) {
					continue
				}
				notifier.Broadcast()
				trailing.Reset(20 * time.Millisecond)
				if since := time.Since(lastCheck); since >= foreignCheckSpacing {
					check()
				} else if !spacedArmed {
					spaced.Reset(foreignCheckSpacing - since)
					spacedArmed = true
				}
			case _, ok := <-watcher.Errors:
				if !ok {
					return
				}
			}
		}
	}()
	return func() error {
		err := watcher.Close()
		<-done
		return err
	}, nil
}

// writeCacheKiB is the write connection's page cache.
const writeCacheKiB = 64 * 1024

// walBackstopPages is how many pages the WAL may hold before a commit
// copies them into the database file itself. The checkpointer (see
// checkpoint.go) does that off the commits' path long before; this only
// bounds the WAL should it fail for a long time.
const walBackstopPages = 50000

// connRole is what a connection of the store is for.
type connRole int

const (
	readerConn connRole = iota
	writerConn
	checkpointConn
)

func dsn(path string, role connRole, synchronous string) string {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	if role == checkpointConn {
		// A checkpoint that would have to wait for the writer or a reader
		// does what it can without waiting, and the next one goes on.
		q.Add("_pragma", "busy_timeout(0)")
	} else {
		q.Add("_pragma", "busy_timeout(10000)")
	}
	// FULL by default: a commit survives power loss, not just a process
	// crash. Group commit keeps the fsync cost per event small.
	q.Add("_pragma", "synchronous("+synchronous+")")
	q.Add("_pragma", "wal_autocheckpoint("+strconv.Itoa(walBackstopPages)+")")
	// The views apply each view inside a savepoint, and a savepoint keeps
	// the pages it changes in a statement journal. Past 64 KiB SQLite
	// spills that journal to a temporary file, written a page and its
	// 4-byte number at a time: a tenth of the server's CPU under builtin
	// load went to those writes (docs/benchmarks.md). In memory, the
	// journal is as big as one view's batch and never touches the disk.
	q.Add("_pragma", "temp_store(MEMORY)")
	if role == writerConn {
		// Some of the writer's and the views' inserts go to indexes keyed
		// in random order (the ids of chat providers' requests, hashes of
		// their message ids): with SQLite's default 2 MB cache, most of
		// them read their page back from the file, a system call each,
		// once the log outgrows it.
		q.Add("_pragma", "cache_size(-"+strconv.Itoa(writeCacheKiB)+")")
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// migrateLocked migrates under an exclusive lock on a file next to the
// database. SQLite has no advisory lock, and goose reads the applied
// versions and applies a migration in separate transactions, so two
// processes opening one new database at once (a server and `audit verify`)
// would both apply version 1 and one would fail.
func migrateLocked(ctx context.Context, path string, migrate func() error) error {
	lockPath := path + "-migrate.lock"
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("open the migration lock %s: %w", lockPath, err)
	}
	defer f.Close() // closing the file releases the lock
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("lock %s: %w", lockPath, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for another process to migrate %s: %w", path, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return migrate()
}

func migrate(ctx context.Context, db *sql.DB) error {
	provider, err := goose.NewProvider(goose.DialectSQLite3, db, migrations.SQLite())
	if err != nil {
		return err
	}
	return sqlstore.Migrate(ctx, provider)
}

// dialect is SQLite's: the portable batch SQL, in small statements because
// modernc binds parameters in time that grows faster than linearly with their
// number, so many small statements beat one large one.
type dialect struct {
	sqlstore.Portable
	write *sql.DB // the one write connection, for AppendIfUnchanged
}

func newDialect(statements *stmtcache.Cache, write *sql.DB) dialect {
	return dialect{write: write, Portable: sqlstore.Portable{
		Rebind:     sqlstore.RebindQuestion,
		MaxParams:  100,
		Statements: statements,
		EncodeID:   func(id uuid.UUID) any { return id.String() },
		EncodeJSON: func(b []byte) any { return b },
		EncodeTime: func(t time.Time) any { return t.UTC().Format(timeLayout) },
	}}
}

// NowMillisSQL implements sqlstore.Dialect.
func (dialect) NowMillisSQL() string {
	return "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
}

// ShareLockSQL implements sqlstore.Dialect: a write transaction is
// BEGIN IMMEDIATE, which already excludes every other writer.
func (dialect) ShareLockSQL() string { return "" }

// AppendIfUnchanged implements sqlstore.OptimisticAppender: one write
// transaction that checks the head and the streams the writer has not seen,
// then inserts. It skips what the locked path reads first (every id of the
// batch, every stream's version): a stored id fails the insert on the
// unique index instead, which rolls everything back and leaves the batch
// to the locked path, where a repeat is told from a clash.
func (d dialect) AppendIfUnchanged(ctx context.Context, head int64, versions map[string]int64, rows []domain.RecordedEvent) (bool, error) {
	tx, err := d.write.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	current, err := d.Head(ctx, tx)
	if err != nil || current != head {
		return false, err
	}
	if len(versions) > 0 {
		streams := make([]string, 0, len(versions))
		for stream := range versions {
			streams = append(streams, stream)
		}
		found := make(map[string]int64, len(versions))
		if err := d.StreamVersions(ctx, tx, streams, found); err != nil {
			return false, err
		}
		for stream, want := range versions {
			got, ok := found[stream]
			if !ok {
				got = -1
			}
			if got != want {
				return false, nil
			}
		}
	}
	if err := d.Insert(ctx, tx, rows); err != nil {
		if d.IsUniqueViolation(err) {
			return false, nil
		}
		return false, err
	}
	return true, tx.Commit()
}

func (dialect) Name() string                               { return "sqlite" }
func (dialect) Rebind(query string) string                 { return sqlstore.RebindQuestion(query) }
func (dialect) LockAppends(context.Context, *sql.Tx) error { return nil } // BEGIN IMMEDIATE holds the write lock

func (dialect) DecodeTime(src any) (time.Time, error) {
	switch v := src.(type) {
	case string:
		return time.Parse(timeLayout, v)
	case []byte:
		return time.Parse(timeLayout, string(v))
	case time.Time:
		return v, nil
	}
	return time.Time{}, fmt.Errorf("recorded_at has unexpected type %T", src)
}

func (dialect) IsUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}
