package rules

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Rules written from the documented examples of Cog (operable/cog-book,
// "Command Execution Rules" and "Permissions and Rules") and Gort (the Gort
// guide, "Command Execution Rules"), each with the canonical form Logbook
// writes for it.
var documentedRules = []struct {
	name, text, canonical string
}{
	{
		name:      "a plain permission rule",
		text:      "when command is operable:bundle must have operable:manage_commands",
		canonical: "when command is operable:bundle must have operable:manage_commands",
	},
	{
		name:      "an option equal to a boolean",
		text:      "when command is foo:bar with option[delete] == true must have foo:destroy",
		canonical: "when command is foo:bar with option[delete] == true must have foo:destroy",
	},
	{
		name:      "an option matching a regular expression",
		text:      "when command is foo:set with option[set] == /.*/ must have foo:baz-set",
		canonical: "when command is foo:set with option[set] == /.*/ must have foo:baz-set",
	},
	{
		name:      "an option and an argument compared to a number",
		text:      "when command is foo:barqux with option[delete] == true and arg[0] > 5 must have foo:destroy",
		canonical: "when command is foo:barqux with option[delete] == true and arg[0] > 5 must have foo:destroy",
	},
	{
		name:      "two permissions joined by and",
		text:      "when command is foo:baz must have foo:write and site:admin",
		canonical: "when command is foo:baz must have foo:write and site:admin",
	},
	{
		name:      "all in or any in",
		text:      "when command is foo:export must have all in [foo:write, site:ops] or any in [site:admin, site:management]",
		canonical: "when command is foo:export must have all in [foo:write, site:ops] or any in [site:admin, site:management]",
	},
	{
		name:      "any in a list",
		text:      "when command is foo:bar must have any in [foo:read, foo:write]",
		canonical: "when command is foo:bar must have any in [foo:read, foo:write]",
	},
	{
		name:      "the allow keyword",
		text:      "when command is foo:biz allow",
		canonical: "when command is foo:biz allow",
	},
	{
		name:      "three all-in lists joined by or",
		text:      "when command is foo:patch must have all in [foo:p_patch, site:it] or all in [site:qa, site:test, foo:p_patch] or all in [site:eng, site:stage, foo:p_patch]",
		canonical: "when command is foo:patch must have all in [foo:p_patch, site:it] or all in [site:qa, site:test, foo:p_patch] or all in [site:eng, site:stage, foo:p_patch]",
	},
	{
		name:      "a rule written over several lines with double quotes",
		text:      "when command is operable:bundle\n  with arg[0] == \"disable\"\n    and arg[1] == \"prod\"\n  must have site:manage_prod and operable:manage_commands",
		canonical: "when command is operable:bundle with arg[0] == 'disable' and arg[1] == 'prod' must have site:manage_prod and operable:manage_commands",
	},
	{
		name:      "Gort's spelling without when command is",
		text:      "foo:biz allow",
		canonical: "when command is foo:biz allow",
	},
	{
		name:      "Gort's quoted option names",
		text:      `foo:bar with option['delete'] == true and arg[0] == false must have foo:destroy`,
		canonical: "when command is foo:bar with option[delete] == true and arg[0] == false must have foo:destroy",
	},
	{
		name:      "an option in a list of double-quoted strings",
		text:      `foo:bar with option[foo] in ["foo", "bar"] allow`,
		canonical: "when command is foo:bar with option[foo] in ['foo', 'bar'] allow",
	},
	{
		name:      "any arg in a mixed list",
		text:      `foo:bar with any arg in ['wubba', /^f.*/, 10] must have foo:read`,
		canonical: "when command is foo:bar with any args in ['wubba', /^f.*/, 10] must have foo:read",
	},
	{
		name:      "all arg in a list",
		text:      `foo:bar with all arg in [10, 'baz', 'wubba'] must have foo:read`,
		canonical: "when command is foo:bar with all args in [10, 'baz', 'wubba'] must have foo:read",
	},
	{
		name:      "an argument in a list with a boolean",
		text:      `foo:bar with arg[0] in ['baz', false, 100] must have foo:read`,
		canonical: "when command is foo:bar with arg[0] in ['baz', false, 100] must have foo:read",
	},
	{
		name:      "any option not matching a regular expression",
		text:      `foo:bar with any option != /^prod.*/ must have foo:read`,
		canonical: "when command is foo:bar with any options != /^prod.*/ must have foo:read",
	},
	{
		name:      "Cog's =< for less-or-equal",
		text:      `when command is foo:bar with all options =< 10 must have foo:read`,
		canonical: "when command is foo:bar with all options <= 10 must have foo:read",
	},
	{
		name:      "<= for less-or-equal",
		text:      `foo:bar with all option <= 10 must have foo:read`,
		canonical: "when command is foo:bar with all options <= 10 must have foo:read",
	},
	{
		name:      "=> for greater-or-equal",
		text:      `foo:bar with all option => 10 must have foo:read`,
		canonical: "when command is foo:bar with all options >= 10 must have foo:read",
	},
	{
		name:      "a quoted option name and a permission list",
		text:      `foo:deploy with option["environment"] == 'prod' must have all in [site:it, site:prod, foo:deploy]`,
		canonical: "when command is foo:deploy with option[environment] == 'prod' must have all in [site:it, site:prod, foo:deploy]",
	},
	{
		name:      "parentheses around alternatives (cogcmd/mist)",
		text:      "when command is mist:ec2-vm with (arg[0] == 'delete' or arg[0] == 'rm') must have mist:destroy",
		canonical: "when command is mist:ec2-vm with (arg[0] == 'delete' or arg[0] == 'rm') must have mist:destroy",
	},
}

func TestParseAcceptsDocumentedRules(t *testing.T) {
	t.Parallel()
	for _, tc := range documentedRules {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := Parse(tc.text)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.text, err)
			}
			if got := r.String(); got != tc.canonical {
				t.Errorf("String() = %q\nwant       %q", got, tc.canonical)
			}
		})
	}
}

