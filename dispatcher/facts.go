// Package dispatcher runs the process manager of domain/dispatch: it reads
// the ordered feed, keeps the facts deciding needs (users, permissions,
// bundles, previous requests, tokens) current from the same feed, decides
// each request's next step, appends the decisions, runs builtins in-process,
// publishes the other runs to the executors, and hands replies to the chat
// adapters. Because it folds access changes from the feed in order, a grant
// appended before a request is in force when that request is decided.
package dispatcher

import (
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/bundleconfig"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/pipeline"
	"github.com/logbookhq/logbook/domain/run"
)

// AdminPermissions are the logbook:* permissions, declared by the builtin
// bundle and granted to the bootstrap admin role.
var AdminPermissions = dispatch.BuiltinPermissions

// directAdapters are the providers whose requests come with an
// authenticated Logbook username instead of a chat handle.
var directAdapters = dispatch.AuthenticatedAdapters

// Facts is the dispatcher's live model of the world, folded from the feed.
// Decisions read it while the loop holds no other reference; HTTP handlers
// read it under the lock (Tokens, Directory snapshot calls).
type Facts struct {
	mu        sync.RWMutex
	dir       *access.Directory
	tokens    access.Tokens
	bundles   map[string]*installed
	previous  map[string]string // user id → text of their last request
	builtins  dispatch.Builtins
	settings  dispatch.Settings
	canPost   func(adapter string, to dispatch.Destination) bool
	requestBy map[string]string // request id → user id, for "!!"
	texts     map[string]string // request id → received text, for "!!"
	aliases   dispatch.Aliases
	config    bundleconfig.Values // every bundle's configuration layers
	// secrets holds what a builtin shows once and the log must never hold
	// (a new API token): request id → placeholder → secret. The recorded
	// output carries the placeholder; the reply posted carries the secret.
	secrets map[string]map[string]string
	// approvals are the requests waiting for approval, by id.
	approvals map[string]dispatch.Approval
	// usage is what quotas count: runs in flight, recent requests.
	usage usage
}

type installed struct {
	versions map[string]*bundle.Bundle
	configs  map[string]string // version → the config text as installed
	images   map[string]string // version → the pinned image, when the install pulled one
	enabled  string            // "" when disabled
	group    string            // the relay group its runs go to, "" for the default
}

// postableWithoutChat is where the bot can post while no chat provider is
// connected: a reply to an api or web request goes back to its caller
// ("here", "me"), and there is no room to redirect it to.
func postableWithoutChat(adapter string, to dispatch.Destination) bool {
	return directAdapters[adapter] && to.Kind == pipeline.DestinationUser
}

// NewFacts starts an empty model. canPost says where the bot may post (nil:
// only back to the caller of an api or web request).
func NewFacts(builtins dispatch.Builtins, settings dispatch.Settings, canPost func(string, dispatch.Destination) bool) *Facts {
	dir := dispatch.NewDirectory()
	if canPost == nil {
		canPost = postableWithoutChat
	}
	return &Facts{
		dir: dir, tokens: access.Tokens{}, bundles: map[string]*installed{},
		previous: map[string]string{}, builtins: builtins, settings: settings,
		canPost: canPost, requestBy: map[string]string{}, texts: map[string]string{},
		aliases: dispatch.Aliases{}, secrets: map[string]map[string]string{}, config: bundleconfig.Values{},
		approvals: map[string]dispatch.Approval{}, usage: newUsage(),
	}
}

// Apply folds one recorded event into the model.
func (f *Facts) Apply(p domain.Payload, e domain.RecordedEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dispatch.FoldAccess(f.dir, p)
	f.tokens.Apply(p)
	f.aliases.Apply(p)
	switch {
	case strings.HasPrefix(e.Stream, dispatch.StreamPrefix):
		f.applyApproval(requestIDOf(e), p)
	case strings.HasPrefix(e.Stream, run.StreamPrefix):
		at := e.RecordedAt
		if at.IsZero() {
			at = time.Now().UTC()
		}
		f.usage.apply(strings.TrimPrefix(e.Stream, run.StreamPrefix), p, at)
	}
	f.config.Apply(p)
	switch ev := p.(type) {
	case bundle.BundleInstalled:
		b, err := bundle.Load([]byte(ev.Config))
		if err != nil {
			return // validated before it was installed; a config a later build rejects stays out
		}
		in := f.bundles[ev.Name]
		if in == nil {
			in = &installed{versions: map[string]*bundle.Bundle{}, configs: map[string]string{}, images: map[string]string{}}
			f.bundles[ev.Name] = in
		}
		in.versions[ev.Version] = b
		in.configs[ev.Version] = ev.Config
		in.images[ev.Version] = ev.Image
	case bundle.BundleEnabled:
		if in := f.bundles[ev.Name]; in != nil && in.versions[ev.Version] != nil {
			in.enabled = ev.Version
		}
	case bundle.BundleDisabled:
		if in := f.bundles[ev.Name]; in != nil {
			in.enabled = ""
		}
	case bundle.BundleUninstalled:
		delete(f.bundles, ev.Name)
	case bundle.BundleAssigned:
		if in := f.bundles[ev.Name]; in != nil {
			in.group = ev.Group
		}
	case bundle.BundleUnassigned:
		if in := f.bundles[ev.Name]; in != nil {
			in.group = ""
		}
	case dispatch.RequestReceived:
		f.texts[requestIDOf(e)] = ev.Text
	case dispatch.IdentityResolved:
		f.requestBy[requestIDOf(e)] = ev.User
	case dispatch.PipelineParsed:
		// What "!!" repeats: the text as typed, or what a rerun ran.
		id := requestIDOf(e)
		if user := f.requestBy[id]; user != "" {
			text := f.texts[id]
			if ev.Rerun {
				text = ev.Expanded
			}
			f.previous[user] = text
		}
		delete(f.texts, id)
		delete(f.requestBy, id)
	case dispatch.PipelineRejected, dispatch.IdentityUnknown:
		delete(f.texts, requestIDOf(e))
		delete(f.requestBy, requestIDOf(e))
	}
}

