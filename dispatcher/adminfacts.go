package dispatcher

import (
	"maps"
	"regexp"
	"slices"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/bundleconfig"
	"github.com/logbookhq/logbook/domain/dispatch"
)

// What the administration builtins read of the live model (admin.Facts).

// ReadDirectory calls fn with the live access directory, for the access
// deciders' cross-aggregate checks. fn must not keep it.
func (f *Facts) ReadDirectory(fn func(*access.Directory)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.dir)
}

// AliasesOf lists owner's aliases (a user id or dispatch.SiteAliasOwner).
func (f *Facts) AliasesOf(owner string) map[string]string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return maps.Clone(f.aliases[owner])
}

// InstalledBundles lists the installed bundles by name.
func (f *Facts) InstalledBundles() []dispatch.BundleVersions {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]dispatch.BundleVersions, 0, len(f.bundles))
	for _, name := range slices.Sorted(maps.Keys(f.bundles)) {
		in := f.bundles[name]
		out = append(out, dispatch.BundleVersions{Name: name, Versions: slices.Sorted(maps.Keys(in.versions)), Enabled: in.enabled, Group: in.group})
	}
	return out
}

// InstalledConfig is the config text of an installed bundle version.
func (f *Facts) InstalledConfig(name, version string) (string, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	in := f.bundles[name]
	if in == nil {
		return "", false
	}
	config, ok := in.configs[version]
	return config, ok
}

// ConfigEntries lists every layer's configuration of a bundle.
func (f *Facts) ConfigEntries(bundle string) []bundleconfig.Entry {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.config.Entries(bundle)
}

// secretPattern finds the placeholders KeepSecret hands out.
var secretPattern = regexp.MustCompile(`\[secret:[0-9a-f-]{36}\]`)

// lostSecret replaces a placeholder whose secret this process does not
// hold: the reply is posted after a restart, and the secret was never
// written anywhere.
const lostSecret = "[not shown: Logbook restarted before replying, and the secret was never recorded; issue a new one]"

// KeepSecret holds secret for the reply to requestID and returns the
// placeholder to put in the recorded output instead.
func (f *Facts) KeepSecret(requestID, secret string) string {
	placeholder := "[secret:" + uuid.NewString() + "]"
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.secrets[requestID] == nil {
		f.secrets[requestID] = map[string]string{}
	}
	f.secrets[requestID][placeholder] = secret
	return placeholder
}

// revealSecrets puts the secrets kept for requestID into the reply about
// to be posted, and forgets them: a secret is shown once.
func (f *Facts) revealSecrets(requestID string, reply dispatch.Reply) dispatch.Reply {
	f.mu.Lock()
	kept := f.secrets[requestID]
	delete(f.secrets, requestID)
	f.mu.Unlock()
	return replaceSecrets(reply, func(placeholder string) string {
		if secret, ok := kept[placeholder]; ok {
			return secret
		}
		return lostSecret
	})
}

// secretShownOnce replaces a placeholder in a reply rendered again from
// the log, after the reply was posted: the secret went out with it once.
const secretShownOnce = "[not shown again: it was shown once, in the reply when it was posted; issue a new one if it is lost]"

// replaceSecrets replaces each secret placeholder in reply with what with
// gives for it (text without quotes, as it lands in Value's JSON too).
func replaceSecrets(reply dispatch.Reply, with func(placeholder string) string) dispatch.Reply {
	if !secretPattern.MatchString(reply.Text) && !secretPattern.Match(reply.Value) {
		return reply
	}
	reply.Text = secretPattern.ReplaceAllStringFunc(reply.Text, with)
	if reply.Value != nil {
		reply.Value = secretPattern.ReplaceAllFunc(reply.Value, func(b []byte) []byte { return []byte(with(string(b))) })
	}
	return reply
}