func TestParseTypesValues(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, value string
		want        literal
	}{
		{"a bare word is text", "us-east-1", literal{kind: litString, str: "us-east-1"}},
		{"a dotted version is text", "1.2.3", literal{kind: litString, str: "1.2.3"}},
		{"a decimal is a float", "0.55", literal{kind: litFloat, f: 0.55}},
		{"a negative whole number is an int", "-5", literal{kind: litInt, i: -5}},
		{"lowercase true is a boolean", "true", literal{kind: litBool, b: true}},
		{"capitalised True is text", "True", literal{kind: litString, str: "True"}},
		{"a quoted number is text", "'5'", literal{kind: litString, str: "5"}},
		{"a backslash escapes a quote", `'it\'s'`, literal{kind: litString, str: "it's"}},
		{"a double-quoted string keeps single quotes", `"it's"`, literal{kind: litString, str: "it's"}},
		{"an escaped slash belongs to the regular expression", `/a\/b/`, literal{kind: litRegex, str: "a/b"}},
		{"other backslashes stay in the regular expression", `/^\d+$/`, literal{kind: litRegex, str: `^\d+$`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := Parse("when command is foo:bar with arg[0] == " + tc.value + " allow")
			if err != nil {
				t.Fatal(err)
			}
			if got := r.criteria.value; !got.equal(tc.want) {
				t.Errorf("value %s parsed as %#v, want %#v", tc.value, got, tc.want)
			}
		})
	}
}