// ApplyRecorded folds changes the dispatcher or a builtin run just
// recorded, before the feed delivers them, so the next decisions and
// builtins read their own writes: a second request from an unknown handle
// decided before the feed brought the first one's registration finds the
// user instead of registering another, and a second "user create bob"
// finds bob taken. The feed's delivery applies them again, in log order,
// which leaves the same model (the events are facts about names,
// memberships and grants that applying twice does not change).
func (f *Facts) ApplyRecorded(changes []dispatch.Change) {
	for _, c := range changes {
		for _, p := range c.Events {
			f.Apply(p, domain.RecordedEvent{Stream: c.Stream})
		}
	}
}

func requestIDOf(e domain.RecordedEvent) string {
	return e.Stream[len(dispatch.StreamPrefix):]
}

// UserForToken resolves an API token to the user's id and name.
func (f *Facts) UserForToken(token string) (access.UserInfo, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	id, ok := f.tokens.User(token)
	if !ok {
		return access.UserInfo{}, false
	}
	u, ok := f.dir.User(id)
	if !ok || u.Disabled {
		return access.UserInfo{}, false
	}
	return u, true
}

// HasUsers reports whether any user exists (bootstrap runs once).
func (f *Facts) HasUsers() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.dir.Users()) > 0
}

// BundleInstalled reports whether a bundle of that name is installed.
func (f *Facts) BundleInstalled(name string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.bundles[name] != nil
}

// facts for deciding: every method below implements dispatch.Facts and is
// called from the dispatcher's loop, which is also the only writer.

// UserByHandle implements dispatch.Facts. The api and web providers carry
// the authenticated username as the handle.
func (f *Facts) UserByHandle(provider, handle string) (access.UserInfo, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if directAdapters[provider] {
		return f.dir.UserByUsername(handle)
	}
	return f.dir.UserByHandle(provider, handle)
}

// UserByUsername implements dispatch.Facts.
func (f *Facts) UserByUsername(username string) (access.UserInfo, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.dir.UserByUsername(username)
}

// PermissionsOf implements dispatch.Facts.
func (f *Facts) PermissionsOf(user string) []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.dir.PermissionsOf(user)
}

// GroupPermissions implements dispatch.Facts.
func (f *Facts) GroupPermissions(group string) ([]string, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return dispatch.GroupPermissions(f.dir, group)
}

// GroupsOf implements dispatch.Facts.
func (f *Facts) GroupsOf(user string) []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.dir.GroupsOf(user)
}

// Bundles implements dispatch.Facts: each installed bundle at its enabled
// version, or its newest version when disabled.
func (f *Facts) Bundles() []dispatch.InstalledBundle {
	f.mu.RLock()
	defer f.mu.RUnlock()
	names := make([]string, 0, len(f.bundles))
	for name := range f.bundles {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]dispatch.InstalledBundle, 0, len(names))
	for _, name := range names {
		in := f.bundles[name]
		version := in.enabled
		if version == "" {
			versions := make([]string, 0, len(in.versions))
			for v := range in.versions {
				versions = append(versions, v)
			}
			slices.Sort(versions)
			version = versions[len(versions)-1]
		}
		out = append(out, dispatch.InstalledBundle{Bundle: in.versions[version], Enabled: in.enabled != "", Image: in.images[version], Group: in.group})
	}
	return out
}

// BundleVersion implements dispatch.TemplateSource: one installed version
// of a bundle, or the enabled one when version is empty.
func (f *Facts) BundleVersion(name, version string) (*bundle.Bundle, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	in := f.bundles[name]
	if in == nil {
		return nil, false
	}
	if version == "" {
		version = in.enabled
	}
	b, ok := in.versions[version]
	return b, ok
}

// UserAlias implements dispatch.Facts.
func (f *Facts) UserAlias(user, name string) (string, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.aliases.Lookup(user, name)
}

// SiteAlias implements dispatch.Facts.
func (f *Facts) SiteAlias(name string) (string, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.aliases.Lookup(dispatch.SiteAliasOwner, name)
}

// CanPost implements dispatch.Facts.
func (f *Facts) CanPost(adapter string, to dispatch.Destination) bool { return f.canPost(adapter, to) }

// PreviousRequest implements dispatch.Facts.
func (f *Facts) PreviousRequest(user, _ string) (string, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	text, ok := f.previous[user]
	return text, ok
}

// Builtins implements dispatch.Facts.
func (f *Facts) Builtins() dispatch.Builtins { return f.builtins }

// BundleConfig implements dispatch.Facts.
func (f *Facts) BundleConfig(bundle string, scope bundleconfig.Scope) []bundleconfig.Entry {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.config.Resolve(bundle, scope)
}

// Settings implements dispatch.Facts.
func (f *Facts) Settings() dispatch.Settings { return f.settings }

var _ dispatch.Facts = (*Facts)(nil)
