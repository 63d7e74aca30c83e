package rules

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// The rules of cogcmd/heroku's config command, as its bundle writes them.
var herokuConfigRules = []string{
	"must have heroku:read",
	"with arg[0] == 'set' must have heroku:write",
	"with arg[0] == 'unset' must have heroku:write",
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	type want struct {
		allowed bool
		reason  Reason
		rule    string // canonical text of the deciding rule, "" for none
		missing []string
		explain string // a part of Explain()
	}
	cases := []struct {
		name    string
		given   []string // rules, short forms for foo:bar unless they say otherwise
		command string   // defaults to foo:bar
		args    []any
		options map[string]any
		perms   []string
		want    want
	}{
		{
			name:  "given heroku's config rules, a reader running config set is denied for lack of heroku:write",
			given: herokuConfigRules, command: "heroku:config", args: []any{"set", "A=1"}, perms: []string{"heroku:read"},
			want: want{false, ReasonMissingPermissions, "when command is heroku:config with arg[0] == 'set' must have heroku:write", []string{"heroku:write"},
				"denied: rule `when command is heroku:config with arg[0] == 'set' must have heroku:write` matches on arg[0] (specificity 1) and requires heroku:write; the user lacks heroku:write. 1 less specific matching rule was set aside."},
		},
		{
			name:  "given heroku's config rules, a reader running config get is allowed by the general rule",
			given: herokuConfigRules, command: "heroku:config", args: []any{"get", "A"}, perms: []string{"heroku:read"},
			want: want{true, ReasonAllowed, "when command is heroku:config must have heroku:read", nil,
				"allowed: rule `when command is heroku:config must have heroku:read` applies to every invocation of heroku:config and requires heroku:read; the user has heroku:read."},
		},
		{
			name:  "given heroku's config rules, a writer running config set is allowed without heroku:read",
			given: herokuConfigRules, command: "heroku:config", args: []any{"set", "A=1"}, perms: []string{"heroku:write"},
			want: want{true, ReasonAllowed, "when command is heroku:config with arg[0] == 'set' must have heroku:write", nil, "the user has heroku:write"},
		},
		{
			name:  "a command no rule governs is denied",
			given: []string{"when command is other:cmd allow"}, args: []any{"x"},
			want: want{false, ReasonNoRules, "", nil, "denied: no rule governs foo:bar, and a command that no rule matches is denied."},
		},
		{
			name:  "a command whose only rule does not match is denied",
			given: []string{"with arg[0] == 'status' allow"}, args: []any{"restart"},
			want: want{false, ReasonNoMatchingRule, "", nil, "denied: the only rule for foo:bar, `when command is foo:bar with arg[0] == 'status' allow`, does not match this invocation"},
		},
		{
			name:  "a command none of whose rules match is denied",
			given: []string{"with arg[0] == 'status' allow", "with arg[0] == 'list' allow"}, args: []any{"restart"},
			want: want{false, ReasonNoMatchingRule, "", nil, "denied: none of the 2 rules for foo:bar matches this invocation"},
		},
		{
			name:  "an allow rule lets a user without permissions run the command",
			given: []string{"allow"},
			want:  want{true, ReasonAllowed, "when command is foo:bar allow", nil, "applies to every invocation of foo:bar and allows every user."},
		},
		{
			name:  "a missing argument does not match != (Cog's would), so the general rule decides",
			given: []string{"with arg[1] != 'prod' allow", "must have site:admin"}, args: []any{"deploy"},
			want: want{false, ReasonMissingPermissions, "when command is foo:bar must have site:admin", []string{"site:admin"}, "the user lacks site:admin"},
		},
		{
			name:  "a present argument that differs matches !=",
			given: []string{"with arg[1] != 'prod' allow", "must have site:admin"}, args: []any{"deploy", "staging"},
			want: want{true, ReasonAllowed, "when command is foo:bar with arg[1] != 'prod' allow", nil, "matches on arg[1] (specificity 1) and allows every user. 1 less specific matching rule was set aside."},
		},
		{
			name:  "a missing option does not match != either",
			given: []string{"with option[env] != 'prod' allow"},
			want:  want{false, ReasonNoMatchingRule, "", nil, "does not match this invocation"},
		},
		{
			name:  "a repeated option matches == when any of its values does",
			given: []string{"with option[env] == 'prod' must have site:prod", "must have deploy:run"}, options: map[string]any{"env": []any{"staging", "prod"}}, perms: []string{"deploy:run"},
			want: want{false, ReasonMissingPermissions, "when command is foo:bar with option[env] == 'prod' must have site:prod", []string{"site:prod"}, "matches on option[env]"},
		},
		{
			name:  "a repeated option matches != only when none of its values is equal",
			given: []string{"with option[env] != 'prod' allow", "must have site:prod"}, options: map[string]any{"env": []any{"staging", "prod"}},
			want: want{false, ReasonMissingPermissions, "when command is foo:bar must have site:prod", []string{"site:prod"}, "lacks site:prod"},
		},
		{
			name:  "all args holds vacuously over no arguments, as in Cog",
			given: []string{"with all args == 'x' must have foo:x"},
			want:  want{false, ReasonMissingPermissions, "when command is foo:bar with all args == 'x' must have foo:x", []string{"foo:x"}, "matches this invocation and requires foo:x"},
		},
		{
			name:  "all args in a list does not hold over no arguments, as in Cog",
			given: []string{"with all args in ['x'] allow"},
			want:  want{false, ReasonNoMatchingRule, "", nil, "does not match"},
		},
		{
			name:  "all args requires every argument to match",
			given: []string{"with all args in ['a', 'b'] allow"}, args: []any{"a", "c"},
			want: want{false, ReasonNoMatchingRule, "", nil, "does not match"},
		},
		{
			name:  "any args counts every matching argument towards specificity",
			given: []string{"with any args == 'prod' must have site:prod", "with arg[0] == 'deploy' allow"}, args: []any{"deploy", "prod", "prod"},
			want: want{false, ReasonMissingPermissions, "when command is foo:bar with any args == 'prod' must have site:prod", []string{"site:prod"}, "matches on arg[1] and arg[2] (specificity 2)"},
		},
		{
			name:  "any options quantifies over option values",
			given: []string{"with any options == true must have foo:flag"}, options: map[string]any{"name": "x", "verbose": true}, perms: []string{"foo:flag"},
			want: want{true, ReasonAllowed, "when command is foo:bar with any options == true must have foo:flag", nil, "matches on option[verbose] (specificity 1)"},
		},
		{
			name:  "all options requires every option value to match",
			given: []string{"with all options < 10 allow"}, options: map[string]any{"a": int64(5), "b": int64(20)},
			want: want{false, ReasonNoMatchingRule, "", nil, "does not match"},
		},
		{
			name:    "the more specific of Cog's documented rules decides",
			given:   []string{"when command is operable:bundle with arg[0] == \"disable\" and arg[1] == \"prod\" must have site:manage_prod and operable:manage_commands", "when command is operable:bundle must have operable:manage_commands"},
			command: "operable:bundle", args: []any{"disable", "prod"}, perms: []string{"operable:manage_commands"},
			want: want{false, ReasonMissingPermissions, "when command is operable:bundle with arg[0] == 'disable' and arg[1] == 'prod' must have site:manage_prod and operable:manage_commands", []string{"site:manage_prod"},
				"matches on arg[0] and arg[1] (specificity 2) and requires site:manage_prod and operable:manage_commands; the user lacks site:manage_prod (has operable:manage_commands)."},
		},
		{
			name:    "the general rule decides for another bundle",
			given:   []string{"when command is operable:bundle with arg[0] == \"disable\" and arg[1] == \"prod\" must have site:manage_prod and operable:manage_commands", "when command is operable:bundle must have operable:manage_commands"},
			command: "operable:bundle", args: []any{"disable", "github"}, perms: []string{"operable:manage_commands"},
			want: want{true, ReasonAllowed, "when command is operable:bundle must have operable:manage_commands", nil, "allowed"},
		},
		{
			name:  "equally specific rules must all be satisfied (Cog let either allow)",
			given: []string{"must have foo:a", "must have foo:b"}, perms: []string{"foo:a"},
			want: want{false, ReasonMissingPermissions, "when command is foo:bar must have foo:b", []string{"foo:b"}, "It is one of 2 equally specific matching rules, all of which must be satisfied."},
		},
		{
			name:  "only the side of an or that held counts towards specificity",
			given: []string{"with arg[0] == 'a' or option[x] == 1 must have foo:a", "with arg[0] == 'a' and arg[1] == 'b' allow"}, args: []any{"a", "b"}, perms: []string{"foo:a"},
			want: want{true, ReasonAllowed, "when command is foo:bar with arg[0] == 'a' and arg[1] == 'b' allow", nil, "specificity 2"},
		},
		{
			name:  "numbers compare numerically across int and float",
			given: []string{"with arg[0] == 5.0 and arg[1] > 3 and arg[2] =< 2.5 allow"}, args: []any{int64(5), 4.5, int64(2)},
			want: want{true, ReasonAllowed, "when command is foo:bar with arg[0] == 5.0 and arg[1] > 3 and arg[2] <= 2.5 allow", nil, "specificity 3"},
		},
		{
			name:  "text is never equal to a number",
			given: []string{"with arg[0] == 5 allow"}, args: []any{"5"},
			want: want{false, ReasonNoMatchingRule, "", nil, "does not match"},
		},
		{
			name:  "text and numbers have no order",
			given: []string{"with arg[0] < 10 allow"}, args: []any{"abc"},
			want: want{false, ReasonNoMatchingRule, "", nil, "does not match"},
		},
		{
			name:  "text orders byte-wise",
			given: []string{"with arg[0] > 'm' allow"}, args: []any{"z"},
			want: want{true, ReasonAllowed, "when command is foo:bar with arg[0] > 'm' allow", nil, "allowed"},
		},
		{
			name:  "comparisons are case-sensitive",
			given: []string{"with arg[0] == 'prod' allow"}, args: []any{"PROD"},
			want: want{false, ReasonNoMatchingRule, "", nil, "does not match"},
		},
		{
			name:  "a regular expression matches any present option (cogcmd/mist)",
			given: []string{"with option[set-policy] == /.*/ must have mist:change-acl", "must have mist:view"}, options: map[string]any{"set-policy": "public"}, perms: []string{"mist:view"},
			want: want{false, ReasonMissingPermissions, "when command is foo:bar with option[set-policy] == /.*/ must have mist:change-acl", []string{"mist:change-acl"}, "lacks mist:change-acl"},
		},
		{
			name:  "a regular expression does not match an absent option",
			given: []string{"with option[set-policy] == /.*/ must have mist:change-acl", "must have mist:view"}, perms: []string{"mist:view"},
			want: want{true, ReasonAllowed, "when command is foo:bar must have mist:view", nil, "allowed"},
		},
		{
			name:  "a regular expression matches a number as written",
			given: []string{`with arg[0] == /^\d+$/ allow`}, args: []any{int64(42)},
			want: want{true, ReasonAllowed, `when command is foo:bar with arg[0] == /^\d+$/ allow`, nil, "allowed"},
		},
		{
			name:  "!= with a regular expression holds when it does not match",
			given: []string{`with arg[0] != /^prod/ allow`}, args: []any{"staging"},
			want: want{true, ReasonAllowed, `when command is foo:bar with arg[0] != /^prod/ allow`, nil, "allowed"},
		},
		{
			name:  "in holds when the value is one of the list (cogcmd/mist)",
			given: []string{"with arg[0] in ['delete', 'rm'] must have mist:destroy"}, args: []any{"rm", "i-1"}, perms: []string{"mist:destroy"},
			want: want{true, ReasonAllowed, "when command is foo:bar with arg[0] in ['delete', 'rm'] must have mist:destroy", nil, "allowed"},
		},
		{
			name:  "a boolean option matches true",
			given: []string{"with option[delete] == true must have foo:destroy"}, options: map[string]any{"delete": true},
			want: want{false, ReasonMissingPermissions, "when command is foo:bar with option[delete] == true must have foo:destroy", []string{"foo:destroy"}, "lacks foo:destroy"},
		},
		{
			name:  "a value of an unknown type matches nothing, not even !=",
			given: []string{"with arg[0] != 'x' allow"}, args: []any{struct{}{}},
			want: want{false, ReasonNoMatchingRule, "", nil, "does not match"},
		},
		{
			name:  "any in is satisfied by one of the permissions",
			given: []string{"must have any in [foo:read, foo:write]"}, perms: []string{"foo:write"},
			want: want{true, ReasonAllowed, "when command is foo:bar must have any in [foo:read, foo:write]", nil, "the user has foo:write."},
		},
		{
			name:  "all in needs every permission",
			given: []string{"must have all in [foo:read, foo:write]"}, perms: []string{"foo:write"},
			want: want{false, ReasonMissingPermissions, "when command is foo:bar must have all in [foo:read, foo:write]", []string{"foo:read"}, "lacks foo:read (has foo:write)"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			command := tc.command
			if command == "" {
				command = "foo:bar"
			}
			bundle, name, _ := strings.Cut(command, ":")
			var rules []*Rule
			for _, text := range tc.given {
				r, err := ParseForCommand(bundle, name, text)
				if err != nil {
					t.Fatalf("rule %q: %v", text, err)
				}
				rules = append(rules, r)
			}
			d := Evaluate(rules, Invocation{Command: command, Args: tc.args, Options: tc.options}, holding(tc.perms...))
			if d.Allowed != tc.want.allowed || d.Reason != tc.want.reason {
				t.Errorf("allowed = %v (%s), want %v (%s); %s", d.Allowed, d.Reason, tc.want.allowed, tc.want.reason, d.Explain())
			}
			gotRule := ""
			if d.Matched != nil {
				gotRule = d.Matched.String()
			}
			if gotRule != tc.want.rule {
				t.Errorf("deciding rule = %q, want %q", gotRule, tc.want.rule)
			}
			if !d.Allowed && !reflect.DeepEqual(d.Missing, tc.want.missing) {
				t.Errorf("missing = %q, want %q", d.Missing, tc.want.missing)
			}
			if !strings.Contains(d.Explain(), tc.want.explain) {
				t.Errorf("Explain() = %q\nwant it to contain %q", d.Explain(), tc.want.explain)
			}
		})
	}
}

