package main

import (
	"encoding/json"
	"strings"
	"testing"
)

const templateTestConfig = bundleTestValidConfig + `templates:
  instances:
    body: |
      **Instances:**
      ~each var=$results as=i~
      ~attachment title=$i.name color=$i.color~
      State: ~$i.state~
      ~end~
      ~end~
  plain:
    body: |
      | Name | State |
      | --- | --- |
      ~each var=$results~
      | ~$item.name~ | ~$item.state~ |
      ~end~
`

const templateTestData = `[{"name": "web <1>", "state": "up", "color": "green"}, {"name": "db", "state": "down", "color": "red"}]`

func TestTemplateRenderPrintsWhatEachProviderWouldPost(t *testing.T) {
	t.Parallel()
	config := bundleTestWrite(t, "config.yaml", templateTestConfig)
	cases := []struct {
		name     string
		args     []string
		contains []string
	}{
		{"text is the default provider", []string{"--template", "plain"}, []string{"Name     State\n-------  -----\nweb <1>  up"}},
		{"slack prints mrkdwn, then the attachments as JSON", []string{"--template", "instances", "--provider", "slack"},
			[]string{"*Instances:*\n--- attachments ---\n", `"color": "#008000"`, `"title": "web &lt;1&gt;"`, `"text": "State: up"`}},
		{"irc prints lines with IRC's codes", []string{"--template", "instances", "--provider", "irc"}, []string{"\x02Instances:\x02\n\n\x02web <1>\x02\n  State: up"}},
		{"web prints escaped HTML", []string{"--template", "plain", "--provider", "web"}, []string{"<td>web &lt;1&gt;</td><td>up</td>"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"template", "render", "--bundle", config, "--data", templateTestData}, tc.args...)
			out, stderr, err := runCLIOutput(t, args...)
			if err != nil {
				t.Fatalf("expected success, got %v (stderr %q)", err, stderr)
			}
			for _, want := range tc.contains {
				if !strings.Contains(out, want) {
					t.Errorf("expected the output to contain %q, got:\n%s", want, out)
				}
			}
		})
	}
}

func TestTemplateRenderPrintsTheDirectivesAsJSON(t *testing.T) {
	t.Parallel()
	config := bundleTestWrite(t, "config.yaml", templateTestConfig)
	out, _, err := runCLIOutput(t, "template", "render", "--bundle", config, "--template", "plain", "--provider", "directives", "--data", templateTestData)
	if err != nil {
		t.Fatal(err)
	}
	var doc []struct {
		Name     string            `json:"name"`
		Children []json.RawMessage `json:"children"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc) != 1 || doc[0].Name != "table" || len(doc[0].Children) != 3 {
		t.Fatalf("expected one table directive with a header and two rows, got %v: %s", err, out)
	}
}

func TestTemplateRenderReadsTheDataFromStdin(t *testing.T) {
	t.Parallel()
	config := bundleTestWrite(t, "config.yaml", templateTestConfig)
	root := newRootCmd()
	var out strings.Builder
	root.SetArgs([]string{"template", "render", "--bundle", config, "--template", "plain", "--data", "-"})
	root.SetIn(strings.NewReader(templateTestData))
	root.SetOut(&out)
	root.SetErr(&out)
	if err := root.ExecuteContext(t.Context()); err != nil || !strings.Contains(out.String(), "db       down") {
		t.Fatalf("expected the table, got %v: %q", err, out.String())
	}
}

func TestTemplateRenderRefusesWhatItCannotRender(t *testing.T) {
	t.Parallel()
	config := bundleTestWrite(t, "config.yaml", templateTestConfig)
	broken := bundleTestWrite(t, "broken.yaml", bundleTestValidConfig+"templates:\n  bad:\n    body: |\n      ok\n      ~$results\n")
	cases := []struct {
		name   string
		args   []string
		stderr string
		msg    string
	}{
		{"a template the bundle does not have", []string{"--bundle", config, "--template", "missing"}, "", "has no template missing; its templates: instances, plain"},
		{"a provider Logbook does not have", []string{"--bundle", config, "--template", "plain", "--provider", "hipchat"}, "", `--provider "hipchat"`},
		{"data that is not JSON", []string{"--bundle", config, "--template", "plain", "--data", "{nope"}, "", "--data is not one JSON value"},
		{"a template that does not parse, on its file line", []string{"--bundle", broken, "--template", "bad"}, broken + ":17: templates.bad: the template does not parse at its line 2, column 1", "is not a valid bundle config"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, err := runCLIOutput(t, append([]string{"template", "render"}, tc.args...)...)
			if code := bundleTestExitCode(t, err); code != 2 || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("expected exit 2 with %q (stderr %q), got %d: %v (stderr %q)", tc.msg, tc.stderr, code, err, stderr)
			}
		})
	}
}

func TestTemplateRenderRendersACogV3TemplateFromTheVariantTheProviderTakes(t *testing.T) {
	t.Parallel()
	config := bundleTestWrite(t, "config.yaml", strings.Replace(bundleTestValidConfig, "cog_bundle_version: 4", "cog_bundle_version: 3", 1)+`templates:
  builds:
    slack: "{{#.}}*{{build_num}}* {{branch}} _{{status}}_{{/.}}"
    hipchat: "{{#.}}{{build_num}} {{branch}}: {{status}}{{/.}}"
`)
	const data = `[{"build_num": 12, "branch": "main", "status": "success"}, {"build_num": 13, "branch": "fix <1>", "status": "failed"}]`
	cases := []struct {
		name, provider, out, variant string
	}{
		{"Slack renders its own variant", "slack", "*12* main _success_\n*13* fix &lt;1&gt; _failed_\n", "slack"},
		{"IRC renders HipChat's plain-text variant", "irc", "12 main: success\n13 fix <1>: failed\n", "hipchat"},
		{"the directives are the API's, from HipChat's variant", "directives", `"text": "12 main: success"`, "hipchat"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, stderr, err := runCLIOutput(t, "template", "render", "--bundle", config, "--template", "builds", "--provider", tc.provider, "--data", data)
			if err != nil {
				t.Fatalf("expected success, got %v (stderr %q)", err, stderr)
			}
			if !strings.Contains(out, tc.out) || !strings.Contains(stderr, "rendered from its Cog v3 "+tc.variant+" variant") {
				t.Fatalf("expected %q from the %s variant, got %q (stderr %q)", tc.out, tc.variant, out, stderr)
			}
		})
	}
}
