// Package admin holds the builtins that administer Logbook and query its
// views: user, group, role, permission, bundle, alias, history and
// transcript. They decide with the access deciders against a narrow,
// read-only view of the dispatcher's live facts (Facts), stage their
// events as changes the builtin executor appends with the run's end, and
// do their I/O under the run's context.
package admin

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/bundleconfig"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/pipeline"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/projections"
)

// HistoryReader is what the history and transcript builtins read of the
// history view (projections.HistoryReader).
type HistoryReader interface {
	Requests(ctx context.Context, f projections.RequestFilter) (projections.RequestPage, error)
	Run(ctx context.Context, runID string) (projections.RunRow, error)
}

// TranscriptReader is what the transcript builtin reads of the transcript
// view (projections.TranscriptReader).
type TranscriptReader interface {
	Output(ctx context.Context, runID, stream string) ([]byte, error)
}

// Facts is what the administration builtins read of the live model: the
// decisions' facts, the access directory for the deciders' cross-aggregate
// checks, aliases and installed bundles; and the one thing they hand back,
// a secret to show once in the reply and never record.
type Facts interface {
	dispatch.Facts
	// ReadDirectory calls fn with the live access directory; fn must not
	// keep it.
	ReadDirectory(fn func(*access.Directory))
	// AliasesOf lists owner's aliases (a user id or dispatch.SiteAliasOwner).
	AliasesOf(owner string) map[string]string
	// InstalledBundles lists the installed bundles by name.
	InstalledBundles() []dispatch.BundleVersions
	// InstalledConfig is the config text of an installed bundle version.
	InstalledConfig(name, version string) (string, bool)
	// KeepSecret holds secret for the reply to requestID and returns the
	// placeholder the recorded output carries instead.
	KeepSecret(requestID, secret string) string
	// ConfigEntries lists every layer's configuration of a bundle.
	ConfigEntries(bundle string) []bundleconfig.Entry
}

// Config configures the administration and query builtins.
type Config struct {
	// Store is where the commands append their events (required).
	Store eventstore.Store
	// History and Transcripts answer the history and transcript builtins;
	// when either is nil those builtins are left out.
	History     HistoryReader
	Transcripts TranscriptReader
	// Search answers the search builtin; nil leaves it out.
	Search Searcher
	// Vault holds secret values: secret unset deletes from it (nil: the
	// server keeps no secrets).
	Vault bundleconfig.Vault
	// Images pulls bundle images and reads registries (nil: bundles are
	// installed from configs only, as without Docker).
	Images Images
	// Sources lists triggers and schedules (nil: their list subcommands
	// say the server cannot).
	Sources SourcesReader
}

// Validate reports what is missing.
func (c Config) Validate() error {
	if c.Store == nil {
		return errors.New("admin builtins config: Store is required")
	}
	return nil
}

// MaxTranscriptReplyBytes bounds the output the transcript builtin puts in
// a chat reply; the whole transcript is at `logbook transcript`.
const MaxTranscriptReplyBytes = 32 << 10