func TestEvaluateAsksForEachPermissionOnce(t *testing.T) {
	t.Parallel()
	rules := []*Rule{
		mustParse(t, "when command is foo:bar must have foo:a and any in [foo:a, foo:b]"),
		mustParse(t, "when command is foo:bar must have all in [foo:b, foo:a] or foo:a"),
	}
	asked := map[string]int{}
	Evaluate(rules, Invocation{Command: "foo:bar"}, func(p string) bool { asked[p]++; return p == "foo:a" })
	if want := map[string]int{"foo:a": 1, "foo:b": 1}; !reflect.DeepEqual(asked, want) {
		t.Errorf("has was called %v, want once per permission %v", asked, want)
	}
}

func TestEvaluateWithoutPermissionFunctionHoldsNone(t *testing.T) {
	t.Parallel()
	d := Evaluate([]*Rule{mustParse(t, "when command is foo:bar must have foo:a")}, Invocation{Command: "foo:bar"}, nil)
	if d.Allowed || !reflect.DeepEqual(d.Missing, []string{"foo:a"}) {
		t.Errorf("with a nil has: allowed = %v, missing = %q; want denied for lack of foo:a", d.Allowed, d.Missing)
	}
}

func TestEvaluateAcceptsOtherIntegerTypes(t *testing.T) {
	t.Parallel()
	r := mustParse(t, "when command is foo:bar with arg[0] == 3 and option[n] > 2 and option[f] < 1 allow")
	d := Evaluate([]*Rule{r}, Invocation{Command: "foo:bar", Args: []any{3}, Options: map[string]any{"n": uint8(7), "f": float32(0.5)}}, nil)
	if !d.Allowed {
		t.Errorf("int, uint8 and float32 values were not compared as numbers: %s", d.Explain())
	}
}

