package template

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxPathSteps bounds a variable's path ($a.b[0].c ...).
const maxPathSteps = 32

// varRef is a variable with its path, optionally under a function:
// $instance.tags.Name, $results[0], length($results).
type varRef struct {
	name string
	path []pathStep
	fn   string // "" or "length"
	pos  Pos
}

type pathStep struct {
	key     string
	index   int
	isIndex bool
}

func (v varRef) String() string {
	var b strings.Builder
	b.WriteString("$" + v.name)
	for _, s := range v.path {
		if s.isIndex {
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
		} else {
			b.WriteString("." + s.key)
		}
	}
	if v.fn != "" {
		return v.fn + "(" + b.String() + ")"
	}
	return b.String()
}

// An attribute's value: a literal, a variable, or a condition on one.
type (
	literalValue struct{ v any } // string, json.Number or bool
	refValue     struct{ ref varRef }
	testValue    struct { // $x bound? and the like
		ref  varRef
		test string
	}
	compareValue struct { // $x == "y", $x > 3, $x != $y
		left  varRef
		op    string
		right any // literalValue or refValue
	}
)

type attr struct {
	name  string
	value any
	pos   Pos
}

type tagKind int

const (
	tagValue tagKind = iota // ~$x~ or ~length($x)~
	tagEnd                  // ~end~
	tagNamed                // ~each var=$x~ and the other named tags
)

type tagExpr struct {
	kind  tagKind
	ref   varRef
	name  string
	attrs []attr
	pos   Pos
}

type exprTokKind int

const (
	exVar exprTokKind = iota
	exName
	exTest
	exString
	exNumber
	exPunct
	exEOF
)

type exprTok struct {
	kind exprTokKind
	text string // the name, the string's value, the number, the punctuation
	pos  Pos
}

var conditionTests = map[string]bool{"bound?": true, "not_bound?": true, "empty?": true, "not_empty?": true}

// lexExpr cuts the inside of a tag into tokens; start is the position of
// its first character.
func lexExpr(src string, start Pos) ([]exprTok, error) {
	var out []exprTok
	col := start.Column
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRuneInString(src[i:])
		at := Pos{start.Line, col}
		switch {
		case r == ' ' || r == '\t':
			i, col = i+size, col+1
		case r == '$':
			n := nameLen(src[i+1:])
			if n == 0 {
				return nil, syntaxErrorf(at, "$ must start a variable name, such as $results")
			}
			out = append(out, exprTok{kind: exVar, text: src[i+1 : i+1+n], pos: at})
			i, col = i+1+n, col+1+n
		case isNameStart(r):
			n := nameLen(src[i:])
			word := src[i : i+n]
			if i+n < len(src) && src[i+n] == '?' {
				if !conditionTests[word+"?"] {
					return nil, syntaxErrorf(at, "unknown test %s?; the tests are bound?, not_bound?, empty? and not_empty?", word)
				}
				out = append(out, exprTok{kind: exTest, text: word + "?", pos: at})
				i, col = i+n+1, col+n+1
				continue
			}
			out = append(out, exprTok{kind: exName, text: word, pos: at})
			i, col = i+n, col+n
		case r >= '0' && r <= '9' || r == '-' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9':
			n := numberLen(src[i:])
			out = append(out, exprTok{kind: exNumber, text: src[i : i+n], pos: at})
			i, col = i+n, col+n
		case r == '"':
			value, n, err := scanString(src[i:], at)
			if err != nil {
				return nil, err
			}
			out = append(out, exprTok{kind: exString, text: value, pos: at})
			col += utf8.RuneCountInString(src[i : i+n])
			i += n
		default:
			op := ""
			for _, candidate := range []string{"==", "!=", ">=", "<=", ">", "<", "=", ".", "[", "]", "(", ")"} {
				if strings.HasPrefix(src[i:], candidate) {
					op = candidate
					break
				}
			}
			if op == "" {
				return nil, syntaxErrorf(at, "unexpected %q in a tag", r)
			}
			out = append(out, exprTok{kind: exPunct, text: op, pos: at})
			i, col = i+len(op), col+len(op)
		}
	}
	return append(out, exprTok{kind: exEOF, pos: Pos{start.Line, col}}), nil
}

func isNameStart(r rune) bool { return r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }

