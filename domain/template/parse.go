package template

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// maxDepth bounds how deeply body tags nest.
const maxDepth = 64

// Template is a parsed Greenbar template. It is immutable and safe for
// concurrent use.
type Template struct {
	nodes    []node
	warnings []Warning
}

// Warning is something a template gets away with: it parses, but likely
// not as its author meant.
type Warning struct {
	Pos
	Msg string
}

func (w Warning) String() string { return w.Pos.String() + ": " + w.Msg }

// Warnings lists what the template gets away with, in source order.
func (t *Template) Warnings() []Warning { return slices.Clone(t.warnings) }

type node interface{ isNode() }

// textNode is literal template text; its markup (Markdown) is read after
// evaluation, and only its own characters can be markup.
type textNode struct{ text string }

// valueNode is ~$x~: a value from the data, never markup.
type valueNode struct{ ref varRef }

// tagNode is a named tag, with its body for the body tags.
type tagNode struct {
	name     string
	attrs    map[string]attr
	attrList []attr // the same, in source order
	body     []node
	pos      Pos
	// block: the tag opens at the start of a line and its ~end~ ends a
	// line, so each pass of its body is whole lines (see doc.go).
	block bool
}

func (textNode) isNode()  {}
func (valueNode) isNode() {}
func (*tagNode) isNode()  {}

type tagSpec struct {
	body     bool
	required []string
	allowed  []string // nil: any attribute (attachment's custom fields)
	refs     []string // attributes that must be variables
	names    []string // attributes that must be a bare word or a string
}

var tagSpecs = map[string]tagSpec{
	"each":       {body: true, required: []string{"var"}, allowed: []string{"var", "as"}, refs: []string{"var"}, names: []string{"as"}},
	"join":       {body: true, required: []string{"var"}, allowed: []string{"var", "as", "with"}, refs: []string{"var"}, names: []string{"as", "with"}},
	"if":         {body: true, required: []string{"cond"}, allowed: []string{"cond"}},
	"attachment": {body: true},
	"title":      {body: true, allowed: []string{}},
	"json":       {required: []string{"var"}, allowed: []string{"var"}, refs: []string{"var"}},
	"count":      {required: []string{"var"}, allowed: []string{"var"}, refs: []string{"var"}},
	"br":         {allowed: []string{}},
}

