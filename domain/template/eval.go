package template

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Bounds on one evaluation. A template over a large output can multiply it
// (an ~each~ inside an ~each~); past these the output is cut and says so.
// The reply limits of each provider apply after rendering, on top.
const (
	MaxOutputBytes = 1 << 20 // text produced by one evaluation
	MaxBodyPasses  = 100_000 // passes through tag bodies in one evaluation
)

type pieceKind int

const (
	pieceLiteral    pieceKind = iota // template text: may be markup
	pieceData                        // a value from the data: never markup
	pieceCode                        // ~json~: a code block of its own
	pieceTitle                       // ~title~: children make a header
	pieceAttachment                  // ~attachment~: children make its blocks
)

// piece is evaluation output before Markdown is read: text that remembers
// whether the template or the data wrote it.
type piece struct {
	kind       pieceKind
	text       string
	children   []piece
	attachment *AttachmentInfo
}

// scope is a chain of variable frames; ~each~ and ~join~ bind their item
// in a frame of their own.
type scope struct {
	vars   map[string]any
	parent *scope
}

func (s *scope) lookup(name string) (any, bool) {
	for f := s; f != nil; f = f.parent {
		if v, ok := f.vars[name]; ok {
			return v, true
		}
	}
	return nil, false
}

type evaluator struct {
	size   int
	passes int
	cut    bool
}

// Execute renders the template with data (the variables by name, as
// CogScope builds them) into directives. It never fails: a variable that
// is not there is empty, and an output past MaxOutputBytes or
// MaxBodyPasses is cut, with a last paragraph saying so.
func (t *Template) Execute(data map[string]any) Document {
	ev := &evaluator{}
	pieces := ev.nodes(nil, t.nodes, &scope{vars: data})
	doc := markdown(pieces)
	if ev.cut {
		doc = append(doc, cutNote())
	}
	return doc
}

// cutNote ends the directives of an evaluation cut at its bounds.
func cutNote() Directive {
	return Directive{Kind: Paragraph, Children: []Directive{{Kind: Text,
		Text: fmt.Sprintf("[output cut: the template produced more than %d bytes or %d passes]", MaxOutputBytes, MaxBodyPasses)}}}
}

// CogScope is the data a bundle's template sees, as in Cog: $results is
// the command's output as a list (an output that is not a list is its one
// element; no output is an empty list). Numbers keep their JSON text.
func CogScope(output json.RawMessage) (map[string]any, error) {
	results := []any{}
	if trimmed := bytes.TrimSpace(output); len(trimmed) > 0 {
		v, err := DecodeJSON(trimmed)
		if err != nil {
			return nil, err
		}
		switch x := v.(type) {
		case nil:
		case []any:
			results = x
		default:
			results = []any{x}
		}
	}
	return map[string]any{"results": results}, nil
}

// DecodeJSON decodes one JSON value with numbers kept as json.Number, so
// 10000000000000001 and 1.50 print as the command wrote them.
func DecodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}

func (ev *evaluator) add(out []piece, p piece) []piece {
	if ev.cut {
		return out
	}
	ev.size += len(p.text)
	if ev.size > MaxOutputBytes {
		ev.cut = true
		return out
	}
	return append(out, p)
}

func (ev *evaluator) nodes(out []piece, nodes []node, s *scope) []piece {
	for _, n := range nodes {
		if ev.cut {
			return out
		}
		switch n := n.(type) {
		case textNode:
			out = ev.add(out, piece{kind: pieceLiteral, text: n.text})
		case valueNode:
			out = ev.add(out, piece{kind: pieceData, text: valueText(resolve(n.ref, s))})
		case *tagNode:
			out = ev.tag(out, n, s)
		}
	}
	return out
}

func (ev *evaluator) tag(out []piece, t *tagNode, s *scope) []piece {
	switch t.name {
	case "br":
		return ev.add(out, piece{kind: pieceLiteral, text: "\n"})
	case "count":
		return ev.add(out, piece{kind: pieceData, text: countText(ev.attr(t, "var", s))})
	case "json":
		return ev.add(out, piece{kind: pieceCode, text: jsonText(ev.attr(t, "var", s), true)})
	case "if":
		if truthy(ev.attr(t, "cond", s)) {
			return ev.pass(out, t, s)
		}
		return out
	case "each", "join":
		name := "item"
		if as, ok := ev.attr(t, "as", s).(string); ok && as != "" {
			name = as
		}
		sep := ", "
		if with, ok := ev.attr(t, "with", s).(string); ok {
			sep = with
		}
		for i, item := range items(ev.attr(t, "var", s)) {
			if t.name == "join" && i > 0 {
				out = ev.add(out, piece{kind: pieceLiteral, text: sep})
			}
			out = ev.pass(out, t, &scope{vars: map[string]any{name: item}, parent: s})
			if ev.cut {
				break
			}
		}
		return out
	case "title":
		body := ev.pass(nil, t, s)
		return ev.add(out, piece{kind: pieceTitle, children: body})
	case "attachment":
		body := ev.pass(nil, t, s)
		return ev.add(out, piece{kind: pieceAttachment, children: body, attachment: ev.attachment(t, s)})
	}
	return out
}

// pass evaluates a tag's body once. A block-form tag's pass ends its line.
func (ev *evaluator) pass(out []piece, t *tagNode, s *scope) []piece {
	ev.passes++
	if ev.passes > MaxBodyPasses {
		ev.cut = true
		return out
	}
	before := len(out)
	out = ev.nodes(out, t.body, s)
	if t.block && len(out) > before {
		last := out[len(out)-1]
		endsLine := last.kind == pieceLiteral && strings.HasSuffix(last.text, "\n") ||
			last.kind == pieceCode || last.kind == pieceTitle || last.kind == pieceAttachment
		if !endsLine {
			out = ev.add(out, piece{kind: pieceLiteral, text: "\n"})
		}
	}
	return out
}

