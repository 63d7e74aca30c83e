package bundle

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/logbookhq/logbook/domain/run"
)

// MaxConfigSize caps the size of a config Load accepts. Real bundle configs
// are a few KiB; the cap keeps a hostile document from costing much.
const MaxConfigSize = 1 << 20

// maxProblems caps how many errors one load reports; a config with more has
// a deeper problem than a list can explain.
const maxProblems = 200

// Load reads a bundle config, YAML or JSON, and validates it in two passes:
// the schema (field names, types, required fields, repeated keys) and then
// the meaning (rules, permissions, names, version, image, short flags). It
// returns the bundle, whose Warnings may be non-empty, or an *InvalidError
// listing every error and warning found.
func Load(data []byte) (*Bundle, error) {
	return (&loader{}).run(data)
}

// Site is what one Logbook site lets bundles ask for.
type Site struct {
	// MaxPids caps execution.pids; 0 means run.DefaultMaxPids.
	MaxPids int64
}

// LoadForSite is Load, checking also what the site allows: what `bundle
// validate` and installing a bundle do. A config stored earlier is read
// with Load, so lowering a site's maximum later does not make an installed
// bundle vanish; its runs are held to the maximum instead.
func LoadForSite(data []byte, site Site) (*Bundle, error) {
	if site.MaxPids <= 0 {
		site.MaxPids = run.DefaultMaxPids
	}
	return (&loader{site: &site}).run(data)
}

func (l *loader) run(data []byte) (*Bundle, error) {
	b := l.load(data)
	if len(l.errs) > 0 || b == nil {
		if l.overflow > 0 {
			l.errs = append(l.errs, Problem{Kind: KindSyntax, Message: fmt.Sprintf("%d more errors not shown", l.overflow)})
		}
		return nil, &InvalidError{Errors: l.errs, Warnings: nonNil(l.warns)}
	}
	b.warnings = l.warns
	return b, nil
}

func nonNil(ps []Problem) []Problem {
	if ps == nil {
		return []Problem{}
	}
	return ps
}

// loader accumulates problems across both passes.
type loader struct {
	errs     []Problem
	warns    []Problem
	overflow int
	site     *Site // nil: only Logbook's own bounds

	// Facts the meaning pass needs about the schema pass.
	format           Format
	lines            map[string]int // line of selected fields: "name", "version", "docker", "permissions"
	permissionLines  []int          // line of each entry of Bundle.Permissions
	permissionsBroke bool           // the permissions list had a schema error, so it is incomplete
	envVarLines      map[*Command]map[string]int
}

// maxPids is the site's maximum, or 0 when loading for no site.
func (l *loader) maxPids() int64 {
	if l.site == nil {
		return 0
	}
	return l.site.MaxPids
}

func (l *loader) add(kind Kind, line int, format string, args ...any) {
	if len(l.errs) >= maxProblems {
		l.overflow++
		return
	}
	l.errs = append(l.errs, Problem{Kind: kind, Line: line, Message: fmt.Sprintf(format, args...)})
}

func (l *loader) schemaf(line int, format string, args ...any) {
	l.add(KindSchema, line, format, args...)
}

func (l *loader) meaningf(line int, format string, args ...any) {
	l.add(KindMeaning, line, format, args...)
}

func (l *loader) warn(kind Kind, line int, format string, args ...any) {
	if len(l.warns) >= maxProblems {
		return
	}
	l.warns = append(l.warns, Problem{Kind: kind, Line: line, Message: fmt.Sprintf(format, args...)})
}

func (l *loader) schemaWarnf(line int, format string, args ...any) {
	l.warn(KindSchema, line, format, args...)
}

func (l *loader) warnf(line int, format string, args ...any) {
	l.warn(KindMeaning, line, format, args...)
}

func (l *loader) setLine(field string, line int) {
	if l.lines == nil {
		l.lines = map[string]int{}
	}
	l.lines[field] = line
}

func (l *loader) load(data []byte) *Bundle {
	if len(data) > MaxConfigSize {
		l.add(KindSyntax, 0, "the config is %d bytes; the limit is %d bytes (1 MiB)", len(data), MaxConfigSize)
		return nil
	}
	root, ok := l.parse(data)
	if !ok {
		return nil
	}
	l.checkStructure(root, nil)
	if root.Kind != yaml.MappingNode {
		l.schemaf(root.Line, "a bundle config is a mapping of fields (name, version, commands, ...), found %s", describe(root))
		return nil
	}
	b := l.decodeRoot(root)
	if b == nil {
		return nil
	}
	l.checkMeaning(b)
	return b
}

var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse reads exactly one YAML (or JSON) document into a node tree. Aliases
// are not expanded here: the tree shares the anchored node, and
// checkStructure rejects aliases before anything walks through them.
func (l *loader) parse(data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.add(KindSyntax, 0, "the config is empty")
			return nil, false
		}
		l.syntaxError(err)
		return nil, false
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		l.add(KindSyntax, extra.Line, "a second YAML document starts here; a bundle config is one document")
		return nil, false
	case !errors.Is(err, io.EOF):
		l.syntaxError(err)
		return nil, false
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		l.add(KindSyntax, doc.Line, "the config is empty")
		return nil, false
	}
	return doc.Content[0], true
}

