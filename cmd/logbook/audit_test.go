package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/eventstore/storetest"
)

// seedSQLite writes n events into a fresh data dir and points the CLI at it.
func seedSQLite(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("LOGBOOK_DATA_DIR", dir)
	t.Setenv("LOGBOOK_DATABASE_URL", "")
	s, err := sqlite.Open(context.Background(), filepath.Join(dir, "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range n {
		e := domain.MustEncode(storetest.Event{N: i}, domain.Metadata{Actor: "test"})
		if _, err := s.Append(context.Background(), fmt.Sprintf("seed-%d", i%2), eventstore.Any, e); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "logbook.db")
}

func TestAuditVerifyPassesAnIntactChain(t *testing.T) {
	seedSQLite(t, 5)
	out, _, err := runCLIOutput(t, "audit", "verify")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "ok: 5 events checked") {
		t.Fatalf("audit verify printed %q", out)
	}
	out, _, err = runCLIOutput(t, "audit", "verify", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		OK      bool  `json:"ok"`
		Checked int64 `json:"checked"`
		Head    int64 `json:"head"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil || !report.OK || report.Checked != 5 || report.Head != 5 {
		t.Fatalf("audit verify --json = %s (%v)", out, err)
	}
}

func TestAuditVerifyNamesTheFirstAlteredPosition(t *testing.T) {
	path := seedSQLite(t, 6)
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"DROP TRIGGER events_no_update",
		`UPDATE events SET data = CAST('{"n":42}' AS BLOB) WHERE position = 3`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	out, _, err := runCLIOutput(t, "audit", "verify")
	if ee, ok := err.(*exitError); !ok || ee.code != 1 {
		t.Fatalf("audit verify of a tampered log returned %v, want exit 1", err)
	}
	if !strings.HasPrefix(out, "chain broken at position 3:") {
		t.Fatalf("audit verify printed %q, want it to name position 3", out)
	}
}

func TestEventsTailPrintsTheLogAsJSONLines(t *testing.T) {
	seedSQLite(t, 4)
	out, _, err := runCLIOutput(t, "events", "tail", "--from", "2", "--no-follow", "--json")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("events tail --from 2 printed %d lines, want 3:\n%s", len(lines), out)
	}
	for i, line := range lines {
		var e struct {
			Position int64           `json:"position"`
			Type     string          `json:"type"`
			Data     json.RawMessage `json:"data"`
			Metadata json.RawMessage `json:"metadata"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %d is not JSON: %v", i, err)
		}
		if e.Position != int64(i+2) || e.Type != "StoreTestEvent" || string(e.Metadata) != `{"actor":"test"}` {
			t.Fatalf("line %d = %s", i, line)
		}
	}
	out, _, err = runCLIOutput(t, "events", "tail", "-n", "2", "--no-follow")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(out, "StoreTestEvent"); got != 2 || !strings.Contains(out, "seed-1@1") {
		t.Fatalf("events tail -n 2 printed:\n%s", out)
	}
}

func TestEventsTailFollowsNewEvents(t *testing.T) {
	path := seedSQLite(t, 1)
	s, err := sqlite.Open(context.Background(), path, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w := &lineWaiter{want: 3, done: make(chan struct{})}
	root := newRootCmd()
	root.SetArgs([]string{"events", "tail", "--from", "1", "--database", "sqlite://" + path})
	root.SetOut(w)
	errc := make(chan error, 1)
	go func() { errc <- root.ExecuteContext(ctx) }()
	// Appends from another store handle on the same file, as another process
	// would make them: the tail learns of them through the file watch.
	for i := range 2 {
		if _, err := s.Append(ctx, "live-1", eventstore.Any, domain.MustEncode(storetest.Event{N: i}, domain.Metadata{})); err != nil {
			t.Fatal(err)
		}
	}
	<-w.done
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

type lineWaiter struct {
	want  int
	lines int
	done  chan struct{}
}

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.lines += strings.Count(string(p), "\n")
	if w.lines == w.want {
		close(w.done)
	}
	return len(p), nil
}
