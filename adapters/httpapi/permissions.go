package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/pipeline"
	"github.com/logbookhq/logbook/domain/rules"
	"github.com/logbookhq/logbook/projections"
)

// PermissionReader is what the permission pages read: the permission
// view's tables, as one consistent snapshot (projections.PermissionReader
// answers it; the web UI reads the same interface).
type PermissionReader interface {
	Snapshot(ctx context.Context) (projections.AccessSnapshot, error)
}

// BundleReader lists the installed bundles, enabled or not, with the
// config of the version that is enabled (or was last installed). The
// dispatcher's live facts answer it, so the rules shown are the rules in
// force.
type BundleReader interface {
	Bundles() []dispatch.InstalledBundle
}

// The permission each permission view needs, as the chat builtins that
// change the same things require. A user may always read their own entry.
const (
	permManageUsers   = "logbook:manage_users"
	permManageGroups  = "logbook:manage_groups"
	permManageRoles   = "logbook:manage_roles"
	permManageBundles = "logbook:manage_bundles"
	permAdmin         = "logbook:admin"
)

// UserView answers GET /v1/users/{name}: the view's row, and
// EffectivePermissions, what the dispatcher decides with right now (the
// live model, which also holds the builtin logbook:* permissions).
type UserView struct {
	projections.AccessUser
	EffectivePermissions []string `json:"effective_permissions"`
}

// UsersList answers GET /v1/users.
type UsersList struct {
	Users []UserView `json:"users"`
}

// GroupsList answers GET /v1/groups.
type GroupsList struct {
	Groups []projections.AccessGroup `json:"groups"`
}

// RolesList answers GET /v1/roles.
type RolesList struct {
	Roles []projections.AccessRole `json:"roles"`
}

// PermissionsList answers GET /v1/permissions.
type PermissionsList struct {
	Permissions []projections.AccessPermission `json:"permissions"`
}

// BundleView is one installed bundle: the version in force (Enabled) or,
// for a disabled bundle, the version its commands come from.
type BundleView struct {
	Name        string        `json:"name"`
	Version     string        `json:"version"`
	Enabled     bool          `json:"enabled"`
	Description string        `json:"description,omitempty"`
	Image       string        `json:"image,omitempty"`
	Permissions []string      `json:"permissions"`
	Commands    []CommandView `json:"commands"`
}

// CommandView is one command and the rules that govern who may run it.
type CommandView struct {
	Name        string     `json:"name"` // bundle:command
	Description string     `json:"description,omitempty"`
	Rules       []RuleView `json:"rules"`
}

// RuleView is one rule: as written in the config and in canonical form.
type RuleView struct {
	Source   string `json:"source"`
	Rule     string `json:"rule"`
	Requires string `json:"requires"` // "allow" or the permission expression
	// Approval is what the rule asks for before the command runs ("2
	// approvals from ops:approver"); "" when it runs without approval.
	Approval string `json:"approval,omitempty"`
}

// BundlesList answers GET /v1/bundles.
type BundlesList struct {
	Bundles []BundleView `json:"bundles"`
}

// WhoMayRun answers GET /v1/access/who: for every user, whether the
// dispatcher would let them run the invocation, and the rule that decides.
type WhoMayRun struct {
	Command string   `json:"command"`
	Args    string   `json:"args,omitempty"`
	Rules   []string `json:"rules"`
	Allowed []WhoMay `json:"allowed"`
	Denied  []WhoMay `json:"denied"`
}

// WhoMay is one user's answer.
type WhoMay struct {
	User     string `json:"user"`
	Rule     string `json:"rule,omitempty"`
	Requires string `json:"requires,omitempty"`
	Reason   string `json:"reason"`
	// Approval is what an allowed user's request waits for first.
	Approval string `json:"approval,omitempty"`
}

// approvalText writes an approval clause as people read it: "1 approval
// from ops:approver", "2 approvals from ops:approver".
func approvalText(a rules.Approval) string {
	if a.Count == 1 {
		return "1 " + a.String()
	}
	return a.String()
}

