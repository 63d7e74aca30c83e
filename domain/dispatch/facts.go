package dispatch

import (
	"slices"
	"strings"
	"time"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/bundleconfig"
	"github.com/logbookhq/logbook/domain/run"
)

// Facts is what deciding needs to know beyond the request's own events. The
// runner answers from its views; StaticFacts answers from plain data.
// Answers must not change while one trigger is decided.
type Facts interface {
	// UserByHandle resolves a chat identity (access.Directory has it).
	UserByHandle(provider, handle string) (access.UserInfo, bool)
	// UserByUsername finds a user by name (for whoami).
	UserByUsername(username string) (access.UserInfo, bool)
	// PermissionsOf lists the permissions a user holds through roles.
	PermissionsOf(user string) []string
	// GroupsOf lists the groups a user belongs to.
	GroupsOf(user string) []string
	// GroupPermissions lists what membership of a group grants; ok is
	// false when there is no such group (see GroupPermissions).
	GroupPermissions(group string) ([]string, bool)
	// Bundles lists the installed bundles, enabled or not, with their
	// enabled version's config.
	Bundles() []InstalledBundle
	// UserAlias and SiteAlias map an alias name to pipeline text. A user's
	// own alias wins over a site alias of the same name.
	UserAlias(user, name string) (string, bool)
	SiteAlias(name string) (string, bool)
	// CanPost reports whether the bot may post to a destination on the
	// adapter (a room it has joined, a user it can message).
	CanPost(adapter string, to Destination) bool
	// PreviousRequest is the text of the user's last request before
	// request (its pipeline as parsed, alias expansion included), for "!!".
	PreviousRequest(user, request string) (string, bool)
	// Builtins are the commands that run in-process.
	Builtins() Builtins
	// Settings are the limits and defaults.
	Settings() Settings
	// Now is when the trigger being decided happened (its recorded time,
	// or the runner's clock for a trigger it makes): Decide reads the time
	// only through it, so deciding a recorded trigger again reads the same
	// time.
	Now() time.Time
	// Holders lists, sorted, the usernames of the enabled users who hold
	// permission.
	Holders(permission string) []string
	// Usage says how much of a bundle is in use: its runs in flight (all,
	// the user's, the room's; users by username, rooms by name) and the
	// requests the user started with it since a time.
	Usage(bundle, username, room string, since time.Time) Usage
	// PendingApprovals lists the requests waiting for approval, for the
	// approve and reject builtins.
	PendingApprovals() []Approval
	// BundleConfig is a bundle's configuration resolved for a scope: for
	// each key, the entry of the last layer that sets it.
	BundleConfig(bundle string, scope bundleconfig.Scope) []bundleconfig.Entry
}

// InstalledBundle is one installed bundle and whether it is enabled.
type InstalledBundle struct {
	Bundle  *bundle.Bundle
	Enabled bool
	// Image pins the bundle's image to what was installed
	// (repository@sha256:...), when the install recorded a digest; its
	// runs use it instead of the config's tag.
	Image string
	// Group is the relay group its runs go to ("" is the default).
	Group string
}

// RunImage is the image a run of b uses: the pinned one, else the
// config's.
func (b InstalledBundle) RunImage() string {
	if b.Image != "" {
		return b.Image
	}
	return b.Bundle.Image()
}

// BundleVersions describes one installed bundle: its versions and the one
// enabled.
type BundleVersions struct {
	Name     string
	Versions []string // sorted
	Enabled  string   // "" when disabled
	Group    string   // its relay group, "" when assigned to none
}

// Settings are the dispatcher's limits and defaults.
type Settings struct {
	// MaxRequestBytes bounds the text of a request; 0 means 16 KiB.
	MaxRequestBytes int
	// RequestTimeout is how long a request may run before the runner sends
	// the RequestTimedOut trigger; 0 means five minutes. Decide does not
	// read it (it has no clock); the runner does.
	RequestTimeout time.Duration
	// DefaultLimits fill what neither the command nor its bundle sets.
	DefaultLimits run.Limits
	// MaxPids caps every run's pids limit, whatever its bundle asks; 0
	// means run.DefaultMaxPids.
	MaxPids int64
	// SelfRegister lets an unknown chat user in: the request creates a
	// Logbook user for the handle (UserRegistered) and goes on as that
	// user, who holds no permissions but what SelfRegisterGroup grants.
	// Off, the reply says how to get access.
	SelfRegister      bool
	SelfRegisterGroup string
	// ApprovalTTL is how long a request waits for its approvals; 0 means
	// DefaultApprovalTTL (LOGBOOK_APPROVAL_TTL).
	ApprovalTTL time.Duration
	// Quotas are the site's quotas over what bundles declare
	// (LOGBOOK_QUOTAS).
	Quotas bundle.QuotaOverrides
}

// ApprovalWait is ApprovalTTL with its default applied.
func (s Settings) ApprovalWait() time.Duration {
	if s.ApprovalTTL > 0 {
		return s.ApprovalTTL
	}
	return DefaultApprovalTTL
}

// DefaultMaxRequestBytes is the request size limit when Settings leaves it
// zero: 16 KiB, the pipeline language's own limit.
const DefaultMaxRequestBytes = 16 << 10

