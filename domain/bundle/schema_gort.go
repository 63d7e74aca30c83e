package bundle

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// The fields of a Gort (gort_bundle_version 1) config, as Gort's bundle
// type reads them, plus Logbook's execution section. Gort's guide also shows
// a Cog-style docker: {image, tag} section, so both spellings are read.
var (
	gortBundleFields   = []string{"gort_bundle_version", "name", "version", "description", "long_description", "author", "homepage", "image", "docker", "kubernetes", "permissions", "commands", "templates", "enabled", "execution", "approvals"}
	gortCommandFields  = []string{"description", "long_description", "executable", "triggers", "rules", "templates", "execution"}
	gortTemplateFields = []string{"command", "command_error", "message", "message_error"}
	gortTriggerFields  = []string{"match"}
)

func (l *loader) decodeGort(root *yaml.Node) *Bundle {
	b := &Bundle{Format: FormatGort, FormatVersion: 1, Line: root.Line, byName: map[string]*Command{}}
	var commands, image *yaml.Node
	dockerLine := 0
	for _, f := range fields(root) {
		v := f.Value
		switch f.Key {
		case "gort_bundle_version":
			// read by decodeRoot
		case "name":
			b.Name, _ = l.str(v, f.Key)
			l.setLine("name", v.Line)
		case "version":
			b.Version, _ = l.str(v, f.Key)
			l.setLine("version", v.Line)
		case "description":
			b.Description, _ = l.str(v, f.Key)
		case "long_description":
			b.LongDescription, _ = l.str(v, f.Key)
		case "author":
			b.Author, _ = l.str(v, f.Key)
		case "homepage":
			b.Homepage, _ = l.str(v, f.Key)
		case "image":
			image = v
			if ref, ok := l.str(v, f.Key); ok {
				b.ImageName, b.Tag = splitImage(ref)
				l.setLine("image", v.Line)
			}
			l.setLine("docker", f.Line)
		case "docker":
			dockerLine = f.Line
			l.decodeCogDocker(v, f.Line, b)
		case "kubernetes":
			if l.mapping(v, f.Key) {
				l.schemaWarnf(f.Line, "kubernetes is ignored: Logbook runs commands with its own runtime")
			}
		case "permissions":
			perms, lines, ok := l.strList(v, f.Key)
			b.Permissions, l.permissionLines, l.permissionsBroke = perms, lines, !ok
		case "commands":
			commands = v
		case "templates":
			b.templates = l.decodeGortTemplates(v, f.Key)
		case "enabled":
			if _, ok := l.boolean(v, f.Key); ok {
				l.schemaWarnf(f.Line, "enabled is ignored: a bundle is enabled with `logbook bundle enable`, not by its config")
			}
		case "execution":
			b.Execution = l.decodeExecution(v, f.Key, true)
		case "approvals":
			l.decodeApprovals(v, f.Line, b)
		default:
			l.unknownField(f, "", gortBundleFields)
		}
	}
	// Gort lists a bundle's permissions without their namespace, while
	// rules name them in full; the model keeps them in full. The name may
	// come after the list, hence after the loop.
	for i, p := range b.Permissions {
		if !strings.Contains(p, ":") {
			b.Permissions[i] = b.Name + ":" + p
		}
	}
	if image != nil && dockerLine != 0 {
		l.schemaf(dockerLine, "both image (line %d) and docker are set; keep one", image.Line)
	}
	if image != nil && b.ImageName != "" && b.Tag == "" {
		l.schemaWarnf(image.Line, "image %q has no tag, so Gort's default, latest, is used; pin a tag so the bundle cannot change under you", b.ImageName)
		b.Tag = "latest"
	}
	l.require(root, root.Line, "", "name", "version", "description", "commands")
	if commands != nil && l.mapping(commands, "commands") {
		l.setLine("commands", commands.Line)
		for _, f := range fields(commands) {
			if c := l.decodeGortCommand(f); c != nil {
				l.addCommand(b, c)
			}
		}
	}
	return b
}

// splitImage splits "registry:5000/repo/name:tag" at the tag's colon: the
// last colon after the last slash.
func splitImage(ref string) (name, tag string) {
	slash := strings.LastIndex(ref, "/")
	if colon := strings.LastIndex(ref, ":"); colon > slash {
		return ref[:colon], ref[colon+1:]
	}
	return ref, ""
}

func (l *loader) decodeGortTemplates(n *yaml.Node, path string) []*Template {
	if !l.mapping(n, path) {
		return nil
	}
	var out []*Template
	for _, f := range fields(n) {
		switch f.Key {
		case "command", "command_error", "message", "message_error":
			if s, ok := l.str(f.Value, join(path, f.Key)); ok {
				t := &Template{Name: f.Key, Body: s, Line: f.Line}
				t.BodyLine, t.bodyBlock = bodyLine(f.Value)
				out = append(out, t)
			}
		default:
			l.unknownField(f, path, gortTemplateFields)
		}
	}
	return out
}

func (l *loader) decodeGortCommand(cf field) *Command {
	path := join("commands", cf.Key)
	if !l.mapping(cf.Value, path) {
		return nil
	}
	c := &Command{Name: cf.Key, Line: cf.Line}
	for _, f := range fields(cf.Value) {
		fpath := join(path, f.Key)
		v := f.Value
		switch f.Key {
		case "description":
			c.Description, _ = l.str(v, fpath)
		case "long_description":
			c.LongDescription, _ = l.str(v, fpath)
		case "executable":
			// Gort's executable is an argv list; empty or absent means
			// the image's entrypoint.
			c.Executable, _, _ = l.strList(v, fpath)
		case "triggers":
			c.Triggers = l.decodeTriggers(v, fpath)
		case "rules":
			c.rules = l.decodeRules(v, fpath)
		case "templates":
			c.templates = l.decodeGortTemplates(v, fpath)
		case "execution":
			c.Execution = l.decodeCommandExecution(v, fpath)
		default:
			l.unknownField(f, path, gortCommandFields)
		}
	}
	l.require(cf.Value, cf.Line, path, "rules")
	return c
}

func (l *loader) decodeTriggers(n *yaml.Node, path string) []Trigger {
	if !l.sequence(n, path) {
		return nil
	}
	var out []Trigger
	for i, item := range n.Content {
		ipath := index(path, i)
		if !l.mapping(item, ipath) {
			continue
		}
		for _, f := range fields(item) {
			if f.Key != "match" {
				l.unknownField(f, ipath, gortTriggerFields)
				continue
			}
			if s, ok := l.str(f.Value, join(ipath, f.Key)); ok {
				out = append(out, Trigger{Match: s, Line: f.Value.Line})
			}
		}
		l.require(item, item.Line, ipath, "match")
	}
	return out
}
