package pipeline_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/pipeline"
)

func TestParseTypesWordsTheWayCogDoes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		args []any
	}{
		{"lowercase true and false are booleans", `c true false`, []any{true, false}},
		{"other spellings of true are strings", `c TRUE True FALSE`, []any{"TRUE", "True", "FALSE"}},
		{"digits are an int", `c 42 +7 007`, []any{int64(42), int64(7), int64(7)}},
		{"a negative number is an argument, not an option", `c -5 -0.5`, []any{int64(-5), -0.5}},
		{"digits.digits is a float", `c 0.55 10.0`, []any{0.55, 10.0}},
		{"a version stays a string", `c 1.2.3 1. .5 1e3`, []any{"1.2.3", "1.", ".5", "1e3"}},
		{"an int too large for int64 stays a string", `c 99999999999999999999`, []any{"99999999999999999999"}},
		{"a quoted number stays a string", `c "123" '4.5' "true"`, []any{"123", "4.5", "true"}},
		{"an escaped number stays a string", `c \123`, []any{"123"}},
		{"a lone dash is an argument", `c -`, []any{"-"}},
		{"an empty quoted string is an argument", `c "" ''`, []any{"", ""}},
		{"a dollar that starts no name is literal", `c $5 US$ $`, []any{"$5", "US$", "$"}},
		{"quoted and unquoted parts join into one word", `c ab"c d"'e f'`, []any{"abc de f"}},
		{"unicode text is kept", `c héllo 日本`, []any{"héllo", "日本"}},
		{"non-breaking and other unicode spaces separate words", "c a\u00a0b\tc\nd", []any{"a", "b", "c", "d"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := pipeline.Parse(tc.text)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.text, err)
			}
			checkStages(t, got.Stages, []stageWant{{cmd: "c", args: tc.args}})
		})
	}
}

func TestParseQuotesAndEscapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want any
	}{
		{"a backslash outside quotes makes the next character literal", `c a\ b\|c\>d`, "a b|c>d"},
		{"an escaped dollar is not a variable", `c \$body`, "$body"},
		{"double quotes unescape quote, backslash and dollar", `c "a\"b\\c\$d"`, `a"b\c$d`},
		{"double quotes keep other backslashes", `c "^\d+$"`, `^\d+$`},
		{"single quotes unescape only the quote", `c 'it\'s'`, "it's"},
		{"single quotes keep JSON escapes", `c '{"a":"b\"c\\d\n"}'`, `{"a":"b\"c\\d\n"}`},
		{"operators inside quotes are text", `c "a | b > c && d *> e"`, "a | b > c && d *> e"},
		{"a plain $name inside double quotes is text", `c "echo $x"`, "echo $x"},
		{"nothing interpolates inside single quotes", `c '${x}'`, "${x}"},
		{"an escaped ${ inside double quotes is text", `c "\${x}"`, "${x}"},
		{"a single & is text", `c a&b`, "a&b"},
		{"a newline inside quotes is kept", "c \"a\nb\"", "a\nb"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := pipeline.Parse(tc.text)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.text, err)
			}
			checkStages(t, got.Stages, []stageWant{{cmd: "c", args: []any{tc.want}}})
		})
	}
}

func TestParseVariables(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want any
	}{
		{"a name", `c $body`, variable("$body")},
		{"a dotted path", `c $a.b.c`, variable("$a.b.c")},
		{"an index", `c $a[0]`, variable("$a[0]")},
		{"a double-quoted key", `c $a["key"]`, variable("$a.key")},
		{"a single-quoted key with a space", `c $a['two words']`, variable(`$a["two words"]`)},
		{"a key with an escaped quote", `c $a["say \"hi\""]`, variable(`$a["say \"hi\""]`)},
		{"a mixed path", `c $a.b[2]["c d"].e`, variable(`$a.b[2]["c d"].e`)},
		{"an underscore name with digits", `c $_x1`, variable("$_x1")},
		{"a braced variable alone keeps its type", `c ${a.b}`, variable("$a.b")},
		{"an interpolation in double quotes is a template", `c "x=${a}"`, template("x=${a}")},
		{"a quoted interpolation alone is still a template", `c "${a}"`, template("${a}")},
		{"an unquoted interpolation joined to text is a template", `c pre${a}post`, template("pre${a}post")},
		{"spaces inside braces are allowed", `c "${ a[0] }"`, template("${a[0]}")},
		{"a quoted key inside an interpolation", `c "${a["k"]}"`, template("${a.k}")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := pipeline.Parse(tc.text)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.text, err)
			}
			checkStages(t, got.Stages, []stageWant{{cmd: "c", args: []any{tc.want}}})
		})
	}
}

