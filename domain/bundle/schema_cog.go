package bundle

import (
	"regexp"

	"go.yaml.in/yaml/v3"
)

// The fields each level of a Cog config may carry. Cog's own v4/v5 schema
// plus the fields real Cog bundles use beyond it (documentation, notes,
// enforcing, per-provider templates), plus Logbook's execution section.
var (
	cogBundleFields   = []string{"cog_bundle_version", "name", "description", "long_description", "author", "homepage", "version", "permissions", "docker", "config", "templates", "commands", "execution", "approvals"}
	cogDockerFields   = []string{"image", "tag", "binds"}
	cogConfigFields   = []string{"notes", "env"}
	cogEnvFields      = []string{"var", "description"}
	cogTemplateFields = []string{"body", "slack", "hipchat"}
	cogCommandFields  = []string{"executable", "description", "long_description", "examples", "arguments", "subcommands", "output", "rules", "env_vars", "options", "documentation", "notes", "enforcing", "execution"}
	cogOptionFields   = []string{"type", "description", "required", "short_flag"}
	cogOutputFields   = []string{"description", "example"}
)

// templateName is Cog's pattern for template names.
var templateName = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

func (l *loader) decodeCog(root *yaml.Node, version int) *Bundle {
	b := &Bundle{Format: FormatCog, FormatVersion: version, Line: root.Line, byName: map[string]*Command{}}
	var commands *yaml.Node
	for _, f := range fields(root) {
		v := f.Value
		switch f.Key {
		case "cog_bundle_version":
			// read by decodeRoot
		case "name":
			b.Name, _ = l.str(v, f.Key)
			l.setLine("name", v.Line)
		case "description":
			b.Description, _ = l.str(v, f.Key)
		case "long_description":
			b.LongDescription, _ = l.str(v, f.Key)
		case "author":
			b.Author, _ = l.str(v, f.Key)
		case "homepage":
			b.Homepage, _ = l.str(v, f.Key)
		case "version":
			b.Version, _ = l.str(v, f.Key)
			l.setLine("version", v.Line)
		case "permissions":
			perms, lines, ok := l.strList(v, f.Key)
			b.Permissions, l.permissionLines, l.permissionsBroke = perms, lines, !ok
		case "docker":
			l.decodeCogDocker(v, f.Line, b)
		case "config":
			l.decodeCogConfig(v, b)
		case "templates":
			b.templates = l.decodeCogTemplates(v, f.Key)
		case "commands":
			commands = v
		case "execution":
			b.Execution = l.decodeExecution(v, f.Key, true)
		case "approvals":
			l.decodeApprovals(v, f.Line, b)
		default:
			l.unknownField(f, "", cogBundleFields)
		}
	}
	l.require(root, root.Line, "", "name", "version", "commands")
	if version >= 4 {
		l.require(root, root.Line, "", "description")
	}
	if commands != nil && l.mapping(commands, "commands") {
		l.setLine("commands", commands.Line)
		for _, f := range fields(commands) {
			if c := l.decodeCogCommand(f, version); c != nil {
				l.addCommand(b, c)
			}
		}
	}
	return b
}

// require reports each listed field missing from mapping m, at line (the
// line of m's own key, where a reader looks for what is missing).
func (l *loader) require(m *yaml.Node, line int, path string, names ...string) {
	for _, name := range names {
		if _, ok := lookup(m, name); !ok {
			l.schemaf(line, "%smissing required field %q", prefix(path), name)
		}
	}
}

func (l *loader) addCommand(b *Bundle, c *Command) {
	c.bundle, c.Bundle = b, b.Name
	b.commands = append(b.commands, c)
	b.byName[c.Name] = c
}

func (l *loader) decodeCogDocker(n *yaml.Node, keyLine int, b *Bundle) {
	l.setLine("docker", keyLine)
	if !l.mapping(n, "docker") {
		return
	}
	for _, f := range fields(n) {
		path := join("docker", f.Key)
		switch f.Key {
		case "image":
			var ok bool
			if b.ImageName, ok = l.str(f.Value, path); ok {
				l.setLine("image", f.Value.Line)
			}
		case "tag":
			var ok bool
			if b.Tag, ok = l.str(f.Value, path); ok {
				l.setLine("tag", f.Value.Line)
			}
		case "binds":
			b.Binds, _, _ = l.strList(f.Value, path)
			if len(b.Binds) > 0 {
				l.schemaWarnf(f.Line, "docker.binds is ignored: Logbook never mounts host paths into command containers")
			}
		default:
			l.unknownField(f, "docker", cogDockerFields)
		}
	}
	l.require(n, keyLine, "docker", "image", "tag")
}