// TagNames lists the tags the language knows, sorted.
func TagNames() []string {
	names := make([]string, 0, len(tagSpecs))
	for n := range tagSpecs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Parse reads a Greenbar template. A template that does not parse returns a
// *SyntaxError naming the line and column.
func Parse(source string) (*Template, error) {
	if len(source) > MaxSourceBytes {
		return nil, syntaxErrorf(Pos{1, 1}, "the template is %d bytes; at most %d are allowed", len(source), MaxSourceBytes)
	}
	toks, err := lex(source)
	if err != nil {
		return nil, err
	}
	exprs := make([]tagExpr, len(toks))
	for i, t := range toks {
		if t.kind != tokTag {
			continue
		}
		e, err := parseTagExpr(t.text, t.pos)
		if err != nil {
			return nil, err
		}
		if e.kind == tagNamed {
			if err := checkTag(e); err != nil {
				return nil, err
			}
		}
		exprs[i] = e
	}
	lines := layout(toks, exprs)
	nodes, warnings, err := build(toks, exprs, lines)
	if err != nil {
		return nil, err
	}
	return &Template{nodes: nodes, warnings: warnings}, nil
}

func checkTag(e tagExpr) error {
	spec, ok := tagSpecs[e.name]
	if !ok {
		return syntaxErrorf(e.pos, "unknown tag ~%s~; the tags are %s", e.name, strings.Join(TagNames(), ", "))
	}
	given := map[string]attr{}
	for _, a := range e.attrs {
		given[a.name] = a
		if spec.allowed != nil && !slices.Contains(spec.allowed, a.name) {
			if len(spec.allowed) == 0 {
				return syntaxErrorf(a.pos, "~%s~ takes no attributes", e.name)
			}
			return syntaxErrorf(a.pos, "~%s~ has no attribute %s; it takes %s", e.name, a.name, strings.Join(spec.allowed, ", "))
		}
		if slices.Contains(spec.refs, a.name) {
			if _, isRef := a.value.(refValue); !isRef {
				return syntaxErrorf(a.pos, "%s= of ~%s~ takes a variable, such as %s=$results", a.name, e.name, a.name)
			}
		}
		if slices.Contains(spec.names, a.name) {
			if lit, isLit := a.value.(literalValue); !isLit || !isString(lit.v) {
				return syntaxErrorf(a.pos, "%s= of ~%s~ takes a name or a quoted string", a.name, e.name)
			}
		}
	}
	for _, r := range spec.required {
		if _, ok := given[r]; !ok {
			return syntaxErrorf(e.pos, "~%s~ needs a %s= attribute", e.name, r)
		}
	}
	return nil
}

func isString(v any) bool { _, ok := v.(string); return ok }

// lineInfo is what the layout pass learned about the token at the same
// index.
type lineInfo struct {
	atLineStart bool // only indentation precedes it on its line
	atLineEnd   bool // only blanks, comments and ~end~ tags follow it on its line
	standalone  bool // its line holds only body tags, ~end~ tags, comments and blanks
	newline     int  // index of the line break that ends its line, -1 at the end
}

// layout applies the standalone-line rule: a line holding nothing but
// body tags, ~end~ tags, comments and blanks is layout, and its
// indentation and line break are dropped, so tags written on lines of
// their own leave no blank lines behind.
func layout(toks []token, exprs []tagExpr) []lineInfo {
	info := make([]lineInfo, len(toks))
	isLayoutTag := func(i int) bool {
		if toks[i].kind != tokTag {
			return false
		}
		e := exprs[i]
		return e.kind == tagEnd || e.kind == tagNamed && tagSpecs[e.name].body
	}
	blank := func(i int) bool { return toks[i].kind == tokText && strings.TrimSpace(toks[i].text) == "" }
	for start := 0; start < len(toks); {
		end := start
		for end < len(toks) && toks[end].kind != tokNewline {
			end++
		}
		newline := -1
		if end < len(toks) {
			newline = end
		}
		standalone, content := true, false
		for i := start; i < end; i++ {
			switch {
			case blank(i):
			case toks[i].kind == tokComment || isLayoutTag(i):
				content = true
			default:
				standalone = false
			}
		}
		standalone = standalone && content
		// Linear in the line: the first token that is not a blank, and the
		// last that is not a blank, a comment or an ~end~.
		firstNonBlank, lastContent := end, start-1
		for i := start; i < end; i++ {
			if !blank(i) {
				firstNonBlank = i
				break
			}
		}
		for i := end - 1; i >= start; i-- {
			if !blank(i) && toks[i].kind != tokComment && !(toks[i].kind == tokTag && exprs[i].kind == tagEnd) {
				lastContent = i
				break
			}
		}
		for i := start; i < end; i++ {
			info[i] = lineInfo{standalone: standalone, newline: newline, atLineStart: i <= firstNonBlank, atLineEnd: i >= lastContent}
			if toks[i].kind == tokComment || standalone && blank(i) {
				toks[i].dropped = true
			}
		}
		if standalone && newline >= 0 {
			toks[newline].dropped = true
		}
		if newline < 0 {
			break
		}
		start = newline + 1
	}
	return info
}

// build turns the tokens into the node tree, matching each ~end~ to the
// body tag it closes. A body tag still open at the end of the template is
// closed there, with a warning: the published groove bundle leaves one
// open, and Cog rendered it as if closed at the end.
func build(toks []token, exprs []tagExpr, info []lineInfo) ([]node, []Warning, error) {
	type frame struct {
		tag   *tagNode
		index int // of the opening token
		nodes []node
	}
	stack := []*frame{{}}
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			top := stack[len(stack)-1]
			top.nodes = append(top.nodes, textNode{text.String()})
			text.Reset()
		}
	}
	for i, t := range toks {
		if t.dropped {
			continue
		}
		switch t.kind {
		case tokText, tokNewline:
			text.WriteString(t.text)
			continue
		case tokComment:
			continue
		}
		flush()
		e := exprs[i]
		top := stack[len(stack)-1]
		switch e.kind {
		case tagValue:
			top.nodes = append(top.nodes, valueNode{e.ref})
		case tagEnd:
			if len(stack) == 1 {
				return nil, nil, syntaxErrorf(t.pos, "this ~end~ closes no tag")
			}
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			f.tag.body = f.nodes
			f.tag.block = info[f.index].atLineStart && info[i].atLineEnd && f.tag.name != "join"
			if f.tag.block && !info[i].standalone && info[i].newline >= 0 {
				// Each pass of the body ends its line itself.
				toks[info[i].newline].dropped = true
			}
			parent := stack[len(stack)-1]
			parent.nodes = append(parent.nodes, f.tag)
		case tagNamed:
			tag := &tagNode{name: e.name, pos: e.pos, attrs: map[string]attr{}, attrList: e.attrs}
			for _, a := range e.attrs {
				tag.attrs[a.name] = a
			}
			if !tagSpecs[e.name].body {
				top.nodes = append(top.nodes, tag)
				continue
			}
			if len(stack) > maxDepth {
				return nil, nil, syntaxErrorf(t.pos, "tags nest more than %d deep", maxDepth)
			}
			stack = append(stack, &frame{tag: tag, index: i})
		}
	}
	flush()
	var warnings []Warning
	for len(stack) > 1 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		f.tag.body = f.nodes
		f.tag.block = info[f.index].atLineStart
		warnings = append(warnings, Warning{Pos: f.tag.pos, Msg: fmt.Sprintf("~%s~ is never closed; it is closed at the end of the template (add ~end~ after its body)", f.tag.name)})
		parent := stack[len(stack)-1]
		parent.nodes = append(parent.nodes, f.tag)
	}
	slices.Reverse(warnings)
	return stack[0].nodes, warnings, nil
}
