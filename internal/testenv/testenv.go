// Package testenv decides what a test does when a service it needs is
// missing: skip with the reason, or fail when LOGBOOK_REQUIRE_SERVICES=1
// (set by .ci/run, where every service must be there).
package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/lib/pq" // the postgres driver for PostgresURL's probe
)

// ServicesRequired reports whether missing services fail tests.
func ServicesRequired() bool { return os.Getenv("LOGBOOK_REQUIRE_SERVICES") == "1" }

// Missing skips the test, naming the service and why it is missing, or
// fails it when services are required.
func Missing(t testing.TB, service, reason string) {
	t.Helper()
	msg := fmt.Sprintf("%s is not available: %s", service, reason)
	if ServicesRequired() {
		t.Fatalf("%s (LOGBOOK_REQUIRE_SERVICES=1, so this fails instead of skipping)", msg)
	}
	t.Skip(msg)
}

// PostgresURL returns LOGBOOK_TEST_POSTGRES_URL after checking the server
// answers.
func PostgresURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("LOGBOOK_TEST_POSTGRES_URL")
	if url == "" {
		Missing(t, "PostgreSQL", "LOGBOOK_TEST_POSTGRES_URL is not set")
	}
	db, err := sql.Open("postgres", url)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
		db.Close()
	}
	if err != nil {
		Missing(t, "PostgreSQL", fmt.Sprintf("LOGBOOK_TEST_POSTGRES_URL does not answer: %v", err))
	}
	return url
}

// PostgresSchema creates a fresh schema for one test, dropped when the test
// ends, and returns a URL whose connections use it: tests share one database
// without seeing each other's tables.
func PostgresSchema(t testing.TB) string {
	t.Helper()
	url := PostgresURL(t)
	schema := "t_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("postgres", url)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
	})
	return WithParam(url, "search_path", schema)
}

// WithParam adds a connection parameter to a postgres:// URL.
func WithParam(url, key, value string) string {
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + key + "=" + value
}

// CogBundlesDir finds the shared directory of published Cog bundle configs:
// LOGBOOK_TEST_COG_BUNDLES when set, else shared/testdata/cog-bundles above
// the working directory. The files are third-party test data read in
// place, never copied into the project, so a checkout may not have them:
// the test then skips, saying so, even when services are required (they
// are data, not a service CI installs).
func CogBundlesDir(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("LOGBOOK_TEST_COG_BUNDLES"); dir != "" {
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			t.Fatalf("LOGBOOK_TEST_COG_BUNDLES=%s is not a directory", dir)
		}
		return dir
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		candidate := filepath.Join(dir, "shared", "testdata", "cog-bundles")
		if info, err := os.Stat(candidate); err == nil && info.IsDir() {
			return candidate
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	t.Skipf("the published Cog bundle configs are not here: no shared/testdata/cog-bundles above %s, and LOGBOOK_TEST_COG_BUNDLES is not set", wd)
	return ""
}
