package rules

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// maxNesting bounds parentheses so a hostile rule cannot exhaust the stack.
const maxNesting = 100

// keywords cannot be bare values or names; quote them to use them as text.
// Cog reserves the same words (plus `allow`, which Logbook adds).
var keywords = map[string]bool{
	"when": true, "command": true, "is": true, "with": true, "must": true, "have": true,
	"allow": true, "and": true, "or": true, "in": true, "any": true, "all": true,
	"arg": true, "args": true, "option": true, "options": true, "not": true,
}

// Parse parses one rule in full form:
//
//	when command is ns:cmd [with <criteria>] must have <permission expression>
//	when command is ns:cmd [with <criteria>] allow
//
// Gort's spelling without `when command is` (ns:cmd [with ...] allow) is
// accepted too. Errors are *SyntaxError.
func Parse(text string) (*Rule, error) {
	toks, err := lex(text)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	if first := p.peek(); p.isWord("with") || p.isWord("must") || p.isWord("allow") {
		return nil, syntaxErrorf(first.Col, "a rule must name its command: expected `when command is bundle:command` before %s (short forms are accepted only in a bundle's command config)", first.describe())
	}
	return p.rule("")
}

// ParseForCommand parses a rule from the config of command in bundle. Besides
// the full form it accepts the short forms Cog and Gort bundles use, which
// leave the command implied:
//
//	allow
//	must have <permission expression>
//	with <criteria> must have <permission expression>
//	with <criteria> allow
//
// A short form is expanded to the full form for bundle:command. A full-form
// rule is returned as is; the caller checks that it names its own command.
// Errors are *SyntaxError (columns count from the start of text) or, when
// bundle and command do not make a valid command name, *NameError.
func ParseForCommand(bundle, command, text string) (*Rule, error) {
	toks, err := lex(text)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, short: true}
	if !(p.isWord("with") || p.isWord("must") || p.isWord("allow")) {
		return p.rule("")
	}
	implied := bundle + ":" + command
	if msg := nameProblem(implied, "command", "bundle:command"); msg != "" {
		return nil, &NameError{Bundle: bundle, Command: command, Msg: "cannot expand a short-form rule: " + msg}
	}
	return p.rule(implied)
}

type parser struct {
	toks  []token
	pos   int
	depth int
	// short is set when short forms are allowed, for a better first message.
	short bool
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.Kind != tokEOF {
		p.pos++
	}
	return t
}

func (p *parser) isWord(text string) bool {
	t := p.peek()
	return t.Kind == tokWord && t.Text == text
}

// expectWord consumes the keyword text or fails saying what came before it.
func (p *parser) expectWord(text, after string) error {
	if p.isWord(text) {
		p.next()
		return nil
	}
	t := p.peek()
	return syntaxErrorf(t.Col, "expected `%s` after %s, found %s%s", text, after, t.describe(), caseHint(t))
}

// caseHint explains a keyword written in the wrong case.
func caseHint(t token) string {
	if t.Kind == tokWord && t.Text != strings.ToLower(t.Text) && keywords[strings.ToLower(t.Text)] {
		return " (keywords are lowercase)"
	}
	return ""
}