func TestParseOptions(t *testing.T) {
	t.Parallel()
	spec := pipeline.CommandOptions{
		"ec2:find": {{Name: "region", Short: "r", TakesValue: true}, {Name: "verbose", Short: "v"}, {Name: "tag", Short: "t", TakesValue: true}},
		"find":     {{Name: "limit", TakesValue: true}},
	}
	tests := []struct {
		name string
		text string
		spec pipeline.OptionSpec
		want stageWant
	}{
		{"without a spec a long flag is true and the next word an argument", `ec2:find --region us-east-1`, nil,
			stageWant{cmd: "ec2:find", args: []any{"us-east-1"}, opts: map[string]any{"region": true}}},
		{"with a spec a long option takes the next word", `ec2:find --region us-east-1`, spec,
			stageWant{cmd: "ec2:find", opts: map[string]any{"region": "us-east-1"}}},
		{"with a spec a short flag takes the next word under its long name", `ec2:find -r us-east-1 prod`, spec,
			stageWant{cmd: "ec2:find", args: []any{"prod"}, opts: map[string]any{"region": "us-east-1"}}},
		{"the value word is typed", `ec2:find --tag 5`, spec,
			stageWant{cmd: "ec2:find", opts: map[string]any{"tag": int64(5)}}},
		{"the value word may be a variable", `ec2:find --region $r`, spec,
			stageWant{cmd: "ec2:find", opts: map[string]any{"region": variable("$r")}}},
		{"the value word may start with a dash", `ec2:find --region -x`, spec,
			stageWant{cmd: "ec2:find", opts: map[string]any{"region": "-x"}}},
		{"=value works for a declared option too", `ec2:find -r=eu-west-1`, spec,
			stageWant{cmd: "ec2:find", opts: map[string]any{"region": "eu-west-1"}}},
		{"a short flag with =value", `c -c=4`, nil,
			stageWant{cmd: "c", opts: map[string]any{"c": int64(4)}}},
		{"an empty =value is an empty string", `c --name=`, nil,
			stageWant{cmd: "c", opts: map[string]any{"name": ""}}},
		{"=value may contain more = signs", `c --tags=owner=alice`, nil,
			stageWant{cmd: "c", opts: map[string]any{"tags": "owner=alice"}}},
		{"a bare command matches a bare spec entry", `find --limit 3`, spec,
			stageWant{cmd: "find", opts: map[string]any{"limit": int64(3)}}},
		{"a bundled command falls back to its bare spec entry", `other:find --limit 3`, spec,
			stageWant{cmd: "other:find", opts: map[string]any{"limit": int64(3)}}},
		{"repeated options collect into a list", `ec2:find -t a -t b --tag=c`, spec,
			stageWant{cmd: "ec2:find", opts: map[string]any{"tag": []any{"a", "b", "c"}}}},
		{"a cluster of declared short flags ends with one that takes a value", `ec2:find -vr us`, spec,
			stageWant{cmd: "ec2:find", opts: map[string]any{"verbose": true, "region": "us"}}},
		{"a cluster with a value-taking flag in the middle stays one option", `ec2:find -rv us`, spec,
			stageWant{cmd: "ec2:find", args: []any{"us"}, opts: map[string]any{"rv": true}}},
		{"a single dash before a long name is that option", `c -region=x`, nil,
			stageWant{cmd: "c", opts: map[string]any{"region": "x"}}},
		{"dots in option names are kept", `c --dry.run`, nil,
			stageWant{cmd: "c", opts: map[string]any{"dry.run": true}}},
		{"after -- a dash word is a string argument", `c -- -v --x=1 5`, nil,
			stageWant{cmd: "c", args: []any{"-v", "--x=1", int64(5)}}},
		{"a quoted dash word is an argument", `c "-v"`, nil,
			stageWant{cmd: "c", args: []any{"-v"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := pipeline.ParseWith(tc.text, tc.spec)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.text, err)
			}
			checkStages(t, got.Stages, []stageWant{tc.want})
		})
	}
}

func TestParseKeepsEveryOptionInOrder(t *testing.T) {
	t.Parallel()
	got, err := pipeline.Parse(`c -t a --$flag=x -t b --v`)
	if err != nil {
		t.Fatal(err)
	}
	var flags []string
	for _, o := range got.Stages[0].OptionList {
		flags = append(flags, o.Flag+"="+o.Value.String())
	}
	want := []string{"-t=true", "--$flag=x", "-t=true", "--v=true"}
	if !reflect.DeepEqual(flags, want) {
		t.Errorf("OptionList flags = %q, want %q", flags, want)
	}
	nameVar := got.Stages[0].OptionList[1].NameVar
	if nameVar == nil || nameVar.String() != "$flag" {
		t.Errorf("NameVar = %v, want $flag", nameVar)
	}
	if _, ok := got.Stages[0].Options[""]; ok {
		t.Error("an option named by an unbound variable must not appear in Options")
	}
}

