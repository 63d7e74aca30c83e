package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/eventstore/storetest"
	"github.com/logbookhq/logbook/internal/testenv"
)

// eventsInTheDatabaseFile counts the events in the database file alone,
// leaving out what is only in the WAL (immutable: SQLite reads no WAL);
// -1 when the file cannot be read as it is (a checkpoint writing it).
func eventsInTheDatabaseFile(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&immutable=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables, events int
	if err := db.QueryRow("SELECT count(*) FROM sqlite_master WHERE name = 'events'").Scan(&tables); err != nil {
		return -1
	}
	if tables == 0 {
		return 0
	}
	if err := db.QueryRow("SELECT count(*) FROM events").Scan(&events); err != nil {
		return -1
	}
	return events
}

func appendEvents(t *testing.T, s *sqlite.Store, prefix string, n int) {
	t.Helper()
	for i := range n {
		e := domain.MustEncode(storetest.Event{N: i}, domain.Metadata{})
		if _, err := s.Append(context.Background(), fmt.Sprintf("%s-%d", prefix, i), eventstore.NoStream, e); err != nil {
			t.Fatal(err)
		}
	}
}

// Commits leave the WAL's pages where they are; the checkpointer copies
// them into the database file from a connection of its own.
func TestTheCheckpointerNotTheCommitsCopiesTheWALIntoTheDatabaseFile(t *testing.T) {
	ctx := context.Background()
	idle := filepath.Join(t.TempDir(), "idle.db")
	s, err := sqlite.OpenWith(ctx, idle, sqlite.Options{CheckpointEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendEvents(t, s, "idle", 200)
	if n := eventsInTheDatabaseFile(t, idle); n != 0 {
		t.Fatalf("with the checkpointer idle, the database file holds %d of the 200 events committed, want none", n)
	}

	busy := filepath.Join(t.TempDir(), "busy.db")
	s2, err := sqlite.OpenWith(ctx, busy, sqlite.Options{CheckpointEvery: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	appendEvents(t, s2, "busy", 200)
	testenv.Eventually(t, "the 200 events in the database file", func() bool { return eventsInTheDatabaseFile(t, busy) == 200 })
}

// Once the WAL is long, the checkpointer starts it over: a WAL that only
// grew would take the disk, however much of it was copied.
func TestTheCheckpointerStartsALongWALOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logbook.db")
	s, err := sqlite.OpenWith(context.Background(), path, sqlite.Options{CheckpointEvery: 5 * time.Millisecond, WALRestartFrames: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The WAL header's checkpoint sequence and salts change each time the
	// WAL starts over, once the next frame is written.
	header := func() []byte {
		b, err := os.ReadFile(path + "-wal")
		if err != nil || len(b) < 32 {
			t.Fatalf("reading the WAL header: %d bytes, %v", len(b), err)
		}
		return b[12:24]
	}
	appendEvents(t, s, "first", 1)
	first := header()
	n := 0
	testenv.Eventually(t, "the WAL started over", func() bool {
		n++
		appendEvents(t, s, fmt.Sprintf("more-%d", n), 1)
		return !bytes.Equal(header(), first)
	})
}
