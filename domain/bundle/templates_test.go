package bundle_test

import (
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/bundle"
)

func TestATemplateThatDoesNotParseFailsValidationOnItsFileLine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		templates string
		line      int
		contains  string
	}{
		{"a block body names the file line of the problem", `templates:
  status:
    body: |
      **Status**
      ~each var=$results~
      ~$item.name
      ~end~
`, 20, "templates.status: the template does not parse at its line 3, column 1"},
		{"an unknown tag names it", `templates:
  status:
    body: |
      ~frob var=$results~
`, 18, "unknown tag ~frob~"},
		{"a quoted body names the line it starts on", `templates:
  status:
    body: "ok\n~end~"
`, 17, "its line 2, column 1: this ~end~ closes no tag"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := loadErrors(t, minimalV4+tc.templates)
			if !hasProblem(errs, tc.line, tc.contains) {
				t.Fatalf("expected a problem on line %d containing %q, got %v", tc.line, tc.contains, errs)
			}
		})
	}
}

func TestACogV3VariantThatDoesNotParseFailsValidationOnItsFileLine(t *testing.T) {
	t.Parallel()
	minimalV3 := strings.Replace(minimalV4, "cog_bundle_version: 4", "cog_bundle_version: 3", 1)
	cases := []struct {
		name      string
		templates string
		line      int
		contains  string
	}{
		{"a block Slack variant names the file line of the problem", `templates:
  status:
    slack: |
      *Status*
      {{#builds}}
      {{name}
      {{/builds}}
`, 20, "templates.status.slack: the template does not parse at its line 3, column 1: the tag that opens here is not closed on its line"},
		{"a quoted HipChat variant names the line it starts on", `templates:
  status:
    slack: "{{status}}"
    hipchat: "{{#builds}}{{name}}{{/build}}"
`, 18, "templates.status.hipchat: the template does not parse at its line 1, column 20: {{/build}} does not close the innermost open section, {{#builds}} at line 1, column 1"},
		{"a partial is refused", `templates:
  status:
    slack: |
      Status:
        {{> json}}
`, 19, "templates.status.slack: the template does not parse at its line 2, column 3: partials"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := loadErrors(t, minimalV3+tc.templates)
			if !hasProblem(errs, tc.line, tc.contains) {
				t.Fatalf("expected a problem on line %d containing %q, got %v", tc.line, tc.contains, errs)
			}
		})
	}
}

func TestTheTwoPublishedCogV3TemplatesPassValidation(t *testing.T) {
	t.Parallel()
	b, err := bundle.Load(realBundle(t, "cogcmd__circle__config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"list", "status"} {
		if tpl, ok := b.Template(name); !ok || tpl.Body != "" || tpl.Providers["slack"].Source == "" {
			t.Errorf("expected circle's template %s with only a Slack variant, got %+v", name, tpl)
		}
	}
}

func TestATemplateLeftOpenLoadsWithAWarningOnItsLine(t *testing.T) {
	t.Parallel()
	b, err := bundle.Load([]byte(minimalV4 + `templates:
  list:
    body: |
      ~each var=$results~
      ~$item.name~
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range b.Warnings() {
		if w.Line == 18 && strings.Contains(w.Message, "~each~ is never closed") {
			return
		}
	}
	t.Fatalf("expected a warning on line 18, got %v", b.Warnings())
}

func TestThePublishedGrooveBundleLoadsWithItsOpenTagWarned(t *testing.T) {
	t.Parallel()
	b, err := bundle.Load(realBundle(t, "cogcmd__groove__config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range b.Warnings() {
		if w.Line == 77 && strings.Contains(w.Message, "templates.ticket") && strings.Contains(w.Message, "never closed") {
			return
		}
	}
	t.Fatalf("expected the ticket template's warning on line 77, got %v", b.Warnings())
}

func TestAGortTemplateThatDoesNotParseFailsValidationOnItsFileLine(t *testing.T) {
	t.Parallel()
	config := `gort_bundle_version: 1
name: ec2
version: 0.4.0
image: acme/ec2:0.4.0
commands:
  find:
    executable: [ "/bin/find" ]
    rules:
      - allow
    templates:
      command: |-
        {{ text }}
        {{ env "LOGBOOK_SLACK_TOKEN" }}
        {{ endtext }}
templates:
  command_error: "{{ text }}{{ .Response.Out }{{ endtext }}"
`
	errs := loadErrors(t, config)
	if !hasProblem(errs, 13, `templates.command: the template does not parse at its line 2`) || !hasProblem(errs, 13, `function "env" not defined`) {
		t.Errorf("expected the command template's problem on line 13, got %v", errs)
	}
	if !hasProblem(errs, 16, "templates.command_error: the template does not parse at its line 1") {
		t.Errorf("expected the bundle template's problem on line 16, got %v", errs)
	}
}