func TestParseRecordsColumns(t *testing.T) {
	t.Parallel()
	//          1234567890123456789012345678901234567890
	text := `!ec2:find --region="us" $x "${y}" | raw > #ops`
	got, err := pipeline.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	st := got.Stages[0]
	checks := []struct {
		what      string
		got, want int
	}{
		{"first stage", st.Column, 2},
		{"option", st.OptionList[0].Column, 11},
		{"option value", st.OptionList[0].Value.Column, 20},
		{"variable argument", st.Args[0].Column, 25},
		{"template argument", st.Args[1].Column, 28},
		{"interpolated variable", st.Args[1].Template[0].Var.Column, 29},
		{"second stage", got.Stages[1].Column, 37},
		{"redirect", got.Redirects[0].Column, 43},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s column = %d, want %d", c.what, c.got, c.want)
		}
	}
	if st.Args[1].Raw != `"${y}"` || st.OptionList[0].Value.Raw != `"us"` {
		t.Errorf("Raw = %q and %q, want the text as written", st.Args[1].Raw, st.OptionList[0].Value.Raw)
	}
	if !st.OptionList[0].Value.Quoted || st.Args[0].Quoted {
		t.Error("Quoted must be true for the quoted option value and false for the bare variable")
	}
}

func TestParseTypesRedirectDestinations(t *testing.T) {
	t.Parallel()
	got, err := pipeline.Parse(`c *> #ops @alice here me chat://#dev general "#two words"`)
	if err != nil {
		t.Fatal(err)
	}
	want := []pipeline.Redirect{
		{Target: "#ops", Kind: pipeline.DestinationRoom, Name: "ops", Column: 6},
		{Target: "@alice", Kind: pipeline.DestinationUser, Name: "alice", Column: 11},
		{Target: "here", Kind: pipeline.DestinationHere, Column: 18},
		{Target: "me", Kind: pipeline.DestinationMe, Column: 23},
		{Target: "chat://#dev", Kind: pipeline.DestinationURL, Name: "#dev", Column: 26},
		{Target: "general", Kind: pipeline.DestinationRoom, Name: "general", Column: 38},
		{Target: "#two words", Kind: pipeline.DestinationRoom, Name: "two words", Column: 46},
	}
	if !reflect.DeepEqual(got.Redirects, want) {
		t.Errorf("Redirects =\n%+v\nwant\n%+v", got.Redirects, want)
	}
}

func TestParseStripsTheChatPrefix(t *testing.T) {
	t.Parallel()
	for _, text := range []string{"!echo hi", "  !echo hi", "! echo hi", "echo hi"} {
		got, err := pipeline.Parse(text)
		if err != nil {
			t.Fatalf("Parse(%q): %v", text, err)
		}
		checkStages(t, got.Stages, []stageWant{{cmd: "echo", args: []any{"hi"}}})
	}
}

func TestParseReportsRerunAsErrRerun(t *testing.T) {
	t.Parallel()
	for _, text := range []string{"!!", "  !! \n"} {
		_, err := pipeline.Parse(text)
		if !errors.Is(err, pipeline.ErrRerun) {
			t.Errorf("Parse(%q) error = %v, want ErrRerun", text, err)
		}
		var syn *pipeline.SyntaxError
		if errors.As(err, &syn) {
			t.Errorf("Parse(%q): rerun must not be a SyntaxError", text)
		}
	}
	if _, err := pipeline.Parse("!! echo"); errors.Is(err, pipeline.ErrRerun) {
		t.Error(`"!! echo" is not the rerun marker`)
	}
}

