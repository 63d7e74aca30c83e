package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/export"
	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
)

// storedExports reports the destinations configs name from the store's cursors.
type storedExports struct {
	store   *sqlstore.Store
	configs []export.Config
}

func (e storedExports) ExportStatus(ctx context.Context) ([]export.Status, error) {
	return export.StatusOf(ctx, e.store, export.CursorsOf(e.store), e.configs, time.Now())
}

func TestExportStatusShowsEachDestinationsLagToAnAdmin(t *testing.T) {
	t.Parallel()
	// Given a destination that acknowledged position 3 and then failed.
	store := openSQLite(t).(*sqlite.Store)
	p := newPlatformOn(t, store)
	p.say(t, p.adminToken, "echo one")
	cursors := export.CursorsOf(store.Store)
	ctx := context.Background()
	if err := cursors.Init(ctx, export.Cursor{Destination: "siem"}); err != nil {
		t.Fatal(err)
	}
	if err := cursors.Ack(ctx, "siem", 0, 3, "ab", time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := cursors.Fail(ctx, "siem", "export siem: connect to 127.0.0.1:1: connection refused", time.Now()); err != nil {
		t.Fatal(err)
	}
	p.api.Exports = storedExports{store: store.Store, configs: []export.Config{{Name: "siem", Kind: export.KindSyslog, Addr: "127.0.0.1:1"}}}

	// When the admin asks, then the answer names its cursor, lag and error.
	answer := getJSON[httpapi.ExportStatusAnswer](t, p, "/v1/export/status", p.adminToken)
	head, _, _ := store.Head(ctx)
	if len(answer.Destinations) != 1 {
		t.Fatalf("destinations %+v", answer.Destinations)
	}
	s := answer.Destinations[0]
	if s.Destination != "siem" || s.Target != "tcp://127.0.0.1:1" || !s.Configured || s.Position != 3 || s.Head < head || s.LagEvents != s.Head-3 || s.LagSeconds <= 0 ||
		s.LastError == "" || s.LastErrorAt == nil || s.AckedAt == nil {
		t.Fatalf("status %+v (head %d)", s, head)
	}

	// And someone without logbook:admin is refused.
	bob := p.addUser(t, "bob")
	if status, _, body := p.do(t, http.MethodGet, "/v1/export/status", bob, nil); status != http.StatusForbidden {
		t.Fatalf("bob: %d %s, want 403", status, body)
	}
}