func TestParseRejectsWithColumn(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		text   string
		column int
		msg    string // a part of the message
	}{
		{"an empty rule", "", 1, "expected a rule starting with `when command is`, found the end of the rule"},
		{"a missing is", "when command foo:bar allow", 14, "expected `is` after `when command`, found `foo:bar`"},
		{"an uppercase keyword", "When command is foo:bar allow", 1, "(keywords are lowercase)"},
		{"a command without a bundle", "when command is foo allow", 17, `command "foo" must be namespaced as bundle:command`},
		{"a command with two colons", "when command is foo:bar:baz allow", 17, `command "foo:bar:baz" is not a valid name`},
		{"a rule with no requirement", "when command is foo:bar", 24, "expected `with`, `must have` or `allow` after the command, found the end of the rule"},
		{"a permission without a namespace", "when command is foo:bar must have read", 35, `permission "read" must be namespaced as ns:perm; operator-made permissions use the site: namespace`},
		{"columns count characters, not bytes", "when command is föö:bar must have bär", 35, `permission "bär" must be namespaced`},
		{"allow after a permission", "when command is foo:bar must have foo:read allow", 44, "expected `and`, `or`, `with approval from ...` or the end of the rule after a permission, found `allow`"},
		{"anything after allow", "when command is foo:bar allow must have foo:read", 31, "`allow` stands alone"},
		{"allow as a permission", "when command is foo:bar must have allow", 35, "`allow` replaces `must have`"},
		{"must without have", "when command is foo:bar must foo:read", 30, "expected `have` after `must`, found `foo:read`"},
		{"a single equals sign", "when command is foo:bar with arg[0] = 'x' allow", 37, "equality is written =="},
		{"an uppercase connective", "when command is foo:bar with arg[0] == 'x' AND arg[1] == 'y' allow", 44, "expected `and`, `or`, `must have` or `allow` after a criterion, found `AND` (keywords are lowercase)"},
		{"an unclosed string", "when command is foo:bar with arg[0] == 'x allow", 40, "string is not closed: expected a closing '"},
		{"an invalid regular expression", "when command is foo:bar with arg[0] == /(/ allow", 40, "invalid regular expression /(/"},
		{"an unclosed regular expression", "when command is foo:bar with arg[0] == /abc allow", 40, "regular expression is not closed"},
		{"a regular expression with an ordering", "when command is foo:bar with arg[0] > /x/ allow", 37, "a regular expression can only be compared with == or !="},
		{"a boolean with an ordering", "when command is foo:bar with arg[0] < true allow", 37, "true and false can only be compared with == or !="},
		{"an argument position that is not a number", "when command is foo:bar with arg[x] == 1 allow", 34, "expected an argument position (0, 1, 2, ...) inside arg[...], found `x`"},
		{"a negative argument position", "when command is foo:bar with arg[-1] == 1 allow", 34, "expected an argument position"},
		{"arg without a position", "when command is foo:bar with arg == 1 allow", 34, "expected `[` after `arg`"},
		{"args without a quantifier", "when command is foo:bar with args == 1 allow", 30, "`args` needs a quantifier: write `any args` or `all args`"},
		{"any without args or options", "when command is foo:bar with any foo == 1 allow", 34, "expected `args` or `options` after `any`, found `foo`"},
		{"an option without a name", "when command is foo:bar with option[] == 1 allow", 37, "expected an option name inside option[...], found `]`"},
		{"an option without a closing bracket", "when command is foo:bar with option[env == 1 allow", 41, "expected `]` after `option[env`, found `==`"},
		{"a criterion without an operator", "when command is foo:bar with arg[0] 'x' allow", 37, "expected ==, !=, <, >, <=, >= or `in` after arg[0], found the string 'x'"},
		{"a keyword as a value", "when command is foo:bar with arg[0] == allow", 40, "expected a value, found the keyword `allow` (quote it to compare with that text)"},
		{"text after allow", "when command is foo:bar with arg[0] == 'x' allow foo:bar", 50, "`allow` stands alone"},
		{"an empty value list", "when command is foo:bar with arg[0] in [] allow", 41, "a list after `in` needs at least one value"},
		{"a value list without commas", "when command is foo:bar with arg[0] in ['a' 'b'] allow", 45, "expected `,` or `]` in the list opened at column 40"},
		{"in without a list", "when command is foo:bar with arg[0] in 'a' allow", 40, "expected `[` to start the list after `in`"},
		{"an integer too large", "when command is foo:bar with arg[0] == 99999999999999999999 allow", 40, "does not fit in a 64-bit integer"},
		{"an unclosed parenthesis", "when command is foo:bar with (arg[0] == 1 allow", 43, "expected `)` to close the `(` at column 30"},
		{"a stray closing parenthesis", "when command is foo:bar with arg[0] == 1) allow", 41, "found `)`"},
		{"an unknown character", "when command is foo:bar with arg[0] == 1 & allow", 42, `unexpected character '&'`},
		{"not instead of !=", "when command is foo:bar with arg[0] ! 1 allow", 37, "inequality is written !="},
		{"an empty permission list", "when command is foo:bar must have any in [] ", 43, "a permission list needs at least one permission"},
		{"a regular expression in a permission list", "when command is foo:bar must have any in [/foo/]", 43, "regular expressions are not supported"},
		{"any without in", "when command is foo:bar must have any [foo:a]", 39, "expected `in` after `any`"},
		{"a bare name in a permission list", "when command is foo:bar must have all in [foo:a, bar]", 50, `permission "bar" must be namespaced`},
		{"a dangling or", "when command is foo:bar must have foo:a or", 43, "expected a permission name (ns:perm), found the end of the rule"},
		{"an unclosed permission group", "when command is foo:bar must have (foo:a or foo:b", 50, "expected `)` to close the `(` at column 35"},
		{"a short form outside a bundle", "must have foo:bar", 1, "a rule must name its command"},
		{"a dangling and after criteria and permissions", "when command is foo:bar with arg[0] == 'x' must have foo:b and", 63, "found the end of the rule"},
		{"parentheses nested too deep", "when command is foo:bar with " + strings.Repeat("(", 101) + "arg[0] == 1" + strings.Repeat(")", 101) + " allow", 130, "nested more than 100 deep"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := Parse(tc.text)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want an error", tc.text, r)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is %T, want *SyntaxError", err, err)
			}
			if se.Column != tc.column || !strings.Contains(se.Msg, tc.msg) {
				t.Errorf("Parse(%q) error = %q\nwant column %d and a message containing %q", tc.text, err, tc.column, tc.msg)
			}
			if want := "column "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q, want it to start with %q", err.Error(), want)
			}
		})
	}
}