func TestParseRejectsWithColumnAndWhatWasExpected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want string
	}{
		{"empty text", ``, `column 1: expected a command name`},
		{"only the chat prefix", `!`, `column 2: expected a command name`},
		{"a pipeline starting with a pipe", `| echo`, `column 1: expected a command name before |`},
		{"a pipeline starting with a redirect", `> #ops`, `column 1: expected a command name before >`},
		{"a trailing pipe", `echo hi |`, `column 10: expected a command after |`},
		{"two pipes in a row", `echo | | raw`, `column 8: expected a command after |, found |`},
		{"a trailing &&", `echo &&`, `column 8: expected a command after &&`},
		{"an unterminated double quote", `echo "hi`, `column 6: expected a closing " for the quote opened here`},
		{"an unterminated single quote", `echo 'hi`, `column 6: expected a closing ' for the quote opened here`},
		{"a trailing backslash", `echo hi\`, `column 8: expected a character after \ (a backslash at the end makes nothing literal)`},
		{"a variable command name", `$foo --bar`, `column 1: expected a command name, not a variable: commands are written out so the rules can be checked before anything runs`},
		{"a variable command in a bundle", `wubba:$foo`, `column 7: expected a command name, not a variable: commands are written out so the rules can be checked before anything runs`},
		{"a quoted command name", `"echo" hi`, `column 1: expected a command name; command names are not quoted or escaped`},
		{"a missing bundle", `:foo bar`, `column 1: expected a bundle name before :`},
		{"a missing command after the bundle", `foo: bar`, `column 5: expected a command name after foo:`},
		{"two colons", `a:b:c`, `column 4: expected one : between bundle and command`},
		{"a bad character in a command", `ec2:li%t`, `column 7: unexpected '%' in command name; expected letters, digits, _ or - (not first)`},
		{"a doubled chat prefix before a command", `!!echo`, `column 2: unexpected '!' in command name; expected letters, digits, _ or - (not first)`},
		{"a redirect with nothing after it", `echo hi >`, `column 10: expected a destination after >: #room, @user, here, me or chat://...`},
		{"a redirect to a pipe", `foo:bar --baz > |`, `column 17: expected a destination after >: #room, @user, here, me or chat://...`},
		{"a single redirect with two destinations", `echo > #a #b`, `column 11: > takes one destination; use *> to send to several`},
		{"an option after the redirect", `echo hi > #ops --tz UTC`, `column 16: --tz comes after the redirect > #ops, which ends the pipeline; put options before it`},
		{"a redirect before the last stage", `echo > #a | raw`, `column 11: expected the end of the pipeline after its redirect; found | (a redirect comes last)`},
		{"a misspelt chat URL", `foo | bar | baz > chat:/#ops`, `column 19: expected a URL destination to begin with chat://`},
		{"another URL scheme", `echo > https://example.com`, `column 8: expected a URL destination to begin with chat://`},
		{"an empty chat URL", `echo > chat://`, `column 15: expected a room or user after chat://`},
		{"a bare #", `echo > #`, `column 9: expected a room name after #`},
		{"a bare @", `echo > @`, `column 9: expected a user name after @`},
		{"an empty quoted destination", `echo > ""`, `column 8: expected a destination: #room, @user, here, me or chat://...`},
		{"a variable destination", `echo > $room`, `column 8: expected a destination, not a variable: destinations are fixed when the pipeline is parsed`},
		{"an unclosed index", `foo --opt1=$blah[3.wubba`, `column 19: expected ] to close the [ at column 17`},
		{"an index that is not a number or key", `c $a[x]`, `column 6: expected an index (digits) or a quoted key after [`},
		{"an unclosed key", `c $a["k]`, `column 6: expected a closing " for the key opened here`},
		{"an unclosed interpolation", `c "${a"`, `column 7: expected } to close the ${ opened at column 4`},
		{"an empty interpolation", `c "${}"`, `column 6: expected a variable name inside ${}`},
		{"an interpolation of a non-name", `c "${1}"`, `column 6: expected a variable name after ${ (a letter or _)`},
		{"text after a variable", `echo $name.`, `column 11: expected a space after the variable $name; to join text to a variable write it in double quotes as "${name}..."`},
		{"text before a variable", `echo id=$id`, `column 9: the variable $id is joined to other text; write it alone, or in double quotes as "...${id}"`},
		{"a quoted option name", `c --"x"`, `column 5: expected an option name after --`},
		{"an option with no name", `c --=x`, `column 5: expected an option name after --`},
		{"a bad character in an option name", `c --a!b`, `column 6: expected letters, digits, _, - or . in the option name, or = after --a`},
		{"a variable option name joined to text", `c --$a+b`, `column 7: expected = or a space after the option name --$a`},
		{"a declared option without its value", `ec2:find --region`, `column 18: expected a value after --region`},
		{"a declared option followed by a pipe", `ec2:find --region | raw`, `column 19: expected a value after --region`},
		{"NUL in the text", "echo \x00", `column 6: unexpected NUL character`},
		{"bytes that are not UTF-8", "echo \xff", `column 6: expected UTF-8 text; found a byte that is not`},
	}
	spec := pipeline.CommandOptions{"ec2:find": {{Name: "region", TakesValue: true}}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := pipeline.ParseWith(tc.text, spec)
			var syn *pipeline.SyntaxError
			if !errors.As(err, &syn) {
				t.Fatalf("Parse(%q) error = %v, want a *SyntaxError", tc.text, err)
			}
			if err.Error() != tc.want {
				t.Errorf("Parse(%q) error\n got %s\nwant %s", tc.text, err, tc.want)
			}
		})
	}
}

