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
