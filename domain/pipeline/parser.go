package pipeline

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Parse reads a pipeline. Errors are *SyntaxError (with the column and what
// was expected there), or ErrRerun for the text "!!". One leading "!" (the
// chat prefix) is stripped; columns still count it.
func Parse(text string, opts ...ParseOption) (Pipeline, error) {
	var cfg parseConfig
	for _, o := range opts {
		o(&cfg)
	}
	if err := checkText(text); err != nil {
		return Pipeline{}, err
	}
	if strings.TrimSpace(text) == "!!" {
		return Pipeline{}, ErrRerun
	}
	src := []rune(text)
	start := 0
	for start < len(src) && unicode.IsSpace(src[start]) {
		start++
	}
	if start < len(src) && src[start] == '!' {
		start++
	}
	toks, err := lex(src, start)
	if err != nil {
		return Pipeline{}, err
	}
	p := &parser{toks: toks, spec: cfg.spec}
	return p.pipeline()
}

// ParseWith is Parse with an OptionSpec.
func ParseWith(text string, spec OptionSpec) (Pipeline, error) {
	return Parse(text, WithOptionSpec(spec))
}

// checkText rejects text that is too long, is not UTF-8 or holds a NUL,
// before any work is spent on it.
func checkText(text string) error {
	if len(text) > MaxTextBytes {
		column := 1
		for i := range text {
			if i >= MaxTextBytes {
				break
			}
			column++
		}
		return syntaxErrorf(column, "the pipeline is %d bytes long; the limit is %d bytes (16 KiB)", len(text), MaxTextBytes)
	}
	column := 0
	for i, r := range text {
		column++
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(text[i:]); size == 1 {
				return syntaxErrorf(column, "expected UTF-8 text; found a byte that is not")
			}
		}
		if r == 0 {
			return syntaxErrorf(column, "unexpected NUL character")
		}
	}
	return nil
}

type parser struct {
	toks []token
	pos  int
	spec OptionSpec
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tokEOF {
		p.pos++
	}
	return t
}

func (p *parser) pipeline() (Pipeline, error) {
	var pl Pipeline
	if first := p.peek(); first.kind != tokWord {
		if first.kind == tokEOF {
			return Pipeline{}, syntaxErrorf(first.col, "expected a command name")
		}
		return Pipeline{}, syntaxErrorf(first.col, "expected a command name before %s", first.text)
	}
	for {
		if len(pl.Stages) == MaxStages {
			return Pipeline{}, syntaxErrorf(p.peek().col, "too many stages: a pipeline has at most %d", MaxStages)
		}
		st, err := p.stage()
		if err != nil {
			return Pipeline{}, err
		}
		pl.Stages = append(pl.Stages, st)
		switch op := p.next(); op.kind {
		case tokEOF:
			return pl, nil
		case tokPipe:
			if nxt := p.peek(); nxt.kind != tokWord {
				if nxt.kind == tokEOF {
					return Pipeline{}, syntaxErrorf(nxt.col, "expected a command after %s", op.text)
				}
				return Pipeline{}, syntaxErrorf(nxt.col, "expected a command after %s, found %s", op.text, nxt.text)
			}
		case tokRedirectOne, tokRedirectMany:
			redirects, err := p.redirects(op)
			if err != nil {
				return Pipeline{}, err
			}
			pl.Redirects = redirects
			return pl, nil
		}
	}
}

func (p *parser) stage() (Stage, error) {
	cmdTok := p.next()
	bundle, name, err := commandName(cmdTok)
	if err != nil {
		return Stage{}, err
	}
	st := Stage{Command: cmdTok.text, Bundle: bundle, Name: name, Column: cmdTok.col}
	cmd := CommandRef{Bundle: bundle, Name: name}
	optionsEnded := false
	for p.peek().kind == tokWord {
		tok := p.next()
		if !optionsEnded && startsWithBareDash(tok.chars) {
			text, bare := bareText(tok.chars)
			switch {
			case bare && text == "--":
				optionsEnded = true
				continue
			case bare && (text == "-" || looksNumeric(text)):
				// an argument: typed below
			default:
				opts, err := p.option(cmd, tok)
				if err != nil {
					return Stage{}, err
				}
				st.OptionList = append(st.OptionList, opts...)
				continue
			}
		}
		v, err := valueOf(tok.chars, tok.col, tok.text)
		if err != nil {
			return Stage{}, err
		}
		st.Args = append(st.Args, v)
	}
	st.Options = collectOptions(st.OptionList)
	return st, nil
}