// nameLen is the length of the name at the start of s: a letter or _, then
// letters, digits, _ and -.
func nameLen(s string) int {
	if s == "" || !isNameStart(rune(s[0])) {
		return 0
	}
	n := 1
	for n < len(s) {
		c := s[n]
		if isNameStart(rune(c)) || c >= '0' && c <= '9' || c == '-' {
			n++
			continue
		}
		break
	}
	return n
}

func numberLen(s string) int {
	n := 0
	if s[0] == '-' {
		n++
	}
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n+1 < len(s) && s[n] == '.' && s[n+1] >= '0' && s[n+1] <= '9' {
		n++
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
	}
	return n
}

// scanString reads a double-quoted string at the start of s; \" and \\
// stand for " and \.
func scanString(s string, at Pos) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
				b.WriteByte(s[i+1])
				i++
				continue
			}
			b.WriteByte('\\')
		case '"':
			return b.String(), i + 1, nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, syntaxErrorf(at, "the string that starts here has no closing \"")
}

// exprParser reads one tag's tokens.
type exprParser struct {
	toks []exprTok
	i    int
}

func (p *exprParser) peek() exprTok { return p.toks[p.i] }

func (p *exprParser) next() exprTok {
	t := p.toks[p.i]
	if t.kind != exEOF {
		p.i++
	}
	return t
}

func (p *exprParser) isPunct(s string) bool {
	t := p.peek()
	return t.kind == exPunct && t.text == s
}

// parseTagExpr parses what is between a tag's tildes; open is the position
// of the opening ~.
func parseTagExpr(src string, open Pos) (tagExpr, error) {
	toks, err := lexExpr(src, Pos{open.Line, open.Column + 1})
	if err != nil {
		return tagExpr{}, err
	}
	p := &exprParser{toks: toks}
	first := p.peek()
	out := tagExpr{pos: open}
	switch {
	case first.kind == exVar || first.kind == exName && p.toks[1].kind == exPunct && p.toks[1].text == "(":
		ref, err := p.parseRef()
		if err != nil {
			return tagExpr{}, err
		}
		if t := p.peek(); t.kind != exEOF {
			return tagExpr{}, syntaxErrorf(t.pos, "a variable tag holds only the variable: %s is unexpected here", describeTok(t))
		}
		out.kind, out.ref = tagValue, ref
		return out, nil
	case first.kind == exName && first.text == "end":
		p.next()
		if t := p.peek(); t.kind != exEOF {
			return tagExpr{}, syntaxErrorf(t.pos, "~end~ takes nothing: %s is unexpected here", describeTok(t))
		}
		out.kind = tagEnd
		return out, nil
	case first.kind == exName:
		p.next()
		out.kind, out.name = tagNamed, first.text
		seen := map[string]bool{}
		for p.peek().kind != exEOF {
			a, err := p.parseAttr()
			if err != nil {
				return tagExpr{}, err
			}
			if seen[a.name] {
				return tagExpr{}, syntaxErrorf(a.pos, "attribute %s is given twice", a.name)
			}
			seen[a.name] = true
			out.attrs = append(out.attrs, a)
		}
		return out, nil
	}
	return tagExpr{}, syntaxErrorf(first.pos, "a tag starts with a variable ($name) or a tag name, not %s", describeTok(first))
}

func describeTok(t exprTok) string {
	switch t.kind {
	case exVar:
		return "$" + t.text
	case exString:
		return strconv.Quote(t.text)
	case exEOF:
		return "the end of the tag"
	}
	return strconv.Quote(t.text)
}

