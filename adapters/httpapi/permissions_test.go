package httpapi_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/projections"
)

func TestPermissionViewsShowWhoIsWhoAndWhoMayRunACommand(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		permissionViews(t, newPlatform(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		permissionViews(t, newPlatformOn(t, openPostgres(t)))
	})
}

func permissionViews(t *testing.T, p *platform) {
	// Given bob in group ops, whose role shouters holds toolbox:shout, all
	// set up through the API as the bootstrap admin.
	bob := p.addUser(t, "bob")
	for _, text := range []string{
		"group create ops", "group add ops bob", "role create shouters",
		"role grant shouters toolbox:shout", "group grant ops shouters",
	} {
		p.say(t, p.adminToken, text)
	}
	get := func(path, token string) (int, []byte) {
		status, _, body := p.do(t, http.MethodGet, path, token, nil)
		return status, body
	}

	// Then the views show it.
	users := getJSON[httpapi.UsersList](t, p, "/v1/users", p.adminToken)
	names := []string{}
	var bobRow httpapi.UserView
	for _, u := range users.Users {
		names = append(names, u.Username)
		if u.Username == "bob" {
			bobRow = u
		}
	}
	if !slices.Equal(names, []string{"admin", "bob"}) {
		t.Fatalf("users = %v, want [admin bob]", names)
	}
	if !slices.Equal(bobRow.Groups, []string{"ops"}) || !slices.Equal(bobRow.Roles, []string{"shouters"}) || !slices.Equal(bobRow.Permissions, []string{"toolbox:shout"}) ||
		!slices.Equal(bobRow.EffectivePermissions, []string{"toolbox:shout"}) {
		t.Fatalf("bob = %+v, want group ops, role shouters, permission toolbox:shout", bobRow)
	}

	self := getJSON[httpapi.UserView](t, p, "/v1/users/bob", bob)
	if !slices.Equal(self.EffectivePermissions, []string{"toolbox:shout"}) {
		t.Fatalf("bob reading himself: effective %v", self.EffectivePermissions)
	}
	admin := getJSON[httpapi.UserView](t, p, "/v1/users/admin", p.adminToken)
	if !contains(admin.EffectivePermissions, "logbook:admin") || !slices.Equal(admin.Groups, []string{"admin"}) {
		t.Fatalf("admin = %+v, want logbook:admin through group admin", admin)
	}
	if status, body := get("/v1/users/admin", bob); status != http.StatusForbidden {
		t.Fatalf("bob reading admin: %d %s, want 403", status, body)
	}
	if status, body := get("/v1/users/nobody", bob); status != http.StatusForbidden {
		t.Fatalf("bob asking for an unknown user: %d %s, want 403 (existence is not his to learn)", status, body)
	}
	if status, body := get("/v1/users/nobody", p.adminToken); status != http.StatusNotFound {
		t.Fatalf("admin asking for an unknown user: %d %s, want 404", status, body)
	}

	group := getJSON[projections.AccessGroup](t, p, "/v1/groups/ops", p.adminToken)
	if !slices.Equal(group.Members, []string{"bob"}) || !slices.Equal(group.Roles, []string{"shouters"}) {
		t.Fatalf("group ops = %+v", group)
	}
	groups := getJSON[httpapi.GroupsList](t, p, "/v1/groups", p.adminToken)
	if len(groups.Groups) != 2 || groups.Groups[0].Name != "admin" || groups.Groups[1].Name != "ops" {
		t.Fatalf("groups = %+v, want admin and ops", groups.Groups)
	}
	role := getJSON[projections.AccessRole](t, p, "/v1/roles/shouters", p.adminToken)
	if !slices.Equal(role.Permissions, []string{"toolbox:shout"}) || !slices.Equal(role.Groups, []string{"ops"}) {
		t.Fatalf("role shouters = %+v", role)
	}
	roles := getJSON[httpapi.RolesList](t, p, "/v1/roles", p.adminToken)
	if len(roles.Roles) != 2 {
		t.Fatalf("roles = %+v, want admin and shouters", roles.Roles)
	}
	perms := getJSON[httpapi.PermissionsList](t, p, "/v1/permissions", p.adminToken)
	byName := map[string]projections.AccessPermission{}
	for _, perm := range perms.Permissions {
		byName[perm.Permission] = perm
	}
	if shout := byName["toolbox:shout"]; !shout.Declared || !slices.Equal(shout.Roles, []string{"shouters"}) || shout.Namespace != "toolbox" {
		t.Fatalf("toolbox:shout = %+v, want declared, granted to shouters", shout)
	}
	if a := byName["logbook:admin"]; !slices.Equal(a.Roles, []string{"admin"}) {
		t.Fatalf("logbook:admin = %+v, want granted to admin", a)
	}

	bundle := getJSON[httpapi.BundleView](t, p, "/v1/bundles/toolbox", p.adminToken)
	if !bundle.Enabled || bundle.Version == "" {
		t.Fatalf("toolbox = %+v, want enabled with a version", bundle)
	}
	var shoutCmd *httpapi.CommandView
	for i, c := range bundle.Commands {
		if c.Name == "toolbox:shout" {
			shoutCmd = &bundle.Commands[i]
		}
	}
	if shoutCmd == nil || len(shoutCmd.Rules) != 1 || shoutCmd.Rules[0].Requires != "toolbox:shout" {
		t.Fatalf("toolbox:shout's rules = %+v, want one requiring toolbox:shout", shoutCmd)
	}
	if list := getJSON[httpapi.BundlesList](t, p, "/v1/bundles", p.adminToken); len(list.Bundles) != 1 {
		t.Fatalf("bundles = %+v, want toolbox", list.Bundles)
	}
	if status, _ := get("/v1/bundles/nope", p.adminToken); status != http.StatusNotFound {
		t.Fatalf("an unknown bundle: %d, want 404", status)
	}

	// When asked who may run toolbox:shout, bob is allowed by its rule and
	// admin (who holds only logbook:* permissions) is denied.
	who := getJSON[httpapi.WhoMayRun](t, p, "/v1/access/who?command=toolbox:shout&args=hello", p.adminToken)
	if len(who.Allowed) != 1 || who.Allowed[0].User != "bob" || who.Allowed[0].Requires != "toolbox:shout" || who.Allowed[0].Rule == "" {
		t.Fatalf("allowed = %+v, want bob by the rule requiring toolbox:shout", who.Allowed)
	}
	if len(who.Denied) != 1 || who.Denied[0].User != "admin" || who.Denied[0].Reason == "" {
		t.Fatalf("denied = %+v, want admin with a reason", who.Denied)
	}
	if len(who.Rules) != 1 {
		t.Fatalf("rules = %v, want the one rule of toolbox:shout", who.Rules)
	}
	// And toolbox:echo, which everyone may run, allows both.
	echo := getJSON[httpapi.WhoMayRun](t, p, "/v1/access/who?command=toolbox:echo", p.adminToken)
	if len(echo.Allowed) != 2 || len(echo.Denied) != 0 {
		t.Fatalf("toolbox:echo: allowed %+v, denied %+v; want both allowed", echo.Allowed, echo.Denied)
	}
	for path, param := range map[string]string{
		"/v1/access/who":                                 "command",
		"/v1/access/who?command=echo":                    "command",
		"/v1/access/who?command=toolbox:nope":            "command",
		"/v1/access/who?command=toolbox:echo&args=a%7Cb": "args",
		"/v1/access/who?command=toolbox:echo&color=red":  "color",
		"/v1/users?limit=3":                              "limit",
	} {
		status, body := get(path, p.adminToken)
		if status != http.StatusBadRequest || !bytesContain(body, "parameter "+param) {
			t.Errorf("GET %s: %d %s, want 400 naming %s", path, status, body, param)
		}
	}
	// Bob may read himself but not the lists.
	for _, path := range []string{"/v1/users", "/v1/groups", "/v1/roles", "/v1/permissions", "/v1/bundles", "/v1/access/who?command=toolbox:echo", "/v1/audit/verify", "/v1/export/status"} {
		if status, body := get(path, bob); status != http.StatusForbidden || !bytesContain(body, "permission") {
			t.Errorf("bob GET %s: %d %s, want 403 naming the permission", path, status, body)
		}
	}
}

func bytesContain(b []byte, s string) bool { return strings.Contains(string(b), s) }

func FuzzExplainWhoMayRun(f *testing.F) {
	for _, seed := range [][2]string{
		{"toolbox:echo", "hi"}, {"toolbox:shout", "--loud x"}, {"echo", ""}, {"toolbox:echo", "a | b"},
		{"toolbox:echo", "> #room"}, {"logbook:user", "list"}, {":", ""}, {"toolbox:", "\"unclosed"}, {"!!", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	facts := newExplainFacts(f)
	f.Fuzz(func(t *testing.T, command, args string) {
		who, err := httpapi.ExplainWhoMayRun(facts, []string{"admin", "alice"}, command, args)
		if err != nil {
			if !errors.Is(err, httpapi.ErrNotACommand) {
				t.Fatalf("%q %q: %v is not ErrNotACommand", command, args, err)
			}
			return
		}
		if len(who.Allowed)+len(who.Denied) != 2 {
			t.Fatalf("%q %q: %d answers for 2 users", command, args, len(who.Allowed)+len(who.Denied))
		}
	})
}
