package rules

import (
	"encoding/json"
	"errors"
	"sort"
	"testing"
	"unicode/utf8"
)

// The seed corpora live in testdata/fuzz/FuzzParse and
// testdata/fuzz/FuzzParseForCommand: rules from public Cog bundles and from
// Cog's and Gort's documentation, plus malformed ones.

func FuzzParse(f *testing.F) {
	for _, d := range documentedRules {
		f.Add(d.text)
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
	inv := Invocation{
		Command: r.Command(),
		Args:    []any{"prod", int64(3), 2.5, true},
		Options: map[string]any{"env": []any{"staging", "prod"}, "force": true, "n": int64(-1)},
	}
	d := Evaluate([]*Rule{r}, inv, func(p string) bool { return len(p)%2 == 0 })
	if d.Allowed && d.Matched == nil {
		t.Fatalf("allowed without a deciding rule")
	}
	if _, err := json.Marshal(d.Explanation()); err != nil {
		t.Fatalf("explanation does not encode: %v", err)
	}
}
