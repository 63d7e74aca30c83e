package rules

import (
	"fmt"
	"strings"
)

// Warnings lists what in the rule is legal but likely to surprise, each as
// "column N: sentence" with N counted in the text the rule was parsed from,
// like a SyntaxError's column. Bundle validation surfaces them; they never
// stop a rule from loading.
//
//   - A clause that mixes `and` and `or` without parentheses: both have equal
//     precedence and group from the right (Cog's meaning), so
//     `a and b or c` means `a and (b or c)`. The warning spells out the
//     grouping.
//   - `!=` against one argument or option: Logbook does not match it when the
//     value is missing, where Cog did, so a migrated rule can match fewer
//     invocations.
func (r *Rule) Warnings() []string {
	var warnings []string
	if r.criteria != nil {
		if at, explicit := r.criteria.mixedGrouping(); at != nil {
			warnings = append(warnings, fmt.Sprintf("column %d: the criteria mix `and` and `or` without parentheses; they have equal precedence and group from the right, as in Cog, so they mean: %s",
				at.col, explicit))
		}
		r.criteria.walk(func(c *criterion) {
			if c.kind == critCompare && c.op == "!=" && c.subject.single() {
				warnings = append(warnings, fmt.Sprintf("column %d: `%s != %s` does not match when %s is missing (Cog matched it), so it only applies to invocations that give %s",
					c.col, c.subject, c.value, c.subject, c.subject))
			}
		})
	}
	if r.require != nil {
		if at, explicit := r.require.mixedGrouping(); at != nil {
			warnings = append(warnings, fmt.Sprintf("column %d: the permissions mix `and` and `or` without parentheses; they have equal precedence and group from the right, as in Cog, so they mean: %s",
				at.col, explicit))
		}
	}
	return warnings
}

func (c *criterion) walk(visit func(*criterion)) {
	visit(c)
	if c.kind == critLogic {
		c.left.walk(visit)
		c.right.walk(visit)
	}
}

// mixedGrouping finds the first connective whose right operand is an
// unparenthesized connective of the other kind. It returns that node and the
// clause written with the implied parentheses, or nil.
func (c *criterion) mixedGrouping() (*criterion, string) {
	var found *criterion
	c.walk(func(n *criterion) {
		if found == nil && n.kind == critLogic && n.right.kind == critLogic && !n.right.parens && n.right.logic != n.logic {
			found = n
		}
	})
	if found == nil {
		return nil, ""
	}
	var b strings.Builder
	c.formatExplicit(&b)
	return found, b.String()
}

// formatExplicit writes the clause with parentheses around every operand
// whose grouping right association leaves implicit.
func (c *criterion) formatExplicit(b *strings.Builder) {
	if c.kind != critLogic {
		c.format(b)
		return
	}
	if c.parens {
		b.WriteByte('(')
	}
	formatOperand(b, !c.left.parens && c.left.kind == critLogic, c.left.formatExplicit)
	b.WriteString(" " + c.logic.String() + " ")
	formatOperand(b, !c.right.parens && c.right.kind == critLogic && c.right.logic != c.logic, c.right.formatExplicit)
	if c.parens {
		b.WriteByte(')')
	}
}

func (p *permExpr) walk(visit func(*permExpr)) {
	visit(p)
	if p.kind == permLogic {
		p.left.walk(visit)
		p.right.walk(visit)
	}
}

func (p *permExpr) mixedGrouping() (*permExpr, string) {
	var found *permExpr
	p.walk(func(n *permExpr) {
		if found == nil && n.kind == permLogic && n.right.kind == permLogic && !n.right.parens && n.right.logic != n.logic {
			found = n
		}
	})
	if found == nil {
		return nil, ""
	}
	var b strings.Builder
	p.formatExplicit(&b)
	return found, b.String()
}

func (p *permExpr) formatExplicit(b *strings.Builder) {
	if p.kind != permLogic {
		p.format(b)
		return
	}
	if p.parens {
		b.WriteByte('(')
	}
	formatOperand(b, !p.left.parens && p.left.kind == permLogic, p.left.formatExplicit)
	b.WriteString(" " + p.logic.String() + " ")
	formatOperand(b, !p.right.parens && p.right.kind == permLogic && p.right.logic != p.logic, p.right.formatExplicit)
	if p.parens {
		b.WriteByte(')')
	}
}
