package rules

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestAnApprovalClauseParsesToItsCountAndPermission(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, text, canonical string
		want                  Approval
	}{
		{
			name:      "the issue's example: two approvals after criteria and a permission",
			text:      "when command is deploy:prod with arg[0] == 'db' must have deploy:run with 2 approvals from deploy:approver",
			canonical: "when command is deploy:prod with arg[0] == 'db' must have deploy:run with 2 approvals from deploy:approver",
			want:      Approval{Count: 2, Permission: "deploy:approver"},
		},
		{
			name:      "one approval by default",
			text:      "when command is deploy:prod must have deploy:run with approval from site:oncall",
			canonical: "when command is deploy:prod must have deploy:run with approval from site:oncall",
			want:      Approval{Count: 1, Permission: "site:oncall"},
		},
		{
			name:      "one approval counted is written without the count",
			text:      "when command is deploy:prod must have deploy:run with 1 approval from site:oncall",
			canonical: "when command is deploy:prod must have deploy:run with approval from site:oncall",
			want:      Approval{Count: 1, Permission: "site:oncall"},
		},
		{
			name:      "allow with an approval lets anyone ask",
			text:      "when command is deploy:restart allow with approval from deploy:approver",
			canonical: "when command is deploy:restart allow with approval from deploy:approver",
			want:      Approval{Count: 1, Permission: "deploy:approver"},
		},
		{
			name:      "after a permission expression",
			text:      "when command is deploy:prod must have deploy:run and (site:a or site:b) with 3 approvals from 'site:release-managers'",
			canonical: "when command is deploy:prod must have deploy:run and (site:a or site:b) with 3 approvals from site:release-managers",
			want:      Approval{Count: 3, Permission: "site:release-managers"},
		},
		{
			name:      "Gort's spelling",
			text:      "deploy:prod must have deploy:run with 2 approvals from deploy:approver",
			canonical: "when command is deploy:prod must have deploy:run with 2 approvals from deploy:approver",
			want:      Approval{Count: 2, Permission: "deploy:approver"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := mustParse(t, tc.text)
			got, ok := r.Approval()
			if !ok || got != tc.want {
				t.Fatalf("Approval() = %+v, %v; want %+v", got, ok, tc.want)
			}
			if r.String() != tc.canonical {
				t.Fatalf("String() = %q, want %q", r.String(), tc.canonical)
			}
			again := mustParse(t, r.String())
			if !again.Equal(r) {
				t.Fatalf("the canonical form parses to another rule")
			}
			if perms := r.Permissions(); containsString(perms, tc.want.Permission) && !strings.Contains(r.Requirement(), tc.want.Permission) {
				t.Fatalf("Permissions() %v names the approvers' permission, which the requester need not hold", perms)
			}
		})
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestARuleWithoutAnApprovalClauseNeedsNone(t *testing.T) {
	t.Parallel()
	r := mustParse(t, "when command is deploy:prod must have deploy:run")
	if a, ok := r.Approval(); ok {
		t.Fatalf("Approval() = %+v, want none", a)
	}
	if other := mustParse(t, "when command is deploy:prod must have deploy:run with approval from deploy:approver"); r.Equal(other) || other.Equal(r) {
		t.Fatal("a rule with an approval clause equals one without")
	}
	if a, b := mustParse(t, "deploy:prod allow with 2 approvals from deploy:a"), mustParse(t, "deploy:prod allow with 3 approvals from deploy:a"); a.Equal(b) {
		t.Fatal("rules asking for different counts are equal")
	}
}

func TestShortFormsTakeAnApprovalClause(t *testing.T) {
	t.Parallel()
	cases := []struct{ text, want string }{
		{"must have deploy:run with 2 approvals from deploy:approver", "when command is deploy:prod must have deploy:run with 2 approvals from deploy:approver"},
		{"with arg[0] == 'db' must have deploy:run with approval from site:dba", "when command is deploy:prod with arg[0] == 'db' must have deploy:run with approval from site:dba"},
		{"allow with approval from deploy:approver", "when command is deploy:prod allow with approval from deploy:approver"},
		{"with arg[0] == 'db' allow with approval from site:dba", "when command is deploy:prod with arg[0] == 'db' allow with approval from site:dba"},
	}
	for _, tc := range cases {
		r, err := ParseForCommand("deploy", "prod", tc.text)
		if err != nil {
			t.Fatalf("ParseForCommand(%q): %v", tc.text, err)
		}
		if r.String() != tc.want {
			t.Errorf("ParseForCommand(%q) = %q, want %q", tc.text, r.String(), tc.want)
		}
	}
}

func TestAMalformedApprovalClauseIsRejectedWithItsColumn(t *testing.T) {
	t.Parallel()
	const head = "when command is deploy:prod must have deploy:run " // 49 runes
	cases := []struct {
		name, text string
		column     int
		msg        string
	}{
		{"no count with the plural", head + "with approvals from deploy:a", 55, "say how many"},
		{"a count of one with the plural", head + "with 1 approvals from deploy:a", 57, "one approval is written `with approval from ...`"},
		{"a count above one with the singular", head + "with 2 approval from deploy:a", 57, "with 2 approvals from"},
		{"zero approvals", head + "with 0 approvals from deploy:a", 55, "from 1 to 100"},
		{"more than the most", head + "with 101 approvals from deploy:a", 55, "from 1 to 100"},
		{"a count that is not a whole number", head + "with 1.5 approvals from deploy:a", 55, "from 1 to 100"},
		{"no from", head + "with approval deploy:a", 64, "expected `from` after `approval`"},
		{"no permission", head + "with approval from", 68, "expected a permission name"},
		{"a bare permission", head + "with approval from approver", 69, `permission "approver" must be namespaced`},
		{"a permission expression", head + "with approval from any in [deploy:a, deploy:b]", 69, "approvers are named by one permission"},
		{"something after the permission", head + "with approval from deploy:a and deploy:b", 78, "expected `and`, `or`, `with approval from ...` or the end of the rule"},
		{"criteria after must have", head + "with arg[0] == 'db'", 55, "criteria come before `must have` or `allow`"},
		{"another word after with", head + "with luck", 55, "expected `approval from ns:perm` or `N approvals from ns:perm` after the `with` at column 50"},
		{"the clause before must have", "when command is deploy:prod with approval from deploy:a must have deploy:run", 34, "the approval clause comes last"},
		{"a counted clause before allow", "when command is deploy:prod with 2 approvals from deploy:a allow", 34, "the approval clause comes last"},
		{"a second approval clause", head + "with approval from deploy:a with approval from deploy:b", 78, "found `with`"},
		{"keywords are lowercase", head + "with Approval from deploy:a", 55, "expected `approval from ns:perm`"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := Parse(tc.text)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want an error", tc.text, r)
			}
			var se *SyntaxError
			if !errors.As(err, &se) || se.Column != tc.column || !strings.Contains(se.Msg, tc.msg) {
				t.Fatalf("Parse(%q) error = %v\nwant column %d and a message containing %q", tc.text, err, tc.column, tc.msg)
			}
		})
	}
}

