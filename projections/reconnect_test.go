package projections_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/postgres"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/internal/supervisor"
	"github.com/logbookhq/logbook/internal/testenv"
	"github.com/logbookhq/logbook/projections"
	"github.com/logbookhq/logbook/projections/projectionstest"
)

// waitForPart waits, on the supervisor's change signal, until the part's
// status satisfies cond.
func waitForPart(t *testing.T, s *supervisor.Supervisor, name, what string, cond func(supervisor.Status) bool) supervisor.Status {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		changed := s.Changed()
		for _, st := range s.Status() {
			if st.Name == name && cond(st) {
				return st
			}
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("%s never %s: %+v", name, what, s.Status())
		}
	}
}

func inState(state supervisor.State) func(supervisor.Status) bool {
	return func(st supervisor.Status) bool { return st.State == state }
}

// The views lose their database connection while requests go on being
// recorded (through another connection): the runner fails, its supervisor
// restarts it with backoff, and once the database answers again every
// view resumes from its stored checkpoint, catches up, and equals a
// rebuild. Two ways to lose it: the network cut (a proxy), and the server
// ending the runner's backends (pg_terminate_backend).
func TestViewsResumeFromTheirCheckpointsWhenTheDatabaseReturns(t *testing.T) {
	for _, how := range []string{"the connection is cut", "the backends are terminated"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			schemaURL := testenv.PostgresSchema(t)
			writer, err := postgres.Open(ctx, schemaURL, sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { writer.Close() })
			u, err := url.Parse(schemaURL)
			if err != nil {
				t.Fatal(err)
			}
			target := u.Host
			if u.Port() == "" {
				target += ":5432"
			}
			proxy := testenv.NewProxy(t, target, true)
			app := "views_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
			viewsURL := testenv.WithParam(strings.Replace(schemaURL, target, proxy.Addr(), 1), "application_name", app)
			reader, err := postgres.Open(ctx, viewsURL, sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { reader.Close() })

			w := projectionstest.NewWorkload(3, 8)
			if err := projectionstest.AppendAll(ctx, writer, w.Setup()); err != nil {
				t.Fatal(err)
			}
			appendRequests := func(n int) {
				t.Helper()
				for range n {
					if err := projectionstest.AppendAll(ctx, writer, w.Request()); err != nil {
						t.Fatal(err)
					}
				}
			}
			appendRequests(20)

			runner, err := projections.NewRunner(reader, projections.Config{SafetyNet: 50 * time.Millisecond}, allViews()...)
			if err != nil {
				t.Fatal(err)
			}
			sup := supervisor.New(supervisor.Config{
				Logger:     zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
				NewBackOff: func() backoff.BackOff { return backoff.NewConstantBackOff(100 * time.Millisecond) },
			})
			sup.Start(ctx, supervisor.Part{Name: "views", Essential: true, ReportsReady: true, Run: runner.Run})
			t.Cleanup(func() { _ = sup.Stop(context.Background()) })
			waitForPart(t, sup, "views", "ran", inState(supervisor.Running))
			head, _, _ := writer.Head(ctx)
			waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			for _, name := range runner.Names() {
				if err := runner.WaitFor(waitCtx, name, head); err != nil {
					t.Fatal(err)
				}
			}

			// The outage, with requests recorded during it.
			switch how {
			case "the connection is cut":
				proxy.Cut()
				appendRequests(20)
				failed := waitForPart(t, sup, "views", "restarted", inState(supervisor.Restarting))
				if failed.LastError == "" {
					t.Fatalf("restarting without a reason: %+v", failed)
				}
				if ready, _ := sup.Ready(); ready {
					t.Fatal("ready while the views cannot reach the database")
				}
				proxy.Restore()
			default:
				// database/sql replaces a connection the server ended when
				// it can tell; when it cannot, the read fails and the part
				// restarts. Either way the views must go on.
				terminate(t, schemaURL, app)
				appendRequests(20)
				terminate(t, schemaURL, app)
			}
			appendRequests(10)

			// Back: caught up to the head, no view stopped, equal to a rebuild.
			waitForPart(t, sup, "views", "ran again", inState(supervisor.Running))
			head, _, _ = writer.Head(ctx)
			for _, name := range runner.Names() {
				if err := runner.WaitFor(waitCtx, name, head); err != nil {
					t.Fatalf("%s after the outage: %v", name, err)
				}
			}
			status, err := runner.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range status {
				if s.Error != "" || s.Checkpoint != head {
					t.Fatalf("after the outage %s is %+v, want at the head %d with no error", s.Name, s, head)
				}
			}
			if err := sup.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			views := allViews()
			incremental, err := projectionstest.Dump(ctx, writer.DB(), allTables(views))
			if err != nil {
				t.Fatal(err)
			}
			rebuilt, _ := projections.NewRunner(writer, projections.Config{}, views...)
			if _, err := rebuilt.Rebuild(ctx, nil, nil); err != nil {
				t.Fatal(err)
			}
			fromZero, err := projectionstest.Dump(ctx, writer.DB(), allTables(views))
			if err != nil {
				t.Fatal(err)
			}
			for _, table := range allTables(views) {
				if !slices.Equal(incremental[table], fromZero[table]) {
					t.Errorf("%s differs from a rebuild after the outage:\n%s", table, firstDifference(incremental[table], fromZero[table]))
				}
			}
		})
	}
}