func (l *loader) syntaxError(err error) {
	msg := err.Error()
	if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		l.add(KindSyntax, line, "not valid YAML or JSON: %s", m[2])
		return
	}
	l.add(KindSyntax, 0, "not valid YAML or JSON: %s", msg)
}

// checkStructure walks every node once, before any field is read, and
// reports what a field-by-field decoder would otherwise hide: a key
// repeated in any mapping (YAML decoders keep the last one silently, which
// would drop a security rule written first), aliases and merge keys (which
// can expand a small document into a huge one), and non-string keys.
func (l *loader) checkStructure(n *yaml.Node, path *nodePath) {
	switch n.Kind {
	case yaml.AliasNode:
		l.add(KindSyntax, n.Line, "YAML aliases (*%s) are not supported in bundle configs; write the value out in full", n.Value)
	case yaml.MappingNode:
		first := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := n.Content[i], n.Content[i+1]
			switch {
			case key.Kind == yaml.ScalarNode && key.Tag == "!!merge":
				l.add(KindSyntax, key.Line, "YAML merge keys (<<) are not supported in bundle configs; write the fields out in full")
			case key.Kind != yaml.ScalarNode:
				l.schemaf(key.Line, "a field name must be a string, found %s", describe(key))
			default:
				if at, seen := first[key.Value]; seen {
					if mergesRepeatedKey(n, key.Value) {
						l.schemaWarnf(key.Line, "%s%q repeats the key first defined at line %d; Logbook keeps the rules of both (a YAML decoder would keep only the last list and silently drop the first), so merge them into one list", prefix(path.String()), key.Value, at)
					} else {
						l.schemaf(key.Line, "%s%q repeats the key first defined at line %d; a repeated key would silently replace the first, so remove or merge one of them", prefix(path.String()), key.Value, at)
					}
				} else {
					first[key.Value] = key.Line
				}
			}
			l.checkStructure(value, &nodePath{parent: path, key: key.Value})
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			l.checkStructure(c, &nodePath{parent: path, index: i, inList: true})
		}
	case yaml.ScalarNode:
		if len(n.Tag) > 1 && n.Tag[0] == '!' && n.Tag[1] != '!' {
			l.add(KindSyntax, n.Line, "the YAML tag %s is not supported in bundle configs", n.Tag)
		}
	}
}

// decodeRoot finds which format the document declares and decodes it.
func (l *loader) decodeRoot(root *yaml.Node) *Bundle {
	cog, hasCog := lookup(root, "cog_bundle_version")
	gort, hasGort := lookup(root, "gort_bundle_version")
	switch {
	case hasCog && hasGort:
		l.schemaf(gort.Line, "the config declares both cog_bundle_version (line %d) and gort_bundle_version; keep the one for its format", cog.Line)
		return nil
	case hasCog:
		v, ok := l.integer(cog, "cog_bundle_version")
		if !ok {
			return nil
		}
		switch {
		case v == 4 || v == 5:
		case v == 3:
			l.schemaWarnf(cog.Line, "cog_bundle_version 3 is deprecated and was read as version 4; to upgrade, set cog_bundle_version: 4, add a description, and turn per-provider templates (slack:, hipchat:) into a Greenbar body:")
		case v < 3 && v >= 0:
			l.schemaf(cog.Line, "cog_bundle_version %d is not supported; upgrade the config to version 4: set cog_bundle_version: 4, add a description, and give every command a rules: list (the rule `allow` replaces enforcing: false)", v)
			return nil
		default:
			l.schemaf(cog.Line, "cog_bundle_version %d is not supported; Logbook reads Cog bundle versions 3, 4 and 5", v)
			return nil
		}
		l.format = FormatCog
		return l.decodeCog(root, int(v))
	case hasGort:
		v, ok := l.integer(gort, "gort_bundle_version")
		if !ok {
			return nil
		}
		if v != 1 {
			l.schemaf(gort.Line, "gort_bundle_version %d is not supported; Logbook reads Gort bundle version 1", v)
			return nil
		}
		l.format = FormatGort
		return l.decodeGort(root)
	}
	if _, legacy := lookup(root, "bundle"); legacy {
		l.schemaf(root.Line, "this is Cog's pre-versioned bundle format (a bundle: section); rewrite it as cog_bundle_version: 4 with name, version, description and a commands: mapping")
		return nil
	}
	l.schemaf(root.Line, "missing cog_bundle_version (a Cog bundle, 3 to 5) or gort_bundle_version (a Gort bundle, 1); the version says which fields the config may use")
	return nil
}

// nodePath is where checkStructure is, rendered only for a message: the
// walk can be thousands of levels deep, too deep to build a string per node.
type nodePath struct {
	parent *nodePath
	key    string
	index  int
	inList bool
}

func (p *nodePath) String() string {
	if p == nil {
		return ""
	}
	if p.inList {
		return index(p.parent.String(), p.index)
	}
	return join(p.parent.String(), p.key)
}
