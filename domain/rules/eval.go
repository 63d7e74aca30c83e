package rules

import (
	"math"
	"sort"
	"strconv"
)

// Invocation is one command as the user typed it, after pipeline parsing.
// Values are string, int64, float64 or bool; a repeated option holds []any
// of those. Other integer and float types are accepted and widened; values
// of any other type never match a criterion.
type Invocation struct {
	Command string
	Args    []any
	Options map[string]any
}

// Reason says why a decision came out as it did.
type Reason string

const (
	// ReasonAllowed: the deciding rule is satisfied.
	ReasonAllowed Reason = "allowed"
	// ReasonMissingPermissions: a deciding rule requires permissions the
	// user lacks.
	ReasonMissingPermissions Reason = "missing_permissions"
	// ReasonNoMatchingRule: the command has rules, but none matches this
	// invocation.
	ReasonNoMatchingRule Reason = "no_matching_rule"
	// ReasonNoRules: no rule governs the command at all.
	ReasonNoRules Reason = "no_rules"
)

// Decision is the outcome of Evaluate, with what it takes to explain it.
type Decision struct {
	Allowed bool
	// Matched is the rule that decided: the first of the most specific
	// matching rules, or, when the command is denied, the first of them the
	// user does not satisfy. Nil when no rule matched.
	Matched *Rule
	Command string
	Reason  Reason
	// Specificity of the deciding rule: how many of the invocation's inputs
	// its criteria matched (see the package documentation).
	Specificity int
	// MatchedOn lists those inputs, e.g. "arg[0]", "option[env]".
	MatchedOn []string
	// Missing lists the permissions the deciding rule names that the user
	// lacks; Held those the user has. Both sorted.
	Missing []string
	Held    []string
	// Approvals are what must happen before an allowed command runs: the
	// approval clauses of the deciding rules, one per approver permission
	// (the largest count where two rules name the same one), sorted by
	// permission. Empty when the command is denied or needs no approval.
	Approvals []Approval
	// Outcomes has one entry per rule for the command, in the order given.
	Outcomes []Outcome
}

// Outcome is how one rule fared against the invocation.
type Outcome struct {
	Rule *Rule
	// Matched: the rule's criteria hold for this invocation.
	Matched     bool
	Specificity int
	MatchedOn   []string
	// Satisfied: the user meets the rule's requirement. Only computed for
	// rules that matched.
	Satisfied bool
	Missing   []string
	Held      []string
	// Decisive: the rule is among the most specific matching rules, all of
	// which must be satisfied for the command to be allowed.
	Decisive bool
}

// Evaluate decides whether an invocation may run. Every rule for the
// invocation's command is considered (rules for other commands are ignored);
// the most specific matching rules decide, and all of them must be
// satisfied; when no rule matches, the command is denied. has reports
// whether the user holds a permission; it is called at most once per
// permission. A nil has means the user holds none.
func Evaluate(rules []*Rule, inv Invocation, has func(perm string) bool) Decision {
	d := Decision{Command: inv.Command}
	in := normalizeInvocation(inv)
	holds := cachedHas(has)
	best := -1
	for _, r := range rules {
		if r == nil || r.command != inv.Command {
			continue
		}
		o := Outcome{Rule: r}
		if ok, on := r.matches(in); ok {
			o.Matched = true
			o.MatchedOn = on
			o.Specificity = len(on)
			o.Satisfied = r.require == nil || r.require.eval(holds)
			for _, p := range r.Permissions() {
				if holds(p) {
					o.Held = append(o.Held, p)
				} else {
					o.Missing = append(o.Missing, p)
				}
			}
			best = max(best, o.Specificity)
		}
		d.Outcomes = append(d.Outcomes, o)
	}
	switch {
	case len(d.Outcomes) == 0:
		d.Reason = ReasonNoRules
		return d
	case best < 0:
		d.Reason = ReasonNoMatchingRule
		return d
	}
	var decider *Outcome
	d.Allowed = true
	for i := range d.Outcomes {
		o := &d.Outcomes[i]
		if !o.Matched || o.Specificity != best {
			continue
		}
		o.Decisive = true
		if decider == nil || (d.Allowed && !o.Satisfied) {
			decider = o
		}
		d.Allowed = d.Allowed && o.Satisfied
	}
	d.Matched = decider.Rule
	d.Specificity = decider.Specificity
	d.MatchedOn = decider.MatchedOn
	d.Missing = decider.Missing
	d.Held = decider.Held
	d.Reason = ReasonAllowed
	if !d.Allowed {
		d.Reason = ReasonMissingPermissions
		return d
	}
	d.Approvals = decisiveApprovals(d.Outcomes)
	return d
}