func TestParseForCommandExpandsShortForms(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, bundle, command, text, want string
	}{
		{"allow alone", "format", "fields", "allow", "when command is format:fields allow"},
		{"must have a permission", "cfn", "stack-create", "must have cfn:stack", "when command is cfn:stack-create must have cfn:stack"},
		{"criteria then must have", "heroku", "config", "with arg[0] == 'set' must have heroku:write", "when command is heroku:config with arg[0] == 'set' must have heroku:write"},
		{"criteria then allow", "deploy", "status", "with option[env] != 'prod' allow", "when command is deploy:status with option[env] != 'prod' allow"},
		{"a full form naming the command", "twitter", "tweet", "when command is twitter:tweet must have twitter:tweet", "when command is twitter:tweet must have twitter:tweet"},
		{"a full form naming another command is returned as is", "twitter", "tweet", "when command is other:thing allow", "when command is other:thing allow"},
		{"Gort's full form", "foo", "biz", "foo:biz allow", "when command is foo:biz allow"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseForCommand(tc.bundle, tc.command, tc.text)
			if err != nil {
				t.Fatalf("ParseForCommand(%q, %q, %q): %v", tc.bundle, tc.command, tc.text, err)
			}
			if got := r.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
			full, err := Parse(r.String())
			if err != nil || !full.Equal(r) {
				t.Errorf("the expansion does not parse back as the same rule: %v", err)
			}
		})
	}
}

func TestParseForCommandRejects(t *testing.T) {
	t.Parallel()
	t.Run("columns count from the start of the short form", func(t *testing.T) {
		t.Parallel()
		_, err := ParseForCommand("foo", "bar", "must have read")
		var se *SyntaxError
		if !errors.As(err, &se) || se.Column != 11 {
			t.Fatalf("error = %v, want a *SyntaxError at column 11", err)
		}
	})
	t.Run("an empty rule says which forms are accepted", func(t *testing.T) {
		t.Parallel()
		_, err := ParseForCommand("foo", "bar", "  ")
		var se *SyntaxError
		if !errors.As(err, &se) || se.Column != 3 || !strings.Contains(se.Msg, "expected `allow`, `must have`, `with` or a full rule") {
			t.Fatalf("error = %v, want a *SyntaxError at column 3 listing the accepted forms", err)
		}
	})
	t.Run("a bundle name that cannot form a command name", func(t *testing.T) {
		t.Parallel()
		_, err := ParseForCommand("my bundle", "run", "allow")
		var ne *NameError
		if !errors.As(err, &ne) || ne.Bundle != "my bundle" || !strings.Contains(ne.Msg, `"my bundle:run"`) {
			t.Fatalf("error = %v, want a *NameError naming my bundle:run", err)
		}
	})
	t.Run("an empty command name", func(t *testing.T) {
		t.Parallel()
		_, err := ParseForCommand("foo", "", "must have foo:bar")
		var ne *NameError
		if !errors.As(err, &ne) {
			t.Fatalf("error = %v, want a *NameError", err)
		}
	})
}