func TestExplanationEncodesAsJSON(t *testing.T) {
	t.Parallel()
	rules := []*Rule{
		mustParse(t, "when command is heroku:config must have heroku:read"),
		mustParse(t, "when command is heroku:config with arg[0] == 'set' must have heroku:write"),
		mustParse(t, "when command is heroku:config with arg[0] == 'unset' must have heroku:write"),
	}
	d := Evaluate(rules, Invocation{Command: "heroku:config", Args: []any{"set"}}, holding("heroku:read"))
	raw, err := json.Marshal(d.Explanation())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"command":     "heroku:config",
		"allowed":     false,
		"reason":      "missing_permissions",
		"rule":        "when command is heroku:config with arg[0] == 'set' must have heroku:write",
		"requires":    "heroku:write",
		"specificity": 1.0,
		"matched_on":  []any{"arg[0]"},
		"missing":     []any{"heroku:write"},
		"held":        []any{},
		"approvals":   []any{},
		"summary":     d.Explain(),
		"rules": []any{
			map[string]any{"rule": "when command is heroku:config must have heroku:read", "matched": true, "specificity": 0.0, "matched_on": []any{}, "satisfied": true, "missing": []any{}, "decisive": false},
			map[string]any{"rule": "when command is heroku:config with arg[0] == 'set' must have heroku:write", "matched": true, "specificity": 1.0, "matched_on": []any{"arg[0]"}, "satisfied": false, "missing": []any{"heroku:write"}, "decisive": true},
			map[string]any{"rule": "when command is heroku:config with arg[0] == 'unset' must have heroku:write", "matched": false, "specificity": 0.0, "matched_on": []any{}, "satisfied": false, "missing": []any{}, "decisive": false},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("explanation JSON =\n%s\nwant\n%v", raw, want)
	}
}