func (l *loader) decodeCogConfig(n *yaml.Node, b *Bundle) {
	if !l.mapping(n, "config") {
		return
	}
	for _, f := range fields(n) {
		path := join("config", f.Key)
		switch f.Key {
		case "notes":
			b.ConfigNotes, _ = l.str(f.Value, path)
		case "env":
			if !l.sequence(f.Value, path) {
				continue
			}
			for i, item := range f.Value.Content {
				itemPath := index(path, i)
				if !l.mapping(item, itemPath) {
					continue
				}
				env := EnvVar{Line: item.Line}
				for _, ef := range fields(item) {
					switch ef.Key {
					case "var":
						env.Name, _ = l.str(ef.Value, join(itemPath, ef.Key))
						env.Line = ef.Value.Line
					case "description":
						env.Description, _ = l.str(ef.Value, join(itemPath, ef.Key))
					default:
						l.unknownField(ef, itemPath, cogEnvFields)
					}
				}
				l.require(item, item.Line, itemPath, "var")
				if env.Name != "" {
					b.Env = append(b.Env, env)
				}
			}
		default:
			l.unknownField(f, "config", cogConfigFields)
		}
	}
}

func (l *loader) decodeCogTemplates(n *yaml.Node, path string) []*Template {
	if !l.mapping(n, path) {
		return nil
	}
	var out []*Template
	for _, f := range fields(n) {
		tpath := join(path, f.Key)
		if !templateName.MatchString(f.Key) {
			l.schemaf(f.Line, "%s: a template name may use only letters, digits and _", tpath)
		}
		if !l.mapping(f.Value, tpath) {
			continue
		}
		t := &Template{Name: f.Key, Line: f.Line}
		for _, tf := range fields(f.Value) {
			switch tf.Key {
			case "body":
				t.Body, _ = l.str(tf.Value, join(tpath, tf.Key))
				t.BodyLine, t.bodyBlock = bodyLine(tf.Value)
			case "slack", "hipchat":
				if s, ok := l.str(tf.Value, join(tpath, tf.Key)); ok {
					if t.Providers == nil {
						t.Providers = map[string]Variant{}
					}
					v := Variant{Source: s}
					v.Line, v.block = bodyLine(tf.Value)
					t.Providers[tf.Key] = v
				}
			default:
				l.unknownField(tf, tpath, cogTemplateFields)
			}
		}
		switch _, hasBody := lookup(f.Value, "body"); {
		case !hasBody && len(t.Providers) == 0:
			l.schemaf(f.Value.Line, "%s: missing required field \"body\"", tpath)
		case !hasBody:
			l.schemaWarnf(f.Line, "%s has no body, only Cog bundle version 3 per-provider variants (slack, hipchat): each provider renders the one it takes, as Mustache; a Greenbar body: would render alike everywhere", tpath)
		}
		out = append(out, t)
	}
	return out
}

func (l *loader) decodeCogCommand(cf field, version int) *Command {
	path := join("commands", cf.Key)
	if !l.mapping(cf.Value, path) {
		return nil
	}
	c := &Command{Name: cf.Key, Line: cf.Line}
	for _, f := range fields(cf.Value) {
		fpath := join(path, f.Key)
		v := f.Value
		switch f.Key {
		case "executable":
			if s, ok := l.str(v, fpath); ok {
				c.Executable = []string{s}
			}
		case "description":
			c.Description, _ = l.str(v, fpath)
		case "long_description":
			c.LongDescription, _ = l.str(v, fpath)
		case "examples":
			c.Examples, _ = l.str(v, fpath)
		case "arguments":
			c.Arguments, _ = l.str(v, fpath)
		case "documentation":
			c.Documentation, _ = l.str(v, fpath)
		case "notes":
			c.Notes, _ = l.str(v, fpath)
		case "subcommands":
			c.Subcommands = l.decodeSubcommands(v, fpath)
		case "output":
			c.Output = l.decodeCogOutput(v, fpath, version)
		case "rules":
			c.rules = l.decodeRules(v, fpath)
		case "env_vars":
			c.EnvVars = l.decodeEnvVars(v, fpath, c)
		case "options":
			l.decodeOptions(v, fpath, c)
		case "enforcing":
			if _, ok := l.boolean(v, fpath); ok {
				l.schemaWarnf(f.Line, "%s is ignored: Logbook always enforces a command's rules (the rule `allow` lets anyone run it)", fpath)
			}
		case "execution":
			c.Execution = l.decodeCommandExecution(v, fpath)
		default:
			l.unknownField(f, path, cogCommandFields)
		}
	}
	l.require(cf.Value, cf.Line, path, "executable", "rules")
	return c
}

