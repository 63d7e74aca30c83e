package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestPipelineParseJSONPrintsTypedStagesAndRedirects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		text      string
		stages    []map[string]any
		redirects []any
	}{
		{
			name: "typed arguments, quoted options and a room redirect",
			text: `!ec2:instance-list --region=us-east-1 | filter --path="tags.Name" 5 0.55 true "7" $a.b > #ops`,
			stages: []map[string]any{
				{"command": "ec2:instance-list", "bundle": "ec2", "name": "instance-list", "args": []any{},
					"options": map[string]any{"region": "us-east-1"}, "variables": []any{}, "column": 2.0},
				{"command": "filter", "bundle": "", "name": "filter", "args": []any{5.0, 0.55, true, "7", "$a.b"},
					"options": map[string]any{"path": "tags.Name"}, "variables": []any{"$a.b"}, "column": 41.0},
			},
			redirects: []any{"#ops"},
		},
		{
			name: "seed JSON, a template and several destinations",
			text: `seed '[{"a":1}]' | echo "${body[0]}" -t x -t y *> #a @b here`,
			stages: []map[string]any{
				{"command": "seed", "bundle": "", "name": "seed", "args": []any{`[{"a":1}]`},
					"options": map[string]any{}, "variables": []any{}, "column": 1.0},
				{"command": "echo", "bundle": "", "name": "echo", "args": []any{"${body[0]}", "x", "y"},
					"options": map[string]any{"t": []any{true, true}}, "variables": []any{"$body[0]"}, "column": 20.0},
			},
			redirects: []any{"#a", "@b", "here"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, err := runCLIOutput(t, "pipeline", "parse", "--json", tc.text)
			if err != nil {
				t.Fatalf("err = %v (stderr %q)", err, stderr)
			}
			var got struct {
				Stages       []map[string]any `json:"stages"`
				Redirects    []any            `json:"redirects"`
				Destinations []map[string]any `json:"destinations"`
				Canonical    string           `json:"canonical"`
			}
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout)
			}
			if !reflect.DeepEqual(got.Stages, tc.stages) {
				t.Errorf("stages\n got %v\nwant %v", got.Stages, tc.stages)
			}
			if !reflect.DeepEqual(got.Redirects, tc.redirects) {
				t.Errorf("redirects = %v, want %v", got.Redirects, tc.redirects)
			}
			if len(got.Destinations) != len(tc.redirects) || got.Canonical == "" {
				t.Errorf("destinations %v and canonical %q must describe the same redirects", got.Destinations, got.Canonical)
			}
		})
	}
}

func TestPipelineParseJSONTypesEachDestination(t *testing.T) {
	t.Parallel()
	stdout, _, err := runCLIOutput(t, "pipeline", "parse", "--json", `echo hi *> #ops @alice here me chat://#dev general`)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Destinations []struct {
			Kind string `json:"kind"`
		} `json:"destinations"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, d := range got.Destinations {
		kinds = append(kinds, d.Kind)
	}
	want := []string{"room", "user", "here", "me", "url", "room"}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("kinds = %q, want %q", kinds, want)
	}
}

func TestPipelineParsePrintsAReadableTable(t *testing.T) {
	t.Parallel()
	stdout, _, err := runCLIOutput(t, "pipeline", "parse", `deploy:status prod --region="eu" | echo $state > #ops`)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"deploy:status prod --region=eu | echo $state > #ops\n",
		"stage 1", "command in bundle deploy",
		"arg 0", "prod", "string",
		"option", "--region", "string (quoted)",
		"stage 2", "command (bare)", "$state", "variable",
		"redirect", "#ops", "room",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	_, table, _ := strings.Cut(stdout, "\n\n")
	if arg, option := strings.Index(table, "arg 0"), strings.Index(table, "--region"); arg < 0 || arg > option {
		t.Errorf("arguments and options must appear in the order written:\n%s", table)
	}
}

func TestPipelineParseExitsTwoWithTheColumnOnAParseError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"an unterminated quote", []string{"pipeline", "parse", `echo "hi`}, `column 6: expected a closing " for the quote opened here`},
		{"a trailing pipe in JSON mode", []string{"pipeline", "parse", "--json", `echo |`}, `column 7: expected a command after |`},
		{"a redirect in the middle", []string{"pipeline", "parse", `a > #x | b`}, `column 8: expected the end of the pipeline after its redirect; found | (a redirect comes last)`},
		{"the rerun marker", []string{"pipeline", "parse", `!!`}, `!! reruns the previous pipeline in chat; there is no previous pipeline here`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdout, _, err := runCLIOutput(t, tc.args...)
			ee, ok := err.(*exitError)
			if !ok || ee.code != 2 {
				t.Fatalf("err = %v, want exit 2", err)
			}
			if ee.msg != tc.msg {
				t.Errorf("message\n got %s\nwant %s", ee.msg, tc.msg)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing on a parse error", stdout)
			}
		})
	}
}

func TestPipelineParseNeedsExactlyOneText(t *testing.T) {
	t.Parallel()
	if err := runCLI(t, "pipeline", "parse"); err == nil {
		t.Error("parse without text succeeded")
	}
	if err := runCLI(t, "pipeline", "parse", "echo", "hi"); err == nil {
		t.Error("parse with two texts succeeded; the text must be one quoted argument")
	}
}
