package projections_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/logbookhq/logbook/projections"
	"github.com/logbookhq/logbook/projections/projectionstest"
)

// A randomized workload is projected while it is appended, by runners that
// are stopped and restarted mid-way with different batch sizes (a crash
// between transactions). A rebuild from position 0 must then produce the
// very same tables.
func TestARebuildFromZeroEqualsTheIncrementallyBuiltViews(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		ctx := context.Background()
		src := open(t)
		setup := projectionstest.NewWorkload(1, 12)
		if err := projectionstest.AppendAll(ctx, src, setup.Setup()); err != nil {
			t.Fatal(err)
		}

		var producers sync.WaitGroup
		appendErrs := make(chan error, 8)
		for p := range 4 {
			producers.Add(1)
			go func() {
				defer producers.Done()
				w := projectionstest.NewWorkload(uint64(100+p), 12)
				w.Unknown, w.Approvals = true, true
				for i := range 60 {
					appends := w.Request()
					if i%5 == 0 {
						appends = append(appends, w.AccessChange())
					}
					if i%3 == 0 {
						appends = append(appends, w.SourceChange())
					}
					if err := projectionstest.AppendAll(ctx, src, appends); err != nil {
						appendErrs <- err
						return
					}
				}
			}()
		}
		done := make(chan struct{})
		go func() { producers.Wait(); close(done) }()

		// Runners come and go while the producers append.
		rng := rand.New(rand.NewPCG(7, 7))
		for running := true; running; {
			select {
			case <-done:
				running = false
			default:
			}
			runner, err := projections.NewRunner(src, projections.Config{BatchSize: 1 + rng.IntN(300)}, allViews()...)
			if err != nil {
				t.Fatal(err)
			}
			runCtx, cancel := context.WithTimeout(ctx, time.Duration(20+rng.IntN(80))*time.Millisecond)
			if err := runner.Run(runCtx); err != nil {
				t.Fatalf("incremental run: %v", err)
			}
			cancel()
		}
		select {
		case err := <-appendErrs:
			t.Fatal(err)
		default:
		}

		views := allViews()
		runner, err := projections.NewRunner(src, projections.Config{BatchSize: 97}, views...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := runner.CatchUp(ctx, nil); err != nil {
			t.Fatal(err)
		}
		head, _, _ := src.Head(ctx)
		status, err := runner.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range status {
			if s.Checkpoint != head {
				t.Fatalf("%s is at %d after catching up, want the head %d", s.Name, s.Checkpoint, head)
			}
		}
		incremental, err := projectionstest.Dump(ctx, src.DB(), allTables(views))
		if err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"view_history_runs", "view_history_requests", "view_transcript_chunks", "view_access_user_permissions", "view_history_request_hours", "view_history_run_hours", "view_audit_events", "view_search_docs", "view_search_runs"} {
			if len(incremental[table]) == 0 {
				t.Fatalf("%s is empty after the workload", table)
			}
		}
		checkHoursMatchRows(t, ctx, src)

		fingerprints, err := runner.Fingerprints(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(fingerprints) != len(allTables(views)) {
			t.Fatalf("%d fingerprints for %d tables", len(fingerprints), len(allTables(views)))
		}

		rebuilt, err := projections.NewRunner(src, projections.Config{}, allViews()...)
		if err != nil {
			t.Fatal(err)
		}
		stats, err := rebuilt.Rebuild(ctx, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if stats.Events != head {
			t.Fatalf("the rebuild read %d events, want all %d", stats.Events, head)
		}
		fromZero, err := projectionstest.Dump(ctx, src.DB(), allTables(views))
		if err != nil {
			t.Fatal(err)
		}
		for _, table := range allTables(views) {
			if !slices.Equal(incremental[table], fromZero[table]) {
				t.Errorf("%s differs after a rebuild:\n%s", table, firstDifference(incremental[table], fromZero[table]))
			}
		}
		// The fingerprints (`projections rebuild --compare`) agree with
		// the dumps, and a changed row changes its table's.
		again, err := rebuilt.Fingerprints(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(fingerprints, again) {
			t.Fatalf("fingerprints before and after the rebuild differ:\n%v\n%v", fingerprints, again)
		}
		if _, err := src.DB().ExecContext(ctx, "UPDATE view_history_runs SET reason = reason || ' (changed)' WHERE run_id = (SELECT MIN(run_id) FROM view_history_runs)"); err != nil {
			t.Fatal(err)
		}
		changed, err := rebuilt.Fingerprints(ctx, []string{"history"})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range changed {
			was := fingerprints[slices.IndexFunc(fingerprints, func(g projections.TableFingerprint) bool { return g.Table == f.Table })]
			if (f.Table == "view_history_runs") == (f.Digest == was.Digest) || f.Rows != was.Rows {
				t.Errorf("%s: %d rows digest %s after changing one run, was %d rows %s", f.Table, f.Rows, f.Digest, was.Rows, was.Digest)
			}
		}
	})
}

func firstDifference(a, b []string) string {
	for i := range max(len(a), len(b)) {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return fmt.Sprintf("row %d (of %d vs %d):\nincremental: %s\nrebuilt:     %s", i, len(a), len(b), x, y)
		}
	}
	return "no difference"
}
