package access

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain"
)

// world: alice is in ops and admin; ops has deployer (deploy:prod,
// site:restart) and viewer (deploy:staging); admin has viewer too.
func world() []domain.Payload {
	return events(alice, bob, aliceOnSlack,
		adminGroup, opsGroup, member("ops", "u-alice"), member(AdminGroup, "u-alice"),
		deployerRole, evs(RoleCreated{Role: "viewer"}),
		evs(SitePermissionCreated{Permission: "site:restart"}),
		evs(PermissionGranted{Role: "deployer", Permission: "deploy:prod"}),
		evs(PermissionGranted{Role: "deployer", Permission: "site:restart"}),
		evs(PermissionGranted{Role: "viewer", Permission: "deploy:staging"}),
		evs(RoleGranted{Group: "ops", Role: "deployer"}),
		evs(RoleGranted{Group: "ops", Role: "viewer"}),
		evs(RoleGranted{Group: AdminGroup, Role: "viewer"}),
	)
}

func directoryOf(t *testing.T, history ...[]domain.Payload) *Directory {
	t.Helper()
	d := NewDirectory()
	if err := d.DeclarePermissions("deploy", deployBundle["deploy"]); err != nil {
		t.Fatal(err)
	}
	for _, e := range events(history...) {
		d.Apply(e)
	}
	return d
}

func TestPermissionsOf(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		then  []domain.Payload
		user  string
		want  []string
		setup func(*Directory)
	}{
		{
			name: "a user has the permissions of every role of every group, once each, sorted",
			user: "u-alice",
			want: []string{"deploy:prod", "deploy:staging", "site:restart"},
		},
		{
			name: "a user in no group has no permissions",
			user: "u-bob",
			want: nil,
		},
		{
			name: "an unknown user has no permissions",
			user: "u-nobody",
			want: nil,
		},
		{
			name: "a disabled user has no permissions at all",
			then: disabled("u-alice"),
			user: "u-alice",
			want: nil,
		},
		{
			name: "re-enabling a user restores their permissions",
			then: events(disabled("u-alice"), evs(UserEnabled{User: "u-alice"})),
			user: "u-alice",
			want: []string{"deploy:prod", "deploy:staging", "site:restart"},
		},
		{
			name: "revoking a role from a group takes its permissions away",
			then: evs(RoleRevoked{Group: "ops", Role: "deployer"}),
			user: "u-alice",
			want: []string{"deploy:staging"},
		},
		{
			name: "a permission still granted through another group stays",
			then: evs(RoleRevoked{Group: "ops", Role: "viewer"}),
			user: "u-alice",
			want: []string{"deploy:prod", "deploy:staging", "site:restart"},
		},
		{
			name: "leaving a group takes its roles' permissions away",
			then: evs(MemberRemoved{Group: "ops", User: "u-alice"}),
			user: "u-alice",
			want: []string{"deploy:staging"},
		},
		{
			name: "revoking a permission from a role takes it away",
			then: evs(PermissionRevoked{Role: "deployer", Permission: "site:restart"}),
			user: "u-alice",
			want: []string{"deploy:prod", "deploy:staging"},
		},
		{
			name:  "permissions of a removed bundle confer nothing",
			setup: func(d *Directory) { d.RetractPermissions("deploy") },
			user:  "u-alice",
			want:  []string{"site:restart"},
		},
		{
			name: "installing the bundle again brings its granted permissions back",
			setup: func(d *Directory) {
				d.RetractPermissions("deploy")
				_ = d.DeclarePermissions("deploy", []string{"deploy:prod"})
			},
			user: "u-alice",
			want: []string{"deploy:prod", "site:restart"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := directoryOf(t, world(), c.then)
			if c.setup != nil {
				c.setup(d)
			}
			got := d.PermissionsOf(c.user)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("PermissionsOf(%s) = %v, want %v", c.user, got, c.want)
			}
			for _, p := range []string{"deploy:prod", "deploy:staging", "site:restart", "deploy:nothing"} {
				if has, want := d.HasPermission(c.user, p), slices.Contains(c.want, p); has != want {
					t.Errorf("HasPermission(%s, %s) = %v, want %v", c.user, p, has, want)
				}
			}
		})
	}
}

func TestDirectoryResolvesIdentities(t *testing.T) {
	t.Parallel()
	d := directoryOf(t, world())

	u, ok := d.UserByHandle("slack", "U123")
	want := UserInfo{ID: "u-alice", Username: "alice", Email: "alice@example.com",
		Handles: []ChatHandle{{Provider: "slack", Handle: "U123"}}}
	if !ok || !reflect.DeepEqual(u, want) {
		t.Fatalf("UserByHandle(slack, U123) = %#v, %v; want %#v", u, ok, want)
	}
	if _, ok := d.UserByHandle("irc", "U123"); ok {
		t.Error("a slack handle must not resolve on irc")
	}
	if _, ok := d.UserByHandle("slack", "u123"); ok {
		t.Error("handles match exactly, case included")
	}
	if u, ok := d.UserByUsername("bob"); !ok || u.ID != "u-bob" {
		t.Errorf("UserByUsername(bob) = %#v, %v", u, ok)
	}

	d.Apply(ChatHandleUnlinked{User: "u-alice", Provider: "slack", Handle: "U123"})
	if _, ok := d.UserByHandle("slack", "U123"); ok {
		t.Error("an unlinked handle still resolves")
	}
	d.Apply(ChatHandleLinked{User: "u-bob", Provider: "slack", Handle: "U123"})
	if u, ok := d.UserByHandle("slack", "U123"); !ok || u.Username != "bob" {
		t.Errorf("after relinking to bob, UserByHandle = %#v, %v", u, ok)
	}
	if u, _ := d.User("u-alice"); len(u.Handles) != 0 {
		t.Errorf("alice still lists handles %v", u.Handles)
	}
}

