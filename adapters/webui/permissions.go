package webui

import (
	"errors"
	"net/http"
	"strings"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/projections"
)

// The permission each page needs, as the API's permission views and the
// chat builtins that change the same things require; anyone may read
// their own user.
const (
	permAdmin        = "logbook:admin"
	permManageUsers  = "logbook:manage_users"
	permManageGroups = "logbook:manage_groups"
	permManageRoles  = "logbook:manage_roles"
	// permManageBundles opens the executors page.
	permManageBundles = "logbook:manage_bundles"
)

// snapshot waits for the permission view, briefly, then reads all of it
// in one consistent read; perm is checked first, so a refused viewer
// learns nothing of what exists.
func (ui *UI) snapshot(w http.ResponseWriter, r *http.Request, v *viewer, perm, what string) (projections.AccessSnapshot, bool) {
	if perm != "" && !v.may(perm) {
		ui.fail(w, r, v, http.StatusForbidden, what+" needs the "+perm+" permission. Your own page is /users/"+v.User.Username+".")
		return projections.AccessSnapshot{}, false
	}
	ctx := r.Context()
	if err := ui.catchUp(ctx, "permissions"); err != nil {
		ui.unavailable(w, r, v, "reading the permission view", err)
		return projections.AccessSnapshot{}, false
	}
	snap, err := ui.cfg.Permissions.Snapshot(ctx)
	if err != nil {
		ui.unavailable(w, r, v, "reading the permission view", err)
		return projections.AccessSnapshot{}, false
	}
	return snap, true
}

type usersData struct {
	Users []projections.AccessUser
}

func (ui *UI) usersPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	snap, ok := ui.snapshot(w, r, v, permManageUsers, "The list of users")
	if !ok {
		return
	}
	ui.render(w, r, http.StatusOK, "users", page{Title: "Users", Section: "users", Viewer: v, Data: usersData{Users: snap.Users}})
}

// commandAccess is whether a user may run one command, and the rule that
// decides it.
type commandAccess struct {
	Command     string
	Description string
	Allowed     bool
	Rule        string
	Requires    string
	Reason      string
	// Approvals are the approval clauses of the command's rules, each with
	// the criteria it applies under: which invocations need approval.
	Approvals []string
}

// ruleApprovals lists the approval clauses of rules, as people read them:
// "2 approvals from ops:approver when arg[0] == 'db'".
func ruleApprovals(rs []bundle.Rule) []string {
	var out []string
	for _, r := range rs {
		if r.Parsed == nil {
			continue
		}
		a, ok := r.Parsed.Approval()
		if !ok {
			continue
		}
		text := a.String()
		if a.Count == 1 {
			text = "1 " + text
		}
		if c := r.Parsed.Criteria(); c != "" {
			text += " when " + c
		} else {
			text += " always"
		}
		out = append(out, text)
	}
	return out
}

type userData struct {
	User projections.AccessUser
	// Effective is what the dispatcher decides with now: the live model,
	// which also holds the builtin logbook:* permissions the view lacks.
	Effective []string
	// MayRun is filled for the viewer's own page, or for an admin.
	MayRun   []commandAccess
	Hidden   bool // MayRun withheld: another user's, and the viewer is no admin
	Check    string
	Checked  *httpapi.AccessExplanation
	CheckErr string
}

func (ui *UI) userPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	name := r.PathValue("name")
	perm := permManageUsers
	if name == v.User.Username {
		perm = ""
	}
	snap, ok := ui.snapshot(w, r, v, perm, "Another user's page")
	if !ok {
		return
	}
	data := userData{Check: strings.TrimSpace(r.URL.Query().Get("check"))}
	found := false
	for _, u := range snap.Users {
		if u.Username == name {
			data.User, found = u, true
		}
	}
	if !found {
		ui.fail(w, r, v, http.StatusNotFound, "There is no user named "+name+".")
		return
	}
	data.Effective = ui.cfg.Access.PermissionsOf(data.User.ID)
	// What someone else may run is what explaining their access shows,
	// which the API keeps to admins too.
	if name != v.User.Username && !v.Admin {
		data.Hidden = true
	} else {
		data.MayRun = ui.whatMayRun(name)
		if data.Check != "" {
			exp, err := httpapi.ExplainAccess(ui.cfg.Access, name, data.Check)
			if err != nil {
				data.CheckErr = err.Error()
			} else {
				data.Checked = &exp
			}
		}
	}
	ui.render(w, r, http.StatusOK, "user", page{Title: "User " + name, Section: "users", Viewer: v, Data: data})
}

// whatMayRun decides, for every command of every enabled bundle and every
// builtin, whether username may run it with no arguments: the decision
// dispatch.Decide makes on the live facts, rule and reason included.
func (ui *UI) whatMayRun(username string) []commandAccess {
	facts := ui.cfg.Access
	var out []commandAccess
	check := func(command, description string, approvals []string) {
		ca := commandAccess{Command: command, Description: description, Approvals: approvals}
		exp, err := httpapi.ExplainAccess(facts, username, command)
		switch {
		case errors.Is(err, httpapi.ErrNoSuchUser):
			ca.Reason = "the live model does not know this user yet"
		case err != nil:
			ca.Reason = err.Error()
		default:
			ca.Allowed = exp.Allowed
			if len(exp.Stages) > 0 {
				s := exp.Stages[0]
				ca.Rule, ca.Requires, ca.Reason = s.Rule, s.Requires, s.Reason
			}
			if exp.Rejected != "" {
				ca.Reason = exp.Rejected
			} else if !ca.Allowed && ca.Reason == "" {
				ca.Reason = exp.Denied
			}
		}
		out = append(out, ca)
	}
	for _, b := range facts.Bundles() {
		if !b.Enabled || b.Bundle == nil {
			continue
		}
		for _, c := range b.Bundle.Commands() {
			check(b.Bundle.Name+":"+c.Name, c.Description, ruleApprovals(c.Rules()))
		}
	}
	builtins := facts.Builtins()
	for _, name := range builtins.Names() {
		check(dispatch.BuiltinBundle+":"+name, builtins[name].Description, nil)
	}
	return out
}

type groupsData struct {
	Groups []projections.AccessGroup
}

func (ui *UI) groupsPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	snap, ok := ui.snapshot(w, r, v, permManageGroups, "The list of groups")
	if !ok {
		return
	}
	ui.render(w, r, http.StatusOK, "groups", page{Title: "Groups", Section: "groups", Viewer: v, Data: groupsData{Groups: snap.Groups}})
}

type rolesData struct {
	Roles       []projections.AccessRole
	Permissions []projections.AccessPermission
}

func (ui *UI) rolesPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	snap, ok := ui.snapshot(w, r, v, permManageRoles, "The list of roles")
	if !ok {
		return
	}
	ui.render(w, r, http.StatusOK, "roles", page{Title: "Roles", Section: "roles", Viewer: v, Data: rolesData{Roles: snap.Roles, Permissions: snap.Permissions}})
}