// commandName checks "bundle:cmd" or "cmd", written out and unquoted.
func commandName(tok token) (bundle, name string, err error) {
	for _, ch := range tok.chars {
		if ch.ref != nil {
			return "", "", syntaxErrorf(ch.col, "expected a command name, not a variable: commands are written out so the rules can be checked before anything runs")
		}
		if ch.kind != bareChar {
			return "", "", syntaxErrorf(tok.col, "expected a command name; command names are not quoted or escaped")
		}
	}
	text := tok.text
	colon := strings.IndexByte(text, ':')
	if colon < 0 {
		return "", text, checkName(text, tok.col, "command")
	}
	bundle, name = text[:colon], text[colon+1:]
	bundleCols := utf8.RuneCountInString(bundle)
	if bundle == "" {
		return "", "", syntaxErrorf(tok.col, "expected a bundle name before :")
	}
	if err := checkName(bundle, tok.col, "bundle"); err != nil {
		return "", "", err
	}
	nameCol := tok.col + bundleCols + 1
	if name == "" {
		return "", "", syntaxErrorf(nameCol, "expected a command name after %s:", bundle)
	}
	if second := strings.IndexByte(name, ':'); second >= 0 {
		return "", "", syntaxErrorf(nameCol+utf8.RuneCountInString(name[:second]), "expected one : between bundle and command")
	}
	return bundle, name, checkName(name, nameCol, "command")
}

// checkName accepts letters, digits, _ and -, not starting with -.
func checkName(s string, col int, what string) error {
	i := 0
	for _, r := range s {
		if !isFieldChar(r) && (r != '-' || i == 0) {
			return syntaxErrorf(col+i, "unexpected %q in %s name; expected letters, digits, _ or - (not first)", r, what)
		}
		i++
	}
	return nil
}

// option reads one option word (and its value word, when the spec says the
// option takes one). A "-abc" cluster of declared short flags yields several.
func (p *parser) option(cmd CommandRef, tok token) ([]StageOption, error) {
	chars := tok.chars
	dashes := 1
	if len(chars) > 1 && chars[1].kind == bareChar && chars[1].r == '-' && chars[1].ref == nil {
		dashes = 2
	}
	prefix := strings.Repeat("-", dashes)
	rest := chars[dashes:]

	if len(rest) > 0 && rest[0].ref != nil && !rest[0].interp {
		return p.variableOption(tok, prefix, rest)
	}

	eq := -1
	for i, ch := range rest {
		if ch.kind == bareChar && ch.ref == nil && ch.r == '=' {
			eq = i
			break
		}
	}
	nameChars := rest
	if eq >= 0 {
		nameChars = rest[:eq]
	}
	name, err := optionName(nameChars, tok.col+dashes, prefix)
	if err != nil {
		return nil, err
	}
	short := dashes == 1
	decl, declared := p.lookup(cmd, name, short)
	canonical := name
	if declared {
		canonical = decl.Name
	}
	opt := StageOption{Name: canonical, Flag: prefix + name, Column: tok.col}

	if eq >= 0 {
		valueCol := rest[eq].col + 1
		v, err := valueOf(rest[eq+1:], valueCol, textAfter(tok.text, dashes+utf8.RuneCountInString(name)+1))
		if err != nil {
			return nil, err
		}
		opt.Value = v
		return []StageOption{opt}, nil
	}

	if !declared && short && utf8.RuneCountInString(name) > 1 {
		if cluster, ok := p.cluster(cmd, name, tok.col); ok {
			return p.withValueForLast(cluster)
		}
	}
	if declared && decl.TakesValue {
		return p.withValueForLast([]StageOption{opt})
	}
	opt.Value = Value{Kind: KindBool, Bool: true, Column: tok.col}
	opt.Implicit = true
	return []StageOption{opt}, nil
}

// variableOption reads --$name or --$name=value.
func (p *parser) variableOption(tok token, prefix string, rest []wchar) ([]StageOption, error) {
	ref := rest[0]
	opt := StageOption{Flag: prefix + ref.raw, NameVar: ref.ref, Column: tok.col}
	after := rest[1:]
	switch {
	case len(after) == 0:
		opt.Value = Value{Kind: KindBool, Bool: true, Column: tok.col}
		opt.Implicit = true
	case after[0].kind == bareChar && after[0].ref == nil && after[0].r == '=':
		raw := textAfter(tok.text, len([]rune(prefix+ref.raw))+1)
		v, err := valueOf(after[1:], after[0].col+1, raw)
		if err != nil {
			return nil, err
		}
		opt.Value = v
	default:
		return nil, syntaxErrorf(after[0].col, "expected = or a space after the option name %s", opt.Flag)
	}
	return []StageOption{opt}, nil
}