// parseRef reads $name(.key|[n])* or fn($name...).
func (p *exprParser) parseRef() (varRef, error) {
	t := p.next()
	if t.kind == exName {
		if t.text != "length" {
			return varRef{}, syntaxErrorf(t.pos, "unknown function %s(); the only function is length()", t.text)
		}
		p.next() // (
		inner, err := p.parseRef()
		if err != nil {
			return varRef{}, err
		}
		if inner.fn != "" {
			return varRef{}, syntaxErrorf(inner.pos, "functions do not nest")
		}
		if !p.isPunct(")") {
			return varRef{}, syntaxErrorf(p.peek().pos, "expected ) to close length(, found %s", describeTok(p.peek()))
		}
		p.next()
		inner.fn, inner.pos = t.text, t.pos
		return inner, nil
	}
	if t.kind != exVar {
		return varRef{}, syntaxErrorf(t.pos, "expected a variable ($name), found %s", describeTok(t))
	}
	ref := varRef{name: t.text, pos: t.pos}
	for {
		switch {
		case p.isPunct("."):
			p.next()
			k := p.next()
			if k.kind != exName {
				return varRef{}, syntaxErrorf(k.pos, "expected a key after ., found %s", describeTok(k))
			}
			ref.path = append(ref.path, pathStep{key: k.text})
		case p.isPunct("["):
			p.next()
			n := p.next()
			index, err := strconv.Atoi(n.text)
			if n.kind != exNumber || err != nil || index < 0 {
				return varRef{}, syntaxErrorf(n.pos, "expected a list index (0, 1, ...) after [, found %s", describeTok(n))
			}
			if c := p.next(); c.kind != exPunct || c.text != "]" {
				return varRef{}, syntaxErrorf(c.pos, "expected ] after the index, found %s", describeTok(c))
			}
			ref.path = append(ref.path, pathStep{index: index, isIndex: true})
		default:
			return ref, nil
		}
		if len(ref.path) > maxPathSteps {
			return varRef{}, syntaxErrorf(ref.pos, "the variable's path is longer than %d steps", maxPathSteps)
		}
	}
}

// parseAttr reads name=value, where name may be quoted ("Pipeline ID"=$id)
// and value is a literal, a bare word, a variable or a condition.
func (p *exprParser) parseAttr() (attr, error) {
	n := p.next()
	if n.kind != exName && n.kind != exString {
		return attr{}, syntaxErrorf(n.pos, "expected an attribute name, found %s", describeTok(n))
	}
	if !p.isPunct("=") {
		return attr{}, syntaxErrorf(p.peek().pos, "expected = after attribute %s, found %s", n.text, describeTok(p.peek()))
	}
	p.next()
	v := p.peek()
	a := attr{name: n.text, pos: n.pos}
	switch {
	case v.kind == exVar || v.kind == exName && p.toks[p.i+1].kind == exPunct && p.toks[p.i+1].text == "(":
		ref, err := p.parseRef()
		if err != nil {
			return attr{}, err
		}
		a.value, err = p.parseCondition(ref)
		return a, err
	case v.kind == exString:
		p.next()
		a.value = literalValue{v.text}
	case v.kind == exNumber:
		p.next()
		a.value = literalValue{json.Number(v.text)}
	case v.kind == exName:
		p.next()
		switch v.text {
		case "true", "false":
			a.value = literalValue{v.text == "true"}
		default:
			a.value = literalValue{v.text}
		}
	default:
		return attr{}, syntaxErrorf(v.pos, "expected a value for attribute %s, found %s", n.text, describeTok(v))
	}
	return a, nil
}

// parseCondition reads what may follow a variable in an attribute: a test
// (bound?, empty?, ...) or a comparison; else the variable is the value.
func (p *exprParser) parseCondition(ref varRef) (any, error) {
	t := p.peek()
	if t.kind == exTest {
		p.next()
		return testValue{ref: ref, test: t.text}, nil
	}
	if t.kind != exPunct {
		return refValue{ref}, nil
	}
	switch t.text {
	case "==", "!=", ">", ">=", "<", "<=":
	default:
		return refValue{ref}, nil
	}
	p.next()
	r := p.peek()
	var right any
	switch r.kind {
	case exVar:
		rref, err := p.parseRef()
		if err != nil {
			return nil, err
		}
		right = refValue{rref}
	case exName:
		if r.text == "length" && p.toks[p.i+1].kind == exPunct && p.toks[p.i+1].text == "(" {
			rref, err := p.parseRef()
			if err != nil {
				return nil, err
			}
			right = refValue{rref}
			break
		}
		p.next()
		switch r.text {
		case "true", "false":
			right = literalValue{r.text == "true"}
		default:
			right = literalValue{r.text}
		}
	case exString:
		p.next()
		right = literalValue{r.text}
	case exNumber:
		p.next()
		right = literalValue{json.Number(r.text)}
	default:
		return nil, syntaxErrorf(r.pos, "expected a value to compare with after %s, found %s", t.text, describeTok(r))
	}
	return compareValue{left: ref, op: t.text, right: right}, nil
}
