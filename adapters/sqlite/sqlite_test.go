package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/eventstore/storetest"
)

func openTemp(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Dialect: "sqlite",
		New:     func(t *testing.T) eventstore.Store { return openTemp(t) },
		Exec: func(s eventstore.Store, query string) error {
			_, err := s.(*sqlite.Store).DB().Exec(query)
			return err
		},
		Another: func(t *testing.T, s eventstore.Store) eventstore.Store {
			other, err := sqlite.Open(context.Background(), s.(*sqlite.Store).Path(), sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { other.Close() })
			return other
		},
	})
}

// Processes that open one new database at once (a server starting while
// `audit verify` polls it) migrate it one after another; none fails.
func TestOpeningANewDatabaseFromManyPlacesAtOnceMigratesItOnce(t *testing.T) {
	for round := range 5 {
		path := filepath.Join(t.TempDir(), "logbook.db")
		const openers = 8
		errs := make(chan error, openers)
		for range openers {
			go func() {
				s, err := sqlite.Open(context.Background(), path, sqlstore.Config{})
				if err == nil {
					err = s.Close()
				}
				errs <- err
			}()
		}
		for range openers {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}

// A read-only open of a path that holds no store fails with ErrNoStore and
// leaves nothing behind: no file, no directory.
func TestAMustExistOpenNeverCreatesAStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "logbook.db")
	_, err := sqlite.OpenWith(context.Background(), path, sqlite.Options{MustExist: true})
	if !errors.Is(err, sqlstore.ErrNoStore) || !strings.Contains(err.Error(), path) {
		t.Fatalf("open of a missing file: %v, want ErrNoStore naming %s", err, path)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the data directory exists after a read-only open: %v", err)
	}
	// A file that is not a store (empty) is not turned into one either.
	empty := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.OpenWith(context.Background(), empty, sqlite.Options{MustExist: true}); !errors.Is(err, sqlstore.ErrNoStore) {
		t.Fatalf("open of an empty file: %v, want ErrNoStore", err)
	}
	if info, err := os.Stat(empty); err != nil || info.Size() != 0 {
		t.Fatalf("the empty file changed: %v, %v", info, err)
	}
	// A store that exists opens.
	created := openTemp(t)
	s, err := sqlite.OpenWith(context.Background(), created.Path(), sqlite.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// Two servers on one file would both run the dispatcher and the views:
// the second is refused, naming the first, until the first closes.
func TestASecondServerOnOneFileIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logbook.db")
	first, err := sqlite.OpenWith(context.Background(), path, sqlite.Options{Serve: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sqlite.OpenWith(context.Background(), path, sqlite.Options{Serve: true})
	if !errors.Is(err, sqlstore.ErrInUse) || !strings.Contains(err.Error(), fmt.Sprintf("process %d serves %s", os.Getpid(), path)) {
		t.Fatalf("second server: %v, want ErrInUse naming this process", err)
	}
	// Readers and writers that do not serve still open it.
	other, err := sqlite.Open(context.Background(), path, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := sqlite.OpenWith(context.Background(), path, sqlite.Options{Serve: true})
	if err != nil {
		t.Fatalf("after the first server closed: %v", err)
	}
	second.Close()
}

// A database migrated by a newer build is refused with ErrMigration, saying
// both versions, instead of being written by a build that does not know
// its schema.
func TestADatabaseFromANewerBuildIsRefused(t *testing.T) {
	s := openTemp(t)
	if _, err := s.DB().Exec("INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, 1)"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := sqlite.Open(context.Background(), s.Path(), sqlstore.Config{})
	if !errors.Is(err, sqlstore.ErrMigration) || !strings.Contains(err.Error(), "schema is version 9999") {
		t.Fatalf("open of a newer database: %v, want ErrMigration naming version 9999", err)
	}
}

// A single writer commits without reading the batch's state first after
// its first commit; a writer in another process (another Store on the
// file) sends it back to the locked path once, and a repeated append, whose
// id the insert finds stored, is still recognised as a repeat.
func TestTheOptimisticPathIsTakenOnlyWhileNothingChanged(t *testing.T) {
	first := openTemp(t)
	ctx := context.Background()
	appendTo := func(s *sqlite.Store, stream string, e domain.NewEvent) {
		t.Helper()
		if _, err := s.Append(ctx, stream, eventstore.Any, e); err != nil {
			t.Fatal(err)
		}
	}
	event := func() domain.NewEvent { return domain.MustEncode(storetest.Event{N: 1}, domain.Metadata{}) }
	for range 10 {
		appendTo(first, "solo-1", event())
	}
	if st := first.Stats(); st.Locked != 1 || st.Optimistic != 9 {
		t.Fatalf("a single writer's 10 appends to one stream: %+v, want 1 locked then 9 optimistic", st)
	}
	second, err := sqlite.Open(ctx, first.Path(), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	appendTo(second, "solo-1", event())
	appendTo(first, "solo-1", event())
	if st := first.Stats(); st.Locked != 2 || st.Optimistic != 9 {
		t.Fatalf("after the other writer appended: %+v, want one more locked commit", st)
	}
	// The same event again: the optimistic insert meets its id, rolls
	// back, and the locked path answers with the stored event.
	again := event()
	appendTo(first, "solo-2", again)
	res, err := first.Append(ctx, "solo-2", eventstore.Any, again)
	if err != nil || res.LastVersion != 0 || !res.Duplicate {
		t.Fatalf("appending an event again = %+v, %v; want the stored one, a duplicate", res, err)
	}
	report, err := eventstore.Verify(ctx, first, nil)
	if err != nil || !report.OK || report.Checked != 13 {
		t.Fatalf("verify = %+v, %v", report, err)
	}
}

// A commit copies the WAL into the database file only past 50,000 pages,
// a backstop: the checkpointer does it long before, off the commits' path.
func TestEveryConnectionLeavesCheckpointsToTheCheckpointerUpTo50000Pages(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	conns := make([]*sql.Conn, 0, 3)
	for range 3 { // distinct connections of the pool, held at once
		conn, err := s.DB().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conns = append(conns, conn)
	}
	for i, conn := range conns {
		var pages int
		if err := conn.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&pages); err != nil {
			t.Fatal(err)
		}
		if pages != 50000 {
			t.Errorf("connection %d checkpoints at %d pages, want 50000", i, pages)
		}
	}
}

// The write connection keeps a savepoint's statement journal in memory:
// the views apply each view inside a savepoint, and spilled to a
// temporary file that journal cost a write syscall per page and per page
// number.
func TestTheWriteConnectionKeepsStatementJournalsInMemory(t *testing.T) {
	s := openTemp(t)
	var store int
	if err := s.WriteDB().QueryRowContext(context.Background(), "PRAGMA temp_store").Scan(&store); err != nil {
		t.Fatal(err)
	}
	if store != 2 { // 2 is MEMORY
		t.Errorf("the write connection's temp_store is %d, want 2 (memory)", store)
	}
}

// The write connection keeps 64 MB of pages: its inserts go to indexes in
// random order, and a cache smaller than those indexes reads most pages
// back from the file.
func TestTheWriteConnectionKeepsSixtyFourMegabytesOfPages(t *testing.T) {
	s := openTemp(t)
	var kib int
	if err := s.WriteDB().QueryRowContext(context.Background(), "PRAGMA cache_size").Scan(&kib); err != nil {
		t.Fatal(err)
	}
	if kib != -64*1024 { // negative: KiB
		t.Errorf("the write connection's cache_size is %d, want %d (64 MB)", kib, -64*1024)
	}
}