func newBundleView(ib dispatch.InstalledBundle) BundleView {
	b := ib.Bundle
	v := BundleView{Name: b.Name, Version: b.Version, Enabled: ib.Enabled, Description: b.Description, Image: b.Image(),
		Permissions: append([]string{}, b.Permissions...), Commands: []CommandView{}}
	for _, c := range b.Commands() {
		v.Commands = append(v.Commands, newCommandView(c))
	}
	return v
}

func newCommandView(c *bundle.Command) CommandView {
	cv := CommandView{Name: c.FullName(), Description: c.Description, Rules: []RuleView{}}
	for _, r := range c.Rules() {
		rv := RuleView{Source: r.Source}
		if r.Parsed != nil {
			rv.Rule, rv.Requires = r.Parsed.String(), r.Parsed.Requirement()
			if a, ok := r.Parsed.Approval(); ok {
				rv.Approval = approvalText(a)
			}
		}
		cv.Rules = append(cv.Rules, rv)
	}
	return cv
}

// hasPermission reports whether user holds perm, or logbook:admin, in the
// live model.
func (a *API) hasPermission(user access.UserInfo, perm string) bool {
	held := a.Users.PermissionsOf(user.ID)
	return slices.Contains(held, perm) || slices.Contains(held, permAdmin)
}

// requirePermission answers 403 naming the permission when user lacks it.
// It runs before any lookup, so a refused caller learns nothing of what
// exists.
func (a *API) requirePermission(w http.ResponseWriter, user access.UserInfo, perm string) bool {
	if a.hasPermission(user, perm) {
		return true
	}
	writeJSON(w, http.StatusForbidden, apiError{"this needs the " + perm + " permission"})
	return false
}

// noParams answers 400 when the query has any parameter.
func noParams(w http.ResponseWriter, r *http.Request) bool {
	if err := onlyParams(r.URL.Query(), nil); err != nil {
		writeParamError(w, err)
		return false
	}
	return true
}

