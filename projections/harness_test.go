package projections_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/logbookhq/logbook/adapters/postgres"
	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/internal/testenv"
	"github.com/logbookhq/logbook/projections"
)

// dialects runs a test on SQLite, and on Postgres when it is there (see
// internal/testenv for when a missing Postgres skips or fails).
func dialects(t *testing.T, test func(t *testing.T, open func(t *testing.T) projections.Source)) {
	t.Run("on SQLite", func(t *testing.T) {
		t.Parallel()
		test(t, func(t *testing.T) projections.Source {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
	t.Run("on Postgres", func(t *testing.T) {
		t.Parallel()
		test(t, func(t *testing.T) projections.Source {
			s, err := postgres.Open(context.Background(), testenv.PostgresSchema(t), sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
}

func allViews() []projections.Projection {
	return []projections.Projection{projections.NewPermissions(), projections.NewHistory(), projections.NewTranscripts(), projections.NewApprovals(), projections.NewAudit(), projections.NewSearch(), projections.NewSources()}
}

func allTables(views []projections.Projection) []string {
	var out []string
	for _, v := range views {
		out = append(out, v.Tables()...)
	}
	return out
}

// requireAtHead fails the test unless every view of runner is at src's
// head with no error.
func requireAtHead(t *testing.T, ctx context.Context, src projections.Source, runner *projections.Runner) {
	t.Helper()
	head, _, err := src.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	status, err := runner.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range status {
		if s.Error != "" || s.Checkpoint != head {
			t.Fatalf("%s = %+v, want at the head %d with no error", s.Name, s, head)
		}
	}
}
