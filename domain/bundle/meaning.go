package bundle

import (
	"errors"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/logbookhq/logbook/domain/rules"
	"github.com/logbookhq/logbook/domain/template"
)

var (
	// A name is ASCII so that it can appear in container names, labels
	// and COG_* environment variables unchanged.
	namePattern    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	versionPattern = regexp.MustCompile(`^[0-9]+\.[0-9]+(\.[0-9]+)?$`)
	envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	shortPattern   = regexp.MustCompile(`^[A-Za-z0-9]$`)
)

// ValidName reports whether name can name a bundle: 1 to 64 ASCII
// letters, digits, '_' or '-', starting with a letter or digit.
func ValidName(name string) bool { return namePattern.MatchString(name) }

// siteNamespace holds the permissions operators make; any bundle's rules
// may require them, and no bundle may be called site.
const siteNamespace = "site"

// checkMeaning is the second pass, over what the first decoded. It checks
// only decoded values, so a field the schema pass rejected is not reported
// again here.
func (l *loader) checkMeaning(b *Bundle) {
	nameOK := l.checkBundleName(b)
	if b.Version != "" && !versionPattern.MatchString(b.Version) {
		l.meaningf(l.lines["version"], "version %q is not N.N or N.N.N (for example 1.2 or 1.2.3)", b.Version)
	}
	l.checkImage(b)
	if nameOK {
		l.checkPermissions(b)
	}
	for _, env := range b.Env {
		l.checkEnvName(env.Name, env.Line, "config.env")
	}
	if _, decoded := l.lines["commands"]; decoded && len(b.commands) == 0 {
		l.warnf(b.Line, "the bundle has no commands")
	}
	for _, c := range b.commands {
		l.checkCommand(b, c, nameOK)
	}
	l.checkApprovals(b)
	l.checkTemplates(b)
	l.checkWarmUsers(b)
}

// checkTemplates parses every template body, so a template that would
// fail when a reply is rendered fails the bundle's validation instead,
// naming the file line of the problem: Greenbar for Cog, Go templates with
// Gort's functions for Gort (bundle and command templates).
func (l *loader) checkTemplates(b *Bundle) {
	if l.format == FormatGort {
		all := slices.Clone(b.templates)
		for _, c := range b.commands {
			all = append(all, c.templates...)
		}
		for _, t := range all {
			_, err := template.ParseGort(t.Body)
			l.templateProblem(t, err)
		}
		return
	}
	for _, t := range b.templates {
		if t.Body == "" {
			l.checkVariants(t)
			continue
		}
		parsed, err := template.Parse(t.Body)
		if l.templateProblem(t, err) {
			continue
		}
		for _, w := range parsed.Warnings() {
			l.warnf(t.FileLine(w.Line), "templates.%s: at its line %d, column %d: %s", t.Name, w.Line, w.Column, w.Msg)
		}
	}
}

// checkVariants parses a Cog v3 template's per-provider variants as the
// Mustache they are, reporting a bad one on the file line of the problem.
func (l *loader) checkVariants(t *Template) {
	for _, name := range slices.Sorted(maps.Keys(t.Providers)) {
		v := t.Providers[name]
		_, err := template.ParseMustache(v.Source)
		var syntax *template.SyntaxError
		switch {
		case errors.As(err, &syntax):
			l.meaningf(v.FileLine(syntax.Line), "templates.%s.%s: the template does not parse at its line %d, column %d: %s", t.Name, name, syntax.Line, syntax.Column, syntax.Msg)
		case err != nil:
			l.meaningf(v.Line, "templates.%s.%s: the template does not parse: %v", t.Name, name, err)
		}
	}
}

// templateProblem reports a template's parse error, if any, on the file
// line it is about.
func (l *loader) templateProblem(t *Template, err error) bool {
	var syntax *template.SyntaxError
	switch {
	case errors.As(err, &syntax):
		l.meaningf(t.FileLine(syntax.Line), "templates.%s: the template does not parse at its line %d, column %d: %s", t.Name, syntax.Line, syntax.Column, syntax.Msg)
	case err != nil:
		l.meaningf(t.Line, "templates.%s: the template does not parse: %v", t.Name, err)
	default:
		return false
	}
	return true
}

