package pipeline_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/logbookhq/logbook/domain/pipeline"
)

// decode is the previous stage's output as the executor hands it over:
// one JSON object decoded by encoding/json.
func decode(t *testing.T, text string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		t.Fatalf("bad test input %s: %v", text, err)
	}
	return m
}

// lastStage parses text and returns its last stage, the one to bind.
func lastStage(t *testing.T, text string) pipeline.Stage {
	t.Helper()
	p, err := pipeline.Parse(text)
	if err != nil {
		t.Fatalf("Parse(%q): %v", text, err)
	}
	return p.Stages[len(p.Stages)-1]
}

func TestBindReplacesVariablesWithThePreviousOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		text  string
		input string
		want  stageWant
	}{
		{"echo binds the body of the previous echo", `echo foo | echo $body`, `{"body":["foo"]}`,
			stageWant{cmd: "echo", args: []any{[]any{"foo"}}}},
		{"seed's key binds as echo's argument", `seed '{"thing":"stuff"}' | echo $thing`, `{"thing":"stuff"}`,
			stageWant{cmd: "echo", args: []any{"stuff"}}},
		{"a whole number keeps its JSON number type as an int", `seed '[{"a":1}]' | echo $a`, `{"a":1}`,
			stageWant{cmd: "echo", args: []any{int64(1)}}},
		{"a fraction binds as a float", `echo $n`, `{"n":0.25}`,
			stageWant{cmd: "echo", args: []any{0.25}}},
		{"a boolean binds as a boolean", `echo $b`, `{"b":false}`,
			stageWant{cmd: "echo", args: []any{false}}},
		{"null binds as null", `echo $x`, `{"x":null}`,
			stageWant{cmd: "echo", args: []any{nil}}},
		{"an object binds as an object", `echo $o`, `{"o":{"k":"v"}}`,
			stageWant{cmd: "echo", args: []any{map[string]any{"k": "v"}}}},
		{"interpolating an index yields a string", `echo "${body[0]}" > #ops`, `{"body":["line one","line two"]}`,
			stageWant{cmd: "echo", args: []any{"line one"}}},
		{"interpolation stringifies numbers, booleans, null and objects", `echo "${a} ${b} ${c} ${d} ${e}"`, `{"a":100,"b":1.5,"c":true,"d":null,"e":{"x":[1,"<y>"]}}`,
			stageWant{cmd: "echo", args: []any{`100 1.5 true null {"x":[1,"<y>"]}`}}},
		{"two interpolations from a list of users", `echo "${users[0].username} has id ${users[0].userid}"`,
			`{"users":[{"userid":100,"username":"bob"},{"userid":101,"username":"linda"}]}`,
			stageWant{cmd: "echo", args: []any{"bob has id 100"}}},
		{"an option value from the previous stage", `rule list --command=$command`, `{"command":"operable:permissions"}`,
			stageWant{cmd: "rule", args: []any{"list"}, opts: map[string]any{"command": "operable:permissions"}}},
		{"an option name from the previous stage", `wc --$flag "hello world"`, `{"flag":"words"}`,
			stageWant{cmd: "wc", args: []any{"hello world"}, opts: map[string]any{"words": true}}},
		{"an option name and value from the previous stage", `ec2:list_vms --$region_opt=$region`, `{"region_opt":"region","region":"us-west-2"}`,
			stageWant{cmd: "ec2:list_vms", opts: map[string]any{"region": "us-west-2"}}},
		{"a bound option name joins a repeated option", `c --tag=a --$t=b`, `{"t":"tag"}`,
			stageWant{cmd: "c", opts: map[string]any{"tag": []any{"a", "b"}}}},
		{"an array index", `ec2:list_vms --region=$region[1]`, `{"region":["us-west-1","us-east-1"]}`,
			stageWant{cmd: "ec2:list_vms", opts: map[string]any{"region": "us-east-1"}}},
		{"a quoted map key", `ec2:list_vms --region=$region["west-1"]`, `{"region":{"west-1":"us-west-1","east":"us-east-1"}}`,
			stageWant{cmd: "ec2:list_vms", opts: map[string]any{"region": "us-west-1"}}},
		{"a hyphenated key", `ec2:terminate $instance-id`, `{"instance-id":"i-123"}`,
			stageWant{cmd: "ec2:terminate", args: []any{"i-123"}}},
		{"a plain $user inside double quotes is not bound", `mist:ec2-tag --tags="owner=$user"`, `{}`,
			stageWant{cmd: "mist:ec2-tag", opts: map[string]any{"tags": "owner=$user"}}},
		{"the braced form is bound", `mist:ec2-tag --tags="owner=${user}"`, `{"user":"alice"}`,
			stageWant{cmd: "mist:ec2-tag", opts: map[string]any{"tags": "owner=alice"}}},
		{"literals pass through", `c 1 x --y=2`, `{}`,
			stageWant{cmd: "c", args: []any{int64(1), "x"}, opts: map[string]any{"y": int64(2)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := pipeline.Bind(lastStage(t, tc.text), decode(t, tc.input))
			if err != nil {
				t.Fatalf("Bind: %v", err)
			}
			checkStages(t, []pipeline.Stage{got}, []stageWant{tc.want})
			if got.NeedsBinding() {
				t.Error("a bound stage must need no more binding")
			}
		})
	}
}