func TestParseEnforcesLimits(t *testing.T) {
	t.Parallel()
	t.Run("text over 16 KiB is rejected where it crosses the limit", func(t *testing.T) {
		t.Parallel()
		text := "echo " + strings.Repeat("a", pipeline.MaxTextBytes)
		_, err := pipeline.Parse(text)
		want := "column 16385: the pipeline is 16389 bytes long; the limit is 16384 bytes (16 KiB)"
		if err == nil || err.Error() != want {
			t.Errorf("error = %v, want %s", err, want)
		}
	})
	t.Run("text of exactly 16 KiB is accepted", func(t *testing.T) {
		t.Parallel()
		text := "echo " + strings.Repeat("a", pipeline.MaxTextBytes-5)
		if _, err := pipeline.Parse(text); err != nil {
			t.Errorf("error = %v, want none", err)
		}
	})
	t.Run("more than 64 stages are rejected", func(t *testing.T) {
		t.Parallel()
		text := strings.Repeat("a | ", pipeline.MaxStages) + "a"
		_, err := pipeline.Parse(text)
		if err == nil || !strings.Contains(err.Error(), "too many stages: a pipeline has at most 64") {
			t.Errorf("error = %v, want too many stages", err)
		}
		if _, err := pipeline.Parse(strings.Repeat("a | ", pipeline.MaxStages-1) + "a"); err != nil {
			t.Errorf("64 stages: error = %v, want none", err)
		}
	})
	t.Run("a variable path deeper than 32 steps is rejected", func(t *testing.T) {
		t.Parallel()
		_, err := pipeline.Parse("c $a" + strings.Repeat(".b", pipeline.MaxPathLength))
		if err == nil || err.Error() != "column 3: variable path is too deep: more than 32 steps" {
			t.Errorf("error = %v", err)
		}
		if _, err := pipeline.Parse("c $a" + strings.Repeat(".b", pipeline.MaxPathLength-1)); err != nil {
			t.Errorf("32 steps: error = %v, want none", err)
		}
	})
}

func TestCanonicalTextParsesBackToTheSamePipeline(t *testing.T) {
	t.Parallel()
	texts := []string{
		`ec2:instance-list --region=us-east-1 | filter --path="tags.Name" --matches="prod"`,
		`seed '[{"a":1}]' | echo $a`,
		`echo "${body[0]}" > #ops`,
		`echo hi *> #a @b here`,
		`c "123" 1.0 -5 true "true" "" '$x' "a\"b\\c$" $a["k y"][0] --x= --y="-z" -- -w`,
		`c --$flag=$v "x ${a.b} \"y\"" 'it\'s'`,
		`c "two words" > "#a room"`,
	}
	for _, text := range texts {
		first, err := pipeline.Parse(text)
		if err != nil {
			t.Fatalf("Parse(%q): %v", text, err)
		}
		canonical := first.String()
		second, err := pipeline.Parse(canonical)
		if err != nil {
			t.Fatalf("Parse(canonical %q of %q): %v", canonical, text, err)
		}
		if a, b := plainPipeline(first), plainPipeline(second); !reflect.DeepEqual(a, b) {
			t.Errorf("%q canonical %q parses differently:\n%v\n%v", text, canonical, a, b)
		}
		if again := second.String(); again != canonical {
			t.Errorf("canonical form is not stable: %q then %q", canonical, again)
		}
	}
}

func TestPipelineSurvivesAJSONRoundTrip(t *testing.T) {
	t.Parallel()
	text := `a:b --r=us -t x -t y "${p.q[1]}" $v[2]["k"] 0.5 7 false | c --$n > #ops`
	want, err := pipeline.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var got pipeline.Pipeline
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip changed the pipeline:\n got %#v\nwant %#v", got, want)
	}
}

// plainPipeline is a pipeline without columns or raw text, to compare the
// meaning of two parses.
func plainPipeline(p pipeline.Pipeline) []any {
	var out []any
	for _, st := range p.Stages {
		s := plainStage(st)
		out = append(out, describeStage(s))
		var kinds []string
		for _, a := range st.Args {
			kinds = append(kinds, string(a.Kind))
		}
		out = append(out, kinds)
	}
	for _, r := range p.Redirects {
		out = append(out, string(r.Kind)+" "+r.Target)
	}
	return out
}
