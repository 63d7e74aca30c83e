package projections_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/projections"
)

// Given administrative events by two actors among a request's events,
// when the audit view has caught up, then it lists only the
// administrative ones, newest first, with their actors, filters them by
// type and actor, pages them, and never shows a token's hash.
func TestTheAuditViewListsAdministrativeEventsWithTheirActors(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		ctx := context.Background()
		src := open(t)
		add := func(stream, actor string, p domain.Payload) {
			t.Helper()
			if _, err := src.Append(ctx, stream, eventstore.Any, domain.MustEncode(p, domain.Metadata{Actor: actor})); err != nil {
				t.Fatal(err)
			}
		}
		add(access.UserStream("u1"), "admin", access.UserCreated{User: "u1", Username: "alice"})
		add(access.UserStream("u1"), "admin", access.TokenIssued{User: "u1", Hash: "deadbeefdeadbeef", Note: "ci"})
		add(dispatch.Stream("r1"), "alice", dispatch.RequestReceived{Adapter: "web", MessageID: "m", ChatUser: "alice", Text: "echo hi"})
		add(access.SessionStream("u1"), "alice", access.SessionStarted{User: "u1", Username: "alice", Client: "127.0.0.1"})
		add(access.GroupStream("ops"), "bob", access.RoleGranted{Group: "ops", Role: "deployer"})
		catchUp(t, src, projections.NewAudit())
		reader := projections.NewAuditReader(projections.DBOf(src))

		all, err := reader.Events(ctx, projections.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range all.Events {
			got = append(got, e.Type+"/"+e.Actor)
			if strings.Contains(e.Summary, "deadbeef") {
				t.Errorf("the summary of %s shows the token's hash: %s", e.Type, e.Summary)
			}
			if e.Time().IsZero() || time.Since(e.Time()) > time.Hour {
				t.Errorf("%s was recorded at %v", e.Type, e.Time())
			}
		}
		if strings.Join(got, " ") != "RoleGranted/bob SessionStarted/alice TokenIssued/admin UserCreated/admin" {
			t.Fatalf("the audit view lists %v", got)
		}
		logins, err := reader.Events(ctx, projections.AuditFilter{Types: []string{"SessionStarted", "SessionEnded"}, Actor: "alice"})
		if err != nil || len(logins.Events) != 1 || logins.Events[0].Summary != "client: 127.0.0.1, user: u1, username: alice" {
			t.Fatalf("alice's logins: %+v (%v)", logins, err)
		}
		first, err := reader.Events(ctx, projections.AuditFilter{Limit: 3})
		if err != nil || len(first.Events) != 3 || first.Next == "" {
			t.Fatalf("a first page of 3: %+v (%v)", first, err)
		}
		rest, err := reader.Events(ctx, projections.AuditFilter{Limit: 3, Cursor: first.Next})
		if err != nil || len(rest.Events) != 1 || rest.Events[0].Type != "UserCreated" || rest.Next != "" {
			t.Fatalf("the second page: %+v (%v)", rest, err)
		}
	})
}