// DefaultRequestTimeout is the per-request deadline when Settings leaves it
// zero.
const DefaultRequestTimeout = 5 * time.Minute

func (s Settings) maxPids() int64 {
	if s.MaxPids <= 0 {
		return run.DefaultMaxPids
	}
	return s.MaxPids
}

func (s Settings) maxRequestBytes() int {
	if s.MaxRequestBytes > 0 {
		return s.MaxRequestBytes
	}
	return DefaultMaxRequestBytes
}

// Timeout is RequestTimeout with its default applied.
func (s Settings) Timeout() time.Duration {
	if s.RequestTimeout > 0 {
		return s.RequestTimeout
	}
	return DefaultRequestTimeout
}

// StaticFacts answers Facts from plain data: for tests, and for a runner
// that rebuilds it from its views before each decision.
type StaticFacts struct {
	Directory *access.Directory
	Installed []InstalledBundle
	// UserAliases is keyed by user id, then alias name.
	UserAliases map[string]map[string]string
	SiteAliases map[string]string
	// Unpostable lists destinations the bot cannot post to, as
	// "adapter kind name" ("slack room secret"); everything else is
	// postable.
	Unpostable []string
	// Previous is each user's previous request text, by user id.
	Previous map[string]string
	// BuiltinSet is the builtin registry; nil means DefaultBuiltins().
	BuiltinSet Builtins
	Config     Settings
	// Clock is what Now answers.
	Clock time.Time
	// Usages is each bundle's usage, by bundle name, whoever asks.
	Usages map[string]Usage
	// Pending are the requests waiting for approval.
	Pending []Approval
	// Values is every bundle's configuration.
	Values bundleconfig.Values
}

var _ Facts = (*StaticFacts)(nil)

// UserByHandle implements Facts.
func (f *StaticFacts) UserByHandle(provider, handle string) (access.UserInfo, bool) {
	if f.Directory == nil {
		return access.UserInfo{}, false
	}
	return f.Directory.UserByHandle(provider, handle)
}

// UserByUsername implements Facts.
func (f *StaticFacts) UserByUsername(username string) (access.UserInfo, bool) {
	if f.Directory == nil {
		return access.UserInfo{}, false
	}
	return f.Directory.UserByUsername(username)
}

// PermissionsOf implements Facts.
func (f *StaticFacts) PermissionsOf(user string) []string {
	if f.Directory == nil {
		return nil
	}
	return f.Directory.PermissionsOf(user)
}

// GroupsOf implements Facts.
func (f *StaticFacts) GroupsOf(user string) []string {
	if f.Directory == nil {
		return nil
	}
	return f.Directory.GroupsOf(user)
}

// GroupPermissions implements Facts.
func (f *StaticFacts) GroupPermissions(group string) ([]string, bool) {
	if f.Directory == nil {
		return nil, false
	}
	return GroupPermissions(f.Directory, group)
}

// Bundles implements Facts.
func (f *StaticFacts) Bundles() []InstalledBundle { return slices.Clone(f.Installed) }

// UserAlias implements Facts.
func (f *StaticFacts) UserAlias(user, name string) (string, bool) {
	text, ok := f.UserAliases[user][name]
	return text, ok
}

// SiteAlias implements Facts.
func (f *StaticFacts) SiteAlias(name string) (string, bool) {
	text, ok := f.SiteAliases[name]
	return text, ok
}

// CanPost implements Facts.
func (f *StaticFacts) CanPost(adapter string, to Destination) bool {
	key := strings.Join([]string{adapter, string(to.Kind), to.Name}, " ")
	return !slices.Contains(f.Unpostable, key)
}

// PreviousRequest implements Facts.
func (f *StaticFacts) PreviousRequest(user, _ string) (string, bool) {
	text, ok := f.Previous[user]
	return text, ok
}

// Builtins implements Facts.
func (f *StaticFacts) Builtins() Builtins {
	if f.BuiltinSet == nil {
		return DefaultBuiltins()
	}
	return f.BuiltinSet
}

// Settings implements Facts.
func (f *StaticFacts) Settings() Settings { return f.Config }

// Now implements Facts.
func (f *StaticFacts) Now() time.Time { return f.Clock }

// Holders implements Facts.
func (f *StaticFacts) Holders(permission string) []string {
	if f.Directory == nil {
		return nil
	}
	return Holders(f.Directory, permission)
}

// Usage implements Facts.
func (f *StaticFacts) Usage(bundle, _, _ string, _ time.Time) Usage { return f.Usages[bundle] }

// PendingApprovals implements Facts.
func (f *StaticFacts) PendingApprovals() []Approval { return slices.Clone(f.Pending) }

// Holders lists, sorted, the usernames of the directory's enabled users
// who hold permission.
func Holders(dir *access.Directory, permission string) []string {
	var out []string
	for _, u := range dir.Users() {
		if !u.Disabled && dir.HasPermission(u.ID, permission) {
			out = append(out, u.Username)
		}
	}
	slices.Sort(out)
	return out
}

// BundleConfig implements Facts.
func (f *StaticFacts) BundleConfig(bundle string, scope bundleconfig.Scope) []bundleconfig.Entry {
	return f.Values.Resolve(bundle, scope)
}