func TestDirectoryListsEverythingSorted(t *testing.T) {
	t.Parallel()
	d := directoryOf(t, world(), carol, member("ops", "u-carol"), disabled("u-carol"))
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"groups", d.Groups(), []string{"admin", "ops"}},
		{"ops members", d.GroupMembers("ops"), []string{"u-alice", "u-carol"}},
		{"members of an unknown group", d.GroupMembers("nope"), []string(nil)},
		{"ops roles", d.GroupRoles("ops"), []string{"deployer", "viewer"}},
		{"alice's groups", d.GroupsOf("u-alice"), []string{"admin", "ops"}},
		{"roles", d.Roles(), []string{"deployer", "viewer"}},
		{"deployer's permissions", d.RolePermissions("deployer"), []string{"deploy:prod", "site:restart"}},
		{"permissions", d.Permissions(), []string{"deploy:prod", "deploy:staging", "site:restart"}},
		{"carol is disabled", d.IsDisabled("u-carol"), true},
		{"alice is not disabled", d.IsDisabled("u-alice"), false},
		{"an unknown user is not disabled", d.IsDisabled("u-nobody"), false},
		{"ops exists", d.GroupExists("ops"), true},
		{"deployer exists", d.RoleExists("deployer"), true},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	var names []string
	for _, u := range d.Users() {
		names = append(names, u.Username)
	}
	if want := []string{"alice", "bob", "carol"}; !reflect.DeepEqual(names, want) {
		t.Errorf("Users() = %v, want %v", names, want)
	}
}

func TestDirectoryIgnoresWhatItCannotPlace(t *testing.T) {
	t.Parallel()
	d := directoryOf(t, evs(
		domain.Raw{Type: "RunRequested", Data: []byte(`{}`)},
		MemberAdded{Group: "ghost", User: "u-alice"},
		PermissionGranted{Role: "ghost", Permission: "deploy:prod"},
		ChatHandleLinked{User: "u-ghost", Provider: "slack", Handle: "U1"},
	), alice, evs(UserCreated{User: "u-alice", Username: "impostor"}))
	if d.GroupExists("ghost") || d.RoleExists("ghost") {
		t.Error("events about a group or role never created must not create it")
	}
	if _, ok := d.UserByHandle("slack", "U1"); ok {
		t.Error("a handle linked to a user never created must not resolve")
	}
	if u, _ := d.User("u-alice"); u.Username != "alice" {
		t.Errorf("a second UserCreated replaced the first: username %s", u.Username)
	}
}

func TestDeclarePermissions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		bundle  string
		perms   []string
		wantErr string // empty: no error
		exists  []string
		missing []string
	}{
		{
			name:   "a bundle's permissions in its own namespace exist",
			bundle: "deploy", perms: []string{"deploy:prod", "deploy:staging"},
			exists: []string{"deploy:prod", "deploy:staging"},
		},
		{
			name:   "a permission outside the bundle's namespace is refused and the rest kept",
			bundle: "deploy", perms: []string{"deploy:prod", "github:write"},
			wantErr: "bundle deploy declares permission github:write outside its namespace; expected deploy:write",
			exists:  []string{"deploy:prod"}, missing: []string{"github:write"},
		},
		{
			name:   "a malformed permission is refused and the rest kept",
			bundle: "deploy", perms: []string{"deploy:Prod", "deploy:staging"},
			wantErr: `permission "deploy:Prod" has the uppercase letter 'P' at column 8`,
			exists:  []string{"deploy:staging"}, missing: []string{"deploy:Prod"},
		},
		{
			name:   "a bundle named site is refused",
			bundle: "site", perms: []string{"site:deploy"},
			wantErr: "bundle name site is reserved",
			missing: []string{"site:deploy"},
		},
		{
			name:   "a malformed bundle name is refused",
			bundle: "Deploy", perms: []string{"deploy:prod"},
			wantErr: `bundle name "Deploy"`,
			missing: []string{"deploy:prod"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := NewDirectory()
			err := d.DeclarePermissions(c.bundle, c.perms)
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.wantErr != "" && (err == nil || KindOf(err) != KindInvalid || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("error %v, want an invalid error saying %q", err, c.wantErr)
			}
			for _, p := range c.exists {
				if !d.PermissionExists(p) {
					t.Errorf("%s should exist", p)
				}
			}
			for _, p := range c.missing {
				if d.PermissionExists(p) {
					t.Errorf("%s should not exist", p)
				}
			}
		})
	}
}

func TestRedeclaringABundleReplacesItsPermissions(t *testing.T) {
	t.Parallel()
	d := NewDirectory()
	if err := d.DeclarePermissions("deploy", []string{"deploy:prod", "deploy:staging"}); err != nil {
		t.Fatal(err)
	}
	if err := d.DeclarePermissions("deploy", []string{"deploy:prod", "deploy:canary"}); err != nil {
		t.Fatal(err)
	}
	if got, want := d.Permissions(), []string{"deploy:canary", "deploy:prod"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Permissions() = %v, want %v", got, want)
	}
}
