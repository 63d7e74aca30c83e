package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	neturl "net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/logbookhq/logbook/adapters/postgres"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/eventstore/storetest"
	"github.com/logbookhq/logbook/internal/testenv"
	"github.com/logbookhq/logbook/migrations"
)

func openTemp(t *testing.T) *postgres.Store {
	t.Helper()
	return openURL(t, testenv.PostgresSchema(t))
}

func openURL(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	testenv.PostgresURL(t)
	storetest.Run(t, storetest.Harness{
		Dialect: "postgres",
		New:     func(t *testing.T) eventstore.Store { return openTemp(t) },
		Exec: func(s eventstore.Store, query string) error {
			_, err := s.(*postgres.Store).DB().Exec(query)
			return err
		},
		Another: func(t *testing.T, s eventstore.Store) eventstore.Store {
			return openURL(t, s.(*postgres.Store).URL())
		},
	})
}

// A single writer commits in one round trip after its first commit; a
// second writer in the same database sends both back to the locked path
// whenever the other appended, and never forks the chain.
func TestTheOptimisticPathIsTakenOnlyWhileNothingChanged(t *testing.T) {
	first := openTemp(t)
	ctx := context.Background()
	appendTo := func(s *postgres.Store, stream string) {
		t.Helper()
		if _, err := s.Append(ctx, stream, eventstore.Any, domain.MustEncode(storetest.Event{N: 1}, domain.Metadata{})); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		appendTo(first, "solo-1")
	}
	if st := first.Stats(); st.Locked != 1 || st.Optimistic != 9 {
		t.Fatalf("a single writer's 10 appends to one stream: %+v, want 1 locked then 9 optimistic", st)
	}
	second := openURL(t, first.URL())
	appendTo(second, "solo-1")
	appendTo(first, "solo-1")
	if st := first.Stats(); st.Locked != 2 || st.Optimistic != 9 {
		t.Fatalf("after the other writer appended: %+v, want one more locked commit", st)
	}
	report, err := eventstore.Verify(ctx, first, nil)
	if err != nil || !report.OK || report.Checked != 12 {
		t.Fatalf("verify = %+v, %v", report, err)
	}
}

