package webui

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/domain/dispatch"
)

type usersData struct {
	Users []UserEntry
}

// readDirectory waits for the permission view, briefly, then reads it.
func (ui *UI) readDirectory(w http.ResponseWriter, r *http.Request, v *viewer, read func(context.Context) error) bool {
	ctx := r.Context()
	if err := ui.catchUp(ctx, "permissions"); err != nil {
		ui.unavailable(w, r, v, "reading the permission view", err)
		return false
	}
	if err := read(ctx); err != nil {
		ui.unavailable(w, r, v, "reading the permission view", err)
		return false
	}
	return true
}

func (ui *UI) usersPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	var data usersData
	if !ui.readDirectory(w, r, v, func(ctx context.Context) (err error) { data.Users, err = ui.cfg.Directory.Users(ctx); return err }) {
		return
	}
	ui.render(w, r, http.StatusOK, "users", page{Title: "Users", Section: "users", Viewer: v, Data: data})
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
}

type userData struct {
	User UserEntry
	// MayRun is filled for the viewer's own page, or for an admin.
	MayRun   []commandAccess
	Hidden   bool // MayRun withheld: another user's, and the viewer is no admin
	Check    string
	Checked  *httpapi.AccessExplanation
	CheckErr string
}

func (ui *UI) userPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	name := r.PathValue("name")
	var users []UserEntry
	if !ui.readDirectory(w, r, v, func(ctx context.Context) (err error) { users, err = ui.cfg.Directory.Users(ctx); return err }) {
		return
	}
	data := userData{Check: strings.TrimSpace(r.URL.Query().Get("check"))}
	found := false
	for _, u := range users {
		if u.Username == name {
			data.User, found = u, true
		}
	}
	if !found {
		ui.fail(w, r, v, http.StatusNotFound, "There is no user named "+name+".")
		return
	}
	// Effective permissions as the dispatcher holds them: the permission
	// view does not know the builtin bundle's logbook:* permissions, which
	// are declared in code rather than by an event.
	data.User.Permissions = ui.cfg.Access.PermissionsOf(data.User.ID)
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
	check := func(command, description string) {
		ca := commandAccess{Command: command, Description: description}
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
			} else if exp.Denied != "" && ca.Allowed == false && ca.Reason == "" {
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
			check(b.Bundle.Name+":"+c.Name, c.Description)
		}
	}
	builtins := facts.Builtins()
	for _, name := range builtins.Names() {
		check(dispatch.BuiltinBundle+":"+name, builtins[name].Description)
	}
	return out
}

type groupsData struct {
	Groups []GroupEntry
}

func (ui *UI) groupsPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	var data groupsData
	if !ui.readDirectory(w, r, v, func(ctx context.Context) (err error) { data.Groups, err = ui.cfg.Directory.Groups(ctx); return err }) {
		return
	}
	ui.render(w, r, http.StatusOK, "groups", page{Title: "Groups", Section: "groups", Viewer: v, Data: data})
}

type rolesData struct {
	Roles []RoleEntry
}

func (ui *UI) rolesPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	var data rolesData
	if !ui.readDirectory(w, r, v, func(ctx context.Context) (err error) { data.Roles, err = ui.cfg.Directory.Roles(ctx); return err }) {
		return
	}
	ui.render(w, r, http.StatusOK, "roles", page{Title: "Roles", Section: "roles", Viewer: v, Data: data})
}