// rule parses a whole rule. implied is the command of a short form, or ""
// when the text must name its command.
func (p *parser) rule(implied string) (*Rule, error) {
	r := &Rule{command: implied}
	if implied == "" {
		if p.isWord("when") {
			p.next()
			if err := p.expectWord("command", "`when`"); err != nil {
				return nil, err
			}
			if err := p.expectWord("is", "`when command`"); err != nil {
				return nil, err
			}
		} else if t := p.peek(); !(t.Kind == tokWord && strings.Contains(t.Text, ":")) {
			if p.short {
				return nil, syntaxErrorf(t.Col, "expected `allow`, `must have`, `with` or a full rule starting with `when command is`, found %s%s", t.describe(), caseHint(t))
			}
			return nil, syntaxErrorf(t.Col, "expected a rule starting with `when command is`, found %s%s", t.describe(), caseHint(t))
		}
		name, err := p.name("command", "bundle:command")
		if err != nil {
			return nil, err
		}
		r.command = name
	}

	if p.isWord("with") {
		p.next()
		if err := p.misplacedApproval(); err != nil {
			return nil, err
		}
		c, err := p.criteria()
		if err != nil {
			return nil, err
		}
		r.criteria = c
	}

	switch t := p.peek(); {
	case p.isWord("allow"):
		p.next()
		if err := p.approvalClause(r); err != nil {
			return nil, err
		}
		if t := p.peek(); t.Kind != tokEOF {
			return nil, syntaxErrorf(t.Col, "`allow` stands alone: expected the end of the rule or `with approval from ...`, found %s", t.describe())
		}
		return r, nil
	case p.isWord("must"):
		p.next()
		if err := p.expectWord("have", "`must`"); err != nil {
			return nil, err
		}
		req, err := p.permissions()
		if err != nil {
			return nil, err
		}
		r.require = req
		if err := p.approvalClause(r); err != nil {
			return nil, err
		}
		if t := p.peek(); t.Kind != tokEOF {
			return nil, syntaxErrorf(t.Col, "expected `and`, `or`, `with approval from ...` or the end of the rule after a permission, found %s%s", t.describe(), caseHint(t))
		}
		return r, nil
	case r.criteria != nil:
		return nil, syntaxErrorf(t.Col, "expected `and`, `or`, `must have` or `allow` after a criterion, found %s%s", t.describe(), caseHint(t))
	default:
		return nil, syntaxErrorf(t.Col, "expected `with`, `must have` or `allow` after the command, found %s%s", t.describe(), caseHint(t))
	}
}

// name reads a namespaced name (a command or a permission), bare or quoted.
func (p *parser) name(what, shape string) (string, error) {
	t := p.peek()
	if t.Kind != tokWord && t.Kind != tokString {
		return "", syntaxErrorf(t.Col, "expected a %s name (%s), found %s", what, shape, t.describe())
	}
	value := t.Text
	if t.Kind == tokString {
		value = t.Value
	} else if keywords[value] {
		return "", syntaxErrorf(t.Col, "expected a %s name (%s), found the keyword %s", what, shape, t.describe())
	}
	if msg := nameProblem(value, what, shape); msg != "" {
		return "", syntaxErrorf(t.Col, "%s", msg)
	}
	p.next()
	return value, nil
}

// nameProblem says what is wrong with a namespaced name, or "" when it is
// fine: two non-empty parts of letters, digits, _ and -, joined by a colon.
func nameProblem(name, what, shape string) string {
	ns, local, found := strings.Cut(name, ":")
	if !found {
		hint := ""
		if what == "permission" {
			hint = "; operator-made permissions use the site: namespace"
		}
		return fmt.Sprintf("%s %q must be namespaced as %s%s", what, name, shape, hint)
	}
	if !isNamePart(ns) || !isNamePart(local) {
		return fmt.Sprintf("%s %q is not a valid name: expected %s, each part made of letters, digits, _ and -", what, name, shape)
	}
	return ""
}