// Builtins are the builtins that administer Logbook and query its views:
// user, group, role, permission, bundle, alias, history and transcript.
// Each decides with the access deciders (or the bundle and alias rules)
// against the live facts and stages its events with expected versions;
// the run's result is only the reply. They need Facts: run with facts
// that lack them, they fail with a clear reason. The ones that stage
// changes are marked so (Builtin.Changes): they run one at a time.
func Builtins(cfg Config) ([]dispatch.Builtin, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &admin{cfg: cfg}
	type spec struct {
		name, description, usage string
		rules                    []string
		run                      func(*adminCall) (run.Result, error)
		readOnly                 bool
	}
	specs := []spec{
		{"user", "Creates, links, disables and lists users; issues API tokens.",
			"user create NAME [--email=E] | link NAME PROVIDER HANDLE | unlink NAME PROVIDER | disable NAME | enable NAME | token NAME [--note=N] | list",
			[]string{"when command is logbook:user must have logbook:manage_users"}, a.user, false},
		{"group", "Creates groups, changes their members and grants them roles.",
			"group create NAME | add GROUP USER | remove GROUP USER | grant GROUP ROLE | revoke GROUP ROLE | list [GROUP]",
			[]string{
				"when command is logbook:group must have logbook:manage_groups",
				"when command is logbook:group with arg[0] in ['grant', 'revoke'] must have logbook:manage_roles",
			}, a.group, false},
		{"role", "Creates roles and grants them permissions.",
			"role create NAME | grant ROLE PERMISSION | revoke ROLE PERMISSION | list [ROLE]",
			[]string{"when command is logbook:role must have logbook:manage_roles"}, a.role, false},
		{"permission", "Creates site permissions and lists every permission.",
			"permission create site:NAME | list",
			[]string{"when command is logbook:permission must have logbook:manage_roles"}, a.permission, false},
		{"bundle", "Installs bundles from images or configs; upgrades, uninstalls, searches registries, enables, disables and lists them.",
			"bundle install 'CONFIG' | install --base64=CONFIG | install NAME VERSION | enable NAME VERSION | disable NAME | list",
			[]string{"when command is logbook:bundle must have logbook:manage_bundles"}, a.bundle, false},
		{"config", "Sets a bundle's configuration per layer (base, room, group, user) and shows what a run gets.",
			configUsage, []string{"when command is logbook:config must have logbook:manage_bundles"}, a.config, false},
		{"secret", "Lists and removes a bundle's secrets; `logbook secret set` sets one from standard input.",
			secretUsage, []string{"when command is logbook:secret must have logbook:manage_bundles"}, a.secret, false},
		{"alias", "Names a pipeline: your own alias, or with --site one for everyone.",
			"alias create [--site] NAME 'PIPELINE' | delete [--site] NAME | list",
			[]string{
				"when command is logbook:alias allow",
				"when command is logbook:alias with option[site] == true must have logbook:admin",
			}, a.alias, false},
	}
	if cfg.History != nil && cfg.Transcripts != nil {
		specs = append(specs,
			spec{"history", "Lists recent requests: yours, or another user's with logbook:read_history.",
				"history [--user=USER] [--limit=N]", []string{"when command is logbook:history allow"}, a.history, true},
			spec{"transcript", "Shows what a run printed: your own, or any with logbook:read_history.",
				"transcript RUN_ID", []string{"when command is logbook:transcript allow"}, a.transcript, true},
		)
	}
	if cfg.Search != nil {
		specs = append(specs, spec{"search", "Finds text in requests, command arguments and output: yours, or everyone's with logbook:read_history.",
			searchUsage, []string{"when command is logbook:search allow"}, a.search, true})
	}
	out := make([]dispatch.Builtin, 0, len(specs)+2)
	out = append(out, a.sourceSpecs()...)
	for _, s := range specs {
		b, err := dispatch.NewBuiltin(s.name, s.description, s.usage, s.rules, a.wrap(s.run))
		if err != nil {
			return nil, err
		}
		b.Changes = !s.readOnly
		out = append(out, b)
	}
	return out, nil
}

type admin struct{ cfg Config }

// adminCall is one invocation with what every subcommand needs.
type adminCall struct {
	dispatch.BuiltinCall
	ctx   context.Context
	facts Facts
	actor access.UserInfo
}

func (a *admin) wrap(fn func(*adminCall) (run.Result, error)) func(dispatch.BuiltinCall) (run.Result, error) {
	return func(c dispatch.BuiltinCall) (run.Result, error) {
		facts, ok := c.Facts.(Facts)
		if !ok {
			return run.Result{}, errors.New("this command needs the dispatcher's live facts")
		}
		actor, ok := facts.UserByUsername(c.Invocation.Username)
		if !ok {
			return run.Result{}, fmt.Errorf("there is no user named %s", c.Invocation.Username)
		}
		ctx := c.Ctx
		if ctx == nil {
			ctx = context.Background()
		}
		return fn(&adminCall{BuiltinCall: c, ctx: ctx, facts: facts, actor: actor})
	}
}

// subcommand picks the first argument from the choices, or explains usage.
func subcommand(c *adminCall, usage string, choices ...string) (string, []string, error) {
	if len(c.Args) == 0 || !slices.Contains(choices, c.Args[0]) {
		return "", nil, fmt.Errorf("usage: %s", usage)
	}
	return c.Args[0], c.Args[1:], nil
}

// needArgs checks the count of arguments after the subcommand.
func needArgs(args []string, n int, usage string) error {
	if len(args) != n {
		return fmt.Errorf("usage: %s", usage)
	}
	return nil
}

// stringOption reads --name=VALUE. Builtins declare no options, so
// "--name VALUE" reads as a flag followed by an argument: say how to
// write it instead of guessing which argument was meant.
func stringOption(c *adminCall, name string) (string, bool, error) {
	v, ok := c.Options[name]
	if !ok {
		return "", false, nil
	}
	switch x := v.(type) {
	case string:
		return x, true, nil
	case bool:
		return "", false, fmt.Errorf("write --%s=VALUE, with an equals sign", name)
	}
	return fmt.Sprint(v), true, nil
}

// flagOption reads a --name flag; only a plain flag (or =true) counts.
func flagOption(c *adminCall, name string) (bool, error) {
	v, ok := c.Options[name]
	if !ok {
		return false, nil
	}
	if b, isBool := v.(bool); isBool {
		return b, nil
	}
	return false, fmt.Errorf("--%s is a flag and takes no value", name)
}

