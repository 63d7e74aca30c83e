package rules

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Rule is one parsed rule. It is immutable once parsed; build one with Parse
// or ParseForCommand.
type Rule struct {
	command  string
	criteria *criterion // nil when the rule has no `with` clause
	require  *permExpr  // nil for an `allow` rule
	approval *Approval  // nil when the command runs without approval
}

// Approval is a rule's approval clause: before the command runs, Count
// people other than the requester, each holding Permission when they
// answer, must approve the request.
type Approval struct {
	Count      int    `json:"count"`
	Permission string `json:"permission"`
}

// MaxApprovals bounds the approvals a rule may ask for.
const MaxApprovals = 100

// String is the clause as a rule writes it, without the leading `with`.
func (a Approval) String() string {
	if a.Count == 1 {
		return "approval from " + a.Permission
	}
	return strconv.Itoa(a.Count) + " approvals from " + a.Permission
}

// Approval is the rule's approval clause; ok is false when the command
// runs without one.
func (r *Rule) Approval() (a Approval, ok bool) {
	if r.approval == nil {
		return Approval{}, false
	}
	return *r.approval, true
}

// Command is the command the rule governs, as bundle:command.
func (r *Rule) Command() string { return r.command }

// AllowsEveryone reports whether the rule is an `allow` rule: any known user
// may run the command when the rule decides.
func (r *Rule) AllowsEveryone() bool { return r.require == nil }

// Permissions lists every permission the rule names, sorted, without
// duplicates. An `allow` rule names none.
func (r *Rule) Permissions() []string {
	seen := map[string]bool{}
	if r.require != nil {
		r.require.names(seen)
	}
	perms := make([]string, 0, len(seen))
	for p := range seen {
		perms = append(perms, p)
	}
	sort.Strings(perms)
	return perms
}

// Criteria is the canonical text of the rule's `with` clause (without the
// word `with`), or "" when the rule applies to every invocation.
func (r *Rule) Criteria() string {
	if r.criteria == nil {
		return ""
	}
	var b strings.Builder
	r.criteria.format(&b)
	return b.String()
}

// Requirement is the canonical text of what the rule requires: "allow", or
// the permission expression that follows `must have`.
func (r *Rule) Requirement() string {
	if r.require == nil {
		return "allow"
	}
	var b strings.Builder
	r.require.format(&b)
	return b.String()
}

// String is the rule in canonical full form. Parsing it gives back an equal
// rule, and formatting that gives back the same text.
func (r *Rule) String() string {
	var b strings.Builder
	b.WriteString("when command is ")
	b.WriteString(r.command)
	if r.criteria != nil {
		b.WriteString(" with ")
		r.criteria.format(&b)
	}
	if r.require == nil {
		b.WriteString(" allow")
	} else {
		b.WriteString(" must have ")
		r.require.format(&b)
	}
	if r.approval != nil {
		b.WriteString(" with ")
		b.WriteString(r.approval.String())
	}
	return b.String()
}

// Equal reports whether two rules say the same thing: same command, same
// criteria and requirement with the same grouping, same approval. Spelling (=< or <=,
// quotes, spacing, `when command is` or Gort's bare command) does not matter.
func (r *Rule) Equal(other *Rule) bool {
	if r == nil || other == nil {
		return r == other
	}
	sameApproval := (r.approval == nil) == (other.approval == nil) && (r.approval == nil || *r.approval == *other.approval)
	return r.command == other.command && r.criteria.equal(other.criteria) && r.require.equal(other.require) && sameApproval
}

// Logical connectives. Cog gives `and` and `or` equal precedence and groups
// them from the right.
type logicOp uint8

const (
	opAnd logicOp = iota + 1
	opOr
)

func (o logicOp) String() string {
	if o == opAnd {
		return "and"
	}
	return "or"
}

type criterionKind uint8

const (
	critCompare criterionKind = iota + 1 // subject <op> value
	critIn                               // subject in [values]
	critLogic                            // left and/or right
)

// criterion is a node of a `with` clause.
type criterion struct {
	kind    criterionKind
	subject subject   // critCompare, critIn
	op      string    // critCompare: == != < > <= >=
	value   literal   // critCompare
	values  []literal // critIn
	logic   logicOp   // critLogic
	left    *criterion
	right   *criterion
	parens  bool // written inside parentheses
	col     int  // of the subject, or of the connective for critLogic
}

type subjectKind uint8

const (
	subjectArg        subjectKind = iota + 1 // arg[N]
	subjectAnyArgs                           // any args
	subjectAllArgs                           // all args
	subjectOption                            // option[name]
	subjectAnyOptions                        // any options
	subjectAllOptions                        // all options
)

type subject struct {
	kind  subjectKind
	index int    // subjectArg
	name  string // subjectOption
}

func (s subject) String() string {
	switch s.kind {
	case subjectArg:
		return "arg[" + strconv.Itoa(s.index) + "]"
	case subjectAnyArgs:
		return "any args"
	case subjectAllArgs:
		return "all args"
	case subjectOption:
		return "option[" + formatOptionName(s.name) + "]"
	case subjectAnyOptions:
		return "any options"
	default:
		return "all options"
	}
}

