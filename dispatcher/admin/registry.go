package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/distribution/reference"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
)

// Images is what the bundle builtins ask of the Docker host and the
// registries (docker.Registry). Pull runs on its own, bound by its own
// timeout: a caller whose context ends first gets an error saying the pull
// goes on, and the next call for the image finds it done or joins it.
type Images interface {
	// Pull pulls ref and returns it pinned (repository@sha256:...) with
	// the bundle config the image carries.
	Pull(ctx context.Context, ref string) (pinned string, config []byte, err error)
	// Local says whether the host has ref, and its pinned reference when
	// it came from a registry.
	Local(ctx context.Context, ref string) (present bool, pinned string, err error)
	// Tags lists a repository's tags; Catalog a registry's repositories.
	Tags(ctx context.Context, repo string) ([]string, error)
	Catalog(ctx context.Context, host string, limit int) ([]string, error)
	// ImageID is a local image's id ("" when absent); RemoveImage removes
	// it with all its tags.
	ImageID(ctx context.Context, ref string) (string, error)
	RemoveImage(ctx context.Context, ref string) error
}

// looksLikeImage tells an image reference from a config given inline: a
// config is YAML or JSON, with spaces or newlines, never one bare word.
func looksLikeImage(arg string) bool {
	if strings.ContainsAny(arg, " \t\n{}") {
		return false
	}
	_, err := reference.ParseNormalizedNamed(arg)
	return err == nil
}

// installImage installs the bundle an image carries: pulled, pinned by
// digest, its /bundle/config.yaml validated, then recorded with the pin.
// Nothing is recorded unless every step succeeds.
func (a *admin) installImage(c *adminCall, ref string) (run.Result, error) {
	if a.cfg.Images == nil {
		return run.Result{}, errors.New("this server installs bundles from images only with Docker (LOGBOOK_RUNTIME=docker)")
	}
	pinned, config, err := a.cfg.Images.Pull(c.ctx, ref)
	if err != nil {
		return run.Result{}, err
	}
	b, err := a.loadBundle(c, config, "the bundle config in "+ref)
	if err != nil {
		return run.Result{}, err
	}
	if old, ok := c.facts.InstalledConfig(b.Name, b.Version); ok {
		if old != string(config) || a.installedImage(c, b.Name, b.Version) != pinned {
			return run.Result{}, fmt.Errorf("version %s of bundle %s is installed already from other content; push the new content under a new version", b.Version, b.Name)
		}
		return a.bundleEnable(c, b.Name, b.Version)
	}
	a.recordInstall(c, b, config, pinned)
	lines := []string{fmt.Sprintf("Installed and enabled bundle %s %s (%d commands) from %s.", b.Name, b.Version, len(b.Commands()), pinned)}
	return dispatch.BodyResult(append(lines, installNotes(c, b)...)...), nil
}

// loadBundle validates a config as an install would.
func (a *admin) loadBundle(c *adminCall, config []byte, what string) (*bundle.Bundle, error) {
	b, err := bundle.LoadForSite(config, bundle.Site{MaxPids: c.facts.Settings().MaxPids})
	if err != nil {
		return nil, fmt.Errorf("%s does not load: %v", what, err)
	}
	if b.Name == dispatch.BuiltinBundle || b.Name == access.SiteNamespace {
		return nil, fmt.Errorf("the bundle name %s is reserved", b.Name)
	}
	return b, nil
}

// recordInstall stages a version's install and enable. The ids derive
// from the run, so an install after an uninstall is recorded anew.
func (a *admin) recordInstall(c *adminCall, b *bundle.Bundle, config []byte, pinned string) {
	installed := bundle.BundleInstalled{Name: b.Name, Version: b.Version, Config: string(config), Permissions: b.Permissions, Image: pinned}
	c.Record(dispatch.Change{Stream: bundle.Stream(b.Name), Expected: eventstore.Any,
		Events: []domain.Payload{installed, bundle.BundleEnabled{Name: b.Name, Version: b.Version}}})
}