func TestAndOrGroupFromTheRight(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, written, explicit string
	}{
		{"and then or in criteria", "with arg[0] == 'a' and arg[1] == 'b' or arg[2] == 'c' allow", "with arg[0] == 'a' and (arg[1] == 'b' or arg[2] == 'c') allow"},
		{"or then and in criteria", "with arg[0] == 'a' or arg[1] == 'b' and arg[2] == 'c' allow", "with arg[0] == 'a' or (arg[1] == 'b' and arg[2] == 'c') allow"},
		{"and then or in permissions", "must have foo:a and foo:b or foo:c", "must have foo:a and (foo:b or foo:c)"},
		{"or then and in permissions", "must have foo:a or foo:b and foo:c", "must have foo:a or (foo:b and foo:c)"},
		{"a chain of three connectives", "must have foo:a and foo:b or foo:c and foo:d", "must have foo:a and (foo:b or (foo:c and foo:d))"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			written := mustParse(t, "when command is foo:bar "+tc.written)
			explicit := mustParse(t, "when command is foo:bar "+tc.explicit)
			// The explicit parentheses make the tree equal except for the
			// parens flag on the right operands; compare by evaluation and by
			// the grouping the warning spells out.
			grouped := strings.TrimPrefix(tc.explicit, "with ")
			grouped = strings.TrimPrefix(grouped, "must have ")
			grouped = strings.TrimSuffix(grouped, " allow")
			found := false
			for _, w := range written.Warnings() {
				if strings.HasSuffix(w, "so they mean: "+grouped) {
					found = true
				}
			}
			if !found {
				t.Errorf("Warnings() = %q, want one spelling out %q", written.Warnings(), grouped)
			}
			if len(explicit.Warnings()) != 0 {
				t.Errorf("the explicitly grouped rule warns: %q", explicit.Warnings())
			}
			if written.Equal(explicit) {
				t.Error("a rule with and without parentheses compares equal; the parentheses should be kept")
			}
		})
	}
}

func TestRightGroupingDecidesLikeCog(t *testing.T) {
	t.Parallel()
	// With arg[0] != 'a' and arg[2] == 'c', left grouping ((a and b) or c)
	// would hold; Cog's right grouping (a and (b or c)) does not.
	r := mustParse(t, "when command is foo:bar with arg[0] == 'a' and arg[1] == 'b' or arg[2] == 'c' allow")
	d := Evaluate([]*Rule{r}, Invocation{Command: "foo:bar", Args: []any{"x", "y", "c"}}, nil)
	if d.Allowed || d.Reason != ReasonNoMatchingRule {
		t.Errorf("decision = %v (%s), want denied for no matching rule", d.Allowed, d.Reason)
	}

	p := mustParse(t, "when command is foo:bar must have foo:a and foo:b or foo:c")
	d = Evaluate([]*Rule{p}, Invocation{Command: "foo:bar"}, holding("foo:c"))
	if d.Allowed {
		t.Error("foo:c alone satisfied foo:a and foo:b or foo:c; Cog reads it as foo:a and (foo:b or foo:c)")
	}
	d = Evaluate([]*Rule{p}, Invocation{Command: "foo:bar"}, holding("foo:a", "foo:c"))
	if !d.Allowed {
		t.Error("foo:a and foo:c did not satisfy foo:a and (foo:b or foo:c)")
	}
}

func TestWarningsPointAtTheirColumn(t *testing.T) {
	t.Parallel()
	r := mustParse(t, "when command is foo:bar with arg[1] != 'prod' and option[x] == 1 or option[y] == 2 must have foo:a or foo:b and foo:c")
	want := []string{
		"column 47: the criteria mix `and` and `or` without parentheses; they have equal precedence and group from the right, as in Cog, so they mean: arg[1] != 'prod' and (option[x] == 1 or option[y] == 2)",
		"column 30: `arg[1] != 'prod'` does not match when arg[1] is missing (Cog matched it), so it only applies to invocations that give arg[1]",
		"column 100: the permissions mix `and` and `or` without parentheses; they have equal precedence and group from the right, as in Cog, so they mean: foo:a or (foo:b and foo:c)",
	}
	if got := r.Warnings(); !reflect.DeepEqual(got, want) {
		t.Errorf("Warnings() =\n%q\nwant\n%q", got, want)
	}
	canonical := r.String()
	if canonical[46:49] != "and" || canonical[29:35] != "arg[1]" || canonical[99:101] != "or" {
		t.Errorf("the columns do not point into %q as expected", canonical)
	}
	short, err := ParseForCommand("foo", "bar", "with arg[0] != 'x' allow")
	if err != nil {
		t.Fatal(err)
	}
	if w := short.Warnings(); len(w) != 1 || !strings.HasPrefix(w[0], "column 6: `arg[0] != 'x'`") {
		t.Errorf("a short form's warnings = %q, want one at column 6 of the text as written", w)
	}
	if w := mustParse(t, "when command is foo:bar with any args != 'x' allow").Warnings(); len(w) != 0 {
		t.Errorf("a quantified != warns about missing values: %q", w)
	}
}

