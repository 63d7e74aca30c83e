package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/internal/supervisor"
	"github.com/logbookhq/logbook/internal/testenv"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func getStatus(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func waitForStatus(t *testing.T, url string, want int) string {
	t.Helper()
	var code int
	var body string
	testenv.Eventually(t, "GET "+url+" to answer "+strconv.Itoa(want), func() bool {
		code, body = getStatus(url)
		return code == want
	})
	return body
}

func startServe(t *testing.T, cfg config) (cancel func() error) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg) }()
	return func() error {
		stop()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			t.Fatal("serve did not stop within 15s of cancellation")
			return nil
		}
	}
}

func TestServeAnswersHealthAndReadinessOnSQLite(t *testing.T) {
	cfg := config{DataDir: t.TempDir(), HTTPAddr: freeAddr(t), LogLevel: "warn", LogFormat: "json"}
	stop := startServe(t, cfg)
	body := waitForStatus(t, "http://"+cfg.HTTPAddr+"/readyz", http.StatusOK)
	if code, body := getStatus("http://" + cfg.HTTPAddr + "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	// /readyz lists every part of the server and its state.
	var report httpapi.ReadinessReport
	if err := json.Unmarshal([]byte(body), &report); err != nil {
		t.Fatalf("/readyz is not JSON: %v: %s", err, body)
	}
	states := map[string]supervisor.State{}
	for _, p := range report.Parts {
		states[p.Name] = p.State
	}
	for _, name := range []string{"http", "store", "bus", "runtime", "executor", "views", "dispatcher"} {
		if states[name] != supervisor.Running {
			t.Errorf("/readyz says part %s is %q, want running: %s", name, states[name], body)
		}
	}
	if !report.Ready {
		t.Errorf("/readyz answered 200 with ready false: %s", body)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v after a clean stop", err)
	}
	if _, err := filepath.Glob(filepath.Join(cfg.DataDir, "logbook.db")); err != nil {
		t.Fatal(err)
	}
	if code, _ := getStatus("http://" + cfg.HTTPAddr + "/healthz"); code != 0 {
		t.Fatalf("the server still answers after stopping: %d", code)
	}
}

// A database that is down at start is retried; /readyz fails until it is
// reachable, then passes.
func TestServeWaitsForADatabaseThatIsDownAtStart(t *testing.T) {
	url := testenv.PostgresSchema(t)
	target := strings.SplitN(strings.SplitN(url, "@", 2)[1], "/", 2)[0]
	proxy := testenv.NewProxy(t, target, false)
	cfg := config{
		DatabaseURL: strings.Replace(url, target, proxy.Addr(), 1),
		HTTPAddr:    freeAddr(t), LogLevel: "error", LogFormat: "json",
	}
	stop := startServe(t, cfg)
	body := waitForStatus(t, "http://"+cfg.HTTPAddr+"/readyz", http.StatusServiceUnavailable)
	if !strings.Contains(body, "not connected") {
		t.Fatalf("/readyz while the database is down says %q", body)
	}
	if code, _ := getStatus("http://" + cfg.HTTPAddr + "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d while the database is down, want 200 (the process is alive)", code)
	}
	proxy.Restore()
	waitForStatus(t, "http://"+cfg.HTTPAddr+"/readyz", http.StatusOK)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestServeRejectsAnUnknownDatabaseURL(t *testing.T) {
	t.Setenv("LOGBOOK_DATABASE_URL", "mysql://root@localhost/x")
	err := runCLI(t, "serve")
	if ee, ok := err.(*exitError); !ok || ee.code != 2 || !strings.Contains(ee.msg, "postgres://") {
		t.Fatalf("serve with a mysql URL: %v, want exit 2 saying what URLs work", err)
	}
}

// A second server on the same SQLite file would fight the first over the
// dispatcher and the views: it stops at once with an error naming the
// first, and starts once the first has stopped.
func TestASecondServeOnOneSQLiteFileIsRefused(t *testing.T) {
	dataDir := t.TempDir()
	first := config{DataDir: dataDir, HTTPAddr: freeAddr(t), LogLevel: "warn", LogFormat: "json", Runtime: "process"}
	stopFirst := startServe(t, first)
	waitForStatus(t, "http://"+first.HTTPAddr+"/readyz", http.StatusOK)

	second := first
	second.HTTPAddr = freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := serve(ctx, second)
	if !errors.Is(err, sqlstore.ErrInUse) || !strings.Contains(err.Error(), filepath.Join(dataDir, "logbook.db")) {
		t.Fatalf("second serve: %v, want ErrInUse naming the file", err)
	}
	if err := stopFirst(); err != nil {
		t.Fatal(err)
	}
	stopSecond := startServe(t, second)
	waitForStatus(t, "http://"+second.HTTPAddr+"/readyz", http.StatusOK)
	if err := stopSecond(); err != nil {
		t.Fatal(err)
	}
}

// A part that cannot recover (here the store, migrated by a newer build)
// stops the server with an error, instead of leaving a process that
// answers /healthz and does nothing.
func TestServeStopsWhenAPartCannotRecover(t *testing.T) {
	dataDir := t.TempDir()
	s, err := sqlite.Open(context.Background(), filepath.Join(dataDir, "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec("INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, 1)"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = serve(ctx, config{DataDir: dataDir, HTTPAddr: freeAddr(t), LogLevel: "error", LogFormat: "json", Runtime: "process"})
	if !errors.Is(err, sqlstore.ErrMigration) || !strings.Contains(err.Error(), "store: ") || ctx.Err() != nil {
		t.Fatalf("serve on a newer schema returned %v, want the store's ErrMigration before the deadline", err)
	}
}
