package projections_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/projections"
)

func TestStoredProgressWaitsForTheStoredCheckpoint(t *testing.T) {
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	db := projections.DBOf(store)
	progress := projections.StoredProgress{DB: db, Every: time.Millisecond}
	set := func(position int64) {
		t.Helper()
		if _, err := db.Write.Exec("INSERT INTO view_checkpoints (name, position) VALUES ('history', ?) ON CONFLICT (name) DO UPDATE SET position = excluded.position", position); err != nil {
			t.Fatal(err)
		}
	}

	// A view another server has not opened yet, and one behind: the wait
	// ends with its context.
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := progress.WaitFor(short, "history", 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait for a view with no checkpoint = %v, want the context's deadline", err)
	}

	// A view at or past the position: at once.
	set(5)
	if err := progress.WaitFor(context.Background(), "history", 5); err != nil {
		t.Fatal(err)
	}

	// A view that gets there while waiting.
	done := make(chan error, 1)
	go func() { done <- progress.WaitFor(context.Background(), "history", 9) }()
	set(9)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the wait did not end once the checkpoint passed the position")
	}
}