// checkWarmUsers refuses a command that would run warm or single-use as
// root: the agent that starts it in its container runs as root, and a
// command with its uid could reach the agent and, through it, the runs
// after its own (warm) or the agent's capabilities (both). Each offending
// user line is reported once, however many commands inherit it.
func (l *loader) checkWarmUsers(b *Bundle) {
	reported := map[int]bool{}
	for _, c := range b.commands {
		e := b.Execution.Overlay(c.Execution)
		if (e.Mode != ModeWarm && e.Mode != ModeSingleUse) || e.User == nil || e.User.UID != 0 || reported[e.User.Line] {
			continue
		}
		reported[e.User.Line] = true
		l.meaningf(e.User.Line, "commands.%s: uid 0 (root) cannot run %s: a %s container's agent runs as root, so a command running as root must run fresh (mode: fresh) or as another user", c.Name, e.Mode, e.Mode)
	}
}

func (l *loader) checkBundleName(b *Bundle) bool {
	line := l.lines["name"]
	switch {
	case b.Name == "":
		return false // missing or mistyped: reported by the schema pass
	case !namePattern.MatchString(b.Name):
		l.meaningf(line, "bundle name %q is not valid: use up to 64 letters, digits, _ and -, starting with a letter or digit", b.Name)
		return false
	case b.Name == siteNamespace:
		l.meaningf(line, "a bundle cannot be called %q: that namespace holds operator-made permissions", siteNamespace)
		return false
	}
	return true
}

func (l *loader) checkImage(b *Bundle) {
	if _, declared := l.lines["docker"]; !declared {
		if l.format == FormatGort {
			l.meaningf(b.Line, "missing image: a Gort bundle runs in its image (image: name:tag)")
			return
		}
		l.warnf(b.Line, "the bundle names no image (a Cog simple bundle): its executables must exist on the host, so only the process runtime can run it")
		return
	}
	line := l.lines["docker"]
	if b.ImageName != "" && strings.ContainsAny(b.ImageName, " \t\n") {
		l.meaningf(line, "image %q is not a valid image name", b.ImageName)
	}
	if b.Tag != "" && strings.ContainsAny(b.Tag, " \t\n:/") {
		l.meaningf(line, "tag %q is not a valid image tag", b.Tag)
	}
	if _, set := l.lines["image"]; set && b.ImageName == "" {
		l.meaningf(l.lines["image"], "the image name is empty")
	}
	if _, set := l.lines["tag"]; set && b.Tag == "" {
		l.meaningf(l.lines["tag"], "the image tag is empty")
	}
}

// checkPermissions: every declared permission belongs to the bundle's own
// namespace (site: permissions are made by operators, not declared).
func (l *loader) checkPermissions(b *Bundle) {
	seen := map[string]bool{}
	for i, p := range b.Permissions {
		line := b.Line
		if i < len(l.permissionLines) {
			line = l.permissionLines[i]
		}
		ns, local, found := strings.Cut(p, ":")
		switch {
		case !found || !namePattern.MatchString(local):
			l.meaningf(line, "permission %q is not valid: expected %s:name, the name made of letters, digits, _ and -", p, b.Name)
		case ns != b.Name:
			l.meaningf(line, "permission %q is outside the bundle's namespace; a bundle declares only %s: permissions", p, b.Name)
		case seen[p]:
			l.warnf(line, "permission %q is listed twice", p)
		}
		seen[p] = true
	}
}

func (l *loader) checkCommand(b *Bundle, c *Command, bundleNameOK bool) {
	path := "commands." + c.Name
	commandNameOK := namePattern.MatchString(c.Name)
	if !commandNameOK {
		l.meaningf(c.Line, "command name %q is not valid: use up to 64 letters, digits, _ and -, starting with a letter or digit", c.Name)
	}
	if len(c.Executable) > 0 && strings.TrimSpace(c.Executable[0]) == "" {
		l.meaningf(c.Line, "%s: executable is empty", path)
	}
	l.checkOptions(c, path)
	names := make([]string, 0, len(c.EnvVars))
	for name := range c.EnvVars {
		names = append(names, name)
	}
	sort.Strings(names) // a stable order of messages
	for _, name := range names {
		l.checkEnvName(name, l.envVarLines[c][name], path+".env_vars")
	}
	for _, t := range c.Triggers {
		if _, err := regexp.Compile(t.Match); err != nil {
			l.meaningf(t.Line, "%s: trigger %q is not a valid regular expression: %v", path, t.Match, err)
		}
	}
	if bundleNameOK && commandNameOK {
		l.checkRules(b, c, path)
	}
}

