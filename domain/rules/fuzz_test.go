package rules

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

// The seed corpora live in testdata/fuzz/FuzzParse and
// testdata/fuzz/FuzzParseForCommand: rules from public Cog bundles and from
// Cog's and Gort's documentation, rules with approval clauses, plus
// malformed ones.

// approvalSeeds are rules with approval clauses, well formed and not.
var approvalSeeds = []string{
	"when command is deploy:prod with arg[0] == 'db' must have deploy:run with 2 approvals from deploy:approver",
	"when command is deploy:restart allow with approval from site:oncall",
	"deploy:prod must have deploy:run with 1 approval from 'site:release'",
	"when command is deploy:prod must have deploy:run with approvals from deploy:approver",
	"when command is deploy:prod with approval from deploy:a must have deploy:run",
	"when command is deploy:prod must have deploy:run with 100 approvals from deploy:a with approval from deploy:b",
}

func FuzzParse(f *testing.F) {
	for _, d := range documentedRules {
		f.Add(d.text)
	}
	for _, text := range approvalSeeds {
		f.Add(text)
	}
	f.Fuzz(func(t *testing.T, text string) {
		r, err := Parse(text)
		if err != nil {
			checkSyntaxError(t, text, err)
			return
		}
		checkRule(t, r)
	})
}

func FuzzParseForCommand(f *testing.F) {
	f.Add("heroku", "config", "with arg[0] == 'set' must have heroku:write")
	f.Add("format", "fields", "allow")
	f.Add("deploy", "prod", "with arg[0] == 'db' must have deploy:run with 2 approvals from deploy:approver")
	f.Add("deploy", "restart", "allow with approval from site:oncall")
	f.Fuzz(func(t *testing.T, bundle, command, text string) {
		r, err := ParseForCommand(bundle, command, text)
		if err != nil {
			var ne *NameError
			if errors.As(err, &ne) {
				return
			}
			checkSyntaxError(t, text, err)
			return
		}
		checkRule(t, r)
	})
}

func checkSyntaxError(t *testing.T, text string, err error) {
	t.Helper()
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error %v is %T, want *SyntaxError", err, err)
	}
	if se.Column < 1 || se.Column > utf8.RuneCountInString(text)+1 || se.Msg == "" {
		t.Fatalf("error %q has a column outside 1..%d or no message", err, utf8.RuneCountInString(text)+1)
	}
}

// checkRule asserts what must hold for any rule that parses.
func checkRule(t *testing.T, r *Rule) {
	t.Helper()
	canonical := r.String()
	again, err := Parse(canonical)
	if err != nil {
		t.Fatalf("canonical form %q does not parse: %v", canonical, err)
	}
	if !again.Equal(r) {
		t.Fatalf("canonical form %q parses to a different rule", canonical)
	}
	if again.String() != canonical {
		t.Fatalf("String() is not stable: %q then %q", canonical, again.String())
	}
	perms := r.Permissions()
	if !sort.StringsAreSorted(perms) {
		t.Fatalf("Permissions() %q is not sorted", perms)
	}
	for i := 1; i < len(perms); i++ {
		if perms[i] == perms[i-1] {
			t.Fatalf("Permissions() %q repeats %s", perms, perms[i])
		}
	}
	_ = r.Warnings()
	if a, ok := r.Approval(); ok {
		if a.Count < 1 || a.Count > MaxApprovals || nameProblem(a.Permission, "permission", "ns:perm") != "" {
			t.Fatalf("approval clause %+v is out of range or names no permission", a)
		}
		if !strings.HasSuffix(canonical, " with "+a.String()) {
			t.Fatalf("canonical form %q does not end with its approval clause %q", canonical, a.String())
		}
	}
	inv := Invocation{
		Command: r.Command(),
		Args:    []any{"prod", int64(3), 2.5, true},
		Options: map[string]any{"env": []any{"staging", "prod"}, "force": true, "n": int64(-1)},
	}
	d := Evaluate([]*Rule{r}, inv, func(p string) bool { return len(p)%2 == 0 })
	if d.Allowed && d.Matched == nil {
		t.Fatalf("allowed without a deciding rule")
	}
	a, asks := r.Approval()
	switch {
	case !d.Allowed && len(d.Approvals) > 0:
		t.Fatalf("a denied invocation needs approvals %+v", d.Approvals)
	case d.Allowed && asks && (len(d.Approvals) != 1 || d.Approvals[0] != a):
		t.Fatalf("the allowed invocation needs %+v, want the rule's %+v", d.Approvals, a)
	case d.Allowed && !asks && len(d.Approvals) > 0:
		t.Fatalf("a rule without an approval clause made the invocation need %+v", d.Approvals)
	}
	if _, err := json.Marshal(d.Explanation()); err != nil {
		t.Fatalf("explanation does not encode: %v", err)
	}
}
