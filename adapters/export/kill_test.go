package export_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/export"
	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/internal/testenv"
)

// The exporter process of TestExporterKilledBetweenSendAndCursor: it runs
// only when that test starts it, and exports until it is killed.
func TestExporterChildProcess(t *testing.T) {
	db, url, keyFile := os.Getenv("EXPORT_CHILD_DB"), os.Getenv("EXPORT_CHILD_URL"), os.Getenv("EXPORT_CHILD_KEY")
	if db == "" {
		t.Skip("run by TestExporterKilledBetweenSendAndCursor")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	s, err := sqlite.OpenWith(ctx, db, sqlite.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	x, err := export.New(export.Config{Name: "hook", Kind: export.KindWebhook, URL: url, SecretFile: keyFile, Batch: 20, Timeout: 5 * time.Second},
		export.Options{Store: s.Store, Cursors: export.CursorsOf(s.Store), NewBackOff: fastRetries, Logger: zerolog.New(os.Stderr)})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// The exporter's process is killed (SIGKILL) while the webhook holds a
// batch it has not answered, so the batch arrived but the cursor cannot
// have moved; then once just after an answer, when the cursor may or may
// not have been written. Each time the restarted process sends the batch
// again, and the receiver ends with every position, chained: at least
// once, never a gap.
func TestExporterKilledBetweenSendAndCursor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "logbook.db")
	store := openSQLiteAt(t, dbPath)
	cursors := export.CursorsOf(store)
	appendEvents(t, store, 200)

	var (
		mu       sync.Mutex
		child    *exec.Cmd
		exited   chan struct{}
		killAt   = map[int64]string{61: "before the answer", 141: "after the answer"} // a batch's first position → when
		killed   = map[int64]int{}                                                    // first position → times received
		received []export.Record
	)
	kill := func() {
		_ = child.Process.Kill()
		<-exited
	}
	rc := &receiver{t: t, key: []byte(hmacKey)}
	rc.onBatch = func(records []export.Record) {
		mu.Lock()
		defer mu.Unlock()
		received = append(received, records...)
		first := records[0].Position
		if _, ok := killAt[first]; ok {
			killed[first]++
		}
		if killAt[first] == "before the answer" && killed[first] == 1 {
			kill()
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.ServeHTTP(w, r)
		mu.Lock()
		defer mu.Unlock()
		for first, when := range killAt {
			if when == "after the answer" && killed[first] == 1 {
				if f, ok := w.(http.Flusher); ok {
					f.Flush()
				}
				killed[first]++ // once
				go func() { mu.Lock(); defer mu.Unlock(); kill() }()
			}
		}
	}))
	t.Cleanup(srv.Close)

	keyFile := writeKeyFile(t, 0o600)
	startChild := func() {
		mu.Lock()
		defer mu.Unlock()
		child = exec.Command(os.Args[0], "-test.run=^TestExporterChildProcess$", "-test.count=1")
		child.Env = append(os.Environ(), "EXPORT_CHILD_DB="+dbPath, "EXPORT_CHILD_URL="+srv.URL+"/ingest", "EXPORT_CHILD_KEY="+keyFile)
		logFile, err := os.OpenFile(filepath.Join(dir, "child.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer logFile.Close()
		child.Stdout, child.Stderr = logFile, logFile
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		exited = make(chan struct{})
		go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(child, exited)
	}
	waitExit := func() <-chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		return exited
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		_ = child.Process.Kill()
		<-exited
	})

	for round := range 2 {
		startChild()
		select {
		case <-waitExit():
		case <-time.After(60 * time.Second):
			t.Fatalf("round %d: the exporter was not killed", round)
		}
		if round == 0 {
			cur, _, err := cursors.Load(context.Background(), "hook")
			if err != nil || cur.Position != 60 {
				t.Fatalf("cursor after the kill before the answer = %d, %v: want 60, before the batch the webhook held", cur.Position, err)
			}
		}
	}
	startChild()
	testenv.EventuallyWithin(t, 60*time.Second, "every position at the webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return hasThrough(received, 200)
	})
	mu.Lock()
	defer mu.Unlock()
	checkStream(t, received, 200)
	if killed[61] < 2 {
		t.Errorf("the batch from 61, killed before its answer, was received %d times: want it sent again", killed[61])
	}
}