// load reads a whole stream: its events decoded and its last version (-1
// when there is none, which Exact(-1) expects as "no stream").
func (a *admin) load(ctx context.Context, stream string) ([]domain.Payload, int64, error) {
	var history []domain.Payload
	version := int64(-1)
	for {
		events, err := a.cfg.Store.ReadStream(ctx, stream, version+1, 1000)
		if err != nil {
			return nil, 0, fmt.Errorf("reading %s: %w", stream, err)
		}
		for _, e := range events {
			p, err := domain.Decode(e)
			if err != nil {
				return nil, 0, fmt.Errorf("reading %s: %w", stream, err)
			}
			history = append(history, p)
			version = e.Version
		}
		if len(events) < 1000 {
			return history, version, nil
		}
	}
}

// record stages events to append at the stream version they were decided
// from, together with the run's end (dispatch.Change): a crash records
// both or neither, and a concurrent change to the stream means the command
// runs again on the new state rather than a decision made on stale history
// standing.
func (a *admin) record(c *adminCall, stream string, version int64, events ...domain.Payload) {
	c.Record(dispatch.Change{Stream: stream, Expected: eventstore.Exact(version), Events: events})
}

// decide runs an access command: decide against the stream's history and
// the live directory, then append. It reports whether anything changed.
func (a *admin) decide(c *adminCall, cmd access.Command) (bool, error) {
	history, version, err := a.load(c.ctx, cmd.Stream())
	if err != nil {
		return false, err
	}
	var events []domain.Payload
	c.facts.ReadDirectory(func(d *access.Directory) { events, err = access.Decide(history, cmd, d) })
	if err != nil || len(events) == 0 {
		return false, err
	}
	a.record(c, cmd.Stream(), version, events...)
	return true, nil
}

// decided phrases the reply to an access command.
func decided(changed bool, done, unchanged string) run.Result {
	if changed {
		return dispatch.BodyResult(done)
	}
	return dispatch.BodyResult(unchanged)
}

// newID makes up an id for something the command creates, derived from
// the run: running the command again after a crash makes the same one.
func (c *adminCall) newID(purpose string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("logbook/run/"+c.RunID+"/"+purpose)).String()
}

func (c *adminCall) userNamed(name string) (access.UserInfo, error) {
	u, ok := c.facts.UserByUsername(name)
	if !ok {
		return access.UserInfo{}, fmt.Errorf("there is no user named %s", name)
	}
	return u, nil
}

const userUsage = "user create NAME [--email=E] | link NAME PROVIDER HANDLE | unlink NAME PROVIDER | disable NAME | enable NAME | token NAME [--note=N] | list"

func (a *admin) user(c *adminCall) (run.Result, error) {
	sub, args, err := subcommand(c, userUsage, "create", "link", "unlink", "disable", "enable", "token", "list")
	if err != nil {
		return run.Result{}, err
	}
	if sub == "list" {
		return a.userList(c)
	}
	if sub == "create" {
		email, _, err := stringOption(c, "email")
		if err != nil {
			return run.Result{}, err
		}
		if err := needArgs(args, 1, "user create NAME [--email=E]"); err != nil {
			return run.Result{}, err
		}
		changed, err := a.decide(c, access.CreateUser{ID: c.newID("user"), Username: args[0], Email: email})
		return decided(changed, "Created user "+args[0]+".", "User "+args[0]+" exists already."), err
	}
	if len(args) == 0 {
		return run.Result{}, fmt.Errorf("usage: %s", userUsage)
	}
	u, err := c.userNamed(args[0])
	if err != nil {
		return run.Result{}, err
	}
	switch sub {
	case "link":
		if err := needArgs(args, 3, "user link NAME PROVIDER HANDLE"); err != nil {
			return run.Result{}, err
		}
		changed, err := a.decide(c, access.LinkChatHandle{User: u.ID, Provider: args[1], Handle: args[2]})
		return decided(changed, fmt.Sprintf("Linked %s on %s to %s.", args[2], args[1], u.Username),
			fmt.Sprintf("%s on %s was already linked to %s.", args[2], args[1], u.Username)), err
	case "unlink":
		if err := needArgs(args, 2, "user unlink NAME PROVIDER"); err != nil {
			return run.Result{}, err
		}
		changed, err := a.decide(c, access.UnlinkChatHandle{User: u.ID, Provider: args[1]})
		return decided(changed, fmt.Sprintf("Unlinked %s's %s handle.", u.Username, args[1]),
			fmt.Sprintf("%s has no %s handle.", u.Username, args[1])), err
	case "disable":
		if err := needArgs(args, 1, "user disable NAME"); err != nil {
			return run.Result{}, err
		}
		changed, err := a.decide(c, access.DisableUser{User: u.ID})
		return decided(changed, "Disabled "+u.Username+".", u.Username+" was already disabled."), err
	case "enable":
		if err := needArgs(args, 1, "user enable NAME"); err != nil {
			return run.Result{}, err
		}
		changed, err := a.decide(c, access.EnableUser{User: u.ID})
		return decided(changed, "Enabled "+u.Username+".", u.Username+" was already enabled."), err
	}
	if err := needArgs(args, 1, "user token NAME [--note=N]"); err != nil {
		return run.Result{}, err
	}
	return a.userToken(c, u)
}

