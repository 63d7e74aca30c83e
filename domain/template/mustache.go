package template

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Cog bundle version 3 templates are Mustache, one variant per chat
// provider (slack:, hipchat:), as Cog rendered them with FuManchu before
// Greenbar replaced it in Cog 0.14. Logbook reads the part of Mustache
// those templates use:
//
//   - {{name}} and {{a.b.c}}: a value of the current context, by a path of
//     keys; {{.}} is the context itself. {{{name}}} and {{& name}} are the
//     same: they only skipped FuManchu's HTML escaping, and Logbook's
//     renderers escape every value for their provider anyway.
//   - {{#name}}...{{/name}}: a section. A list goes through its elements,
//     each the whole context of its pass (FuManchu gave an element no
//     access to the context around it); an object is laid over the
//     context for one pass; any other value but false and null renders
//     once. null, false, a missing name and an empty list render nothing.
//   - {{^name}}...{{/name}}: rendered once when the section would not be.
//   - {{! comment }}, which may span lines.
//
// A line holding only a section tag, a closing tag or a comment (and
// blanks) leaves nothing behind, as the Mustache spec says. Partials
// ({{> json}}) and changed delimiters ({{=<% %>=}}) are refused with their
// line and column, as is a tag not closed on its line, a name with blanks
// in it, and a {{/name}} that closes something else.

// Mustache is a parsed Cog v3 template variant. It is immutable and safe
// for concurrent use.
type Mustache struct {
	nodes []mustacheNode
}

type mustacheNode interface{ isMustacheNode() }

// mustacheText is template text, line breaks included.
type mustacheText struct{ text string }

// mustacheValue is {{name}}: a value of the data, never markup.
type mustacheValue struct{ name mustacheName }

// mustacheSection is {{#name}} or {{^name}} and its body.
type mustacheSection struct {
	name     mustacheName
	inverted bool
	body     []mustacheNode
}

func (mustacheText) isMustacheNode()     {}
func (mustacheValue) isMustacheNode()    {}
func (*mustacheSection) isMustacheNode() {}

// mustacheName is a dotted name; no keys is ".", the context itself.
type mustacheName struct {
	keys []string
}

type mustacheTokenKind int

const (
	mustacheTokText    mustacheTokenKind = iota // literal text without a line break
	mustacheTokNewline                          // one line break
	mustacheTokTag                              // {{...}}
)

type mustacheToken struct {
	kind mustacheTokenKind
	text string
	pos  Pos
	// For a tag: its sigil (# ^ / ! & or 0 for a value; {{{x}}} is &),
	// its name as written and where the name starts.
	sigil   byte
	name    string
	namePos Pos
	// dropped: the token is layout (part of a standalone tag's line).
	dropped bool
}

// standalone says whether a tag of this sigil takes its line with it when
// it is alone on it.
func (t mustacheToken) standalone() bool {
	return t.kind == mustacheTokTag && strings.IndexByte("#^/!", t.sigil) >= 0
}

// ParseMustache reads a Cog v3 template variant. A source that does not
// parse returns a *SyntaxError naming the line and column. One line break
// at the end of the source is dropped, as Cog dropped it when it stored a
// template.
func ParseMustache(source string) (*Mustache, error) {
	if len(source) > MaxSourceBytes {
		return nil, syntaxErrorf(Pos{1, 1}, "the template is %d bytes; at most %d are allowed", len(source), MaxSourceBytes)
	}
	if trimmed, ok := strings.CutSuffix(source, "\r\n"); ok {
		source = trimmed
	} else {
		source = strings.TrimSuffix(source, "\n")
	}
	toks, err := lexMustache(source)
	if err != nil {
		return nil, err
	}
	mustacheLayout(toks)
	nodes, err := buildMustache(toks)
	if err != nil {
		return nil, err
	}
	return &Mustache{nodes: nodes}, nil
}