func TestBindAcceptsNumbersDecodedAsJSONNumber(t *testing.T) {
	t.Parallel()
	input := map[string]any{"big": json.Number("9007199254740993"), "f": json.Number("2.5")}
	got, err := pipeline.Bind(lastStage(t, `c $big $f`), input)
	if err != nil {
		t.Fatal(err)
	}
	checkStages(t, []pipeline.Stage{got}, []stageWant{{cmd: "c", args: []any{int64(9007199254740993), 2.5}}})
}

func TestBindKeepsColumnsAndLeavesTheParsedStageAlone(t *testing.T) {
	t.Parallel()
	st := lastStage(t, `echo $a "${b}" --c=$c`)
	got, err := pipeline.Bind(st, map[string]any{"a": "x", "b": "y", "c": 3.0})
	if err != nil {
		t.Fatal(err)
	}
	if got.Args[0].Column != 6 || got.Args[1].Column != 9 || got.Options["c"].Column != 20 {
		t.Errorf("bound columns = %d, %d, %d; want 6, 9, 20", got.Args[0].Column, got.Args[1].Column, got.Options["c"].Column)
	}
	if got.Args[0].Raw != "$a" {
		t.Errorf("bound Raw = %q, want the text as written", got.Args[0].Raw)
	}
	if st.Args[0].Kind != pipeline.KindVariable || st.OptionList[0].Value.Kind != pipeline.KindVariable {
		t.Error("Bind modified the stage it was given")
	}
	if got.String() != `echo x y --c=3` {
		t.Errorf("bound stage renders as %q", got.String())
	}
}

func TestBindNamesTheVariableItCannotBindAndItsColumn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		text     string
		input    string
		variable string
		want     string
	}{
		{"a key the previous stage did not produce", `wc --$flag "hello world" | echo $flag`, `{"words":2}`, "$flag",
			`column 33: cannot find the variable $flag in the previous stage's output`},
		{"a missing option name variable", `wc --$flag x`, `{}`, "$flag",
			`column 6: cannot find the variable $flag in the previous stage's output`},
		{"an interpolated variable that is missing", `echo "hi ${who}"`, `{}`, "$who",
			`column 10: cannot find the variable $who in the previous stage's output`},
		{"an index past the end", `echo $body[2]`, `{"body":["a","b"]}`, "$body[2]",
			`column 6: cannot bind $body[2]: $body has 2 items, so there is no [2]`},
		{"an index into an object", `echo $o[0]`, `{"o":{"k":1}}`, "$o[0]",
			`column 6: cannot bind $o[0]: $o is an object, not a list`},
		{"a key into a string", `echo $s.k`, `{"s":"text"}`, "$s.k",
			`column 6: cannot bind $s.k: $s is a string, not an object`},
		{"a key into null", `echo $n.k`, `{"n":null}`, "$n.k",
			`column 6: cannot bind $n.k: $n is null, not an object`},
		{"a missing nested key", `echo $a.b.c`, `{"a":{"b":{}}}`, "$a.b.c",
			`column 6: cannot bind $a.b.c: $a.b has no key "c"`},
		{"an option name bound to something that is not a name", `wc --$flag x`, `{"flag":"two words"}`, "$flag",
			`column 6: $flag is "two words", which is not an option name (letters, digits, _, - or .)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := pipeline.Bind(lastStage(t, tc.text), decode(t, tc.input))
			var be *pipeline.BindError
			if !errors.As(err, &be) {
				t.Fatalf("Bind error = %v, want a *BindError", err)
			}
			if be.Variable != tc.variable {
				t.Errorf("Variable = %q, want %q", be.Variable, tc.variable)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %s\nwant %s", err, tc.want)
			}
		})
	}
}

func TestBindWithNoInputFailsOnTheFirstVariable(t *testing.T) {
	t.Parallel()
	_, err := pipeline.Bind(lastStage(t, `echo x $a $b`), nil)
	var be *pipeline.BindError
	if !errors.As(err, &be) || be.Variable != "$a" || be.Column != 8 {
		t.Errorf("error = %v, want $a at column 8", err)
	}
}

func TestStageListsItsVariablesInTheOrderWritten(t *testing.T) {
	t.Parallel()
	st := lastStage(t, `c $a --$b=$c "${d} ${e.f}" --g=x`)
	var got []string
	for _, v := range st.Variables() {
		got = append(got, v.String())
	}
	want := []string{"$a", "$b", "$c", "$d", "$e.f"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Variables() = %q, want %q", got, want)
	}
	if !st.NeedsBinding() {
		t.Error("NeedsBinding() = false for a stage with variables")
	}
	if lastStage(t, `c x --y=1`).NeedsBinding() {
		t.Error("NeedsBinding() = true for a stage without variables")
	}
}
