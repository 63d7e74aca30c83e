package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/migrations"
)

func appendSome(t *testing.T, s eventstore.Store, n int) {
	t.Helper()
	for range n {
		_, err := s.Append(context.Background(), "test-"+uuid.NewString(), eventstore.NoStream,
			domain.NewEvent{ID: uuid.New(), Type: "Tested", Data: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func openWith(t *testing.T, path string, opts sqlite.Options) *sqlite.Store {
	t.Helper()
	s, err := sqlite.OpenWith(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func scalar[T any](t *testing.T, db *sql.DB, query string) T {
	t.Helper()
	var v T
	if err := db.QueryRow(query).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

// Given a view transaction that holds the views file's write lock, when
// an event is appended, then the append commits at once: the views and
// the log have a write lock each.
func TestAnAppendDoesNotWaitForAViewTransaction(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	tx, err := s.ViewsWriteDB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec("INSERT INTO view_checkpoints (name, position) VALUES ('held', 0)"); err != nil {
		t.Fatal(err)
	}
	// Shared, the append would wait out the busy timeout (10 s) and fail.
	appendCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := s.Append(appendCtx, "test-1", eventstore.NoStream, domain.NewEvent{ID: uuid.New(), Type: "Tested", Data: []byte(`{}`)}); err != nil {
		t.Fatalf("an append while a view transaction is open: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// The reads see both files as one.
	if n := scalar[int](t, s.DB(), "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM view_checkpoints WHERE name = 'held')"); n != 2 {
		t.Fatalf("the reads see %d of the event and the view's row, want 2", n)
	}
}

// The log's file holds no view, and the views file no event.
func TestTheViewsAndTheLogHaveAFileEach(t *testing.T) {
	s := openTemp(t)
	if _, err := os.Stat(sqlite.ViewsPath(s.Path())); err != nil {
		t.Fatalf("no views file: %v", err)
	}
	logDB, err := sql.Open("sqlite", "file:"+s.Path()+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer logDB.Close()
	if n := scalar[int](t, logDB, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'view_%' OR name LIKE 'merkle_%'"); n != 0 {
		t.Fatalf("the log's file holds %d views' objects", n)
	}
	if n := scalar[int](t, s.ViewsWriteDB(), "SELECT count(*) FROM sqlite_master WHERE name IN ('events', 'secret_values', 'audit_checkpoints')"); n != 0 {
		t.Fatalf("the views file holds %d of the log's tables", n)
	}
	if n := scalar[int](t, s.ViewsWriteDB(), "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name LIKE 'view_%'"); n < 20 {
		t.Fatalf("the views file holds %d view tables", n)
	}
}

// Given a views file that is not the log's (folded past its head, from
// another store, or deleted), when the server opens the store, then the
// views file is made again empty and says why, and the log keeps every
// event.
func TestAServerEmptiesAViewsFileThatIsNotItsLogs(t *testing.T) {
	t.Run("folded past the log's head", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "logbook.db")
		s := openWith(t, path, sqlite.Options{})
		appendSome(t, s, 3)
		for _, stmt := range []string{
			"INSERT INTO view_checkpoints (name, position) VALUES ('history', 100)",
			"INSERT INTO view_search_docs (position, request_id, run_id, kind, line, body, username, command) VALUES (99, 'r', '', 'request', 0, 'deploy the thing', 'ann', 'deploy')",
		} {
			if _, err := s.ViewsWriteDB().Exec(stmt); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		s = openWith(t, path, sqlite.Options{Serve: true})
		if got := s.ViewsReset(); !strings.Contains(got, "position 100") || !strings.Contains(got, "ends at 3") {
			t.Fatalf("reset because %q", got)
		}
		// Every table is there again, empty, its full-text indexes too.
		if n := scalar[int](t, s.DB(), "SELECT (SELECT count(*) FROM view_checkpoints) + (SELECT count(*) FROM view_search_docs) + (SELECT count(*) FROM view_search_words WHERE view_search_words MATCH 'deploy')"); n != 0 {
			t.Fatalf("%d view rows after the reset", n)
		}
		if _, err := s.ViewsWriteDB().Exec("INSERT INTO view_search_docs (position, request_id, run_id, kind, line, body, username, command) VALUES (1, 'r', '', 'request', 0, 'deploy the thing', 'ann', 'deploy')"); err != nil {
			t.Fatal(err)
		}
		if n := scalar[int](t, s.DB(), "SELECT count(*) FROM view_search_words WHERE view_search_words MATCH 'deploy'"); n != 1 {
			t.Fatalf("the search index after the reset finds %d documents, want 1", n)
		}
		if n := scalar[int](t, s.DB(), "SELECT count(*) FROM events"); n != 3 {
			t.Fatalf("the log holds %d events, want 3", n)
		}
	})
	t.Run("a Merkle tree past the log's head", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "logbook.db")
		s := openWith(t, path, sqlite.Options{})
		appendSome(t, s, 2)
		if _, err := s.ViewsWriteDB().Exec("UPDATE merkle_tree_size SET size = 9"); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = openWith(t, path, sqlite.Options{Serve: true})
		if got := s.ViewsReset(); !strings.Contains(got, "9 leaves") {
			t.Fatalf("reset because %q", got)
		}
		if size, err := s.TreeSize(context.Background()); err != nil || size != 0 {
			t.Fatalf("the tree has %d leaves after the reset (%v)", size, err)
		}
	})
	t.Run("from another store", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "logbook.db")
		other := filepath.Join(t.TempDir(), "logbook.db")
		openWith(t, path, sqlite.Options{}).Close()
		o := openWith(t, other, sqlite.Options{})
		if _, err := o.ViewsWriteDB().Exec("INSERT INTO view_checkpoints (name, position) VALUES ('history', 0)"); err != nil {
			t.Fatal(err)
		}
		o.Close()
		views, err := os.ReadFile(sqlite.ViewsPath(other))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(sqlite.ViewsPath(path), views, 0o600); err != nil {
			t.Fatal(err)
		}
		s := openWith(t, path, sqlite.Options{Serve: true})
		if got := s.ViewsReset(); !strings.Contains(got, "another store") {
			t.Fatalf("reset because %q", got)
		}
		if n := scalar[int](t, s.DB(), "SELECT count(*) FROM view_checkpoints"); n != 0 {
			t.Fatalf("%d view checkpoints after the reset", n)
		}
	})
	t.Run("deleted", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "logbook.db")
		s := openWith(t, path, sqlite.Options{})
		appendSome(t, s, 2)
		s.Close()
		for _, f := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(sqlite.ViewsPath(path) + f); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
		}
		s = openWith(t, path, sqlite.Options{Serve: true})
		if got := s.ViewsReset(); got != "" {
			t.Fatalf("a new views file was reset: %q", got)
		}
		if n := scalar[int](t, s.DB(), "SELECT count(*) FROM events"); n != 2 {
			t.Fatalf("the log holds %d events, want 2", n)
		}
	})
}

// Given a views file ahead of the log, when a process that does not serve
// opens the store (beside a server, or alone, as audit verify does), then
// the file stays as it is; the server empties it when it starts.
func TestOnlyTheServerEmptiesTheViews(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logbook.db")
	server := openWith(t, path, sqlite.Options{Serve: true})
	if _, err := server.ViewsWriteDB().Exec("INSERT INTO view_checkpoints (name, position) VALUES ('history', 7)"); err != nil {
		t.Fatal(err)
	}
	reader := openWith(t, path, sqlite.Options{MustExist: true})
	if got := reader.ViewsReset(); got != "" {
		t.Fatalf("a reader beside a server reset the views: %q", got)
	}
	reader.Close()
	server.Close()
	alone := openWith(t, path, sqlite.Options{MustExist: true})
	if got := alone.ViewsReset(); got != "" {
		t.Fatalf("a reader alone reset the views: %q", got)
	}
	if n := scalar[int](t, alone.DB(), "SELECT count(*) FROM view_checkpoints WHERE name = 'history'"); n != 1 {
		t.Fatal("the views lost their checkpoint to a reader")
	}
	alone.Close()
	if got := openWith(t, path, sqlite.Options{Serve: true}).ViewsReset(); !strings.Contains(got, "position 7") {
		t.Fatalf("the server reset because %q", got)
	}
}

// Given a database made before the views had a file of their own, with
// views folded in it, when it is opened, then its views leave the log's
// file, the views file starts empty to be folded again, and the
// dispatcher's checkpoint stays.
func TestADatabaseFromBeforeTheViewsFileMovesItsViewsOut(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "logbook.db")
	old, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	provider, err := goose.NewProvider(goose.DialectSQLite3, old, migrations.SQLite())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.UpTo(ctx, 121); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		"INSERT INTO checkpoints (name, position) VALUES ('history', 5), ('search', 5), ('dispatcher', 5)",
		"UPDATE merkle_tree_size SET size = 5",
		"INSERT INTO view_access_groups (group_name) VALUES ('ops')",
	} {
		if _, err := old.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()
	s := openWith(t, path, sqlite.Options{Serve: true})
	if got := s.ViewsReset(); got != "" {
		t.Fatalf("the new views file was reset: %q", got)
	}
	if names := scalar[string](t, s.WriteDB(), "SELECT group_concat(name) FROM checkpoints"); names != "dispatcher" {
		t.Fatalf("the log's file keeps the checkpoints of %q, want the dispatcher's only", names)
	}
	if n := scalar[int](t, s.WriteDB(), "SELECT count(*) FROM sqlite_master WHERE name LIKE 'view_%' OR name LIKE 'merkle_%'"); n != 0 {
		t.Fatalf("the log's file still holds %d views' objects", n)
	}
	if n := scalar[int](t, s.DB(), "SELECT (SELECT count(*) FROM view_checkpoints) + (SELECT count(*) FROM view_access_groups) + (SELECT size FROM merkle_tree_size)"); n != 0 {
		t.Fatalf("the new views file holds %d rows, want none", n)
	}
}

// Given something that is not a database where the views file goes, when
// the server opens the store, then it makes the views file again and says
// why; a command that only reads fails, naming the file.
func TestAViewsFileSQLiteCannotReadIsMadeAgainByTheServer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logbook.db")
	s := openWith(t, path, sqlite.Options{})
	appendSome(t, s, 2)
	s.Close()
	for _, f := range []string{"-wal", "-shm"} {
		if err := os.Remove(sqlite.ViewsPath(path) + f); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(sqlite.ViewsPath(path), []byte(strings.Repeat("not a database ", 400)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.OpenWith(context.Background(), path, sqlite.Options{MustExist: true})
	if err == nil || !strings.Contains(err.Error(), sqlite.ViewsPath(path)) || !strings.Contains(err.Error(), "the server makes it again") {
		t.Fatalf("a reader's open: %v, want an error naming the views file", err)
	}
	s = openWith(t, path, sqlite.Options{Serve: true})
	if got := s.ViewsReset(); !strings.Contains(got, "not a database SQLite can read") {
		t.Fatalf("reset because %q", got)
	}
	if n := scalar[int](t, s.DB(), "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM view_checkpoints)"); n != 2 {
		t.Fatalf("%d events and view checkpoints after the reset, want the 2 events", n)
	}
}