// lexMustache cuts source into text, line breaks and tags. A tag must
// close on the line it opens on (a comment may span lines), so a missing
// }} is reported where it was left out.
func lexMustache(source string) ([]mustacheToken, error) {
	var toks []mustacheToken
	line, col := 1, 1
	var text strings.Builder
	textPos := Pos{1, 1}
	flush := func() {
		if text.Len() > 0 {
			toks = append(toks, mustacheToken{kind: mustacheTokText, text: text.String(), pos: textPos})
			text.Reset()
		}
	}
	for i := 0; i < len(source); {
		here := Pos{line, col}
		rest := source[i:]
		switch {
		case strings.HasPrefix(rest, "\r\n"), rest[0] == '\n':
			flush()
			toks = append(toks, mustacheToken{kind: mustacheTokNewline, text: "\n", pos: here})
			i += 1 + strings.IndexByte(rest, '\n')
			line, col = line+1, 1
			continue
		case strings.HasPrefix(rest, "{{"):
			flush()
			tok, n, err := scanMustacheTag(rest, here)
			if err != nil {
				return nil, err
			}
			toks = append(toks, tok)
			// Only a comment spans lines; count where it ends.
			taken := rest[:n]
			if breaks := strings.Count(taken, "\n"); breaks > 0 {
				line += breaks
				col = 1 + utf8.RuneCountInString(taken[strings.LastIndexByte(taken, '\n')+1:])
			} else {
				col += utf8.RuneCountInString(taken)
			}
			i += n
			continue
		}
		_, size := utf8.DecodeRuneInString(rest)
		if text.Len() == 0 {
			textPos = here
		}
		text.WriteString(rest[:size])
		i, col = i+size, col+1
	}
	flush()
	return toks, nil
}

// scanMustacheTag reads the tag at the start of rest (which starts with
// {{) and returns it with how many bytes it took.
func scanMustacheTag(rest string, open Pos) (mustacheToken, int, error) {
	tok := mustacheToken{kind: mustacheTokTag, pos: open}
	if strings.HasPrefix(rest, "{{!") {
		end := strings.Index(rest, "}}")
		if end < 0 {
			return tok, 0, syntaxErrorf(open, "the comment that opens here is never closed: }} is missing")
		}
		tok.sigil, tok.text = '!', rest[:end+2]
		return tok, end + 2, nil
	}
	opener, closer := "{{", "}}"
	if strings.HasPrefix(rest, "{{{") {
		opener, closer = "{{{", "}}}"
	}
	lineEnd := strings.IndexAny(rest, "\r\n")
	if lineEnd < 0 {
		lineEnd = len(rest)
	}
	end := strings.Index(rest[len(opener):lineEnd], closer)
	if end < 0 {
		if lineEnd < len(rest) {
			return tok, 0, syntaxErrorf(open, "the tag that opens here is not closed on its line: %s is missing", closer)
		}
		return tok, 0, syntaxErrorf(open, "the tag that opens here is not closed: %s is missing", closer)
	}
	inner := rest[len(opener) : len(opener)+end]
	tok.text = rest[:len(opener)+end+len(closer)]
	at := func(offset int) Pos {
		return Pos{open.Line, open.Column + utf8.RuneCountInString(rest[:len(opener)+offset])}
	}
	if nested := strings.Index(inner, "{{"); nested >= 0 {
		return tok, 0, syntaxErrorf(at(nested), "a tag cannot hold {{: the tag that opens at column %d is not closed before it", open.Column)
	}
	body := inner
	switch {
	case opener == "{{{":
		tok.sigil = '&'
	case len(inner) > 0 && strings.IndexByte("#^/&>=", inner[0]) >= 0:
		tok.sigil, body = inner[0], inner[1:]
	}
	switch tok.sigil {
	case '>':
		return tok, 0, syntaxErrorf(open, "partials ({{> name}}) are not supported: write the values the partial showed with {{name}}")
	case '=':
		return tok, 0, syntaxErrorf(open, "changing the delimiters (%s) is not supported", "{{=<% %>=}}")
	}
	lead := len(body) - len(strings.TrimLeftFunc(body, unicode.IsSpace))
	tok.name = strings.TrimSpace(body)
	tok.namePos = at(len(inner) - len(body) + lead)
	if err := checkMustacheName(tok.name, tok.namePos, tok.pos); err != nil {
		return tok, 0, err
	}
	return tok, len(tok.text), nil
}