// single reports whether the subject names one argument or option, which may
// be missing, rather than quantifying over all of them.
func (s subject) single() bool { return s.kind == subjectArg || s.kind == subjectOption }

func formatOptionName(name string) string {
	if name == "" {
		return quoteString(name)
	}
	for _, r := range name {
		if !isWordRune(r) {
			return quoteString(name)
		}
	}
	return name
}

type literalKind uint8

const (
	litString literalKind = iota + 1
	litInt
	litFloat
	litBool
	litRegex
)

// literal is a value written in a rule.
type literal struct {
	kind literalKind
	str  string // litString; the pattern for litRegex
	i    int64
	f    float64
	b    bool
	re   *regexp.Regexp
}

func (l literal) String() string {
	switch l.kind {
	case litString:
		return quoteString(l.str)
	case litInt:
		return strconv.FormatInt(l.i, 10)
	case litFloat:
		s := strconv.FormatFloat(l.f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0" // keep it a float when read back
		}
		return s
	case litBool:
		return strconv.FormatBool(l.b)
	default:
		return "/" + strings.ReplaceAll(l.str, "/", `\/`) + "/"
	}
}

func (l literal) equal(o literal) bool {
	if l.kind != o.kind {
		return false
	}
	switch l.kind {
	case litString, litRegex:
		return l.str == o.str
	case litInt:
		return l.i == o.i
	case litFloat:
		return l.f == o.f
	default:
		return l.b == o.b
	}
}

func quoteString(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		if r == '\'' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('\'')
	return b.String()
}

func (c *criterion) format(b *strings.Builder) {
	if c.parens {
		b.WriteByte('(')
	}
	switch c.kind {
	case critCompare:
		b.WriteString(c.subject.String())
		b.WriteString(" " + c.op + " ")
		b.WriteString(c.value.String())
	case critIn:
		b.WriteString(c.subject.String())
		b.WriteString(" in [")
		for i, v := range c.values {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(v.String())
		}
		b.WriteByte(']')
	default:
		formatOperand(b, c.left.kind == critLogic && !c.left.parens, c.left.format)
		b.WriteString(" " + c.logic.String() + " ")
		c.right.format(b)
	}
	if c.parens {
		b.WriteByte(')')
	}
}

// formatOperand writes a left operand, adding the parentheses that right
// grouping needs when a tree was built without them.
func formatOperand(b *strings.Builder, wrap bool, format func(*strings.Builder)) {
	if wrap {
		b.WriteByte('(')
	}
	format(b)
	if wrap {
		b.WriteByte(')')
	}
}

func (c *criterion) equal(o *criterion) bool {
	if c == nil || o == nil {
		return c == o
	}
	if c.kind != o.kind || c.parens != o.parens {
		return false
	}
	switch c.kind {
	case critCompare:
		return c.subject == o.subject && c.op == o.op && c.value.equal(o.value)
	case critIn:
		if c.subject != o.subject || len(c.values) != len(o.values) {
			return false
		}
		for i := range c.values {
			if !c.values[i].equal(o.values[i]) {
				return false
			}
		}
		return true
	default:
		return c.logic == o.logic && c.left.equal(o.left) && c.right.equal(o.right)
	}
}

type permKind uint8

const (
	permName  permKind = iota + 1 // ns:perm
	permAnyIn                     // any in [ns:a, ns:b]
	permAllIn                     // all in [ns:a, ns:b]
	permLogic                     // left and/or right
)

// permExpr is a node of a `must have` clause.
type permExpr struct {
	kind   permKind
	name   string   // permName
	list   []string // permAnyIn, permAllIn
	logic  logicOp  // permLogic
	left   *permExpr
	right  *permExpr
	parens bool
	col    int // of the name or quantifier, or of the connective for permLogic
}

func (p *permExpr) names(into map[string]bool) {
	switch p.kind {
	case permName:
		into[p.name] = true
	case permAnyIn, permAllIn:
		for _, n := range p.list {
			into[n] = true
		}
	default:
		p.left.names(into)
		p.right.names(into)
	}
}

func (p *permExpr) format(b *strings.Builder) {
	if p.parens {
		b.WriteByte('(')
	}
	switch p.kind {
	case permName:
		b.WriteString(p.name)
	case permAnyIn, permAllIn:
		if p.kind == permAnyIn {
			b.WriteString("any in [")
		} else {
			b.WriteString("all in [")
		}
		b.WriteString(strings.Join(p.list, ", "))
		b.WriteByte(']')
	default:
		formatOperand(b, p.left.kind == permLogic && !p.left.parens, p.left.format)
		b.WriteString(" " + p.logic.String() + " ")
		p.right.format(b)
	}
	if p.parens {
		b.WriteByte(')')
	}
}

func (p *permExpr) equal(o *permExpr) bool {
	if p == nil || o == nil {
		return p == o
	}
	if p.kind != o.kind || p.parens != o.parens {
		return false
	}
	switch p.kind {
	case permName:
		return p.name == o.name
	case permAnyIn, permAllIn:
		if len(p.list) != len(o.list) {
			return false
		}
		for i := range p.list {
			if p.list[i] != o.list[i] {
				return false
			}
		}
		return true
	default:
		return p.logic == o.logic && p.left.equal(o.left) && p.right.equal(o.right)
	}
}
