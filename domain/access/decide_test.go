package access

import (
	"testing"

	"github.com/logbookhq/logbook/domain"
)

// A command handler that loads the wrong stream is a bug; the deciders say so
// rather than emit events for one aggregate into another's stream.
func TestDecidingAgainstAnotherAggregatesStreamIsRefused(t *testing.T) {
	t.Parallel()
	dir := NewDirectory()
	cases := []struct {
		name    string
		history []domain.Payload
		cmd     Command
	}{
		{"a user command against another user's history", alice, DisableUser{User: "u-bob"}},
		{"a user creation against another user's history", alice, CreateUser{ID: "u-bob", Username: "bob"}},
		{"a group command against another group's history", opsGroup, RevokeRoleFromGroup{Group: "dev", Role: "x"}},
		{"a role command against another role's history", deployerRole, CreateRole{Name: "viewer"}},
		{"a site permission against another's history", evs(SitePermissionCreated{Permission: "site:a"}), CreateSitePermission{Name: "b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := Decide(c.history, c.cmd, dir)
			if KindOf(err) != KindInvalid || got != nil {
				t.Fatalf("got %v, %v; want an invalid error and no events", got, err)
			}
		})
	}
}

func TestDecideRefusesANilCommand(t *testing.T) {
	t.Parallel()
	if _, err := Decide(nil, nil, NewDirectory()); KindOf(err) != KindInvalid {
		t.Fatalf("Decide(nil command) = %v, want an invalid error", err)
	}
}