// userToken issues an API token. The log keeps only its hash; the token
// itself travels in the reply alone (see Facts.KeepSecret), so the run's
// recorded output shows a placeholder.
func (a *admin) userToken(c *adminCall, u access.UserInfo) (run.Result, error) {
	if u.Disabled {
		return run.Result{}, fmt.Errorf("%s is disabled; enable the user before issuing a token", u.Username)
	}
	note, _, err := stringOption(c, "note")
	if err != nil {
		return run.Result{}, err
	}
	_, version, err := a.load(c.ctx, access.UserStream(u.ID))
	if err != nil {
		return run.Result{}, err
	}
	token, hash := access.NewToken()
	if note == "" {
		note = "issued by " + c.actor.Username
	}
	a.record(c, access.UserStream(u.ID), version, access.TokenIssued{User: u.ID, Hash: hash, Note: note})
	placeholder := c.facts.KeepSecret(c.Invocation.PipelineID, token)
	return dispatch.BodyResult(
		"API token for "+u.Username+": "+placeholder,
		"It is shown this once: Logbook records only its hash. Use it as LOGBOOK_TOKEN or an Authorization: Bearer header.",
	), nil
}

func (a *admin) userList(c *adminCall) (run.Result, error) {
	var lines []string
	c.facts.ReadDirectory(func(d *access.Directory) {
		for _, u := range d.Users() {
			line := u.Username
			if u.Email != "" {
				line += " <" + u.Email + ">"
			}
			var handles []string
			for _, h := range u.Handles {
				handles = append(handles, h.Provider+": "+h.Handle)
			}
			line += "; handles: " + orNone(handles) + "; groups: " + orNone(d.GroupsOf(u.ID))
			if u.Disabled {
				line += " (disabled)"
			}
			lines = append(lines, line)
		}
	})
	if len(lines) == 0 {
		lines = []string{"There are no users."}
	}
	return dispatch.BodyResult(lines...), nil
}

func orNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}

const groupUsage = "group create NAME | add GROUP USER | remove GROUP USER | grant GROUP ROLE | revoke GROUP ROLE | list [GROUP]"

func (a *admin) group(c *adminCall) (run.Result, error) {
	sub, args, err := subcommand(c, groupUsage, "create", "add", "remove", "grant", "revoke", "list")
	if err != nil {
		return run.Result{}, err
	}
	switch sub {
	case "create":
		if err := needArgs(args, 1, "group create NAME"); err != nil {
			return run.Result{}, err
		}
		changed, err := a.decide(c, access.CreateGroup{Name: args[0]})
		return decided(changed, "Created group "+args[0]+".", "Group "+args[0]+" exists already."), err
	case "add", "remove":
		if err := needArgs(args, 2, "group "+sub+" GROUP USER"); err != nil {
			return run.Result{}, err
		}
		u, err := c.userNamed(args[1])
		if err != nil {
			return run.Result{}, err
		}
		if sub == "add" {
			changed, err := a.decide(c, access.AddMember{Group: args[0], User: u.ID})
			return decided(changed, fmt.Sprintf("Added %s to %s.", u.Username, args[0]), fmt.Sprintf("%s was already in %s.", u.Username, args[0])), err
		}
		changed, err := a.decide(c, access.RemoveMember{Group: args[0], User: u.ID})
		return decided(changed, fmt.Sprintf("Removed %s from %s.", u.Username, args[0]), fmt.Sprintf("%s was not in %s.", u.Username, args[0])), err
	case "grant":
		if err := needArgs(args, 2, "group grant GROUP ROLE"); err != nil {
			return run.Result{}, err
		}
		changed, err := a.decide(c, access.GrantRoleToGroup{Group: args[0], Role: args[1]})
		return decided(changed, fmt.Sprintf("Granted role %s to group %s.", args[1], args[0]), fmt.Sprintf("Group %s already had role %s.", args[0], args[1])), err
	case "revoke":
		if err := needArgs(args, 2, "group revoke GROUP ROLE"); err != nil {
			return run.Result{}, err
		}
		changed, err := a.decide(c, access.RevokeRoleFromGroup{Group: args[0], Role: args[1]})
		return decided(changed, fmt.Sprintf("Revoked role %s from group %s.", args[1], args[0]), fmt.Sprintf("Group %s did not have role %s.", args[0], args[1])), err
	}
	if len(args) > 1 {
		return run.Result{}, errors.New("usage: group list [GROUP]")
	}
	var lines []string
	var missing string
	c.facts.ReadDirectory(func(d *access.Directory) {
		groups := d.Groups()
		if len(args) == 1 {
			if !d.GroupExists(args[0]) {
				missing = args[0]
				return
			}
			groups = args[:1]
		}
		for _, g := range groups {
			var members []string
			for _, id := range d.GroupMembers(g) {
				if u, ok := d.User(id); ok {
					members = append(members, u.Username)
				}
			}
			slices.Sort(members)
			lines = append(lines, fmt.Sprintf("%s: members %s; roles %s", g, orNone(members), orNone(d.GroupRoles(g))))
		}
	})
	if missing != "" {
		return run.Result{}, fmt.Errorf("there is no group named %s", missing)
	}
	if len(lines) == 0 {
		lines = []string{"There are no groups."}
	}
	return dispatch.BodyResult(lines...), nil
}