func TestPermissionsAreSortedAndDistinct(t *testing.T) {
	t.Parallel()
	r := mustParse(t, "when command is foo:bar must have site:z and (any in [foo:b, site:a] or all in [foo:b, foo:a])")
	want := []string{"foo:a", "foo:b", "site:a", "site:z"}
	if got := r.Permissions(); !reflect.DeepEqual(got, want) {
		t.Errorf("Permissions() = %q, want %q", got, want)
	}
	if got := mustParse(t, "when command is foo:bar allow").Permissions(); got == nil || len(got) != 0 {
		t.Errorf("an allow rule's Permissions() = %#v, want an empty list", got)
	}
}

func TestStringRoundTrips(t *testing.T) {
	t.Parallel()
	texts := []string{
		"when command is foo:bar with option['my option'] == 'it\\'s' allow",
		`when command is foo:bar with arg[0] == /a\/b\\/ allow`,
		"when command is foo:bar with arg[0] == 1.0 and arg[1] == -0.5 allow",
		"when command is foo:bar with ((arg[0] == 1)) allow",
		"when command is foo:bar with (arg[0] == 1 or arg[1] == 2) and (arg[2] == 3 or any options in [/x/, true]) must have (foo:a or foo:b) and site:c",
		"when command is foo:bar with arg[0] == 'back\\\\slash' must have 'foo:quoted'",
	}
	for _, text := range append(texts, documentedTexts()...) {
		r := mustParse(t, text)
		again, err := Parse(r.String())
		if err != nil {
			t.Errorf("Parse(String()) of %q: %v", text, err)
			continue
		}
		if !again.Equal(r) {
			t.Errorf("Parse(%q) is not equal to the rule it was written from", r.String())
		}
		if again.String() != r.String() {
			t.Errorf("String() is not stable: %q then %q", r.String(), again.String())
		}
	}
}

func documentedTexts() []string {
	var texts []string
	for _, d := range documentedRules {
		texts = append(texts, d.text)
	}
	return texts
}

func mustParse(t *testing.T, text string) *Rule {
	t.Helper()
	r, err := Parse(text)
	if err != nil {
		t.Fatalf("Parse(%q): %v", text, err)
	}
	return r
}

func holding(perms ...string) func(string) bool {
	set := map[string]bool{}
	for _, p := range perms {
		set[p] = true
	}
	return func(p string) bool { return set[p] }
}

func TestRuleAccessorsGiveCanonicalParts(t *testing.T) {
	t.Parallel()
	r := mustParse(t, "foo:bar with arg[0]=='x' or option['dry run'] == true must have (foo:a or foo:b)")
	if got, want := r.Command(), "foo:bar"; got != want {
		t.Errorf("Command() = %q, want %q", got, want)
	}
	if got, want := r.Criteria(), "arg[0] == 'x' or option['dry run'] == true"; got != want {
		t.Errorf("Criteria() = %q, want %q", got, want)
	}
	if got, want := r.Requirement(), "(foo:a or foo:b)"; got != want {
		t.Errorf("Requirement() = %q, want %q", got, want)
	}
	if r.AllowsEveryone() {
		t.Error("a must-have rule claims to allow everyone")
	}
	allow := mustParse(t, "when command is foo:bar allow")
	if allow.Criteria() != "" || allow.Requirement() != "allow" || !allow.AllowsEveryone() {
		t.Errorf("allow rule: Criteria() = %q, Requirement() = %q, AllowsEveryone() = %v", allow.Criteria(), allow.Requirement(), allow.AllowsEveryone())
	}
	if r.Equal(nil) || allow.Equal(r) {
		t.Error("different rules compare equal")
	}
}