// decisiveApprovals merges the approval clauses of the decisive rules:
// all of them hold, so each approver permission needs the most approvals
// any of them asks for.
func decisiveApprovals(outcomes []Outcome) []Approval {
	need := map[string]int{}
	for _, o := range outcomes {
		if a, ok := o.Rule.Approval(); ok && o.Decisive {
			need[a.Permission] = max(need[a.Permission], a.Count)
		}
	}
	if len(need) == 0 {
		return nil
	}
	out := make([]Approval, 0, len(need))
	for perm, n := range need {
		out = append(out, Approval{Count: n, Permission: perm})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Permission < out[j].Permission })
	return out
}

func cachedHas(has func(string) bool) func(string) bool {
	if has == nil {
		return func(string) bool { return false }
	}
	known := map[string]bool{}
	return func(perm string) bool {
		v, ok := known[perm]
		if !ok {
			v = has(perm)
			known[perm] = v
		}
		return v
	}
}

func (p *permExpr) eval(holds func(string) bool) bool {
	switch p.kind {
	case permName:
		return holds(p.name)
	case permAnyIn:
		for _, n := range p.list {
			if holds(n) {
				return true
			}
		}
		return false
	case permAllIn:
		for _, n := range p.list {
			if !holds(n) {
				return false
			}
		}
		return true
	}
	l, r := p.left.eval(holds), p.right.eval(holds)
	if p.logic == opAnd {
		return l && r
	}
	return l || r
}

// matches reports whether the rule's criteria hold, and which inputs they
// matched (sorted, distinct).
func (r *Rule) matches(in normalized) (bool, []string) {
	if r.criteria == nil {
		return true, []string{}
	}
	on := map[string]bool{}
	if !r.criteria.eval(in, on) {
		return false, nil
	}
	list := make([]string, 0, len(on))
	for k := range on {
		list = append(list, k)
	}
	sort.Strings(list)
	return true, list
}

// eval reports whether the criterion holds and, when it does, adds the inputs
// that made it hold to on.
func (c *criterion) eval(in normalized, on map[string]bool) bool {
	if c.kind == critLogic {
		left, right := map[string]bool{}, map[string]bool{}
		l, r := c.left.eval(in, left), c.right.eval(in, right)
		ok := l && r
		if c.logic == opOr {
			ok = l || r
		}
		if !ok {
			return false
		}
		if l {
			addAll(on, left)
		}
		if r {
			addAll(on, right)
		}
		return true
	}
	switch c.subject.kind {
	case subjectArg:
		if c.subject.index >= len(in.args) || !c.test(in.args[c.subject.index]) {
			return false
		}
		on[argInput(c.subject.index)] = true
		return true
	case subjectOption:
		v, ok := in.options[c.subject.name]
		if !ok || !c.test(v) {
			return false
		}
		on[optionInput(c.subject.name)] = true
		return true
	}
	var inputs []string
	var values []value
	if c.subject.kind == subjectAnyArgs || c.subject.kind == subjectAllArgs {
		values = in.args
		for i := range in.args {
			inputs = append(inputs, argInput(i))
		}
	} else {
		for _, name := range in.optionNames {
			values = append(values, in.options[name])
			inputs = append(inputs, optionInput(name))
		}
	}
	if len(values) == 0 {
		// Cog: `all args == x` holds over no arguments, `all args in [...]`
		// does not, and no `any` holds over nothing.
		return c.kind == critCompare && (c.subject.kind == subjectAllArgs || c.subject.kind == subjectAllOptions)
	}
	matched := map[string]bool{}
	for i, v := range values {
		if c.test(v) {
			matched[inputs[i]] = true
		}
	}
	all := c.subject.kind == subjectAllArgs || c.subject.kind == subjectAllOptions
	if (all && len(matched) != len(values)) || len(matched) == 0 {
		return false
	}
	addAll(on, matched)
	return true
}

func addAll(into, from map[string]bool) {
	for k := range from {
		into[k] = true
	}
}

func argInput(i int) string          { return "arg[" + strconv.Itoa(i) + "]" }
func optionInput(name string) string { return "option[" + formatOptionName(name) + "]" }

// test applies a comparison or `in` criterion to one argument or option
// value. A list (a repeated option) satisfies `!=` when no item is equal
// (or matches the regular expression), and any other test when some item
// does.
func (c *criterion) test(v value) bool {
	if v.kind != vList {
		return c.testScalar(v)
	}
	if len(v.items) == 0 {
		return false
	}
	if c.kind == critCompare && c.op == "!=" {
		for _, item := range v.items {
			if !c.testScalar(item) {
				return false
			}
		}
		return true
	}
	for _, item := range v.items {
		if c.testScalar(item) {
			return true
		}
	}
	return false
}

func (c *criterion) testScalar(v value) bool {
	if !v.scalar() {
		return false
	}
	if c.kind == critIn {
		for _, lit := range c.values {
			if lit.kind == litRegex && lit.re.MatchString(v.text()) || lit.kind != litRegex && equalValue(v, lit) {
				return true
			}
		}
		return false
	}
	lit := c.value
	switch c.op {
	case "==":
		if lit.kind == litRegex {
			return lit.re.MatchString(v.text())
		}
		return equalValue(v, lit)
	case "!=":
		if lit.kind == litRegex {
			return !lit.re.MatchString(v.text())
		}
		return !equalValue(v, lit)
	}
	cmp, ok := order(v, lit)
	if !ok {
		return false
	}
	switch c.op {
	case "<":
		return cmp < 0
	case ">":
		return cmp > 0
	case "<=":
		return cmp <= 0
	default:
		return cmp >= 0
	}
}

