package template

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode"
)

// Running a Cog v3 variant, as Cog did: the output is taken apart into
// its elements (a list's elements, or the one value that is not a list),
// the variant renders each with that element as its context, and the
// renderings are joined by line breaks. The variant's own text is then
// read in the markup of the provider it was written for, and, as in
// Greenbar, only the template's characters can be markup: a value is
// always text, and every renderer escapes it for its provider.

// Cog v3's per-provider variants.
const (
	VariantSlack   = "slack"
	VariantHipChat = "hipchat"
)

// Markup is what a variant's own text is written in.
type Markup int

const (
	// MarkupPlain is text as it is: HipChat's variant, which Cog posted
	// through HipChat's room message API, a plain-text one.
	MarkupPlain Markup = iota
	// MarkupMrkdwn is Slack's: *bold*, _italics_, `code`, ``` blocks and
	// <url|text> links.
	MarkupMrkdwn
)

// MarkupOf is the markup the variant for a provider is written in.
func MarkupOf(variant string) Markup {
	if variant == VariantSlack {
		return MarkupMrkdwn
	}
	return MarkupPlain
}

// CogV3VariantOrder is the order in which a reply looks for a Cog v3
// template's variant. Slack takes its own, else HipChat's. Every other
// provider (IRC, the web UI, the API's plain text) takes HipChat's first:
// HipChat's message API took plain text, so that variant was written to
// read as plain text, where Slack's was written in mrkdwn. Slack's is the
// fallback, its mrkdwn read into directives so that its bold shows as the
// provider's bold rather than as asterisks. (Cog itself had no variant
// for IRC and showed the output as JSON there.)
func CogV3VariantOrder(slack bool) []string {
	if slack {
		return []string{VariantSlack, VariantHipChat}
	}
	return []string{VariantHipChat, VariantSlack}
}

// CogV3Contexts takes a command's JSON output apart as Cog v3 did for its
// templates: a list's elements, or the one value that is not a list; no
// output and null are none. Numbers keep their JSON text.
func CogV3Contexts(output json.RawMessage) ([]any, error) {
	trimmed := bytes.TrimSpace(output)
	if len(trimmed) == 0 {
		return nil, nil
	}
	v, err := DecodeJSON(trimmed)
	if err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []any:
		return x, nil
	}
	return []any{v}, nil
}

// Execute renders the variant over each context, joined by line breaks,
// and reads its text in markup. It never fails: a name that is not there
// is empty, and an evaluation past MaxOutputBytes or MaxBodyPasses is cut
// with a last paragraph saying so.
func (m *Mustache) Execute(contexts []any, markup Markup) Document {
	ev := &evaluator{}
	var out []piece
	for i, c := range contexts {
		if i > 0 {
			out = ev.add(out, piece{kind: pieceLiteral, text: "\n"})
		}
		out = ev.mustachePass(out, m.nodes, &mustacheScope{value: c})
		if ev.cut {
			break
		}
	}
	doc := readVariantMarkup(out, markup)
	if ev.cut {
		doc = append(doc, cutNote())
	}
	return doc
}

// mustacheScope is the context of a pass. An object section lays its
// object over the context around it (FuManchu merged the two), which the
// scope keeps as a chain instead of a copy.
type mustacheScope struct {
	value any
	under *mustacheScope // the context an object section is laid over
}

// lookup resolves a name: its first key in the scope's objects, the one
// laid on top first; further keys in the objects found. Anything missing
// is nil.
func (s *mustacheScope) lookup(n mustacheName) any {
	if len(n.keys) == 0 {
		return s.whole()
	}
	var v any
	found := false
	for sc := s; sc != nil && !found; sc = sc.under {
		if obj, ok := sc.value.(map[string]any); ok {
			v, found = obj[n.keys[0]]
		}
	}
	for _, key := range n.keys[1:] {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = obj[key]
	}
	return v
}

// whole is {{.}}: the context, objects laid over one another merged.
func (s *mustacheScope) whole() any {
	if s.under == nil {
		return s.value
	}
	merged, _ := s.under.whole().(map[string]any)
	out := make(map[string]any, len(merged))
	for k, v := range merged {
		out[k] = v
	}
	top, _ := s.value.(map[string]any)
	for k, v := range top {
		out[k] = v
	}
	return out
}

// mustacheFalsy is FuManchu's: null (or missing), false and an empty list.
// An empty string, zero and an empty object are true.
func mustacheFalsy(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case []any:
		return len(x) == 0
	}
	return false
}