// checkMustacheName accepts "." or keys joined by dots, each without blanks
// or braces.
func checkMustacheName(name string, at, tag Pos) error {
	if name == "" {
		return syntaxErrorf(tag, "the tag has no name: write {{name}}, or {{.}} for the whole value")
	}
	if name == "." {
		return nil
	}
	for i, r := range []rune(name) {
		here := Pos{at.Line, at.Column + i}
		switch {
		case unicode.IsSpace(r):
			return syntaxErrorf(here, "a name cannot hold a blank: write {{a.b}} for the key b of a")
		case r == '{' || r == '}':
			return syntaxErrorf(here, "a name cannot hold %q", r)
		}
	}
	if slices.Contains(strings.Split(name, "."), "") {
		return syntaxErrorf(at, "%q has an empty key: keys are joined by single dots (a.b), and {{.}} stands alone", name)
	}
	return nil
}

// mustacheLayout drops the blanks and the line break of every line that
// holds one section, closing or comment tag and nothing else but blanks.
func mustacheLayout(toks []mustacheToken) {
	for start := 0; start < len(toks); {
		end := start
		for end < len(toks) && toks[end].kind != mustacheTokNewline {
			end++
		}
		tags, standalone := 0, true
		for i := start; i < end; i++ {
			switch t := toks[i]; {
			case t.kind == mustacheTokText && strings.TrimSpace(t.text) == "":
			case t.standalone():
				tags++
			default:
				standalone = false
			}
		}
		if standalone && tags == 1 {
			for i := start; i < end; i++ {
				if toks[i].kind == mustacheTokText {
					toks[i].dropped = true
				}
			}
			if end < len(toks) {
				toks[end].dropped = true
			}
		}
		start = end + 1
	}
}

// buildMustache matches sections with their closing tags into a tree.
func buildMustache(toks []mustacheToken) ([]mustacheNode, error) {
	type frame struct {
		open  mustacheToken
		name  mustacheName
		nodes []mustacheNode
	}
	stack := []*frame{{}}
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			top := stack[len(stack)-1]
			top.nodes = append(top.nodes, mustacheText{text.String()})
			text.Reset()
		}
	}
	for _, t := range toks {
		if t.dropped {
			continue
		}
		if t.kind != mustacheTokTag {
			text.WriteString(t.text)
			continue
		}
		flush()
		top := stack[len(stack)-1]
		switch t.sigil {
		case '!':
		case '#', '^':
			if len(stack) > maxDepth {
				return nil, syntaxErrorf(t.pos, "sections nest more than %d deep", maxDepth)
			}
			stack = append(stack, &frame{open: t, name: parseMustacheName(t.name)})
		case '/':
			if len(stack) == 1 {
				return nil, syntaxErrorf(t.pos, "{{/%s}} closes no section", t.name)
			}
			if t.name != top.open.name {
				return nil, syntaxErrorf(t.pos, "{{/%s}} does not close the innermost open section, {{%c%s}} at %s: close it first", t.name, top.open.sigil, top.open.name, top.open.pos)
			}
			stack = stack[:len(stack)-1]
			parent := stack[len(stack)-1]
			parent.nodes = append(parent.nodes, &mustacheSection{name: top.name, inverted: top.open.sigil == '^', body: top.nodes})
		default:
			top.nodes = append(top.nodes, mustacheValue{parseMustacheName(t.name)})
		}
	}
	flush()
	if len(stack) > 1 {
		open := stack[len(stack)-1].open
		return nil, syntaxErrorf(open.pos, "{{%c%s}} is never closed: add {{/%s}} after its body", open.sigil, open.name, open.name)
	}
	return stack[0].nodes, nil
}

func parseMustacheName(name string) mustacheName {
	if name == "." {
		return mustacheName{}
	}
	return mustacheName{keys: strings.Split(name, ".")}
}