func (l *loader) decodeSubcommands(n *yaml.Node, path string) []Subcommand {
	if !l.mapping(n, path) {
		return nil
	}
	var out []Subcommand
	for _, f := range fields(n) {
		if d, ok := l.str(f.Value, join(path, f.Key)); ok {
			out = append(out, Subcommand{Usage: f.Key, Description: d})
		}
	}
	return out
}

// decodeCogOutput reads output, the one field whose shape differs between
// Cog versions: a string up to v4, a mapping with description and example
// from v5.
func (l *loader) decodeCogOutput(n *yaml.Node, path string, version int) Output {
	if version < 5 {
		s, _ := l.str(n, path)
		return Output{Description: s}
	}
	var out Output
	if !l.mapping(n, path) {
		return out
	}
	for _, f := range fields(n) {
		switch f.Key {
		case "description":
			out.Description, _ = l.str(f.Value, join(path, f.Key))
		case "example":
			out.Example, _ = l.str(f.Value, join(path, f.Key))
		default:
			l.unknownField(f, path, cogOutputFields)
		}
	}
	return out
}

// decodeRules keeps each rule's text and line; the meaning pass parses
// them.
func (l *loader) decodeRules(n *yaml.Node, path string) []Rule {
	texts, lines, _ := l.strList(n, path)
	out := make([]Rule, len(texts))
	for i := range texts {
		out[i] = Rule{Source: texts[i], Line: lines[i]}
	}
	return out
}

// decodeEnvVars reads Cog's env_vars: names to string, boolean or number
// values, all handed to the command as text.
func (l *loader) decodeEnvVars(n *yaml.Node, path string, c *Command) map[string]string {
	if !l.mapping(n, path) {
		return nil
	}
	out := map[string]string{}
	lines := map[string]int{}
	if l.envVarLines == nil {
		l.envVarLines = map[*Command]map[string]int{}
	}
	l.envVarLines[c] = lines
	for _, f := range fields(n) {
		lines[f.Key] = f.Line
		v := f.Value
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!bool" {
			out[f.Key] = v.Value
			continue
		}
		if s, ok := l.str(v, join(path, f.Key)); ok {
			out[f.Key] = s
		}
	}
	return out
}

func (l *loader) decodeOptions(n *yaml.Node, path string, c *Command) {
	if !l.mapping(n, path) {
		return
	}
	c.byLong = map[string]*Option{}
	for _, f := range fields(n) {
		opath := join(path, f.Key)
		if !l.mapping(f.Value, opath) {
			continue
		}
		o := &Option{Name: f.Key, Line: f.Line}
		for _, of := range fields(f.Value) {
			fpath := join(opath, of.Key)
			switch of.Key {
			case "type":
				if s, ok := l.str(of.Value, fpath); ok {
					o.Type = OptionType(s)
					if !validOptionType(o.Type) {
						l.schemaf(of.Value.Line, "%s: %q is not an option type; expected one of string, int, float, bool, incr, list", fpath, s)
					}
				}
			case "description":
				o.Description, _ = l.str(of.Value, fpath)
			case "required":
				o.Required, _ = l.boolean(of.Value, fpath)
			case "short_flag":
				o.ShortFlag, _ = l.str(of.Value, fpath)
			default:
				l.unknownField(of, opath, cogOptionFields)
			}
		}
		l.require(f.Value, f.Line, opath, "type")
		c.options = append(c.options, o)
		c.byLong[o.Name] = o
	}
}

func validOptionType(t OptionType) bool {
	for _, known := range optionTypes {
		if t == known {
			return true
		}
	}
	return false
}