type valueKind uint8

const (
	vOther valueKind = iota // a type rules cannot compare: never matches
	vString
	vInt
	vFloat
	vBool
	vList
)

type value struct {
	kind  valueKind
	s     string
	i     int64
	f     float64
	b     bool
	items []value
}

func (v value) scalar() bool { return v.kind != vOther && v.kind != vList }

// text is what a regular expression is matched against: strings as they
// are, numbers and booleans as they would be written.
func (v value) text() string {
	switch v.kind {
	case vString:
		return v.s
	case vInt:
		return strconv.FormatInt(v.i, 10)
	case vFloat:
		return strconv.FormatFloat(v.f, 'f', -1, 64)
	default:
		return strconv.FormatBool(v.b)
	}
}

func (v value) number() (float64, bool) {
	switch v.kind {
	case vInt:
		return float64(v.i), true
	case vFloat:
		return v.f, true
	}
	return 0, false
}

func (l literal) number() (float64, bool) {
	switch l.kind {
	case litInt:
		return float64(l.i), true
	case litFloat:
		return l.f, true
	}
	return 0, false
}

// equalValue compares without conversions between kinds: numbers compare
// numerically (1 == 1.0), text with text, booleans with booleans; "5" is
// not 5.
func equalValue(v value, lit literal) bool {
	switch {
	case v.kind == vInt && lit.kind == litInt:
		return v.i == lit.i
	case v.kind == vString && lit.kind == litString:
		return v.s == lit.str
	case v.kind == vBool && lit.kind == litBool:
		return v.b == lit.b
	}
	a, okA := v.number()
	b, okB := lit.number()
	return okA && okB && a == b
}

// order compares numbers numerically and text byte-wise; values of different
// kinds have no order, so no <, >, <= or >= holds between them.
func order(v value, lit literal) (int, bool) {
	if v.kind == vInt && lit.kind == litInt {
		return cmpOrdered(v.i, lit.i), true
	}
	if v.kind == vString && lit.kind == litString {
		return cmpOrdered(v.s, lit.str), true
	}
	a, okA := v.number()
	b, okB := lit.number()
	if !okA || !okB || math.IsNaN(a) || math.IsNaN(b) {
		return 0, false
	}
	return cmpOrdered(a, b), true
}

func cmpOrdered[T int64 | float64 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// normalized is an invocation with its values typed for comparison.
type normalized struct {
	args        []value
	options     map[string]value
	optionNames []string // sorted, so quantifiers report inputs in a stable order
}

func normalizeInvocation(inv Invocation) normalized {
	n := normalized{args: make([]value, len(inv.Args)), options: map[string]value{}}
	for i, a := range inv.Args {
		n.args[i] = normalizeValue(a)
	}
	for name, v := range inv.Options {
		if v == nil {
			continue // an option without a value is treated as not given
		}
		n.options[name] = normalizeValue(v)
		n.optionNames = append(n.optionNames, name)
	}
	sort.Strings(n.optionNames)
	return n
}

func normalizeValue(a any) value {
	switch x := a.(type) {
	case string:
		return value{kind: vString, s: x}
	case bool:
		return value{kind: vBool, b: x}
	case int64:
		return value{kind: vInt, i: x}
	case int:
		return value{kind: vInt, i: int64(x)}
	case int32:
		return value{kind: vInt, i: int64(x)}
	case int16:
		return value{kind: vInt, i: int64(x)}
	case int8:
		return value{kind: vInt, i: int64(x)}
	case uint8:
		return value{kind: vInt, i: int64(x)}
	case uint16:
		return value{kind: vInt, i: int64(x)}
	case uint32:
		return value{kind: vInt, i: int64(x)}
	case uint:
		if uint64(x) <= math.MaxInt64 {
			return value{kind: vInt, i: int64(x)}
		}
		return value{kind: vFloat, f: float64(x)}
	case uint64:
		if x <= math.MaxInt64 {
			return value{kind: vInt, i: int64(x)}
		}
		return value{kind: vFloat, f: float64(x)}
	case float64:
		return value{kind: vFloat, f: x}
	case float32:
		return value{kind: vFloat, f: float64(x)}
	case []any:
		items := make([]value, len(x))
		for i, item := range x {
			items[i] = normalizeValue(item)
		}
		return value{kind: vList, items: items}
	case []string:
		items := make([]value, len(x))
		for i, item := range x {
			items[i] = value{kind: vString, s: item}
		}
		return value{kind: vList, items: items}
	}
	return value{kind: vOther}
}