func installNotes(c *adminCall, b *bundle.Bundle) []string {
	var lines []string
	if len(b.Permissions) > 0 {
		lines = append(lines, "It declares "+strings.Join(b.Permissions, ", ")+"; grant them to roles with `role grant ROLE PERMISSION`.")
	}
	for _, w := range b.Warnings() {
		lines = append(lines, "Warning: "+w.String())
	}
	return append(lines, unsetVariables(c, b)...)
}

// installedImage is the image an installed version was pinned to.
func (a *admin) installedImage(c *adminCall, name, version string) string {
	for _, ib := range c.facts.Bundles() {
		if ib.Bundle != nil && ib.Bundle.Name == name && ib.Bundle.Version == version {
			return ib.Image
		}
	}
	return ""
}

// ensureImage pulls the image of a config installed from a file when the
// host lacks it, and pins it then. An image that cannot be pulled is a
// warning: the config may name an image built on the host later.
func (a *admin) ensureImage(c *adminCall, b *bundle.Bundle) (string, []string) {
	if a.cfg.Images == nil || b.Image() == "" {
		return "", nil
	}
	present, pinned, err := a.cfg.Images.Local(c.ctx, b.Image())
	if err == nil && present {
		return pinned, nil
	}
	if err == nil {
		pinned, _, err = a.cfg.Images.Pull(c.ctx, b.Image())
	}
	if err != nil {
		return "", []string{fmt.Sprintf("Warning: image %s is not on this host and was not pulled (%v); its commands fail until it is there.", b.Image(), err)}
	}
	return pinned, []string{"Pulled " + pinned + "."}
}

// enabledBundle finds an installed bundle and its enabled version.
func enabledBundle(c *adminCall, name string) (dispatch.InstalledBundle, error) {
	for _, ib := range c.facts.Bundles() {
		if ib.Bundle != nil && ib.Bundle.Name == name {
			if !ib.Enabled {
				return ib, fmt.Errorf("bundle %s is disabled; enable a version first", name)
			}
			return ib, nil
		}
	}
	return dispatch.InstalledBundle{}, fmt.Errorf("no bundle named %s is installed", name)
}

// repositoryOf is the repository an installed bundle's image comes from.
func repositoryOf(ib dispatch.InstalledBundle) (reference.Named, error) {
	image := ib.RunImage()
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return nil, fmt.Errorf("bundle %s's image %q names no repository", ib.Bundle.Name, image)
	}
	return reference.TrimNamed(named), nil
}

// newerTags are the tags that read as semantic versions above current, in
// version order.
func newerTags(tags []string, current string) []string {
	base, err := semver.NewVersion(current)
	if err != nil {
		return nil
	}
	type tagged struct {
		tag string
		v   *semver.Version
	}
	var newer []tagged
	for _, t := range tags {
		if v, err := semver.NewVersion(t); err == nil && v.GreaterThan(base) {
			newer = append(newer, tagged{t, v})
		}
	}
	slices.SortFunc(newer, func(a, b tagged) int { return a.v.Compare(b.v) })
	out := make([]string, len(newer))
	for i, n := range newer {
		out[i] = n.tag
	}
	return out
}