func TestApprovalWordsStayBareValuesInCriteria(t *testing.T) {
	t.Parallel()
	r := mustParse(t, "when command is mail:send with arg[0] == approval and arg[1] in [from, approvals] allow")
	if _, ok := r.Approval(); ok {
		t.Fatal("criteria about the words approval and from read as an approval clause")
	}
	d := Evaluate([]*Rule{r}, Invocation{Command: "mail:send", Args: []any{"approval", "from"}}, nil)
	if !d.Allowed {
		t.Fatalf("denied: %s", d.Explain())
	}
}

func TestAnAllowedInvocationReportsTheApprovalsItNeeds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		given []string
		args  []any
		perms []string
		want  []Approval
		// explain is a part of Explain(), "" for no approval sentence.
		explain string
	}{
		{
			name:    "given a rule asking for two approvals, the matching invocation needs them",
			given:   []string{"with arg[0] == 'db' must have deploy:run with 2 approvals from deploy:approver", "must have deploy:run"},
			args:    []any{"db"},
			perms:   []string{"deploy:run"},
			want:    []Approval{{Count: 2, Permission: "deploy:approver"}},
			explain: "Before it runs, the request needs 2 approvals from deploy:approver, never the requester's own.",
		},
		{
			name:  "given the same rules, an invocation the approval rule does not match needs none",
			given: []string{"with arg[0] == 'db' must have deploy:run with 2 approvals from deploy:approver", "must have deploy:run"},
			args:  []any{"web"},
			perms: []string{"deploy:run"},
		},
		{
			name:  "a less specific rule's approval is set aside with the rule",
			given: []string{"must have deploy:run with approval from deploy:approver", "with arg[0] == 'staging' must have deploy:run"},
			args:  []any{"staging"},
			perms: []string{"deploy:run"},
		},
		{
			name:    "equally specific rules merge their approvals, the larger count for one permission",
			given:   []string{"must have deploy:run with approval from site:b", "must have deploy:run with 2 approvals from site:a", "allow with 3 approvals from site:a"},
			perms:   []string{"deploy:run"},
			want:    []Approval{{Count: 3, Permission: "site:a"}, {Count: 1, Permission: "site:b"}},
			explain: "needs 3 approvals from site:a and 1 approval from site:b",
		},
		{
			name:  "a denied invocation reports no approvals",
			given: []string{"must have deploy:run with approval from deploy:approver"},
			perms: []string{"deploy:approver"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var rs []*Rule
			for _, text := range tc.given {
				r, err := ParseForCommand("deploy", "prod", text)
				if err != nil {
					t.Fatal(err)
				}
				rs = append(rs, r)
			}
			d := Evaluate(rs, Invocation{Command: "deploy:prod", Args: tc.args}, holding(tc.perms...))
			if !reflect.DeepEqual(d.Approvals, tc.want) {
				t.Fatalf("Approvals = %+v, want %+v (%s)", d.Approvals, tc.want, d.Explain())
			}
			switch {
			case tc.explain != "" && !strings.Contains(d.Explain(), tc.explain):
				t.Fatalf("Explain() = %q, want it to contain %q", d.Explain(), tc.explain)
			case tc.explain == "" && strings.Contains(d.Explain(), "Before it runs"):
				t.Fatalf("Explain() = %q speaks of approvals", d.Explain())
			}
			e := d.Explanation()
			if len(e.Approvals) != len(tc.want) || e.Approvals == nil {
				t.Fatalf("Explanation().Approvals = %+v", e.Approvals)
			}
			for i, r := range rs {
				a, has := r.Approval()
				if has != (e.Rules[i].Approval != "") || has && e.Rules[i].Approval != a.String() {
					t.Fatalf("rule %d's explanation names approval %q", i, e.Rules[i].Approval)
				}
			}
		})
	}
}
