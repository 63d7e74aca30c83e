package pipeline_test

import (
	"reflect"
	"testing"

	"github.com/logbookhq/logbook/domain/pipeline"
)

// The pipelines in Cog's and Gort's public documentation (the cog-book pages
// on pipelines, variables and redirects, Cog's parser behaviour, the Gort
// guide and Gort's parser behaviour), each with what the documentation says
// it means. Written from the documented behaviour, not copied.
func TestDocumentedExamplesParseAsDocumented(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		text      string
		spec      pipeline.OptionSpec
		stages    []stageWant
		redirects []string
	}{
		{
			name:   "a pipeline feeds echo's body to the next echo",
			text:   `echo foo | echo $body`,
			stages: []stageWant{{cmd: "echo", args: []any{"foo"}}, {cmd: "echo", args: []any{variable("$body")}}},
		},
		{
			name: "filter's quoted option values are strings",
			text: `ec2:instance-list --region=us-east-1 | filter --path="tags.Name" --matches="prod"`,
			stages: []stageWant{
				{cmd: "ec2:instance-list", opts: map[string]any{"region": "us-east-1"}},
				{cmd: "filter", opts: map[string]any{"path": "tags.Name", "matches": "prod"}},
			},
		},
		{
			name:   "seed's single-quoted JSON passes through untouched",
			text:   `seed '[{"a":1}]' | echo $a`,
			stages: []stageWant{{cmd: "seed", args: []any{`[{"a":1}]`}}, {cmd: "echo", args: []any{variable("$a")}}},
		},
		{
			name:      "an interpolated index redirects to a room",
			text:      `echo "${body[0]}" > #ops`,
			stages:    []stageWant{{cmd: "echo", args: []any{template("${body[0]}")}}},
			redirects: []string{"#ops"},
		},
		{
			name:      "a multi-redirect sends to a room, a user and here",
			text:      `echo hi *> #a @b here`,
			stages:    []stageWant{{cmd: "echo", args: []any{"hi"}}},
			redirects: []string{"#a", "@b", "here"},
		},
		{
			name: "a plain $user inside double quotes stays literal text, as in Cog",
			text: `mist:ec2-find --region=us-west-2 --ami=ami-123 | mist:ec2-tag --tags="owner=$user"`,
			stages: []stageWant{
				{cmd: "mist:ec2-find", opts: map[string]any{"region": "us-west-2", "ami": "ami-123"}},
				{cmd: "mist:ec2-tag", opts: map[string]any{"tags": "owner=$user"}},
			},
		},
		{
			name: "the cog-book's terminate pipeline binds a hyphenated key",
			text: `!ec2:list | filter --field="zone" --matches="us-east-1a" | ec2:terminate $instance-id`,
			stages: []stageWant{
				{cmd: "ec2:list"},
				{cmd: "filter", opts: map[string]any{"field": "zone", "matches": "us-east-1a"}},
				{cmd: "ec2:terminate", args: []any{variable("$instance-id")}},
			},
		},
		{
			name: "a subcommand word and an option naming a command",
			text: `operable:rule list --command=operable:permissions | echo $rule | raw`,
			stages: []stageWant{
				{cmd: "operable:rule", args: []any{"list"}, opts: map[string]any{"command": "operable:permissions"}},
				{cmd: "echo", args: []any{variable("$rule")}},
				{cmd: "raw"},
			},
		},
		{
			name: "unique collects the echoed commands",
			text: `operable:rule list --command=operable:permissions | echo $command | unique | raw`,
			stages: []stageWant{
				{cmd: "operable:rule", args: []any{"list"}, opts: map[string]any{"command": "operable:permissions"}},
				{cmd: "echo", args: []any{variable("$command")}},
				{cmd: "unique"},
				{cmd: "raw"},
			},
		},
		{
			name:   "seed with a JSON list of two results",
			text:   `seed '[{"foo": "bar"},{"foo":"baz"}]' | echo $foo`,
			stages: []stageWant{{cmd: "seed", args: []any{`[{"foo": "bar"},{"foo":"baz"}]`}}, {cmd: "echo", args: []any{variable("$foo")}}},
		},
		{
			name: "an option value bound from the previous stage",
			text: `seed '{"command":"operable:permissions"}' | rule list --command=$command | raw`,
			stages: []stageWant{
				{cmd: "seed", args: []any{`{"command":"operable:permissions"}`}},
				{cmd: "rule", args: []any{"list"}, opts: map[string]any{"command": variable("$command")}},
				{cmd: "raw"},
			},
		},
		{
			name: "a variable option name and a bound argument",
			text: `seed '{"flag":"words","input":"hello world"}' | wc --$flag $input`,
			stages: []stageWant{
				{cmd: "seed", args: []any{`{"flag":"words","input":"hello world"}`}},
				{cmd: "wc", args: []any{variable("$input")}},
			},
		},
		{
			name:   "the gist's echo feeds simple its body",
			text:   `echo "Hello world" | simple $body`,
			stages: []stageWant{{cmd: "echo", args: []any{"Hello world"}}, {cmd: "simple", args: []any{variable("$body")}}},
		},
		{
			name: "the gist's seed binds two keys",
			text: `seed '{"foo": "foo value", "bar": "bar value"}' | simple $foo $bar`,
			stages: []stageWant{
				{cmd: "seed", args: []any{`{"foo": "foo value", "bar": "bar value"}`}},
				{cmd: "simple", args: []any{variable("$foo"), variable("$bar")}},
			},
		},
		{
			name:      "redirect to a user",
			text:      `!echo "Hi, boss!" > @imbriaco`,
			stages:    []stageWant{{cmd: "echo", args: []any{"Hi, boss!"}}},
			redirects: []string{"@imbriaco"},
		},
		{
			name:      "redirect to a room",
			text:      `!echo "I love our operations team!" > #ops`,
			stages:    []stageWant{{cmd: "echo", args: []any{"I love our operations team!"}}},
			redirects: []string{"#ops"},
		},
		{
			name:      "redirect here",
			text:      `!echo "Hello" > here`,
			stages:    []stageWant{{cmd: "echo", args: []any{"Hello"}}},
			redirects: []string{"here"},
		},
		{
			name:      "redirect to a chat URL",
			text:      `!echo "Hello" > chat://#general`,
			stages:    []stageWant{{cmd: "echo", args: []any{"Hello"}}},
			redirects: []string{"chat://#general"},
		},
		{
			name:      "tweet to here, two rooms and a user",
			text:      `!tweet "Investigating slow API response times" *> here #support #ops @brent`,
			stages:    []stageWant{{cmd: "tweet", args: []any{"Investigating slow API response times"}}},
			redirects: []string{"here", "#support", "#ops", "@brent"},
		},
		{
			name:      "apostrophes inside double quotes",
			text:      `!echo "I'm sorry Dave; I'm afraid I can't do that." > #general`,
			stages:    []stageWant{{cmd: "echo", args: []any{"I'm sorry Dave; I'm afraid I can't do that."}}},
			redirects: []string{"#general"},
		},
		{
			name:      "bare room names and URLs as redirect targets",
			text:      `foo | bar | baz *> ops chat://#dev`,
			stages:    []stageWant{{cmd: "foo"}, {cmd: "bar"}, {cmd: "baz"}},
			redirects: []string{"ops", "chat://#dev"},
		},
		{
			name:      "a multi redirect to a bare dm and ops",
			text:      `foo:bar --baz *> dm ops`,
			stages:    []stageWant{{cmd: "foo:bar", opts: map[string]any{"baz": true}}},
			redirects: []string{"dm", "ops"},
		},
		{
			name:   "&& joins stages like a pipe",
			text:   `wubba:foo --bar && wubba:baz 1`,
			stages: []stageWant{{cmd: "wubba:foo", opts: map[string]any{"bar": true}}, {cmd: "wubba:baz", args: []any{int64(1)}}},
		},
		{
			name:   "a quoted list of tags and a number",
			text:   `ec2:list-vm --tags="a,b,c" 10`,
			stages: []stageWant{{cmd: "ec2:list-vm", args: []any{int64(10)}, opts: map[string]any{"tags": "a,b,c"}}},
		},
		{
			name:   "a slash in an unquoted option value",
			text:   `foo --bar=testing/testy`,
			stages: []stageWant{{cmd: "foo", opts: map[string]any{"bar": "testing/testy"}}},
		},
		{
			name: "options naming permissions and users",
			text: `operable:admin perms --grant --permission=operable:write --to=bob`,
			stages: []stageWant{{cmd: "operable:admin", args: []any{"perms"},
				opts: map[string]any{"grant": true, "permission": "operable:write", "to": "bob"}}},
		},
		{
			name:   "a command name as an argument",
			text:   `help operable:permissions`,
			stages: []stageWant{{cmd: "help", args: []any{"operable:permissions"}}},
		},
		{
			name: "undeclared short flags are booleans and their next word is an argument",
			text: `operable:permissions --grant -p operable:write -t bob`,
			stages: []stageWant{{cmd: "operable:permissions", args: []any{"operable:write", "bob"},
				opts: map[string]any{"grant": true, "p": true, "t": true}}},
		},
		{
			name:   "a version number stays a string",
			text:   `bundle enable 1.2.3`,
			stages: []stageWant{{cmd: "bundle", args: []any{"enable", "1.2.3"}}},
		},
		{
			name:   "a nested variable reference as an option value",
			text:   `foo --opt1=$blah[3].wubba`,
			stages: []stageWant{{cmd: "foo", opts: map[string]any{"opt1": variable("$blah[3].wubba")}}},
		},
		{
			name:   "a quoted map key in a variable, rendered in canonical form",
			text:   `ec2:list_vms --region=$region["west-1"]`,
			stages: []stageWant{{cmd: "ec2:list_vms", opts: map[string]any{"region": variable(`$region.west-1`)}}},
		},
		{
			name:   "two interpolations in one string",
			text:   `echo "${users[0].username} has id ${users[0].userid}"`,
			stages: []stageWant{{cmd: "echo", args: []any{template("${users[0].username} has id ${users[0].userid}")}}},
		},
		{
			name:   "gort's help command with the chat prefix",
			text:   `!gort:help`,
			stages: []stageWant{{cmd: "gort:help"}},
		},
		{
			name:   "gort's help about a command",
			text:   `!gort:help gort:user`,
			stages: []stageWant{{cmd: "gort:help", args: []any{"gort:user"}}},
		},
		{
			name:   "gort's --help flag",
			text:   `!gort:user --help`,
			stages: []stageWant{{cmd: "gort:user", opts: map[string]any{"help": true}}},
		},
		{
			name:   "gort's bundle subcommand",
			text:   `!gort:bundle disable github`,
			stages: []stageWant{{cmd: "gort:bundle", args: []any{"disable", "github"}}},
		},
		{
			name:   "without a spec -Ik is one option, as Cog reads it",
			text:   `foo:curl -Ik localhost`,
			stages: []stageWant{{cmd: "foo:curl", args: []any{"localhost"}, opts: map[string]any{"Ik": true}}},
		},
		{
			name:   "with a spec -Ik is two declared short flags, as Gort reads it",
			text:   `foo:curl -Ik localhost`,
			spec:   curlSpec,
			stages: []stageWant{{cmd: "foo:curl", args: []any{"localhost"}, opts: map[string]any{"I": true, "k": true}}},
		},
		{
			name:   "-- ends the options",
			text:   `foo:curl -Ik -- --ssl localhost`,
			spec:   curlSpec,
			stages: []stageWant{{cmd: "foo:curl", args: []any{"--ssl", "localhost"}, opts: map[string]any{"I": true, "k": true}}},
		},
		{
			name:   "a declared option takes the next word as its value",
			text:   `foo:curl -Ik --cert file localhost`,
			spec:   curlSpec,
			stages: []stageWant{{cmd: "foo:curl", args: []any{"localhost"}, opts: map[string]any{"I": true, "k": true, "cert": "file"}}},
		},
		{
			name:   "a declared short flag maps to its long name",
			text:   `foo:curl -E file localhost`,
			spec:   curlSpec,
			stages: []stageWant{{cmd: "foo:curl", args: []any{"localhost"}, opts: map[string]any{"cert": "file"}}},
		},
		{
			name:   "echo -n with a quoted string",
			text:   `bar:echo -n "foo bar"`,
			stages: []stageWant{{cmd: "bar:echo", args: []any{"foo bar"}, opts: map[string]any{"n": true}}},
		},
		{
			name: "declared options take typed values",
			text: `test --flag --int 10 --float 0.1 --notregex "/^foo$/" --string str this is text`,
			spec: pipeline.CommandOptions{"test": {
				{Name: "flag"}, {Name: "int", TakesValue: true}, {Name: "float", TakesValue: true},
				{Name: "notregex", TakesValue: true}, {Name: "string", TakesValue: true},
			}},
			stages: []stageWant{{cmd: "test", args: []any{"this", "is", "text"},
				opts: map[string]any{"flag": true, "int": int64(10), "float": 0.1, "notregex": "/^foo$/", "string": "str"}}},
		},
		{
			name:   "arguments of every type",
			text:   `test string 10.0 42 false "foo bar" /^.*$/`,
			stages: []stageWant{{cmd: "test", args: []any{"string", 10.0, int64(42), false, "foo bar", "/^.*$/"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := pipeline.Parse(tc.text, pipeline.WithOptionSpec(tc.spec))
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.text, err)
			}
			checkStages(t, got.Stages, tc.stages)
			if g := targets(got.Redirects); !reflect.DeepEqual(g, tc.redirects) {
				t.Errorf("redirects = %q, want %q", g, tc.redirects)
			}
		})
	}
}

var curlSpec = pipeline.CommandOptions{"foo:curl": {
	{Name: "I", Short: "I"},
	{Name: "k", Short: "k"},
	{Name: "ssl"},
	{Name: "cert", Short: "E", TakesValue: true},
}}