// snapshot reads the permission view once it has caught up with the store.
func (a *API) snapshot(w http.ResponseWriter, r *http.Request) (projections.AccessSnapshot, bool) {
	if a.Permissions == nil {
		writeJSON(w, http.StatusNotImplemented, apiError{"this server does not serve the permission views"})
		return projections.AccessSnapshot{}, false
	}
	if a.Events != nil {
		if err := a.catchUp(r.Context(), "permissions"); err != nil {
			unavailable(w, "the permission view", err)
			return projections.AccessSnapshot{}, false
		}
	}
	snap, err := a.Permissions.Snapshot(r.Context())
	if err != nil {
		unavailable(w, "reading the permission view", err)
		return projections.AccessSnapshot{}, false
	}
	return snap, true
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if !a.requirePermission(w, user, permManageUsers) {
		return
	}
	if !noParams(w, r) {
		return
	}
	if snap, ok := a.snapshot(w, r); ok {
		out := UsersList{Users: make([]UserView, len(snap.Users))}
		for i, u := range snap.Users {
			out.Users[i] = a.userView(u)
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// userView adds what the live model says the user may do.
func (a *API) userView(u projections.AccessUser) UserView {
	effective := []string{}
	if !u.Disabled {
		effective = append(effective, a.Users.PermissionsOf(u.ID)...)
		slices.Sort(effective)
	}
	return UserView{AccessUser: u, EffectivePermissions: effective}
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	name := r.PathValue("name")
	if name != user.Username && !a.requirePermission(w, user, permManageUsers) {
		return
	}
	if !noParams(w, r) {
		return
	}
	snap, ok := a.snapshot(w, r)
	if !ok {
		return
	}
	for _, u := range snap.Users {
		if u.Username == name {
			writeJSON(w, http.StatusOK, a.userView(u))
			return
		}
	}
	writeJSON(w, http.StatusNotFound, apiError{"no user named " + clip(name)})
}

func (a *API) listGroups(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if !a.requirePermission(w, user, permManageGroups) {
		return
	}
	if !noParams(w, r) {
		return
	}
	if snap, ok := a.snapshot(w, r); ok {
		writeJSON(w, http.StatusOK, GroupsList{Groups: snap.Groups})
	}
}

func (a *API) getGroup(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if !a.requirePermission(w, user, permManageGroups) {
		return
	}
	name := r.PathValue("name")
	if !noParams(w, r) {
		return
	}
	if snap, ok := a.snapshot(w, r); ok {
		writeNamed(w, snap.Groups, "group", name, func(g projections.AccessGroup) string { return g.Name })
	}
}

func (a *API) listRoles(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if !a.requirePermission(w, user, permManageRoles) {
		return
	}
	if !noParams(w, r) {
		return
	}
	if snap, ok := a.snapshot(w, r); ok {
		writeJSON(w, http.StatusOK, RolesList{Roles: snap.Roles})
	}
}

func (a *API) getRole(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if !a.requirePermission(w, user, permManageRoles) {
		return
	}
	name := r.PathValue("name")
	if !noParams(w, r) {
		return
	}
	if snap, ok := a.snapshot(w, r); ok {
		writeNamed(w, snap.Roles, "role", name, func(r projections.AccessRole) string { return r.Name })
	}
}

// writeNamed answers the item called name, or a 404 saying which kind of
// thing was not found.
func writeNamed[T any](w http.ResponseWriter, items []T, kind, name string, nameOf func(T) string) {
	for _, item := range items {
		if nameOf(item) == name {
			writeJSON(w, http.StatusOK, item)
			return
		}
	}
	writeJSON(w, http.StatusNotFound, apiError{"no " + kind + " named " + clip(name)})
}

func (a *API) listPermissions(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if !a.requirePermission(w, user, permManageRoles) {
		return
	}
	if !noParams(w, r) {
		return
	}
	if snap, ok := a.snapshot(w, r); ok {
		writeJSON(w, http.StatusOK, PermissionsList{Permissions: snap.Permissions})
	}
}

// bundleReader is Bundles, or the facts explaining reads.
func (a *API) bundleReader() (BundleReader, bool) {
	if a.Bundles != nil {
		return a.Bundles, true
	}
	facts, ok := a.accessFacts()
	return facts, ok
}

func (a *API) installedBundles(w http.ResponseWriter, r *http.Request) ([]dispatch.InstalledBundle, bool) {
	reader, ok := a.bundleReader()
	if !ok {
		writeJSON(w, http.StatusNotImplemented, apiError{"this server does not serve the bundle views"})
		return nil, false
	}
	if !noParams(w, r) {
		return nil, false
	}
	installed := reader.Bundles()
	slices.SortFunc(installed, func(x, y dispatch.InstalledBundle) int { return strings.Compare(x.Bundle.Name, y.Bundle.Name) })
	return installed, true
}

func (a *API) listBundles(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if !a.requirePermission(w, user, permManageBundles) {
		return
	}
	installed, ok := a.installedBundles(w, r)
	if !ok {
		return
	}
	out := BundlesList{Bundles: []BundleView{}}
	for _, ib := range installed {
		if ib.Bundle != nil {
			out.Bundles = append(out.Bundles, newBundleView(ib))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getBundle(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if !a.requirePermission(w, user, permManageBundles) {
		return
	}
	name := r.PathValue("name")
	installed, ok := a.installedBundles(w, r)
	if !ok {
		return
	}
	for _, ib := range installed {
		if ib.Bundle != nil && ib.Bundle.Name == name {
			writeJSON(w, http.StatusOK, newBundleView(ib))
			return
		}
	}
	writeJSON(w, http.StatusNotFound, apiError{"no bundle named " + clip(name)})
}

// clip bounds a name echoed in an error.
func clip(s string) string {
	if len(s) > maxIDLength {
		return s[:maxIDLength] + "..."
	}
	return s
}

// ErrNotACommand is the kind of a who-may-run question whose command or
// arguments name nothing one stage can run; the error is a *ParamError
// naming which of the two is wrong.
var ErrNotACommand = errors.New("not a command")

// notACommand is a *ParamError of kind ErrNotACommand.
type notACommand struct{ *ParamError }

func (notACommand) Is(target error) bool { return target == ErrNotACommand }
func (e notACommand) Unwrap() error      { return e.ParamError }

func whoError(param, format string, args ...any) error {
	return notACommand{paramError(param, format, args...)}
}

// ExplainWhoMayRun decides "command args" for each of usernames with
// dispatch.Decide, as ExplainAccess does for one, and sorts the users into
// those allowed and those denied, each with the deciding rule. command is
// bundle:command (a full name never resolves to an alias); args, which may
// be empty, are what follows it. An unknown or disabled command, or args
// that make a pipeline or a redirect, is an error of kind ErrNotACommand.
func ExplainWhoMayRun(facts dispatch.Facts, usernames []string, command, args string) (WhoMayRun, error) {
	out := WhoMayRun{Command: command, Args: args, Rules: []string{}, Allowed: []WhoMay{}, Denied: []WhoMay{}}
	bundleName, name, ok := strings.Cut(command, ":")
	if !ok || bundleName == "" || name == "" || strings.ContainsAny(command, " \t\r\n!|>") {
		return out, whoError("command", "%q is not a full command name such as toolbox:echo", command)
	}
	text := strings.TrimSpace(command + " " + args)
	parsed, err := pipeline.Parse(text)
	if err != nil {
		return out, whoError("args", "%q does not parse: %v", text, err)
	}
	if len(parsed.Stages) != 1 || len(parsed.Redirects) > 0 {
		return out, whoError("args", "the arguments make a pipeline or a redirect; ask about one command")
	}
	found := false
	for _, ib := range facts.Bundles() {
		if ib.Bundle == nil || ib.Bundle.Name != bundleName {
			continue
		}
		if c, ok := ib.Bundle.Command(name); ok {
			found = true
			for _, r := range c.ParsedRules() {
				out.Rules = append(out.Rules, r.String())
			}
		}
	}
	if b, ok := facts.Builtins()[name]; ok && bundleName == dispatch.BuiltinBundle {
		found = true
		for _, r := range b.Rules {
			out.Rules = append(out.Rules, r.String())
		}
	}
	if !found {
		return out, whoError("command", "no installed bundle has a command %s", command)
	}
	for _, username := range usernames {
		e, err := ExplainAccess(facts, username, text)
		if errors.Is(err, ErrNoSuchUser) {
			continue // in the view, not yet in the live model
		}
		if err != nil {
			return out, err
		}
		if e.Rejected != "" {
			return out, whoError("command", "%s", e.Rejected)
		}
		who := WhoMay{User: username, Reason: e.Denied}
		if len(e.Stages) > 0 {
			s := e.Stages[0]
			who.Rule, who.Requires = s.Rule, s.Requires
			var words []string
			for _, a := range s.Approvals {
				words = append(words, approvalText(a))
			}
			who.Approval = strings.Join(words, " and ")
			if who.Reason == "" {
				who.Reason = s.Reason
			}
			out.Command = s.Command
		}
		if e.Allowed {
			out.Allowed = append(out.Allowed, who)
		} else {
			out.Denied = append(out.Denied, who)
		}
	}
	return out, nil
}

var whoParams = []string{"command", "args"}

func (a *API) whoMayRun(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if !a.requirePermission(w, user, permManageRoles) {
		return
	}
	q := r.URL.Query()
	if err := onlyParams(q, whoParams); err != nil {
		writeParamError(w, err)
		return
	}
	command := q.Get("command")
	if command == "" {
		writeParamError(w, paramError("command", "is required: the full name of a command, such as toolbox:echo"))
		return
	}
	facts, ok := a.accessFacts()
	if !ok {
		writeJSON(w, http.StatusNotImplemented, apiError{"this server cannot explain access"})
		return
	}
	snap, ok := a.snapshot(w, r)
	if !ok {
		return
	}
	usernames := make([]string, len(snap.Users))
	for i, u := range snap.Users {
		usernames[i] = u.Username
	}
	who, err := ExplainWhoMayRun(facts, usernames, command, q.Get("args"))
	if writeParamError(w, err) {
		return
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, who)
}