// terminate ends every backend of application app, as an operator's
// pg_terminate_backend or a server-side idle timeout would.
func terminate(t *testing.T, url, app string) {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal(fmt.Errorf("no backend of %s to terminate", app))
	}
	t.Logf("terminated %d backends of %s", n, app)
}

// flakyView fails its first Apply as a lost connection would, after doing
// part of its work in the transaction.
type flakyView struct {
	projections.Projection
	failures int
}

func (v *flakyView) Apply(ctx context.Context, tx *projections.Tx, batch projections.Batch) error {
	if err := v.Projection.Apply(ctx, tx, batch); err != nil {
		return err
	}
	if v.failures > 0 {
		v.failures--
		return errors.New("write tcp 127.0.0.1:5432: connection reset by peer")
	}
	return nil
}

// Given a view whose transaction fails for a reason a retry gets past,
// when the runner catches up, then the step ends with that error and no
// view stops; the next step opens the views at their stored checkpoints
// and applies the batch once, equal to a rebuild. A view that cannot read
// an event still stops (TestViewsSkipUnknownEventTypesAndStopOnAnEventTheyCannotRead).
func TestATransientApplyFailureStopsNoView(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		ctx := context.Background()
		src := open(t)
		w := projectionstest.NewWorkload(5, 6)
		if err := projectionstest.AppendAll(ctx, src, w.Setup()); err != nil {
			t.Fatal(err)
		}
		for range 10 {
			if err := projectionstest.AppendAll(ctx, src, w.Request()); err != nil {
				t.Fatal(err)
			}
		}
		views := allViews()
		views[1] = &flakyView{Projection: views[1], failures: 1}
		runner, err := projections.NewRunner(src, projections.Config{}, views...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = runner.CatchUp(ctx, nil)
		if err == nil || errors.Is(err, projections.ErrViewFailed) || !strings.Contains(err.Error(), "connection reset by peer") {
			t.Fatalf("first catch-up = %v, want the transient error and no view stopped", err)
		}
		if _, err := runner.CatchUp(ctx, nil); err != nil {
			t.Fatalf("second catch-up = %v", err)
		}
		requireAtHead(t, ctx, src, runner)
		incremental, err := projectionstest.Dump(ctx, src.DB(), allTables(views))
		if err != nil {
			t.Fatal(err)
		}
		rebuilt, _ := projections.NewRunner(src, projections.Config{}, allViews()...)
		if _, err := rebuilt.Rebuild(ctx, nil, nil); err != nil {
			t.Fatal(err)
		}
		fromZero, err := projectionstest.Dump(ctx, src.DB(), allTables(views))
		if err != nil {
			t.Fatal(err)
		}
		for _, table := range allTables(views) {
			if !slices.Equal(incremental[table], fromZero[table]) {
				t.Errorf("%s differs from a rebuild:\n%s", table, firstDifference(incremental[table], fromZero[table]))
			}
		}
	})
}