// optionName checks the characters between the dashes and "=".
func optionName(chars []wchar, col int, prefix string) (string, error) {
	if len(chars) == 0 {
		return "", syntaxErrorf(col, "expected an option name after %s", prefix)
	}
	var b strings.Builder
	for i, ch := range chars {
		ok := ch.kind == bareChar && ch.ref == nil && !ch.quoteMark &&
			(isFieldChar(ch.r) || (i > 0 && (ch.r == '-' || ch.r == '.')))
		if !ok {
			what := "an option name"
			if i > 0 {
				what = "letters, digits, _, - or . in the option name, or ="
			}
			return "", syntaxErrorf(ch.col, "expected %s after %s%s", what, prefix, b.String())
		}
		b.WriteRune(ch.r)
	}
	return b.String(), nil
}

func (p *parser) lookup(cmd CommandRef, flag string, short bool) (OptionDecl, bool) {
	if p.spec == nil {
		return OptionDecl{}, false
	}
	decl, ok := p.spec.LookupOption(cmd, flag, short)
	if ok && decl.Name == "" {
		decl.Name = flag
	}
	return decl, ok
}

// cluster expands -abc into -a -b -c when every letter is a declared short
// flag and only the last may take a value.
func (p *parser) cluster(cmd CommandRef, name string, col int) ([]StageOption, bool) {
	if p.spec == nil {
		return nil, false
	}
	letters := []rune(name)
	out := make([]StageOption, 0, len(letters))
	for i, r := range letters {
		decl, ok := p.lookup(cmd, string(r), true)
		if !ok || (decl.TakesValue && i < len(letters)-1) {
			return nil, false
		}
		opt := StageOption{Name: decl.Name, Flag: "-" + string(r), Column: col + 1 + i}
		if !decl.TakesValue {
			opt.Value = Value{Kind: KindBool, Bool: true, Column: opt.Column}
			opt.Implicit = true
		}
		out = append(out, opt)
	}
	return out, true
}

// withValueForLast gives the last option the next word as its value when it
// takes one (its Value is still unset).
func (p *parser) withValueForLast(opts []StageOption) ([]StageOption, error) {
	last := &opts[len(opts)-1]
	if last.Value.Kind != "" {
		return opts, nil
	}
	nxt := p.peek()
	if nxt.kind != tokWord {
		return nil, syntaxErrorf(nxt.col, "expected a value after %s", last.Flag)
	}
	p.next()
	v, err := valueOf(nxt.chars, nxt.col, nxt.text)
	if err != nil {
		return nil, err
	}
	last.Value = v
	return opts, nil
}

// valueOf types the characters of an argument or option value.
func valueOf(chars []wchar, col int, raw string) (Value, error) {
	if len(chars) == 0 {
		return Value{Kind: KindString, Column: col, Raw: raw}, nil
	}
	quoted := false
	interpolated := false
	for i, ch := range chars {
		if ch.kind != bareChar {
			quoted = true
		}
		if ch.ref == nil {
			continue
		}
		if len(chars) == 1 && (!ch.interp || ch.kind == bareChar) {
			return Value{Kind: KindVariable, Var: ch.ref, Column: ch.col, Raw: ch.raw}, nil
		}
		if ch.interp {
			interpolated = true
			continue
		}
		path := ch.ref.pathText()
		if i == 0 {
			return Value{}, syntaxErrorf(chars[1].col, `expected a space after the variable %s; to join text to a variable write it in double quotes as "${%s}..."`, ch.raw, path)
		}
		return Value{}, syntaxErrorf(ch.col, `the variable %s is joined to other text; write it alone, or in double quotes as "...${%s}"`, ch.raw, path)
	}
	if interpolated {
		return Value{Kind: KindTemplate, Template: segmentsOf(chars), Quoted: quoted, Column: col, Raw: raw}, nil
	}
	text := charsText(chars)
	if quoted {
		return Value{Kind: KindString, Str: text, Quoted: true, Column: col, Raw: raw}, nil
	}
	v := typedLiteral(text)
	v.Column, v.Raw = col, raw
	return v, nil
}

// typedLiteral types unquoted text the way Cog does.
func typedLiteral(text string) Value {
	switch {
	case text == "true":
		return Value{Kind: KindBool, Bool: true}
	case text == "false":
		return Value{Kind: KindBool, Bool: false}
	case isIntText(text):
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			return Value{Kind: KindInt, Int: n}
		}
	case isFloatText(text):
		if f, err := strconv.ParseFloat(text, 64); err == nil {
			return Value{Kind: KindFloat, Float: f}
		}
	}
	return Value{Kind: KindString, Str: text}
}

