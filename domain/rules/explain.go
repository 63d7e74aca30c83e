package rules

import (
	"fmt"
	"strings"
)

// Explain says in a sentence or two why the command was allowed or denied:
// which rule decided, what it required, and what the user had or lacked.
func (d Decision) Explain() string {
	verdict := "denied"
	if d.Allowed {
		verdict = "allowed"
	}
	switch d.Reason {
	case ReasonNoRules:
		return fmt.Sprintf("denied: no rule governs %s, and a command that no rule matches is denied.", d.Command)
	case ReasonNoMatchingRule:
		if len(d.Outcomes) == 1 {
			return fmt.Sprintf("denied: the only rule for %s, `%s`, does not match this invocation, and a command that no rule matches is denied.", d.Command, d.Outcomes[0].Rule)
		}
		return fmt.Sprintf("denied: none of the %d rules for %s matches this invocation, and a command that no rule matches is denied.", len(d.Outcomes), d.Command)
	}
	if d.Matched == nil {
		return verdict + "."
	}

	var b strings.Builder
	fmt.Fprintf(&b, "%s: rule `%s` %s", verdict, d.Matched, d.matchPhrase())
	switch {
	case d.Matched.AllowsEveryone():
		b.WriteString(" and allows every user.")
	case d.Allowed:
		fmt.Fprintf(&b, " and requires %s; the user has %s.", d.Matched.Requirement(), joinWords(d.Held))
	default:
		fmt.Fprintf(&b, " and requires %s; the user lacks %s", d.Matched.Requirement(), joinWords(d.Missing))
		if len(d.Held) > 0 {
			fmt.Fprintf(&b, " (has %s)", joinWords(d.Held))
		}
		b.WriteString(".")
	}

	if len(d.Approvals) > 0 {
		fmt.Fprintf(&b, " Before it runs, the request needs %s, never the requester's own.", approvalWords(d.Approvals))
	}

	decisive, setAside := 0, 0
	for _, o := range d.Outcomes {
		switch {
		case o.Decisive:
			decisive++
		case o.Matched:
			setAside++
		}
	}
	if decisive > 1 {
		fmt.Fprintf(&b, " It is one of %d equally specific matching rules, all of which must be satisfied.", decisive)
	}
	switch setAside {
	case 0:
	case 1:
		b.WriteString(" 1 less specific matching rule was set aside.")
	default:
		fmt.Fprintf(&b, " %d less specific matching rules were set aside.", setAside)
	}
	return b.String()
}

func (d Decision) matchPhrase() string {
	switch {
	case d.Matched.criteria == nil:
		return "applies to every invocation of " + d.Command
	case len(d.MatchedOn) == 0:
		return "matches this invocation"
	}
	return fmt.Sprintf("matches on %s (specificity %d)", joinWords(d.MatchedOn), d.Specificity)
}

// approvalWords writes "2 approvals from a:b and 1 approval from c:d".
func approvalWords(approvals []Approval) string {
	words := make([]string, len(approvals))
	for i, a := range approvals {
		words[i] = a.String()
		if a.Count == 1 {
			words[i] = "1 " + words[i]
		}
	}
	return joinWords(words)
}

// joinWords writes a, b and c.
func joinWords(words []string) string {
	switch len(words) {
	case 0:
		return "none of them"
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// Explanation is a decision in a form meant for JSON (`logbook rule check
// --json`) and for the PermissionChecked event.
type Explanation struct {
	Command string `json:"command"`
	Allowed bool   `json:"allowed"`
	Reason  Reason `json:"reason"`
	// Rule is the deciding rule in canonical form, "" when none matched.
	Rule string `json:"rule,omitempty"`
	// Requires is what the deciding rule requires: "allow" or its
	// permission expression.
	Requires    string   `json:"requires,omitempty"`
	Specificity int      `json:"specificity"`
	MatchedOn   []string `json:"matched_on"`
	Missing     []string `json:"missing"`
	Held        []string `json:"held"`
	// Approvals are what an allowed invocation needs before it runs.
	Approvals []Approval        `json:"approvals"`
	Summary   string            `json:"summary"`
	Rules     []RuleExplanation `json:"rules"`
}

// RuleExplanation is how one rule for the command fared.
type RuleExplanation struct {
	Rule        string   `json:"rule"`
	Matched     bool     `json:"matched"`
	Specificity int      `json:"specificity"`
	MatchedOn   []string `json:"matched_on"`
	Satisfied   bool     `json:"satisfied"`
	Missing     []string `json:"missing"`
	Decisive    bool     `json:"decisive"`
	// Approval is the rule's approval clause ("2 approvals from a:b"), ""
	// when it has none.
	Approval string `json:"approval,omitempty"`
}

// Explanation returns the decision as data. Lists are never nil, so they
// encode as [] rather than null.
func (d Decision) Explanation() Explanation {
	e := Explanation{
		Command:     d.Command,
		Allowed:     d.Allowed,
		Reason:      d.Reason,
		Specificity: d.Specificity,
		MatchedOn:   nonNil(d.MatchedOn),
		Missing:     nonNil(d.Missing),
		Held:        nonNil(d.Held),
		Approvals:   d.Approvals,
		Summary:     d.Explain(),
		Rules:       make([]RuleExplanation, 0, len(d.Outcomes)),
	}
	if d.Matched != nil {
		e.Rule = d.Matched.String()
		e.Requires = d.Matched.Requirement()
	}
	if e.Approvals == nil {
		e.Approvals = []Approval{}
	}
	for _, o := range d.Outcomes {
		approval := ""
		if a, ok := o.Rule.Approval(); ok {
			approval = a.String()
		}
		e.Rules = append(e.Rules, RuleExplanation{
			Approval:    approval,
			Rule:        o.Rule.String(),
			Matched:     o.Matched,
			Specificity: o.Specificity,
			MatchedOn:   nonNil(o.MatchedOn),
			Satisfied:   o.Satisfied,
			Missing:     nonNil(o.Missing),
			Decisive:    o.Decisive,
		})
	}
	return e
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