const roleUsage = "role create NAME | grant ROLE PERMISSION | revoke ROLE PERMISSION | list [ROLE]"

func (a *admin) role(c *adminCall) (run.Result, error) {
	sub, args, err := subcommand(c, roleUsage, "create", "grant", "revoke", "list")
	if err != nil {
		return run.Result{}, err
	}
	switch sub {
	case "create":
		if err := needArgs(args, 1, "role create NAME"); err != nil {
			return run.Result{}, err
		}
		changed, err := a.decide(c, access.CreateRole{Name: args[0]})
		return decided(changed, "Created role "+args[0]+".", "Role "+args[0]+" exists already."), err
	case "grant":
		if err := needArgs(args, 2, "role grant ROLE PERMISSION"); err != nil {
			return run.Result{}, err
		}
		changed, err := a.decide(c, access.GrantPermission{Role: args[0], Permission: args[1]})
		return decided(changed, fmt.Sprintf("Granted %s to role %s.", args[1], args[0]), fmt.Sprintf("Role %s already had %s.", args[0], args[1])), err
	case "revoke":
		if err := needArgs(args, 2, "role revoke ROLE PERMISSION"); err != nil {
			return run.Result{}, err
		}
		changed, err := a.decide(c, access.RevokePermission{Role: args[0], Permission: args[1]})
		return decided(changed, fmt.Sprintf("Revoked %s from role %s.", args[1], args[0]), fmt.Sprintf("Role %s did not have %s.", args[0], args[1])), err
	}
	if len(args) > 1 {
		return run.Result{}, errors.New("usage: role list [ROLE]")
	}
	var lines []string
	var missing string
	c.facts.ReadDirectory(func(d *access.Directory) {
		roles := d.Roles()
		if len(args) == 1 {
			if !d.RoleExists(args[0]) {
				missing = args[0]
				return
			}
			roles = args[:1]
		}
		for _, r := range roles {
			lines = append(lines, fmt.Sprintf("%s: %s", r, orNone(d.RolePermissions(r))))
		}
	})
	if missing != "" {
		return run.Result{}, fmt.Errorf("there is no role named %s", missing)
	}
	if len(lines) == 0 {
		lines = []string{"There are no roles."}
	}
	return dispatch.BodyResult(lines...), nil
}

func (a *admin) permission(c *adminCall) (run.Result, error) {
	sub, args, err := subcommand(c, "permission create site:NAME | list", "create", "list")
	if err != nil {
		return run.Result{}, err
	}
	if sub == "create" {
		if err := needArgs(args, 1, "permission create site:NAME"); err != nil {
			return run.Result{}, err
		}
		cmd := access.CreateSitePermission{Name: args[0]}
		changed, err := a.decide(c, cmd)
		return decided(changed, "Created permission "+cmd.Permission()+".", "Permission "+cmd.Permission()+" exists already."), err
	}
	if err := needArgs(args, 0, "permission list"); err != nil {
		return run.Result{}, err
	}
	var perms []string
	c.facts.ReadDirectory(func(d *access.Directory) { perms = d.Permissions() })
	if len(perms) == 0 {
		perms = []string{"There are no permissions."}
	}
	return dispatch.BodyResult(perms...), nil
}

const bundleUsage = "bundle install IMAGE[:TAG] | install 'CONFIG' | install --base64=CONFIG | install NAME VERSION | upgrade NAME [--to=TAG] | uninstall NAME | search REGISTRY[/PREFIX] | enable NAME VERSION | disable NAME | assign NAME GROUP | unassign NAME | list"