// attr evaluates a tag's attribute; a missing one is nil.
func (ev *evaluator) attr(t *tagNode, name string, s *scope) any {
	a, ok := t.attrs[name]
	if !ok {
		return nil
	}
	return evalValue(a.value, s)
}

// attachmentAttributes maps an attachment's known attribute names to where
// they go.
var attachmentAttributes = map[string]func(*AttachmentInfo, string){
	"title":       func(a *AttachmentInfo, v string) { a.Title = v },
	"title_url":   func(a *AttachmentInfo, v string) { a.TitleURL = v },
	"color":       func(a *AttachmentInfo, v string) { a.Color = v },
	"pretext":     func(a *AttachmentInfo, v string) { a.Pretext = v },
	"fallback":    func(a *AttachmentInfo, v string) { a.Fallback = v },
	"image_url":   func(a *AttachmentInfo, v string) { a.ImageURL = v },
	"thumb_url":   func(a *AttachmentInfo, v string) { a.ThumbURL = v },
	"author":      func(a *AttachmentInfo, v string) { a.Author = v },
	"author_link": func(a *AttachmentInfo, v string) { a.AuthorLink = v },
	"author_icon": func(a *AttachmentInfo, v string) { a.AuthorIcon = v },
	"footer":      func(a *AttachmentInfo, v string) { a.Footer = v },
	"footer_icon": func(a *AttachmentInfo, v string) { a.FooterIcon = v },
	"ts":          func(a *AttachmentInfo, v string) { a.Timestamp = v },
}

func (ev *evaluator) attachment(t *tagNode, s *scope) *AttachmentInfo {
	info := &AttachmentInfo{}
	// Source order, so custom fields keep the order they were written in.
	for _, a := range t.attrList {
		v := valueText(evalValue(a.value, s))
		if set, ok := attachmentAttributes[a.name]; ok {
			set(info, v)
			continue
		}
		title, short := strings.CutSuffix(a.name, "-short")
		info.Fields = append(info.Fields, Field{Title: title, Value: v, Short: short})
	}
	return info
}

// items is what ~each~ and ~join~ go through: a list's elements; any other
// value is one item; nothing (unbound or null) is no items.
func items(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	}
	return []any{v}
}

// resolve follows a variable's path. A key of something that is not an
// object, an index past a list's end or of something that is not a list,
// and a variable no frame binds are all unbound (nil).
func resolve(ref varRef, s *scope) any {
	v, _ := s.lookup(ref.name)
	for _, step := range ref.path {
		if v == nil {
			break
		}
		if step.isIndex {
			list, ok := v.([]any)
			if !ok || step.index >= len(list) {
				v = nil
				continue
			}
			v = list[step.index]
			continue
		}
		obj, ok := v.(map[string]any)
		if !ok {
			v = nil
			continue
		}
		v = obj[step.key]
	}
	if ref.fn == "length" {
		switch x := v.(type) {
		case []any:
			return json.Number(strconv.Itoa(len(x)))
		case map[string]any:
			return json.Number(strconv.Itoa(len(x)))
		}
		return json.Number("0")
	}
	return v
}

func evalValue(v any, s *scope) any {
	switch x := v.(type) {
	case literalValue:
		return x.v
	case refValue:
		return resolve(x.ref, s)
	case testValue:
		got := resolve(x.ref, s)
		switch x.test {
		case "bound?":
			return got != nil
		case "not_bound?":
			return got == nil
		case "empty?":
			return isEmpty(got)
		case "not_empty?":
			return !isEmpty(got)
		}
	case compareValue:
		return compare(resolve(x.left, s), x.op, evalValue(x.right, s))
	}
	return nil
}

// isEmpty: unbound, null, "", [] and {} are empty.
func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// truthy is Cog's truth: everything but unbound, null and false.
func truthy(v any) bool {
	b, isBool := v.(bool)
	return v != nil && (!isBool || b)
}

// compare: numbers compare as numbers, strings as strings, booleans by
// equality; values of different types are never equal and never ordered,
// and unbound equals only unbound.
func compare(left any, op string, right any) bool {
	ln, lnum := number(left)
	rn, rnum := number(right)
	var order int
	var comparable, ordered bool
	switch {
	case lnum && rnum:
		comparable, ordered = true, true
		switch {
		case ln < rn:
			order = -1
		case ln > rn:
			order = 1
		}
	default:
		ls, lstr := left.(string)
		rs, rstr := right.(string)
		switch {
		case lstr && rstr:
			comparable, ordered = true, true
			order = strings.Compare(ls, rs)
		case left == nil && right == nil:
			comparable = true
		default:
			lb, lbool := left.(bool)
			rb, rbool := right.(bool)
			if lbool && rbool {
				comparable = true
				if lb != rb {
					order = 1
				}
			}
		}
	}
	switch op {
	case "==":
		return comparable && order == 0
	case "!=":
		return !comparable || order != 0
	case ">":
		return ordered && order > 0
	case ">=":
		return ordered && order >= 0
	case "<":
		return ordered && order < 0
	case "<=":
		return ordered && order <= 0
	}
	return false
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}

// valueText is how a value shows in text: a string as it is, a number as
// the JSON had it, null and unbound as nothing, lists and objects as JSON.
func valueText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return jsonText(v, false)
}

// countText is ~count~: a list's length, an object's number of keys, 0 for
// unbound and N/A for anything else, as in Cog.
func countText(v any) string {
	switch x := v.(type) {
	case nil:
		return "0"
	case []any:
		return strconv.Itoa(len(x))
	case map[string]any:
		return strconv.Itoa(len(x))
	}
	return "N/A"
}