// mustachePass evaluates nodes once in scope s: one element of the
// output, or one pass of a section.
func (ev *evaluator) mustachePass(out []piece, nodes []mustacheNode, s *mustacheScope) []piece {
	ev.passes++
	if ev.passes > MaxBodyPasses {
		ev.cut = true
		return out
	}
	for _, n := range nodes {
		if ev.cut {
			return out
		}
		switch n := n.(type) {
		case mustacheText:
			out = ev.add(out, piece{kind: pieceLiteral, text: n.text})
		case mustacheValue:
			out = ev.add(out, piece{kind: pieceData, text: valueText(s.lookup(n.name))})
		case *mustacheSection:
			out = ev.mustacheSection(out, n, s)
		}
	}
	return out
}

func (ev *evaluator) mustacheSection(out []piece, n *mustacheSection, s *mustacheScope) []piece {
	v := s.lookup(n.name)
	if n.inverted != mustacheFalsy(v) {
		return out
	}
	if n.inverted {
		return ev.mustachePass(out, n.body, s)
	}
	switch x := v.(type) {
	case []any:
		for _, item := range x {
			out = ev.mustachePass(out, n.body, &mustacheScope{value: item})
			if ev.cut {
				break
			}
		}
		return out
	case map[string]any:
		if len(n.name.keys) == 0 {
			return ev.mustachePass(out, n.body, s) // {{#.}} over an object: the same context
		}
		return ev.mustachePass(out, n.body, &mustacheScope{value: x, under: s})
	}
	return ev.mustachePass(out, n.body, s)
}

// readVariantMarkup reads evaluated pieces into blocks: paragraphs of
// lines (a blank line ends one) and, in mrkdwn, ``` code blocks.
func readVariantMarkup(pieces []piece, markup Markup) Document {
	lines := splitLines(pieces)
	p := &blockParser{lines: lines}
	isFence := func(l mdLine) bool { return markup == MarkupMrkdwn && fenceStart(l) >= 0 }
	var doc Document
	for p.i < len(lines) {
		switch l := lines[p.i]; {
		case l.blank():
			p.i++
		case isFence(l):
			doc = append(doc, p.fence())
		default:
			para := Directive{Kind: Paragraph}
			for first := true; p.i < len(lines) && !lines[p.i].blank() && (first || !isFence(lines[p.i])); first = false {
				if !first {
					para.Children = append(para.Children, Directive{Kind: Newline})
				}
				line := trimLineEnd(lines[p.i])
				if markup == MarkupMrkdwn {
					para.Children = append(para.Children, newMrkdwnReader(line, 0).read()...)
				} else {
					para.Children = append(para.Children, plainInline(line)...)
				}
				p.i++
			}
			para.Children = mergeText(para.Children)
			doc = append(doc, para)
		}
	}
	return doc
}

func trimLineEnd(l mdLine) mdLine {
	end := len(l.r)
	for end > 0 && unicode.IsSpace(l.r[end-1]) {
		end--
	}
	return mdLine{r: l.r[:end], lit: l.lit[:end]}
}

// plainInline is a line as text; a line break inside a value is a Newline.
func plainInline(l mdLine) []Directive {
	var out []Directive
	var text strings.Builder
	for i, r := range l.r {
		if r == '\n' && !l.lit[i] {
			out = append(out, Directive{Kind: Text, Text: text.String()}, Directive{Kind: Newline})
			text.Reset()
			continue
		}
		text.WriteRune(r)
	}
	out = append(out, Directive{Kind: Text, Text: text.String()})
	return mergeText(dropEmptyText(out))
}

func dropEmptyText(ds []Directive) []Directive {
	out := ds[:0]
	for _, d := range ds {
		if d.Kind != Text || d.Text != "" {
			out = append(out, d)
		}
	}
	return out
}

// mrkdwnReader reads one line of a Slack variant: *bold*, _italics_,
// `code`, <url|text> and <url> links, and the entities &amp; &lt; &gt;
// Slack asks text to be written with, all from literal characters only.
// Slack's other angle forms (<!here>, <@U123>, <#C123>) are shown as
// text: directives have no mentions; so are ~strike~ and > quotes, which
// have no directive either. Where a search for a closing
// delimiter would start is looked up in tables built once per line, so a
// line of many unmatched delimiters reads in linear time.
type mrkdwnReader struct {
	l     mdLine
	depth int
	// For each index, the first valid closing * or _ at or after it, and
	// the first literal `, > and | at or after it; -1 when there is none.
	nextStar, nextUnderscore, nextTick, nextAngle, nextBar []int
}