func (a *admin) bundle(c *adminCall) (run.Result, error) {
	sub, args, err := subcommand(c, bundleUsage, "install", "upgrade", "uninstall", "search", "enable", "disable", "assign", "unassign", "list")
	if err != nil {
		return run.Result{}, err
	}
	switch sub {
	case "install":
		return a.bundleInstall(c, args)
	case "upgrade":
		if err := needArgs(args, 1, "bundle upgrade NAME [--to=TAG]"); err != nil {
			return run.Result{}, err
		}
		return a.bundleUpgrade(c, args[0])
	case "uninstall":
		if err := needArgs(args, 1, "bundle uninstall NAME"); err != nil {
			return run.Result{}, err
		}
		return a.bundleUninstall(c, args[0])
	case "search":
		if err := needArgs(args, 1, "bundle search REGISTRY[/PREFIX]"); err != nil {
			return run.Result{}, err
		}
		return a.bundleSearch(c, args[0])
	case "enable":
		if err := needArgs(args, 2, "bundle enable NAME VERSION"); err != nil {
			return run.Result{}, err
		}
		return a.bundleEnable(c, args[0], args[1])
	case "disable":
		if err := needArgs(args, 1, "bundle disable NAME"); err != nil {
			return run.Result{}, err
		}
		return a.bundleDisable(c, args[0])
	case "assign":
		if err := needArgs(args, 2, "bundle assign NAME GROUP"); err != nil {
			return run.Result{}, err
		}
		return a.bundleAssign(c, args[0], args[1])
	case "unassign":
		if err := needArgs(args, 1, "bundle unassign NAME"); err != nil {
			return run.Result{}, err
		}
		return a.bundleAssign(c, args[0], "")
	}
	if err := needArgs(args, 0, "bundle list"); err != nil {
		return run.Result{}, err
	}
	var lines []string
	for _, b := range c.facts.InstalledBundles() {
		state := "disabled"
		if b.Enabled != "" {
			state = "enabled " + b.Enabled
		}
		lines = append(lines, fmt.Sprintf("%s: %s; installed %s; relay group %s", b.Name, state, strings.Join(b.Versions, ", "), cmp.Or(b.Group, bundle.DefaultRelayGroup)))
	}
	if len(lines) == 0 {
		lines = []string{"No bundles are installed."}
	}
	return dispatch.BodyResult(lines...), nil
}

// bundleInstall installs a config given inline (or base64, which survives
// any quoting), or enables a version already installed when given NAME
// VERSION. An installed version is immutable: the same version with a
// different config is refused, so what ran under a version stays knowable.
func (a *admin) bundleInstall(c *adminCall, args []string) (run.Result, error) {
	encoded, isEncoded, err := stringOption(c, "base64")
	if err != nil {
		return run.Result{}, err
	}
	var config []byte
	switch {
	case isEncoded && len(args) == 0:
		config, err = base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
		if err != nil {
			return run.Result{}, fmt.Errorf("--base64 is not standard base64: %v", err)
		}
	case !isEncoded && len(args) == 1 && looksLikeImage(args[0]):
		return a.installImage(c, args[0])
	case !isEncoded && len(args) == 1:
		config = []byte(args[0])
	case !isEncoded && len(args) == 2:
		if _, ok := c.facts.InstalledConfig(args[0], args[1]); !ok {
			return run.Result{}, fmt.Errorf("version %s of bundle %s is not installed; install its config first", args[1], args[0])
		}
		return a.bundleEnable(c, args[0], args[1])
	default:
		return run.Result{}, fmt.Errorf("usage: %s", bundleUsage)
	}
	b, err := a.loadBundle(c, config, "the bundle config")
	if err != nil {
		return run.Result{}, err
	}
	if old, ok := c.facts.InstalledConfig(b.Name, b.Version); ok {
		if old != string(config) {
			return run.Result{}, fmt.Errorf("version %s of bundle %s is installed already with a different config; give the new config a new version", b.Version, b.Name)
		}
		return a.bundleEnable(c, b.Name, b.Version)
	}
	pinned, pulled := a.ensureImage(c, b)
	a.recordInstall(c, b, config, pinned)
	lines := []string{fmt.Sprintf("Installed and enabled bundle %s %s (%d commands).", b.Name, b.Version, len(b.Commands()))}
	return dispatch.BodyResult(append(append(lines, pulled...), installNotes(c, b)...)...), nil
}

func (a *admin) bundleEnable(c *adminCall, name, version string) (run.Result, error) {
	if _, ok := c.facts.InstalledConfig(name, version); !ok {
		return run.Result{}, fmt.Errorf("version %s of bundle %s is not installed", version, name)
	}
	for _, b := range c.facts.InstalledBundles() {
		if b.Name == name && b.Enabled == version {
			return dispatch.BodyResult(fmt.Sprintf("Bundle %s %s was already enabled.", name, version)), nil
		}
	}
	_, v, err := a.load(c.ctx, bundle.Stream(name))
	if err != nil {
		return run.Result{}, err
	}
	a.record(c, bundle.Stream(name), v, bundle.BundleEnabled{Name: name, Version: version})
	return dispatch.BodyResult(fmt.Sprintf("Enabled bundle %s %s.", name, version)), nil
}

