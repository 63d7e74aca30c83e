package export_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/export"
	"github.com/logbookhq/logbook/adapters/postgres"
	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/internal/testenv"
)

// stores opens a fresh store of each kind.
var stores = map[string]func(t *testing.T) *sqlstore.Store{
	"sqlite": openSQLite,
	"postgres": func(t *testing.T) *sqlstore.Store {
		s, err := postgres.OpenWith(context.Background(), testenv.PostgresSchema(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s.Store
	},
}

func openSQLite(t *testing.T) *sqlstore.Store {
	t.Helper()
	return openSQLiteAt(t, filepath.Join(t.TempDir(), "logbook.db"))
}

func openSQLiteAt(t testing.TB, path string) *sqlstore.Store {
	t.Helper()
	s, err := sqlite.OpenWith(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Store
}

// appendEvents appends n events whose data is not all compact JSON, with
// HTML characters and text outside ASCII, so records must carry exact
// bytes for the hash to check.
func appendEvents(t testing.TB, store *sqlstore.Store, n int) {
	t.Helper()
	for i := range n {
		data := fmt.Sprintf(`{"n":%d,"text":"<b>é & ü</b>"}`, i)
		if i%3 == 1 {
			data = fmt.Sprintf("{\n  \"n\": %d,\n  \"spaced\": true\n}", i)
		}
		e := domain.NewEvent{ID: uuid.Must(uuid.NewV7()), Type: "TestHappened", Data: json.RawMessage(data), Metadata: domain.Metadata{Actor: "test"}}
		if _, err := store.Append(context.Background(), fmt.Sprintf("test-%d", i%4), -2, e); err != nil {
			t.Fatal(err)
		}
	}
}

// appendRaw appends one event with data as given.
func appendRaw(t testing.TB, store *sqlstore.Store, data string) {
	t.Helper()
	e := domain.NewEvent{ID: uuid.Must(uuid.NewV7()), Type: "TestRaw", Data: json.RawMessage(data)}
	if _, err := store.Append(context.Background(), "test-raw", -2, e); err != nil {
		t.Fatal(err)
	}
}

// fastRetries retries every 10ms, so an outage in a test is short.
func fastRetries() backoff.BackOff { return backoff.NewConstantBackOff(10 * time.Millisecond) }

// running is an exporter's Run in a goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg export.Config, opts export.Options) *running {
	t.Helper()
	if opts.NewBackOff == nil {
		opts.NewBackOff = fastRetries
	}
	opts.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	x, err := export.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- x.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Errorf("Run ended with %v, want nil at a stop", err)
	}
	r.done <- nil // a second stop returns at once
}

// readRecords reads every record of the JSONL files in dir. A file the
// exporter renamed while it was read (a rotation) is read again under its
// new name.
func readRecords(t testing.TB, dir string) []export.Record {
	t.Helper()
	for {
		paths, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
		var out []export.Record
		renamed := false
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if os.IsNotExist(err) {
				renamed = true
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, parseLines(t, data)...)
		}
		if !renamed {
			return out
		}
	}
}

func readRecordLines(t testing.TB, path string) []export.Record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseLines(t, data)
}

// parseLines reads whole lines: a file being written may end in part of one.
func parseLines(t testing.TB, data []byte) []export.Record {
	t.Helper()
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	var out []export.Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r export.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// collector is a sink that keeps what it is sent.
type collector struct {
	mu      sync.Mutex
	records []export.Record
	// fail, when set, decides whether a send fails.
	fail func(batch []export.Record) error
}

func (c *collector) Send(_ context.Context, records []export.Record) error {
	if c.fail != nil {
		if err := c.fail(records); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records = append(c.records, records...)
	return nil
}

func (c *collector) Close() error { return nil }

func (c *collector) got() []export.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]export.Record(nil), c.records...)
}

// hasThrough says whether records hold every position from 1 to n.
func hasThrough(records []export.Record, n int64) bool {
	seen := map[int64]bool{}
	for _, r := range records {
		seen[r.Position] = true
	}
	for p := int64(1); p <= n; p++ {
		if !seen[p] {
			return false
		}
	}
	return true
}

// checkStream fails unless records hold positions 1..n exactly, chained,
// each hashing to its own hash.
func checkStream(t testing.TB, records []export.Record, n int64) {
	t.Helper()
	ordered, err := export.CheckContinuous(records, 1)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(ordered)) != n {
		t.Fatalf("received positions 1 to %d, want 1 to %d", len(ordered), n)
	}
}
