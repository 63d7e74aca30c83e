package dispatcher

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/projections"
	"github.com/logbookhq/logbook/projections/projectionstest"
)

// The permission view and the dispatcher's facts fold the same events into
// the same directory, through one function: given installs whose configs
// this build cannot load (the workload's are bare) and access changes,
// both know the same permissions and grant each user the same ones. The
// facts used to declare a bundle's permissions from its loaded config,
// and so knew none of these.
func TestTheFactsAndThePermissionViewNeverDisagree(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	w := projectionstest.NewWorkload(11, 8)
	appends := w.Setup()
	for range 40 {
		appends = append(appends, w.AccessChange())
	}
	if err := projectionstest.AppendAll(ctx, store, appends); err != nil {
		t.Fatal(err)
	}
	events, err := store.ReadAll(ctx, 1, 100000)
	if err != nil {
		t.Fatal(err)
	}
	facts := NewFacts(dispatch.DefaultBuiltins(), dispatch.Settings{}, nil)
	view := projections.NewAccess()
	for _, e := range events {
		p, err := domain.Decode(e)
		if err != nil {
			t.Fatal(err)
		}
		facts.Apply(p, e)
		if err := view.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	view.Read(func(dir *access.Directory, _ int64) {
		if got, want := facts.dir.Permissions(), dir.Permissions(); !slices.Equal(got, want) || !slices.Contains(got, "ops:write") {
			t.Fatalf("permissions: facts %v, view %v; want equal, with the bundles' own", got, want)
		}
		for _, u := range dir.Users() {
			if got, want := facts.PermissionsOf(u.ID), dir.PermissionsOf(u.ID); !slices.Equal(got, want) {
				t.Errorf("%s: facts grant %v, the view %v", u.Username, got, want)
			}
		}
	})
}
