package projections_test

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/projections"
	"github.com/logbookhq/logbook/projections/projectionstest"
)

// Every millisecond count falls in the bucket whose range holds it, and
// buckets follow each other without a gap.
func TestDurationBucketsCoverEveryDurationInOrder(t *testing.T) {
	for b := int64(0); b < projections.DurationBuckets-1; b++ {
		lower, upper := projections.DurationBucketRange(b)
		next, _ := projections.DurationBucketRange(b + 1)
		if upper != next || lower >= upper {
			t.Fatalf("bucket %d is [%d, %d) and the next starts at %d", b, lower, upper, next)
		}
		for _, ms := range []int64{lower, upper - 1, (lower + upper) / 2} {
			if got := projections.DurationBucket(ms); got != b {
				t.Fatalf("%d ms falls in bucket %d, want %d [%d, %d)", ms, got, b, lower, upper)
			}
		}
	}
	if got := projections.DurationBucket(-5); got != 0 {
		t.Fatalf("a negative duration falls in bucket %d", got)
	}
	if got := projections.DurationBucket(1 << 40); got != projections.DurationBuckets-1 {
		t.Fatalf("a huge duration falls in bucket %d", got)
	}
}

// checkHoursMatchRows: the roll-ups the view keeps hold what migration
// 00060 computes from the history rows (a GROUP BY with the bucket in
// SQL), so both the view's counting and the migration's backfill are
// right.
func checkHoursMatchRows(t *testing.T, ctx context.Context, src projections.Source) {
	t.Helper()
	migration, err := os.ReadFile(filepath.Join("..", "migrations", src.Dialect(), "00060_history_hours.sql"))
	if err != nil {
		t.Fatal(err)
	}
	up, _, _ := strings.Cut(string(migration), "-- +goose Down")
	for table, columns := range map[string]string{
		"view_history_request_hours": "hour, username, status, requests",
		"view_history_run_hours":     "hour, command, status, duration_bucket, runs",
	} {
		_, backfill, ok := strings.Cut(up, "INSERT INTO "+table+" ("+columns+")\n")
		backfill, _, _ = strings.Cut(backfill, ";")
		if !ok {
			t.Fatalf("the migration has no backfill of %s", table)
		}
		kept := queryRows(t, ctx, src.DB(), "SELECT "+columns+" FROM "+table)
		computed := queryRows(t, ctx, src.DB(), backfill)
		if len(kept) == 0 || !slices.Equal(kept, computed) {
			t.Errorf("%s holds %d rows, the history rows give %d:\nkept:     %.600s\ncomputed: %.600s", table, len(kept), len(computed), kept, computed)
		}
	}
}

func queryRows(t *testing.T, ctx context.Context, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		values := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range values {
			ptrs[i] = &values[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range values {
			if b, ok := v.([]byte); ok {
				values[i] = string(b)
			}
		}
		out = append(out, fmt.Sprint(values...))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// Given a workload, when the dashboard's readers sum the roll-ups, then
// they count what the history rows hold (by status, user and command),
// and each command's p50 and p95 fall in the bucket of the exact ones.
func TestTheDashboardReadersCountWhatTheRowsHold(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		ctx := context.Background()
		src := open(t)
		w := projectionstest.NewWorkload(9, 6)
		if err := projectionstest.AppendAll(ctx, src, w.Setup()); err != nil {
			t.Fatal(err)
		}
		for range 50 {
			if err := projectionstest.AppendAll(ctx, src, w.Request()); err != nil {
				t.Fatal(err)
			}
		}
		catchUp(t, src, projections.NewHistory())
		h := projections.NewHistoryReader(projections.DBOf(src))
		from, to := time.Now().Add(-48*time.Hour), time.Now().Add(time.Hour)
		exact := func(query string) map[string]int64 {
			out := map[string]int64{}
			rows, err := src.DB().QueryContext(ctx, query)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var key string
				var n int64
				if err := rows.Scan(&key, &n); err != nil {
					t.Fatal(err)
				}
				out[key] = n
			}
			return out
		}
		sum := func(counts []projections.HourCount) map[string]int64 {
			out := map[string]int64{}
			for _, c := range counts {
				out[c.Key] += c.Count
			}
			return out
		}
		byHour, err := h.RequestsByHour(ctx, from, to, "")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := sum(byHour), exact("SELECT status, count(*) FROM view_history_requests GROUP BY status"); !maps.Equal(got, want) || len(want) < 2 {
			t.Errorf("requests by status: %v, the rows hold %v", got, want)
		}
		users, err := h.RequestsByUser(ctx, from, to, 100)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := sum(users), exact("SELECT username, count(*) FROM view_history_requests WHERE username <> '' GROUP BY username"); !maps.Equal(got, want) {
			t.Errorf("requests by user: %v, the rows hold %v", got, want)
		}
		commands, err := h.RunsByCommand(ctx, from, to, 100)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := sum(commands), exact("SELECT command, count(*) FROM view_history_runs GROUP BY command"); !maps.Equal(got, want) || len(want) < 2 {
			t.Errorf("runs by command: %v, the rows hold %v", got, want)
		}
		durations, err := h.DurationsByCommand(ctx, from, to, nil)
		if err != nil || len(durations) == 0 {
			t.Fatalf("durations %v (%v)", durations, err)
		}
		for _, d := range durations {
			rows, err := src.DB().QueryContext(ctx, rebindForTest(src, "SELECT duration_ms FROM view_history_runs WHERE command = $1 AND duration_ms IS NOT NULL ORDER BY duration_ms"), d.Command)
			if err != nil {
				t.Fatal(err)
			}
			var all []int64
			for rows.Next() {
				var ms int64
				if err := rows.Scan(&ms); err != nil {
					t.Fatal(err)
				}
				all = append(all, ms)
			}
			rows.Close()
			if int64(len(all)) != d.Runs {
				t.Fatalf("%s: %d runs with a duration, the rows hold %d", d.Command, d.Runs, len(all))
			}
			for q, got := range map[float64]time.Duration{0.50: d.P50, 0.95: d.P95} {
				want := all[int(q*float64(len(all)-1))]
				if projections.DurationBucket(got.Milliseconds()) != projections.DurationBucket(want) {
					t.Errorf("%s: p%.0f is %v, in another bucket than the exact %d ms", d.Command, q*100, got, want)
				}
			}
		}
		active, err := h.CountActive(ctx, []string{projections.RequestRunning, projections.RequestCompleted}, "")
		if err != nil {
			t.Fatal(err)
		}
		if want := exact("SELECT status, count(*) FROM view_history_requests WHERE status IN ('running', 'completed') GROUP BY status"); active["completed"] != want["completed"] || active["running"] != want["running"] {
			t.Errorf("counted %v, the rows hold %v", active, want)
		}
	})
}

func rebindForTest(src projections.Source, q string) string {
	if src.Dialect() == "sqlite" {
		return strings.ReplaceAll(q, "$1", "?1")
	}
	return q
}
