package export_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/export"
	"github.com/logbookhq/logbook/internal/testenv"
)

// clock is a settable clock for rotation by time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func completed(t *testing.T, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "events-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// Files rotate by size: each completed file is under the limit (but for a
// lone line), named by its first and last positions, and together with
// the active file they hold every position once.
func TestFileExportRotatesBySize(t *testing.T) {
	t.Parallel()
	store := openSQLite(t)
	cursors := export.CursorsOf(store)
	appendEvents(t, store, 200)
	dir := t.TempDir()
	cfg := export.Config{Name: "archive", Kind: export.KindFile, Dir: dir, RotateBytes: 4096, Batch: 64}
	r := start(t, cfg, export.Options{Store: store, Cursors: cursors})
	testenv.Eventually(t, "every position in the files", func() bool { return hasThrough(readRecords(t, dir), 200) })
	r.stop(t)
	records := readRecords(t, dir)
	if len(records) != 200 {
		t.Fatalf("the files hold %d records, want each of the 200 once", len(records))
	}
	checkStream(t, records, 200)
	files := completed(t, dir)
	if len(files) < 5 {
		t.Fatalf("%d completed files, want rotation every 4 KiB", len(files))
	}
	for _, f := range files {
		info, _ := os.Stat(f)
		lines := readRecordLines(t, f)
		if info.Size() > 4096 && len(lines) > 1 {
			t.Errorf("%s is %d bytes, over the 4096 limit", f, info.Size())
		}
		want := filepath.Join(dir, "events-"+pad(lines[0].Position)+"-"+pad(lines[len(lines)-1].Position)+".jsonl")
		if f != want {
			t.Errorf("%s holds %d to %d: want it named %s", f, lines[0].Position, lines[len(lines)-1].Position, want)
		}
		if info.Mode().Perm() != 0o640 {
			t.Errorf("%s is mode %04o, want 0640", f, info.Mode().Perm())
		}
	}
}

func pad(p int64) string { return fmt.Sprintf("%020d", p) }

// Files rotate by time, on the exporter's clock, also while the log is
// quiet: the file of the last hour is completed without waiting for the
// next event.
func TestFileExportRotatesByTimeEvenWhenQuiet(t *testing.T) {
	t.Parallel()
	store := openSQLite(t)
	cursors := export.CursorsOf(store)
	dir := t.TempDir()
	clk := &clock{now: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
	cfg := export.Config{Name: "hourly", Kind: export.KindFile, Dir: dir, RotateBytes: 1 << 30, RotateEvery: time.Hour, Batch: 100}
	start(t, cfg, export.Options{Store: store, Cursors: cursors, Now: clk.Now, SafetyNet: 20 * time.Millisecond})
	appendEvents(t, store, 10)
	testenv.Eventually(t, "the first ten in the active file", func() bool { return hasThrough(readRecords(t, dir), 10) })
	if files := completed(t, dir); len(files) != 0 {
		t.Fatalf("completed %v before the hour", files)
	}
	clk.Add(time.Hour)
	testenv.Eventually(t, "the hour's file completed while quiet", func() bool { return len(completed(t, dir)) == 1 })
	appendEvents(t, store, 5)
	testenv.Eventually(t, "the next five", func() bool { return hasThrough(readRecords(t, dir), 15) })
	files := completed(t, dir)
	if len(files) != 1 || !strings.HasSuffix(files[0], pad(1)+"-"+pad(10)+".jsonl") {
		t.Fatalf("completed files %v, want one holding 1 to 10", files)
	}
	checkStream(t, readRecords(t, dir), 15)
}

// A crash mid-write leaves a torn last line and lines the cursor does not
// cover: the next start cuts the torn line, trusts the synced lines, and
// goes on with no gap and no repeat.
func TestFileExportRepairsATornFileAndContinuesWithoutGaps(t *testing.T) {
	t.Parallel()
	store := openSQLite(t)
	cursors := export.CursorsOf(store)
	appendEvents(t, store, 30)
	dir := t.TempDir()
	cfg := export.Config{Name: "torn", Kind: export.KindFile, Dir: dir, RotateBytes: 1 << 20, Batch: 10}
	r := start(t, cfg, export.Options{Store: store, Cursors: cursors})
	testenv.Eventually(t, "thirty exported", func() bool {
		cur, _, _ := cursors.Load(context.Background(), "torn")
		return cur.Position == 30
	})
	r.stop(t)

	// As a crash would leave it: the cursor back at 20 (its write lost),
	// and half a line at the end of the active file.
	cur, _, _ := cursors.Load(context.Background(), "torn")
	if cur.Position != 30 {
		t.Fatalf("cursor = %d, want 30", cur.Position)
	}
	if err := cursors.Ack(context.Background(), "torn", 30, 20, "", time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	active, _ := filepath.Glob(filepath.Join(dir, "active-*.jsonl"))
	if len(active) != 1 {
		t.Fatalf("active files %v", active)
	}
	f, err := os.OpenFile(active[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"position":31,"hash":"ab`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	appendEvents(t, store, 10)
	start(t, cfg, export.Options{Store: store, Cursors: cursors})
	testenv.Eventually(t, "forty exported", func() bool {
		cur, _, _ := cursors.Load(context.Background(), "torn")
		return cur.Position == 40
	})
	records := readRecords(t, dir)
	if len(records) != 40 {
		t.Fatalf("the files hold %d records, want 40: each once", len(records))
	}
	checkStream(t, records, 40)
}