// The database goes away while the store runs: appends fail with an error
// and write nothing, and work again when it returns.
func TestAppendsSurviveTheDatabaseGoingAway(t *testing.T) {
	url := testenv.PostgresSchema(t)
	target := pgHostPort(t, url)
	proxy := testenv.NewProxy(t, target, true)
	ctx := context.Background()
	s, err := postgres.Open(ctx, strings.Replace(url, target, proxy.Addr(), 1), sqlstore.Config{CommitTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendOne := func() error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := s.Append(ctx, "outage-1", eventstore.Any, domain.MustEncode(storetest.Event{N: 1}, domain.Metadata{}))
		return err
	}
	if err := appendOne(); err != nil {
		t.Fatal(err)
	}

	proxy.Cut()
	failures := 0
	for range 3 {
		if err := appendOne(); err != nil {
			failures++
			t.Logf("append while the database is away: %v", err)
		}
	}
	if failures != 3 {
		t.Fatalf("%d of 3 appends failed while the database was away, want all", failures)
	}

	proxy.Restore()
	testenv.Eventually(t, "appends to work again after the database returned", func() bool { return appendOne() == nil })
	report, err := eventstore.Verify(ctx, s, nil)
	if err != nil || !report.OK || report.Checked != 2 {
		t.Fatalf("after the outage verify = %+v, %v; want 2 intact events", report, err)
	}
}

func pgHostPort(t *testing.T, url string) string {
	t.Helper()
	u, err := neturl.Parse(url)
	if err != nil || u.Host == "" {
		t.Fatalf("LOGBOOK_TEST_POSTGRES_URL must be a postgres:// URL with a host: %q", url)
	}
	if u.Port() == "" {
		return u.Host + ":5432"
	}
	return u.Host
}

// A read-only open of a schema that holds no store fails with ErrNoStore
// and creates nothing in it; a schema that holds one opens.
func TestAMustExistOpenNeverCreatesAStore(t *testing.T) {
	url := testenv.PostgresSchema(t)
	_, err := postgres.OpenWith(context.Background(), url, postgres.Options{MustExist: true})
	if !errors.Is(err, sqlstore.ErrNoStore) {
		t.Fatalf("open of an empty schema: %v, want ErrNoStore", err)
	}
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables int
	if err := db.QueryRow("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Fatalf("the read-only open created %d tables", tables)
	}
	openURL(t, url) // creates the store
	s, err := postgres.OpenWith(context.Background(), url, postgres.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// A schema migrated by a newer build is refused with ErrMigration.
func TestASchemaFromANewerBuildIsRefused(t *testing.T) {
	url := testenv.PostgresSchema(t)
	s := openURL(t, url)
	if _, err := s.DB().Exec("INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, true)"); err != nil {
		t.Fatal(err)
	}
	_, err := postgres.Open(context.Background(), url, sqlstore.Config{})
	if !errors.Is(err, sqlstore.ErrMigration) || !strings.Contains(err.Error(), "schema is version 9999") {
		t.Fatalf("open of a newer schema: %v, want ErrMigration naming version 9999", err)
	}
}

// A server that dies inside a transaction without closing its connection
// must not hold the store's locks for as long as TCP takes to notice:
// PostgreSQL ends a session idle in a transaction.
func TestTheStoreEndsSessionsLeftIdleInATransaction(t *testing.T) {
	s := openURL(t, testenv.PostgresSchema(t))
	var timeout string
	if err := s.DB().QueryRow("SHOW idle_in_transaction_session_timeout").Scan(&timeout); err != nil {
		t.Fatal(err)
	}
	if timeout != "30s" {
		t.Fatalf("idle_in_transaction_session_timeout = %q on the store's sessions, want 30s", timeout)
	}
}

// logbook_append plans its lookups without sequential scans: PL/pgSQL
// keeps a plan for the connection's life, and one made while the log was
// small read the whole table for the check of ids as the log grew.
func TestTheAppendFunctionLooksEventsUpByIndexAlone(t *testing.T) {
	s := openTemp(t)
	var settings []string
	rows, err := s.DB().QueryContext(context.Background(),
		"SELECT unnest(proconfig) FROM pg_proc WHERE proname = 'logbook_append' AND pronamespace = current_schema()::regnamespace")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var setting string
		if err := rows.Scan(&setting); err != nil {
			t.Fatal(err)
		}
		settings = append(settings, setting)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(settings, "enable_seqscan=off") {
		t.Fatalf("logbook_append runs with settings %q, want enable_seqscan=off among them", settings)
	}
}

// Given a schema from before the views had a checkpoint table of their
// own, with folded views, when it is opened, then the views keep their
// positions in view_checkpoints (nothing is folded again) and
// checkpoints keeps the dispatcher's.
func TestTheViewsKeepTheirCheckpointsWhenTheyMoveToTheirOwnTable(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresSchema(t)
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.Postgres())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.UpTo(ctx, 130); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO checkpoints (name, position) VALUES ('history', 41), ('search', 40), ('dispatcher', 42)"); err != nil {
		t.Fatal(err)
	}
	s := openURL(t, url)
	rows, err := s.DB().Query("SELECT 'view ' || name || ' ' || position FROM view_checkpoints UNION ALL SELECT 'other ' || name || ' ' || position FROM checkpoints ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var row string
		if err := rows.Scan(&row); err != nil {
			t.Fatal(err)
		}
		got = append(got, row)
	}
	if want := []string{"other dispatcher 42", "view history 41", "view search 40"}; !slices.Equal(got, want) {
		t.Fatalf("after the migration: %q, want %q", got, want)
	}
}
