package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sys/unix"
)

// PostgresOutage is a database in the PostgreSQL cluster that tests may
// restart: LOGBOOK_TEST_POSTGRES_OUTAGE_URL names the cluster and
// LOGBOOK_TEST_POSTGRES_OUTAGE_CLUSTER its pg_ctlcluster "version name"
// (.ci/run creates it next to the main one). Tests that use it hold an
// exclusive lock for their whole run, so one test's restart never lands in
// another's measurement, in this process or another package's.
type PostgresOutage struct {
	// URL is a fresh database of the cluster, dropped when the test ends.
	URL     string
	cluster []string
}

// NewPostgresOutage returns a fresh database in the restartable cluster,
// skipping (or failing under LOGBOOK_REQUIRE_SERVICES=1) when there is none.
func NewPostgresOutage(t testing.TB) *PostgresOutage {
	t.Helper()
	base, cluster := os.Getenv("LOGBOOK_TEST_POSTGRES_OUTAGE_URL"), strings.Fields(os.Getenv("LOGBOOK_TEST_POSTGRES_OUTAGE_CLUSTER"))
	if base == "" || len(cluster) != 2 {
		Missing(t, "a restartable PostgreSQL cluster", "LOGBOOK_TEST_POSTGRES_OUTAGE_URL and LOGBOOK_TEST_POSTGRES_OUTAGE_CLUSTER (\"15 outage\") are not set; .ci/run sets them")
	}
	if _, err := exec.LookPath("pg_ctlcluster"); err != nil {
		Missing(t, "pg_ctlcluster", err.Error())
	}
	lockOutage(t)
	admin, err := sql.Open("postgres", base)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = admin.PingContext(ctx)
		cancel()
	}
	if err != nil {
		Missing(t, "a restartable PostgreSQL cluster", fmt.Sprintf("LOGBOOK_TEST_POSTGRES_OUTAGE_URL does not answer: %v", err))
	}
	name := "outage_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		t.Fatalf("create the test database: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return &PostgresOutage{URL: u.String(), cluster: cluster}
}

// Restart restarts the cluster with pg_ctlcluster (a fast shutdown: every
// connection is ended), and returns once it accepts connections again.
func (p *PostgresOutage) Restart(t testing.TB) {
	t.Helper()
	out, err := exec.Command("pg_ctlcluster", p.cluster[0], p.cluster[1], "restart").CombinedOutput()
	if err != nil {
		t.Fatalf("pg_ctlcluster %s %s restart: %v: %s", p.cluster[0], p.cluster[1], err, out)
	}
}

// lockOutage takes the lock every user of the restartable cluster holds
// for its whole test.
func lockOutage(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "logbook-test-postgres-outage.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
}