func isNamePart(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// enter guards parenthesis depth.
func (p *parser) enter(open token) error {
	p.depth++
	if p.depth > maxNesting {
		return syntaxErrorf(open.Col, "parentheses are nested more than %d deep", maxNesting)
	}
	return nil
}

// closeParen consumes the `)` matching open.
func (p *parser) closeParen(open token, after string) error {
	p.depth--
	if t := p.peek(); t.Kind != tokRParen {
		return syntaxErrorf(t.Col, "expected `)` to close the `(` at column %d, or `and`/`or` after %s, found %s%s", open.Col, after, t.describe(), caseHint(t))
	}
	p.next()
	return nil
}

func logicOf(text string) (logicOp, bool) {
	switch text {
	case "and":
		return opAnd, true
	case "or":
		return opOr, true
	}
	return 0, false
}

// criteria parses `term ((and|or) criteria)?`: equal precedence, grouped
// from the right, as Cog does.
func (p *parser) criteria() (*criterion, error) {
	left, err := p.criteriaTerm()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	op, ok := logicOf(t.Text)
	if t.Kind != tokWord || !ok {
		return left, nil
	}
	p.next()
	right, err := p.criteria()
	if err != nil {
		return nil, err
	}
	return &criterion{kind: critLogic, logic: op, left: left, right: right, col: t.Col}, nil
}

func (p *parser) criteriaTerm() (*criterion, error) {
	if open := p.peek(); open.Kind == tokLParen {
		p.next()
		if err := p.enter(open); err != nil {
			return nil, err
		}
		inner, err := p.criteria()
		if err != nil {
			return nil, err
		}
		if err := p.closeParen(open, "a criterion"); err != nil {
			return nil, err
		}
		inner.parens = true
		return inner, nil
	}
	return p.criterion()
}

func (p *parser) criterion() (*criterion, error) {
	start := p.peek()
	subj, err := p.subject()
	if err != nil {
		return nil, err
	}
	t := p.next()
	switch {
	case t.Kind == tokOp:
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		if v.kind == litRegex && t.Value != "==" && t.Value != "!=" {
			return nil, syntaxErrorf(t.Col, "a regular expression can only be compared with == or !=, not %s", t.Text)
		}
		if v.kind == litBool && t.Value != "==" && t.Value != "!=" {
			return nil, syntaxErrorf(t.Col, "true and false can only be compared with == or !=, not %s", t.Text)
		}
		return &criterion{kind: critCompare, subject: subj, op: t.Value, value: v, col: start.Col}, nil
	case t.Kind == tokWord && t.Text == "in":
		values, err := p.valueList()
		if err != nil {
			return nil, err
		}
		return &criterion{kind: critIn, subject: subj, values: values, col: start.Col}, nil
	default:
		return nil, syntaxErrorf(t.Col, "expected ==, !=, <, >, <=, >= or `in` after %s, found %s%s", subj, t.describe(), caseHint(t))
	}
}

func (p *parser) subject() (subject, error) {
	t := p.next()
	if t.Kind != tokWord {
		return subject{}, syntaxErrorf(t.Col, "expected a criterion (arg[N], any args, all args, option[name], any options or all options), found %s", t.describe())
	}
	switch t.Text {
	case "arg":
		if err := p.expectBracket("`arg` (write arg[0], or any args / all args)"); err != nil {
			return subject{}, err
		}
		idx := p.next()
		n, err := strconv.Atoi(idx.Text)
		if idx.Kind != tokWord || err != nil || n < 0 || strings.HasPrefix(idx.Text, "+") || strings.HasPrefix(idx.Text, "-") {
			return subject{}, syntaxErrorf(idx.Col, "expected an argument position (0, 1, 2, ...) inside arg[...], found %s", idx.describe())
		}
		if err := p.closeBracket("arg[" + idx.Text); err != nil {
			return subject{}, err
		}
		return subject{kind: subjectArg, index: n}, nil
	case "option":
		if err := p.expectBracket("`option` (write option[name], or any options / all options)"); err != nil {
			return subject{}, err
		}
		nt := p.next()
		var name string
		switch nt.Kind {
		case tokWord:
			name = nt.Text
		case tokString:
			name = nt.Value
		default:
			return subject{}, syntaxErrorf(nt.Col, "expected an option name inside option[...], found %s", nt.describe())
		}
		if err := p.closeBracket("option[" + nt.Text); err != nil {
			return subject{}, err
		}
		return subject{kind: subjectOption, name: name}, nil
	case "any", "all":
		q := p.next()
		if q.Kind != tokWord {
			return subject{}, syntaxErrorf(q.Col, "expected `args` or `options` after `%s`, found %s", t.Text, q.describe())
		}
		switch q.Text {
		case "arg", "args":
			if t.Text == "any" {
				return subject{kind: subjectAnyArgs}, nil
			}
			return subject{kind: subjectAllArgs}, nil
		case "option", "options":
			if t.Text == "any" {
				return subject{kind: subjectAnyOptions}, nil
			}
			return subject{kind: subjectAllOptions}, nil
		}
		return subject{}, syntaxErrorf(q.Col, "expected `args` or `options` after `%s`, found %s", t.Text, q.describe())
	case "args", "options":
		return subject{}, syntaxErrorf(t.Col, "`%s` needs a quantifier: write `any %s` or `all %s`", t.Text, t.Text, t.Text)
	}
	return subject{}, syntaxErrorf(t.Col, "expected a criterion (arg[N], any args, all args, option[name], any options or all options), found %s%s", t.describe(), caseHint(t))
}

func (p *parser) expectBracket(what string) error {
	if t := p.peek(); t.Kind != tokLBracket {
		return syntaxErrorf(t.Col, "expected `[` after %s, found %s", what, t.describe())
	}
	p.next()
	return nil
}

func (p *parser) closeBracket(sofar string) error {
	if t := p.peek(); t.Kind != tokRBracket {
		return syntaxErrorf(t.Col, "expected `]` after `%s`, found %s", sofar, t.describe())
	}
	p.next()
	return nil
}

// value reads one literal: a quoted string, a number, true or false, a
// /regular expression/, or a bare word (text).
func (p *parser) value() (literal, error) {
	t := p.next()
	switch t.Kind {
	case tokString:
		return literal{kind: litString, str: t.Value}, nil
	case tokRegex:
		re, err := regexp.Compile(t.Value)
		if err != nil {
			return literal{}, syntaxErrorf(t.Col, "invalid regular expression %s: %v", t.Text, err)
		}
		return literal{kind: litRegex, str: t.Value, re: re}, nil
	case tokWord:
		switch {
		case t.Text == "true":
			return literal{kind: litBool, b: true}, nil
		case t.Text == "false":
			return literal{kind: litBool, b: false}, nil
		case keywords[t.Text]:
			return literal{}, syntaxErrorf(t.Col, "expected a value, found the keyword %s (quote it to compare with that text)", t.describe())
		}
		return wordLiteral(t)
	}
	return literal{}, syntaxErrorf(t.Col, "expected a value (a quoted string, a number, true, false, a /regular expression/ or a bare word), found %s", t.describe())
}

// wordLiteral types a bare word: -12 is an int, 0.5 a float, anything else
// (us-east-1, 1.2.3, True) text.
func wordLiteral(t token) (literal, error) {
	digits := strings.TrimPrefix(t.Text, "-")
	whole, frac, isDecimal := strings.Cut(digits, ".")
	switch {
	case allDigits(digits):
		n, err := strconv.ParseInt(t.Text, 10, 64)
		if err != nil {
			return literal{}, syntaxErrorf(t.Col, "number %s does not fit in a 64-bit integer", t.Text)
		}
		return literal{kind: litInt, i: n}, nil
	case isDecimal && allDigits(whole) && allDigits(frac):
		f, err := strconv.ParseFloat(t.Text, 64)
		if err != nil {
			return literal{}, syntaxErrorf(t.Col, "number %s is out of range", t.Text)
		}
		return literal{kind: litFloat, f: f}, nil
	}
	return literal{kind: litString, str: t.Text}, nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (p *parser) valueList() ([]literal, error) {
	open := p.next()
	if open.Kind != tokLBracket {
		return nil, syntaxErrorf(open.Col, "expected `[` to start the list after `in`, found %s", open.describe())
	}
	if t := p.peek(); t.Kind == tokRBracket {
		return nil, syntaxErrorf(t.Col, "a list after `in` needs at least one value")
	}
	var values []literal
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		values = append(values, v)
		switch t := p.next(); t.Kind {
		case tokComma:
		case tokRBracket:
			return values, nil
		default:
			return nil, syntaxErrorf(t.Col, "expected `,` or `]` in the list opened at column %d, found %s", open.Col, t.describe())
		}
	}
}

// permissions parses `term ((and|or) permissions)?`, grouped from the right.
func (p *parser) permissions() (*permExpr, error) {
	left, err := p.permissionTerm()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	op, ok := logicOf(t.Text)
	if t.Kind != tokWord || !ok {
		return left, nil
	}
	p.next()
	right, err := p.permissions()
	if err != nil {
		return nil, err
	}
	return &permExpr{kind: permLogic, logic: op, left: left, right: right, col: t.Col}, nil
}

func (p *parser) permissionTerm() (*permExpr, error) {
	t := p.peek()
	switch {
	case t.Kind == tokLParen:
		p.next()
		if err := p.enter(t); err != nil {
			return nil, err
		}
		inner, err := p.permissions()
		if err != nil {
			return nil, err
		}
		if err := p.closeParen(t, "a permission"); err != nil {
			return nil, err
		}
		inner.parens = true
		return inner, nil
	case p.isWord("any") || p.isWord("all"):
		p.next()
		if err := p.expectWord("in", "`"+t.Text+"` (write "+t.Text+" in [ns:perm, ...])"); err != nil {
			return nil, err
		}
		list, err := p.permissionList()
		if err != nil {
			return nil, err
		}
		kind := permAnyIn
		if t.Text == "all" {
			kind = permAllIn
		}
		return &permExpr{kind: kind, list: list, col: t.Col}, nil
	case p.isWord("allow"):
		return nil, syntaxErrorf(t.Col, "`allow` replaces `must have`: write `... allow` on its own")
	}
	name, err := p.name("permission", "ns:perm")
	if err != nil {
		return nil, err
	}
	return &permExpr{kind: permName, name: name, col: t.Col}, nil
}

func (p *parser) permissionList() ([]string, error) {
	open := p.next()
	if open.Kind != tokLBracket {
		return nil, syntaxErrorf(open.Col, "expected `[` to start the permission list, found %s", open.describe())
	}
	if t := p.peek(); t.Kind == tokRBracket {
		return nil, syntaxErrorf(t.Col, "a permission list needs at least one permission")
	}
	var list []string
	for {
		if t := p.peek(); t.Kind == tokRegex {
			return nil, syntaxErrorf(t.Col, "a permission list names permissions (ns:perm); regular expressions are not supported")
		}
		name, err := p.name("permission", "ns:perm")
		if err != nil {
			return nil, err
		}
		list = append(list, name)
		switch t := p.next(); t.Kind {
		case tokComma:
		case tokRBracket:
			return list, nil
		default:
			return nil, syntaxErrorf(t.Col, "expected `,` or `]` in the permission list opened at column %d, found %s", open.Col, t.describe())
		}
	}
}

// approvalClause parses the optional `with [N] approval(s) from ns:perm`
// that may end a rule. Its words are not keywords: `approval` and `from`
// stay usable as bare values in criteria, where Cog rules may have them.
func (p *parser) approvalClause(r *Rule) error {
	if !p.isWord("with") {
		return nil
	}
	with := p.next()
	count, counted := 1, false
	if t := p.peek(); t.Kind == tokWord && startsWithDigit(t.Text) {
		p.next()
		n, err := strconv.Atoi(t.Text)
		if err != nil || !allDigits(t.Text) || n < 1 || n > MaxApprovals {
			return syntaxErrorf(t.Col, "expected a number of approvals from 1 to %d, found %s", MaxApprovals, t.describe())
		}
		count, counted = n, true
	}
	word := p.peek()
	switch {
	case word.Kind != tokWord || (word.Text != "approval" && word.Text != "approvals"):
		if !counted && word.Kind == tokWord && (word.Text == "arg" || word.Text == "option" || word.Text == "any" || word.Text == "all") {
			return syntaxErrorf(word.Col, "criteria come before `must have` or `allow`; after them `with` takes only `approval from ns:perm` or `N approvals from ns:perm`")
		}
		return syntaxErrorf(word.Col, "expected `approval from ns:perm` or `N approvals from ns:perm` after the `with` at column %d, found %s%s", with.Col, word.describe(), caseHint(word))
	case !counted && word.Text == "approvals":
		return syntaxErrorf(word.Col, "say how many: `with 2 approvals from ...`, or `with approval from ...` for one")
	case count == 1 && word.Text == "approvals":
		return syntaxErrorf(word.Col, "one approval is written `with approval from ...`")
	case count > 1 && word.Text == "approval":
		return syntaxErrorf(word.Col, "more than one approval is written `with %d approvals from ...`", count)
	}
	p.next()
	if err := p.expectWord("from", "`"+word.Text+"`"); err != nil {
		return err
	}
	if t := p.peek(); t.Kind == tokLParen || t.Kind == tokWord && (t.Text == "any" || t.Text == "all") {
		return syntaxErrorf(t.Col, "approvers are named by one permission (ns:perm), not an expression")
	}
	perm, err := p.name("permission", "ns:perm")
	if err != nil {
		return err
	}
	r.approval = &Approval{Count: count, Permission: perm}
	return nil
}

func startsWithDigit(s string) bool { return s != "" && s[0] >= '0' && s[0] <= '9' }

// misplacedApproval reports an approval clause written where criteria
// belong (`with approval from ...` before `must have`).
func (p *parser) misplacedApproval() error {
	t := p.peek()
	next := p.toks[min(p.pos+1, len(p.toks)-1)]
	if t.Kind != tokWord {
		return nil
	}
	if t.Text == "approval" && next.Kind == tokWord && next.Text == "from" ||
		startsWithDigit(t.Text) && next.Kind == tokWord && (next.Text == "approvals" || next.Text == "approval") {
		return syntaxErrorf(t.Col, "the approval clause comes last, after `must have ...` or `allow`: `... must have ns:perm with approval from ns:perm`")
	}
	return nil
}