func newMrkdwnReader(l mdLine, depth int) *mrkdwnReader {
	n := len(l.r)
	in := &mrkdwnReader{l: l, depth: depth,
		nextStar: make([]int, n+2), nextUnderscore: make([]int, n+2), nextTick: make([]int, n+2), nextAngle: make([]int, n+2), nextBar: make([]int, n+2)}
	next := func(table []int, i int, here bool) {
		table[i] = table[i+1]
		if here {
			table[i] = i
		}
	}
	for _, t := range [][]int{in.nextStar, in.nextUnderscore, in.nextTick, in.nextAngle, in.nextBar} {
		t[n], t[n+1] = -1, -1
	}
	for i := n - 1; i >= 0; i-- {
		next(in.nextStar, i, in.closes(i, '*'))
		next(in.nextUnderscore, i, in.closes(i, '_'))
		next(in.nextTick, i, l.litAt(i, '`'))
		next(in.nextAngle, i, l.litAt(i, '>'))
		next(in.nextBar, i, l.litAt(i, '|'))
	}
	return in
}

// closes says whether a literal c at j can close bold or italics: it
// follows something that is not a blank, and no letter or digit follows
// it (snake_case is not italics).
func (in *mrkdwnReader) closes(j int, c rune) bool {
	r := in.l.r
	return in.l.litAt(j, c) && j > 0 && !unicode.IsSpace(r[j-1]) && (j+1 >= len(r) || !isWordRune(r[j+1]))
}

// opens says whether a literal c at i can open bold or italics.
func (in *mrkdwnReader) opens(i int, c rune) bool {
	r := in.l.r
	return in.l.litAt(i, c) && i+1 < len(r) && !unicode.IsSpace(r[i+1]) && (i == 0 || !isWordRune(r[i-1]))
}

// nested reads the inside of bold, italics or a link's text.
func (in *mrkdwnReader) nested(l mdLine) []Directive {
	if in.depth >= maxInlineDepth {
		return plainInline(l)
	}
	return newMrkdwnReader(l, in.depth+1).read()
}

func (in *mrkdwnReader) slice(from, to int) mdLine {
	return mdLine{r: in.l.r[from:to], lit: in.l.lit[from:to]}
}

var mrkdwnEntities = []struct {
	entity string
	char   rune
}{{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}}

func (in *mrkdwnReader) read() []Directive {
	var out []Directive
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			out = append(out, Directive{Kind: Text, Text: text.String()})
			text.Reset()
		}
	}
	emit := func(d Directive) {
		flush()
		out = append(out, d)
	}
	l := in.l
	r := l.r
	for i := 0; i < len(r); {
		c := r[i]
		switch {
		case !l.lit[i] && c == '\n':
			emit(Directive{Kind: Newline})
			i++
			continue
		case !l.lit[i]:
		case c == '*' || c == '_':
			table, kind := in.nextStar, Bold
			if c == '_' {
				table, kind = in.nextUnderscore, Italics
			}
			if in.opens(i, c) {
				if j := table[i+2]; j >= 0 {
					emit(Directive{Kind: kind, Children: in.nested(in.slice(i+1, j))})
					i = j + 1
					continue
				}
			}
		case c == '`':
			if j := in.nextTick[i+1]; j > i+1 {
				emit(Directive{Kind: Code, Text: string(r[i+1 : j])})
				i = j + 1
				continue
			}
		case c == '<':
			if link, ok := in.link(i); ok {
				emit(link)
				i = in.nextAngle[i+1] + 1
				continue
			}
		case c == '&':
			if e, ok := in.entity(i); ok {
				text.WriteRune(mrkdwnEntities[e].char)
				i += len(mrkdwnEntities[e].entity)
				continue
			}
		}
		text.WriteRune(c)
		i++
	}
	flush()
	return mergeText(out)
}

// link reads <url|text> or <url> at i; a special form (<!here>, <@U1>,
// <#C1>) is not a link.
func (in *mrkdwnReader) link(i int) (Directive, bool) {
	j := in.nextAngle[i+1]
	if j < 0 || j == i+1 || in.l.litAt(i+1, '!') || in.l.litAt(i+1, '@') || in.l.litAt(i+1, '#') {
		return Directive{}, false
	}
	bar := in.nextBar[i+1]
	if bar < 0 || bar > j {
		url := strings.TrimSpace(string(in.l.r[i+1 : j]))
		return Directive{Kind: Link, URL: url, Children: []Directive{{Kind: Text, Text: url}}}, url != ""
	}
	url := strings.TrimSpace(string(in.l.r[i+1 : bar]))
	return Directive{Kind: Link, URL: url, Children: in.nested(in.slice(bar+1, j))}, url != ""
}

// entity says which of Slack's entities is written, literally, at i.
func (in *mrkdwnReader) entity(i int) (int, bool) {
	for e, ent := range mrkdwnEntities {
		if i+len(ent.entity) > len(in.l.r) {
			continue
		}
		match := true
		for k, want := range ent.entity {
			if !in.l.litAt(i+k, want) {
				match = false
				break
			}
		}
		if match {
			return e, true
		}
	}
	return 0, false
}
