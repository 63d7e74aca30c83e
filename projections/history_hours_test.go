package projections_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/projections"
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