// checkOptions validates option names and short flags. A letter declared
// by two options is unbound from both with a warning rather than refused:
// two published Cog bundles (aws-ecs, jumpcloud) repeat a letter, and
// binding it to either option would silently guess what a user meant.
func (l *loader) checkOptions(c *Command, path string) {
	byShort := map[string][]*Option{}
	for _, o := range c.options {
		if !namePattern.MatchString(o.Name) {
			l.meaningf(o.Line, "%s: option name %q is not valid: use letters, digits, _ and -, starting with a letter or digit", path, o.Name)
		}
		if o.ShortFlag == "" {
			continue
		}
		if !shortPattern.MatchString(o.ShortFlag) {
			l.meaningf(o.Line, "%s.options.%s: short_flag %q must be one letter or digit", path, o.Name, o.ShortFlag)
			continue
		}
		byShort[o.ShortFlag] = append(byShort[o.ShortFlag], o)
	}
	c.byShort = map[string]*Option{}
	for _, o := range c.options {
		users, ok := byShort[o.ShortFlag]
		if !ok || users[0] != o {
			continue
		}
		if len(users) == 1 {
			c.byShort[o.ShortFlag] = o
			continue
		}
		names := make([]string, len(users))
		for i, u := range users {
			names[i] = "--" + u.Name
		}
		l.warnf(users[1].Line, "%s: short flag -%s is declared by %s; it is ambiguous, so Logbook binds it to none of them: use the long names", path, o.ShortFlag, strings.Join(names, " and "))
		for _, u := range users {
			u.ShortFlag = ""
		}
	}
}

// reservedEnvPrefixes belong to the command protocol; a config that set
// them could impersonate the platform to its own command.
var reservedEnvPrefixes = []string{"COG_", "LOGBOOK_"}

func (l *loader) checkEnvName(name string, line int, path string) {
	if !envNamePattern.MatchString(name) {
		l.meaningf(line, "%s: %q is not a valid environment variable name", path, name)
		return
	}
	for _, p := range reservedEnvPrefixes {
		if strings.HasPrefix(strings.ToUpper(name), p) {
			l.meaningf(line, "%s: %q is reserved: %s* variables are set by Logbook for every command", path, name, p)
			return
		}
	}
}

// checkRules parses every rule and checks that it is about this command
// and requires only permissions the bundle may use.
func (l *loader) checkRules(b *Bundle, c *Command, path string) {
	if len(c.rules) == 0 {
		l.warnf(c.Line, "%s has no rules, so no one can run it; add `allow` to let anyone", path)
	}
	for i := range c.rules {
		r := &c.rules[i]
		rpath := index(path+".rules", i)
		parsed, err := rules.ParseForCommand(b.Name, c.Name, r.Source)
		if err != nil {
			var syntax *rules.SyntaxError
			if errors.As(err, &syntax) {
				l.meaningf(r.Line, "%s: the rule does not parse at column %d: %s", rpath, syntax.Column, syntax.Msg)
			} else {
				l.meaningf(r.Line, "%s: the rule does not parse: %v", rpath, err)
			}
			continue
		}
		r.Parsed = parsed
		if got := parsed.Command(); got != c.FullName() {
			l.meaningf(r.Line, "%s: the rule is for %s, not for this command, %s", rpath, got, c.FullName())
		}
		for _, perm := range parsed.Permissions() {
			l.checkRulePermission(b, r.Line, rpath, perm, "requires")
		}
		if a, ok := parsed.Approval(); ok {
			l.checkRulePermission(b, r.Line, rpath, a.Permission, "asks approvers for")
		}
		for _, w := range parsed.Warnings() {
			l.warnf(r.Line, "%s: %s", rpath, w)
		}
	}
}

// checkRulePermission checks a permission a rule names (what it requires,
// or what its approvers must hold): the bundle's own and declared, or a
// site: one.
func (l *loader) checkRulePermission(b *Bundle, line int, rpath, perm, verb string) {
	ns, _, _ := strings.Cut(perm, ":")
	switch {
	case ns == siteNamespace:
	case ns != b.Name:
		l.meaningf(line, "%s: the rule %s %s; a bundle's rules may %s only its own permissions (%s:...) or site: ones", rpath, verb, perm, verbInfinitive[verb], b.Name)
	case !b.HasPermission(perm) && !l.permissionsBroke:
		l.meaningf(line, "%s: the rule %s %s, which is not declared in the bundle's permissions", rpath, verb, perm)
	}
}

var verbInfinitive = map[string]string{"requires": "require", "asks approvers for": "ask approvers for"}

// checkApprovals warns about an approvers' room no rule will ever post to.
func (l *loader) checkApprovals(b *Bundle) {
	if b.Approvals.Room == "" {
		return
	}
	for _, c := range b.commands {
		for _, r := range c.rules {
			if _, ok := r.Parsed.Approval(); r.Parsed != nil && ok {
				return
			}
		}
	}
	l.warnf(b.Approvals.Line, "approvals.room is set, but no rule of the bundle asks for approval (`... with approval from ns:perm`), so nothing is posted there")
}