// bundleUpgrade lists the newer tags of the bundle's repository, pulls the
// newest (or --to's), says what changes, and records the new version.
func (a *admin) bundleUpgrade(c *adminCall, name string) (run.Result, error) {
	if a.cfg.Images == nil {
		return run.Result{}, errors.New("this server upgrades bundles from images only with Docker (LOGBOOK_RUNTIME=docker)")
	}
	to, hasTo, err := stringOption(c, "to")
	if err != nil {
		return run.Result{}, err
	}
	current, err := enabledBundle(c, name)
	if err != nil {
		return run.Result{}, err
	}
	repo, err := repositoryOf(current)
	if err != nil {
		return run.Result{}, err
	}
	tags, err := a.cfg.Images.Tags(c.ctx, repo.String())
	if err != nil {
		return run.Result{}, err
	}
	currentTag := current.Bundle.Tag
	if _, err := semver.NewVersion(currentTag); err != nil {
		currentTag = current.Bundle.Version
	}
	newer := newerTags(tags, currentTag)
	lines := []string{fmt.Sprintf("%s has %s; newer than %s: %s.", reference.FamiliarString(repo), plural(len(tags), "tag"), currentTag, orNone(newer))}
	if !hasTo {
		if len(newer) == 0 {
			return dispatch.BodyResult(append(lines, fmt.Sprintf("Bundle %s %s is up to date.", name, current.Bundle.Version))...), nil
		}
		to = newer[len(newer)-1]
	} else if !slices.Contains(tags, to) {
		return run.Result{}, fmt.Errorf("%s has no tag %s", reference.FamiliarString(repo), to)
	}
	ref := reference.FamiliarString(repo) + ":" + to
	pinned, config, err := a.cfg.Images.Pull(c.ctx, ref)
	if err != nil {
		return run.Result{}, err
	}
	next, err := a.loadBundle(c, config, "the bundle config in "+ref)
	if err != nil {
		return run.Result{}, err
	}
	if next.Name != name {
		return run.Result{}, fmt.Errorf("%s carries bundle %s, not %s", ref, next.Name, name)
	}
	if next.Version == current.Bundle.Version {
		return run.Result{}, fmt.Errorf("%s carries version %s, which is installed already; give the new content a new version", ref, next.Version)
	}
	if old, ok := c.facts.InstalledConfig(name, next.Version); ok && (old != string(config) || a.installedImage(c, name, next.Version) != pinned) {
		return run.Result{}, fmt.Errorf("version %s of bundle %s is installed already from other content", next.Version, name)
	}
	a.recordInstall(c, next, config, pinned)
	lines = append(lines, fmt.Sprintf("Upgraded bundle %s from %s to %s (%s).", name, current.Bundle.Version, next.Version, ref))
	lines = append(lines, BundleChanges(current.Bundle, next, current.RunImage(), pinned)...)
	return dispatch.BodyResult(append(lines, installNotes(c, next)...)...), nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// BundleChanges says what an upgrade from old to next changes: commands,
// their options and rules, permissions, and the image's content.
func BundleChanges(old, next *bundle.Bundle, oldImage, nextImage string) []string {
	var lines []string
	names := func(b *bundle.Bundle) []string {
		var out []string
		for _, cmd := range b.Commands() {
			out = append(out, cmd.Name)
		}
		return out
	}
	added, removed := diff(names(old), names(next))
	if len(added) > 0 {
		lines = append(lines, "Commands added: "+strings.Join(added, ", ")+".")
	}
	if len(removed) > 0 {
		lines = append(lines, "Commands removed: "+strings.Join(removed, ", ")+".")
	}
	for _, cmd := range next.Commands() {
		was, ok := old.Command(cmd.Name)
		if !ok {
			continue
		}
		optAdded, optRemoved := diff(optionNames(was), optionNames(cmd))
		if len(optAdded)+len(optRemoved) > 0 {
			lines = append(lines, fmt.Sprintf("Options of %s: added %s; removed %s.", cmd.Name, orNone(optAdded), orNone(optRemoved)))
		}
		ruleAdded, ruleRemoved := diff(ruleTexts(was), ruleTexts(cmd))
		for _, r := range ruleAdded {
			lines = append(lines, fmt.Sprintf("Rule added to %s: %s", cmd.Name, r))
		}
		for _, r := range ruleRemoved {
			lines = append(lines, fmt.Sprintf("Rule removed from %s: %s", cmd.Name, r))
		}
	}
	permAdded, permRemoved := diff(old.Permissions, next.Permissions)
	if len(permAdded) > 0 {
		lines = append(lines, "Permissions added: "+strings.Join(permAdded, ", ")+".")
	}
	if len(permRemoved) > 0 {
		lines = append(lines, "Permissions removed: "+strings.Join(permRemoved, ", ")+".")
	}
	if oldImage != nextImage {
		lines = append(lines, fmt.Sprintf("Image: %s -> %s.", oldImage, nextImage))
	}
	if len(lines) == 0 {
		lines = []string{"Nothing else changes."}
	}
	return lines
}

func ruleTexts(cmd *bundle.Command) []string {
	var out []string
	for _, r := range cmd.ParsedRules() {
		out = append(out, r.String())
	}
	return out
}

func optionNames(cmd *bundle.Command) []string {
	var out []string
	for _, o := range cmd.Options() {
		out = append(out, o.Name)
	}
	return out
}

// diff lists what is in b and not in a, and in a and not in b, sorted.
func diff(a, b []string) (added, removed []string) {
	for _, x := range b {
		if !slices.Contains(a, x) {
			added = append(added, x)
		}
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			removed = append(removed, x)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	return added, removed
}

// bundleUninstall removes a bundle and every version of it, then the
// images no installed bundle uses any more.
func (a *admin) bundleUninstall(c *adminCall, name string) (run.Result, error) {
	var images []string
	found := false
	for _, ib := range c.facts.Bundles() {
		if ib.Bundle != nil && ib.Bundle.Name == name {
			found = true
		}
	}
	if !found {
		return run.Result{}, fmt.Errorf("no bundle named %s is installed", name)
	}
	history, version, err := a.load(c.ctx, bundle.Stream(name))
	if err != nil {
		return run.Result{}, err
	}
	for _, p := range history {
		if in, ok := p.(bundle.BundleInstalled); ok {
			img := in.Image
			if img == "" {
				if b, err := bundle.Load([]byte(in.Config)); err == nil {
					img = b.Image()
				}
			}
			if img != "" && !slices.Contains(images, img) {
				images = append(images, img)
			}
		}
	}
	a.record(c, bundle.Stream(name), version, bundle.BundleUninstalled{Name: name})
	lines := []string{fmt.Sprintf("Uninstalled bundle %s; its commands no longer run.", name)}
	if a.cfg.Images == nil {
		return dispatch.BodyResult(lines...), nil
	}
	inUse := map[string]bool{}
	for _, ib := range c.facts.Bundles() {
		if ib.Bundle == nil || ib.Bundle.Name == name {
			continue
		}
		if id, err := a.cfg.Images.ImageID(c.ctx, ib.RunImage()); err == nil && id != "" {
			inUse[id] = true
		}
	}
	for _, img := range images {
		id, err := a.cfg.Images.ImageID(c.ctx, img)
		switch {
		case err != nil:
			lines = append(lines, fmt.Sprintf("Warning: could not look at image %s: %v", img, err))
		case id == "":
		case inUse[id]:
			lines = append(lines, "Kept image "+img+": another bundle uses it.")
		default:
			if err := a.cfg.Images.RemoveImage(c.ctx, img); err != nil {
				lines = append(lines, fmt.Sprintf("Warning: %v", err))
				continue
			}
			inUse[id] = true // removed once, with every tag
			lines = append(lines, "Removed image "+img+".")
		}
	}
	return dispatch.BodyResult(lines...), nil
}

// SearchRow is one repository of `bundle search`.
type SearchRow struct {
	Repository string `json:"repository"`
	Tags       string `json:"tags"`
}

// searchLimit bounds the repositories `bundle search` lists.
const searchLimit = 100

// bundleSearch lists a registry's repositories under a prefix, with their
// tags, through the registry's catalog API.
func (a *admin) bundleSearch(c *adminCall, target string) (run.Result, error) {
	if a.cfg.Images == nil {
		return run.Result{}, errors.New("this server searches registries only with Docker (LOGBOOK_RUNTIME=docker)")
	}
	host, prefix, _ := strings.Cut(target, "/")
	if host == "" || !strings.ContainsAny(host, ".:") && host != "localhost" {
		return run.Result{}, fmt.Errorf("%q names no registry host: write bundle search HOST[:PORT][/PREFIX]", target)
	}
	repos, err := a.cfg.Images.Catalog(c.ctx, host, 1000)
	if err != nil {
		return run.Result{}, err
	}
	rows := []SearchRow{}
	for _, repo := range repos {
		if !strings.HasPrefix(repo, prefix) {
			continue
		}
		if len(rows) == searchLimit {
			break
		}
		tags, err := a.cfg.Images.Tags(c.ctx, host+"/"+repo)
		if err != nil {
			return run.Result{}, err
		}
		slices.Sort(tags)
		rows = append(rows, SearchRow{Repository: host + "/" + repo, Tags: strings.Join(tags, ", ")})
	}
	if len(rows) == 0 {
		return dispatch.BodyResult(fmt.Sprintf("Registry %s has no repository under %q.", host, prefix)), nil
	}
	v, err := json.Marshal(rows)
	if err != nil {
		return run.Result{}, err
	}
	return run.Result{Value: v}, nil
}