func segmentsOf(chars []wchar) []Segment {
	var segs []Segment
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			segs = append(segs, Segment{Text: text.String()})
			text.Reset()
		}
	}
	for _, ch := range chars {
		switch {
		case ch.quoteMark:
		case ch.ref != nil:
			flush()
			segs = append(segs, Segment{Var: ch.ref})
		default:
			text.WriteRune(ch.r)
		}
	}
	flush()
	return segs
}

func charsText(chars []wchar) string {
	var b strings.Builder
	for _, ch := range chars {
		if !ch.quoteMark {
			b.WriteRune(ch.r)
		}
	}
	return b.String()
}

// bareText returns the word's text and whether all of it is unquoted,
// unescaped characters.
func bareText(chars []wchar) (string, bool) {
	for _, ch := range chars {
		if ch.kind != bareChar || ch.ref != nil {
			return "", false
		}
	}
	return charsText(chars), true
}

func startsWithBareDash(chars []wchar) bool {
	return len(chars) > 0 && chars[0].kind == bareChar && chars[0].ref == nil && chars[0].r == '-'
}

// textAfter returns s without its first n runes.
func textAfter(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[i:]
		}
		n--
	}
	return ""
}

func looksNumeric(s string) bool { return isIntText(s) || isFloatText(s) }

// isIntText matches [+-]?[0-9]+.
func isIntText(s string) bool { return isDigits(unsigned(s)) }

// isFloatText matches [+-]?[0-9]+\.[0-9]+.
func isFloatText(s string) bool {
	whole, frac, ok := strings.Cut(unsigned(s), ".")
	return ok && isDigits(whole) && isDigits(frac)
}

func unsigned(s string) string {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		return s[1:]
	}
	return s
}

func isDigits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

// redirects reads the destinations after > or *>; they end the pipeline.
func (p *parser) redirects(op token) ([]Redirect, error) {
	var out []Redirect
	for p.peek().kind == tokWord {
		if t := p.peek(); len(out) > 0 && strings.HasPrefix(t.text, "-") {
			// "schedule add ... > #ops --tz Europe/Berlin" reads naturally,
			// but the redirect ends the pipeline.
			return nil, syntaxErrorf(t.col, "%s comes after the redirect %s %s, which ends the pipeline; put options before it", t.text, op.text, out[0].Target)
		}
		r, err := destination(p.next())
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	end := p.peek()
	if len(out) == 0 {
		return nil, syntaxErrorf(end.col, "expected a destination after %s: #room, @user, here, me or chat://...", op.text)
	}
	if op.kind == tokRedirectOne && len(out) > 1 {
		return nil, syntaxErrorf(out[1].Column, "> takes one destination; use *> to send to several")
	}
	if end.kind != tokEOF {
		return nil, syntaxErrorf(end.col, "expected the end of the pipeline after its redirect; found %s (a redirect comes last)", end.text)
	}
	return out, nil
}

// destination types one redirect target, kept as written.
func destination(tok token) (Redirect, error) {
	for _, ch := range tok.chars {
		if ch.ref != nil {
			return Redirect{}, syntaxErrorf(ch.col, "expected a destination, not a variable: destinations are fixed when the pipeline is parsed")
		}
	}
	target := charsText(tok.chars)
	r := Redirect{Target: target, Column: tok.col}
	switch {
	case target == "":
		return Redirect{}, syntaxErrorf(tok.col, "expected a destination: #room, @user, here, me or chat://...")
	case target == "here":
		r.Kind = DestinationHere
	case target == "me":
		r.Kind = DestinationMe
	case strings.HasPrefix(target, "chat://"):
		r.Kind, r.Name = DestinationURL, strings.TrimPrefix(target, "chat://")
		if r.Name == "" {
			return Redirect{}, syntaxErrorf(tok.col+len("chat://"), "expected a room or user after chat://")
		}
	case strings.HasPrefix(target, "chat:") || strings.Contains(target, "://"):
		return Redirect{}, syntaxErrorf(tok.col, "expected a URL destination to begin with chat://")
	case target[0] == '#':
		r.Kind, r.Name = DestinationRoom, target[1:]
		if r.Name == "" {
			return Redirect{}, syntaxErrorf(tok.col+1, "expected a room name after #")
		}
	case target[0] == '@':
		r.Kind, r.Name = DestinationUser, target[1:]
		if r.Name == "" {
			return Redirect{}, syntaxErrorf(tok.col+1, "expected a user name after @")
		}
	default:
		r.Kind, r.Name = DestinationRoom, target
	}
	return r, nil
}
