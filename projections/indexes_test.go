package projections_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/projections"
	"github.com/logbookhq/logbook/projections/projectionstest"
)

// viewIndexes lists the indexes on the view tables, with their definitions.
func viewIndexes(t *testing.T, src projections.Source) []string {
	t.Helper()
	query := `SELECT name || ' ' || sql FROM sqlite_master WHERE type = 'index' AND tbl_name LIKE 'view_%' AND sql IS NOT NULL ORDER BY name`
	if src.Dialect() == "postgres" {
		query = `SELECT indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename LIKE 'view_%' ORDER BY indexname`
	}
	// On SQLite the views have a file of their own, the main one of the
	// views' write connection.
	rows, err := src.ViewsWriteDB().QueryContext(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func deferredIndexes(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM view_deferred_indexes").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Given views built incrementally, when a rebuild from zero is stopped half
// way (its indexes dropped, its rows partly written), then the next runner
// to open the views recreates the very same indexes before it goes on, and
// catching up yields the very same rows.
func TestARebuildStoppedHalfWayLeavesItsIndexesToTheNextRunner(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		ctx := context.Background()
		src := open(t)
		w := projectionstest.NewWorkload(3, 8)
		if err := projectionstest.AppendAll(ctx, src, w.Setup()); err != nil {
			t.Fatal(err)
		}
		for range 40 {
			if err := projectionstest.AppendAll(ctx, src, w.Request()); err != nil {
				t.Fatal(err)
			}
		}
		tables := allTables(allViews())
		catchUp(t, src, allViews()...)
		indexes := viewIndexes(t, src)
		if len(indexes) < 10 {
			t.Fatalf("only %d indexes on the view tables before the rebuild: %v", len(indexes), indexes)
		}
		before, err := projectionstest.Dump(ctx, src.DB(), tables)
		if err != nil {
			t.Fatal(err)
		}

		// A rebuild stopped after its first batch, as by ^C.
		runner, err := projections.NewRunner(src, projections.Config{BatchSize: 50}, allViews()...)
		if err != nil {
			t.Fatal(err)
		}
		stopCtx, stop := context.WithCancel(ctx)
		defer stop()
		batches := 0
		_, err = runner.Rebuild(stopCtx, nil, func(projections.Progress) {
			batches++
			stop()
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the stopped rebuild returned %v, want context.Canceled", err)
		}
		if batches != 1 {
			t.Fatalf("the rebuild applied %d batches before it stopped, want 1", batches)
		}
		if got := viewIndexes(t, src); len(got) >= len(indexes) {
			t.Fatalf("a rebuild in progress kept %d of %d indexes; it should have dropped the secondary ones", len(got), len(indexes))
		}
		if n := deferredIndexes(t, src.DB()); n == 0 {
			t.Fatal("the stopped rebuild left no record of the indexes it dropped")
		}
		status, err := runner.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range status {
			if s.Checkpoint != 50 {
				t.Fatalf("%s stopped at checkpoint %d, want 50 (one batch)", s.Name, s.Checkpoint)
			}
		}

		// The next runner opens the views: the indexes come back first.
		next, err := projections.NewRunner(src, projections.Config{}, allViews()...)
		if err != nil {
			t.Fatal(err)
		}
		if err := next.Open(ctx); err != nil {
			t.Fatal(err)
		}
		if got := viewIndexes(t, src); !slices.Equal(got, indexes) {
			t.Fatalf("indexes after reopening:\n%v\nwant\n%v", got, indexes)
		}
		if n := deferredIndexes(t, src.DB()); n != 0 {
			t.Fatalf("%d deferred indexes are still recorded after reopening", n)
		}
		if _, err := next.CatchUp(ctx, nil); err != nil {
			t.Fatal(err)
		}
		after, err := projectionstest.Dump(ctx, src.DB(), tables)
		if err != nil {
			t.Fatal(err)
		}
		for _, table := range tables {
			if !slices.Equal(before[table], after[table]) {
				t.Errorf("%s differs after the stopped rebuild was caught up:\n%s", table, firstDifference(before[table], after[table]))
			}
		}

		// A rebuild that runs to the end puts every index back itself.
		if _, err := next.Rebuild(ctx, nil, nil); err != nil {
			t.Fatal(err)
		}
		if got := viewIndexes(t, src); !slices.Equal(got, indexes) {
			t.Fatalf("indexes after a full rebuild:\n%v\nwant\n%v", got, indexes)
		}
		if n := deferredIndexes(t, src.DB()); n != 0 {
			t.Fatalf("%d deferred indexes are still recorded after a full rebuild", n)
		}
	})
}

func analyzedTables(t *testing.T, src projections.Source) []string {
	t.Helper()
	query := `SELECT DISTINCT tbl FROM sqlite_stat1 WHERE tbl LIKE 'view_history_%' ORDER BY tbl`
	if src.Dialect() == "postgres" {
		query = `SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname LIKE 'view_history_%' AND last_analyze IS NOT NULL ORDER BY relname`
	}
	rows, err := src.ViewsWriteDB().QueryContext(context.Background(), query)
	if err != nil {
		if src.Dialect() == "sqlite" && strings.Contains(err.Error(), "no such table") {
			return nil // nothing was ever analyzed
		}
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// Given a log that grows past the threshold, when a runner catches up on
// SQLite, then the history tables have planner statistics; and after a
// rebuild they have them on every database. (Not parallel: it lowers a
// package threshold.)
func TestViewTablesGetPlannerStatisticsAsTheyGrowAndAfterARebuild(t *testing.T) {
	t.Cleanup(projections.SetMinEventsBetweenAnalyses(100))
	want := []string{"view_history_request_commands", "view_history_requests", "view_history_runs"}
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		ctx := context.Background()
		src := open(t)
		w := projectionstest.NewWorkload(5, 8)
		if err := projectionstest.AppendAll(ctx, src, w.Setup()); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			if err := projectionstest.AppendAll(ctx, src, w.Request()); err != nil {
				t.Fatal(err)
			}
		}
		runner := catchUp(t, src, allViews()...)
		// SQLite keeps statistics of a table only when it had rows as it
		// was analyzed, which the small roll-ups may not have had yet.
		withoutRollups := func(tables []string) []string {
			return slices.DeleteFunc(tables, func(t string) bool { return strings.HasSuffix(t, "_hours") })
		}
		if got := withoutRollups(analyzedTables(t, src)); src.Dialect() == "sqlite" && !slices.Equal(got, want) {
			t.Fatalf("analyzed after catching up: %v, want %v", got, want)
		}
		if _, err := runner.Rebuild(ctx, []string{"history"}, nil); err != nil {
			t.Fatal(err)
		}
		wantRebuilt := want
		if src.Dialect() == "postgres" {
			// Postgres analyzes every table, the roll-ups without a
			// secondary index too.
			wantRebuilt = []string{"view_history_request_commands", "view_history_request_hours", "view_history_requests", "view_history_run_hours", "view_history_runs"}
		}
		got := analyzedTables(t, src)
		if src.Dialect() == "sqlite" {
			got = withoutRollups(got)
		}
		if !slices.Equal(got, wantRebuilt) {
			t.Fatalf("analyzed after a rebuild: %v, want %v", got, wantRebuilt)
		}
	})
}

// Given a log, when a view is rebuilt, then progress moves forward batch by
// batch up to the head, the last report says the indexes are being built,
// and SQLite's cache is back at its size.
func TestARebuildReportsProgressUpToItsIndexes(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		ctx := context.Background()
		src := open(t)
		w := projectionstest.NewWorkload(9, 4)
		for range 10 {
			if err := projectionstest.AppendAll(ctx, src, w.Request()); err != nil {
				t.Fatal(err)
			}
		}
		head, _, err := src.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		runner, err := projections.NewRunner(src, projections.Config{BatchSize: 20}, allViews()...)
		if err != nil {
			t.Fatal(err)
		}
		cacheSize := func() (n int64) {
			if src.Dialect() == "sqlite" {
				if err := src.ViewsWriteDB().QueryRow("PRAGMA cache_size").Scan(&n); err != nil {
					t.Fatal(err)
				}
			}
			return n
		}
		cacheBefore := cacheSize()
		var reports []projections.Progress
		if _, err := runner.Rebuild(ctx, []string{"history"}, func(p projections.Progress) { reports = append(reports, p) }); err != nil {
			t.Fatal(err)
		}
		if after := cacheSize(); after != cacheBefore {
			t.Fatalf("the rebuild left SQLite's cache at %d, not %d as it found it", after, cacheBefore)
		}
		if want := int(head+19)/20 + 1; len(reports) != want {
			t.Fatalf("%d progress reports for %d events in batches of 20, want %d", len(reports), head, want)
		}
		for i, p := range reports {
			last := i == len(reports)-1
			if p.Head != head || p.Indexing != last || (i > 0 && p.Read <= reports[i-1].Read && !last) {
				t.Fatalf("report %d of %d: %+v (head %d)", i+1, len(reports), p, head)
			}
		}
		if end := reports[len(reports)-1]; end.Read != head || end.Position != head {
			t.Fatalf("the last report %+v does not reach the head %d", end, head)
		}
	})
}
