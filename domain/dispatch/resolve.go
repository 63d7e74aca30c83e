package dispatch

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/pipeline"
	"github.com/logbookhq/logbook/domain/rules"
)

// catalog is every command a request may name, built once per decision
// from the facts, sorted so that every answer is deterministic.
type catalog struct {
	builtins Builtins
	enabled  []*bundle.Bundle          // sorted by name
	disabled map[string]*bundle.Bundle // installed but not enabled
	images   map[string]string         // bundle name → the image its runs use
	groups   map[string]string         // bundle name → its relay group
}

func newCatalog(f Facts) catalog {
	c := catalog{builtins: f.Builtins(), disabled: map[string]*bundle.Bundle{}, images: map[string]string{}, groups: map[string]string{}}
	for _, ib := range f.Bundles() {
		if ib.Bundle == nil {
			continue
		}
		c.images[ib.Bundle.Name] = ib.RunImage()
		c.groups[ib.Bundle.Name] = ib.Group
		if ib.Enabled {
			c.enabled = append(c.enabled, ib.Bundle)
		} else {
			c.disabled[ib.Bundle.Name] = ib.Bundle
		}
	}
	sort.Slice(c.enabled, func(i, j int) bool { return c.enabled[i].Name < c.enabled[j].Name })
	return c
}

// target is what a stage's command name resolved to: a bundle command or a
// builtin, never both.
type target struct {
	bundle  *bundle.Bundle
	command *bundle.Command
	builtin *Builtin
	image   string // the image a bundle command runs in (pinned by digest when installed so)
	group   string // the relay group of its bundle
}

// FullName is "bundle:command"; builtins live in the logbook namespace.
func (t target) FullName() string {
	if t.builtin != nil {
		return BuiltinBundle + ":" + t.builtin.Name
	}
	return t.command.FullName()
}

func (t target) rules() []*rules.Rule {
	if t.builtin != nil {
		return t.builtin.Rules
	}
	return t.command.ParsedRules()
}

// ResolveError says why a command name does not name a runnable command.
type ResolveError struct {
	Kind       ErrorKind
	Name       string   // as written
	Candidates []string // for an ambiguous bare name, the full names it could mean
	Suggestion string   // for an unknown name, the closest known name
	Msg        string
}

func (e *ResolveError) Error() string { return e.Msg }

// resolve finds the command a stage names. A bare name is, as in Cog, a
// builtin first, else the one enabled bundle that has it; a bare name two
// enabled bundles share is ambiguous.
func (c catalog) resolve(bundleName, name string) (target, error) {
	written := name
	if bundleName != "" {
		written = bundleName + ":" + name
	}
	if bundleName == BuiltinBundle {
		if b, ok := c.builtins[name]; ok {
			return target{builtin: &b}, nil
		}
		return target{}, c.unknown(written)
	}
	if bundleName != "" {
		for _, b := range c.enabled {
			if b.Name != bundleName {
				continue
			}
			if cmd, ok := b.Command(name); ok {
				return target{bundle: b, command: cmd, image: c.images[b.Name], group: c.groups[b.Name]}, nil
			}
			return target{}, c.unknown(written)
		}
		if b, ok := c.disabled[bundleName]; ok {
			return target{}, &ResolveError{Kind: KindDisabledBundle, Name: written,
				Msg: fmt.Sprintf("the bundle %s is disabled, so %s cannot run; an admin can enable it", b.Name, written)}
		}
		return target{}, c.unknown(written)
	}
	if b, ok := c.builtins[name]; ok {
		return target{builtin: &b}, nil
	}
	var found []target
	for _, b := range c.enabled {
		if cmd, ok := b.Command(name); ok {
			found = append(found, target{bundle: b, command: cmd, image: c.images[b.Name], group: c.groups[b.Name]})
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		var disabledIn []string
		for _, b := range c.disabled {
			if _, ok := b.Command(name); ok {
				disabledIn = append(disabledIn, b.Name+":"+name)
			}
		}
		if len(disabledIn) > 0 {
			slices.Sort(disabledIn)
			return target{}, &ResolveError{Kind: KindDisabledBundle, Name: written, Candidates: disabledIn,
				Msg: fmt.Sprintf("%s is only in disabled bundles (%s); an admin can enable one", name, strings.Join(disabledIn, ", "))}
		}
		return target{}, c.unknown(written)
	}
	names := make([]string, len(found))
	for i, t := range found {
		names[i] = t.FullName()
	}
	return target{}, &ResolveError{Kind: KindAmbiguousCommand, Name: written, Candidates: names,
		Msg: fmt.Sprintf("%s is ambiguous: it could be %s; write the full name", name, joinOr(names))}
}

func (c catalog) unknown(written string) *ResolveError {
	e := &ResolveError{Kind: KindUnknownCommand, Name: written, Msg: fmt.Sprintf("there is no command %s", written)}
	if s := closestName(written, c.names()); s != "" {
		e.Suggestion = s
		e.Msg += fmt.Sprintf("; did you mean %s?", s)
	}
	return e
}

// names lists every runnable command by its full and its bare name.
func (c catalog) names() []string {
	var out []string
	for name := range c.builtins {
		out = append(out, name, BuiltinBundle+":"+name)
	}
	for _, b := range c.enabled {
		for _, cmd := range b.Commands() {
			out = append(out, cmd.Name, cmd.FullName())
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// LookupOption implements pipeline.OptionSpec from the resolved commands'
// declared options, so "--region us-east-1" and "-r" parse as declared.
func (c catalog) LookupOption(cmd pipeline.CommandRef, flag string, short bool) (pipeline.OptionDecl, bool) {
	t, err := c.resolve(cmd.Bundle, cmd.Name)
	if err == nil && t.builtin != nil && !short && slices.Contains(t.builtin.ValueOptions, flag) {
		return pipeline.OptionDecl{Name: flag, TakesValue: true}, true
	}
	if err != nil || t.command == nil {
		return pipeline.OptionDecl{}, false
	}
	var opt *bundle.Option
	var ok bool
	if short {
		opt, ok = t.command.OptionByShort(flag)
	}
	if !ok {
		opt, ok = t.command.Option(flag)
	}
	if !ok {
		return pipeline.OptionDecl{}, false
	}
	return pipeline.OptionDecl{Name: opt.Name, Short: opt.ShortFlag, TakesValue: opt.TakesValue()}, true
}

// closestName is the known name nearest to name by edit distance, or ""
// when nothing is near enough to be a plausible typo.
func closestName(name string, known []string) string {
	best, bestDist := "", -1
	limit := max(2, len([]rune(name))/3)
	for _, k := range known {
		d := levenshtein(name, k)
		if d > limit || d == 0 {
			continue
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

func joinOr(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