func (a *admin) bundleDisable(c *adminCall, name string) (run.Result, error) {
	var found *dispatch.BundleVersions
	for _, b := range c.facts.InstalledBundles() {
		if b.Name == name {
			found = &b
		}
	}
	if found == nil {
		return run.Result{}, fmt.Errorf("no bundle named %s is installed", name)
	}
	if found.Enabled == "" {
		return dispatch.BodyResult("Bundle " + name + " was already disabled."), nil
	}
	_, v, err := a.load(c.ctx, bundle.Stream(name))
	if err != nil {
		return run.Result{}, err
	}
	a.record(c, bundle.Stream(name), v, bundle.BundleDisabled{Name: name})
	return dispatch.BodyResult("Disabled bundle " + name + "; its commands no longer run."), nil
}

// bundleAssign sends a bundle's runs to group, or to the default group
// again when group is "" (unassign).
func (a *admin) bundleAssign(c *adminCall, name, group string) (run.Result, error) {
	var found *dispatch.BundleVersions
	for _, b := range c.facts.InstalledBundles() {
		if b.Name == name {
			found = &b
		}
	}
	if found == nil {
		return run.Result{}, fmt.Errorf("no bundle named %s is installed", name)
	}
	if group != "" {
		if err := bundle.ValidateRelayGroup(group); err != nil {
			return run.Result{}, err
		}
	}
	if group == bundle.DefaultRelayGroup {
		group = ""
	}
	if found.Group == group {
		return dispatch.BodyResult(fmt.Sprintf("Bundle %s already runs in relay group %s.", name, cmp.Or(group, bundle.DefaultRelayGroup))), nil
	}
	_, v, err := a.load(c.ctx, bundle.Stream(name))
	if err != nil {
		return run.Result{}, err
	}
	if group == "" {
		a.record(c, bundle.Stream(name), v, bundle.BundleUnassigned{Name: name, Group: found.Group})
		return dispatch.BodyResult(fmt.Sprintf("Bundle %s left relay group %s; its commands run in relay group %s.", name, found.Group, bundle.DefaultRelayGroup)), nil
	}
	a.record(c, bundle.Stream(name), v, bundle.BundleAssigned{Name: name, Group: group})
	return dispatch.BodyResult(fmt.Sprintf("Bundle %s's commands run in relay group %s.", name, group)), nil
}

const aliasUsage = "alias create [--site] NAME 'PIPELINE' | delete [--site] NAME | list"

func (a *admin) alias(c *adminCall) (run.Result, error) {
	sub, args, err := subcommand(c, aliasUsage, "create", "delete", "list")
	if err != nil {
		return run.Result{}, err
	}
	site, err := flagOption(c, "site")
	if err != nil {
		return run.Result{}, err
	}
	owner, whose := c.actor.ID, "your"
	if site {
		owner, whose = dispatch.SiteAliasOwner, "the site"
	}
	switch sub {
	case "create":
		if err := needArgs(args, 2, "alias create [--site] NAME 'PIPELINE'"); err != nil {
			return run.Result{}, err
		}
		name, text := args[0], strings.TrimSpace(args[1])
		if err := dispatch.ValidateAliasName(name); err != nil {
			return run.Result{}, err
		}
		if _, isBuiltin := c.facts.Builtins()[name]; isBuiltin {
			return run.Result{}, fmt.Errorf("%s is a builtin command; an alias of that name would hide it", name)
		}
		if text == "" {
			return run.Result{}, errors.New("the alias's pipeline is empty")
		}
		if _, err := pipeline.Parse(text); err != nil {
			return run.Result{}, fmt.Errorf("the alias's pipeline does not parse: %v", err)
		}
		if old, exists := c.facts.AliasesOf(owner)[name]; exists {
			return run.Result{}, fmt.Errorf("%s alias %s exists already (%s); delete it first", whose, name, old)
		}
		_, v, err := a.load(c.ctx, dispatch.AliasStream(owner))
		if err != nil {
			return run.Result{}, err
		}
		a.record(c, dispatch.AliasStream(owner), v, dispatch.AliasCreated{Owner: owner, Name: name, Pipeline: text})
		return dispatch.BodyResult(fmt.Sprintf("Created %s alias %s: %s", whose, name, text)), nil
	case "delete":
		if err := needArgs(args, 1, "alias delete [--site] NAME"); err != nil {
			return run.Result{}, err
		}
		if _, exists := c.facts.AliasesOf(owner)[args[0]]; !exists {
			return run.Result{}, fmt.Errorf("%s alias %s does not exist", whose, args[0])
		}
		_, v, err := a.load(c.ctx, dispatch.AliasStream(owner))
		if err != nil {
			return run.Result{}, err
		}
		a.record(c, dispatch.AliasStream(owner), v, dispatch.AliasDeleted{Owner: owner, Name: args[0]})
		return dispatch.BodyResult(fmt.Sprintf("Deleted %s alias %s.", whose, args[0])), nil
	}
	if err := needArgs(args, 0, "alias list"); err != nil {
		return run.Result{}, err
	}
	var lines []string
	for _, scope := range []struct{ owner, label string }{{c.actor.ID, "yours"}, {dispatch.SiteAliasOwner, "site"}} {
		aliases := c.facts.AliasesOf(scope.owner)
		names := make([]string, 0, len(aliases))
		for name := range aliases {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			lines = append(lines, fmt.Sprintf("%s (%s): %s", name, scope.label, aliases[name]))
		}
	}
	if len(lines) == 0 {
		lines = []string{"There are no aliases."}
	}
	return dispatch.BodyResult(lines...), nil
}

// historyReader is the caller as the history rule (access.HistoryReader)
// sees them.
func (c *adminCall) historyReader() access.HistoryReader {
	return access.HistoryReader{Username: c.actor.Username, Permissions: c.facts.PermissionsOf(c.actor.ID)}
}

// DefaultHistoryLimit is how many requests history lists without --limit.
const DefaultHistoryLimit = 10

func (a *admin) history(c *adminCall) (run.Result, error) {
	if len(c.Args) > 0 {
		return run.Result{}, errors.New("usage: history [--user=USER] [--limit=N]")
	}
	username, given, err := stringOption(c, "user")
	if err != nil {
		return run.Result{}, err
	}
	if !given {
		username = c.actor.Username
	}
	if _, err := c.historyReader().ListFilter(username); err != nil {
		return run.Result{}, err
	}
	limit := DefaultHistoryLimit
	if raw, ok := c.Options["limit"]; ok {
		n, err := strconv.Atoi(fmt.Sprint(raw))
		if err != nil || n < 1 || n > 100 {
			return run.Result{}, errors.New("--limit=N takes a number from 1 to 100")
		}
		limit = n
	}
	page, err := a.cfg.History.Requests(c.ctx, projections.RequestFilter{Username: username, Limit: limit})
	if err != nil {
		return run.Result{}, fmt.Errorf("reading the history: %v", err)
	}
	if len(page.Requests) == 0 {
		return dispatch.BodyResult(fmt.Sprintf("%s has no requests in the history yet.", username)), nil
	}
	lines := []string{fmt.Sprintf("The last %d requests of %s, newest first:", len(page.Requests), username)}
	for _, r := range page.Requests {
		received, _, duration := r.Times()
		line := fmt.Sprintf("%s  %s  %-9s %s", received.UTC().Format(time.DateTime), r.RequestID, r.Status, r.Text)
		if r.EndedAt.Valid {
			line += fmt.Sprintf("  (%s)", duration.Round(time.Millisecond))
		}
		if r.Reason != "" {
			line += "  " + r.Reason
		}
		lines = append(lines, line)
	}
	return dispatch.BodyResult(lines...), nil
}

func (a *admin) transcript(c *adminCall) (run.Result, error) {
	if len(c.Args) != 1 {
		return run.Result{}, errors.New("usage: transcript RUN_ID")
	}
	runID := c.Args[0]
	row, err := a.cfg.History.Run(c.ctx, runID)
	// Another user's run is answered as one that does not exist, as on
	// every surface: a run id tells nothing of whose it is.
	if errors.Is(err, projections.ErrNotFound) || err == nil && !c.historyReader().MayRead(row.Username) {
		return run.Result{}, fmt.Errorf("there is no run %s in the history", runID)
	}
	if err != nil {
		return run.Result{}, fmt.Errorf("reading the history: %v", err)
	}
	out, err := a.cfg.Transcripts.Output(c.ctx, runID, "")
	if err != nil {
		return run.Result{}, fmt.Errorf("reading the transcript: %v", err)
	}
	lines := []string{fmt.Sprintf("Run %s (%s, %s):", runID, row.Command, row.Status)}
	if len(out) == 0 {
		return dispatch.BodyResult(append(lines, "(no output)")...), nil
	}
	shown := out[:min(len(out), MaxTranscriptReplyBytes)]
	text := strings.ToValidUTF8(strings.TrimRight(string(shown), "\n"), "\uFFFD")
	lines = append(lines, strings.Split(text, "\n")...)
	if len(shown) < len(out) {
		lines = append(lines, fmt.Sprintf("[%d more bytes: run `logbook transcript %s` for all of it]", len(out)-len(shown), runID))
	}
	return dispatch.BodyResult(lines...), nil
}
