package template_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/template"
	"github.com/logbookhq/logbook/internal/testenv"
)

func TestACogV3VariantThatDoesNotParseSaysWhereAndWhy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		source     string
		line, col  int
		msgContain string
	}{
		{"a tag left open on its line", "Builds:\n  {{name\n{{/x}}", 2, 3, "not closed on its line: }} is missing"},
		{"a tag left open at the end", "Status: {{status", 1, 9, "not closed: }} is missing"},
		{"a triple tag closed by two braces", "{{{name}} x", 1, 1, "}}} is missing"},
		{"a comment never closed", "a {{! note\nmore", 1, 3, "comment that opens here is never closed"},
		{"a tag with no name", "x {{ }}", 1, 3, "has no name"},
		{"a section with no name", "{{#}}x{{/}}", 1, 1, "has no name"},
		{"a name with a blank in it", "{{build num}}", 1, 8, "cannot hold a blank"},
		{"a name with an empty key", "{{a..b}}", 1, 3, "has an empty key"},
		{"a name ending in a dot", "{{# a. }}x{{/a.}}", 1, 5, "has an empty key"},
		{"a partial", "{{> json}}", 1, 1, "partials"},
		{"changed delimiters", "{{=<% %>=}}", 1, 1, "changing the delimiters"},
		{"a tag inside a tag", "{{a {{b}}", 1, 5, "cannot hold {{"},
		{"a closing tag that closes nothing", "ok {{/builds}}", 1, 4, "{{/builds}} closes no section"},
		{"a closing tag of another section", "{{#a}}\n{{#b}}x{{/a}}", 2, 8, "{{/a}} does not close the innermost open section, {{#b}} at line 2, column 1"},
		{"a section never closed", "{{#builds}}\n{{name}}\n", 1, 1, "{{#builds}} is never closed: add {{/builds}}"},
		{"an inverted section never closed", "x {{^builds}}none", 1, 3, "{{^builds}} is never closed"},
		{"an error after a comment spanning lines keeps its line and column", "{{! one\ntwo }} x {{/y}}", 2, 10, "closes no section"},
		{"columns count characters, not bytes", "é {{", 1, 3, "not closed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := template.ParseMustache(tc.source)
			var syn *template.SyntaxError
			if !errors.As(err, &syn) {
				t.Fatalf("given %q, expected a syntax error, got %v", tc.source, err)
			}
			if syn.Line != tc.line || syn.Column != tc.col || !strings.Contains(syn.Msg, tc.msgContain) {
				t.Fatalf("given %q, expected line %d, column %d, %q; got %v", tc.source, tc.line, tc.col, tc.msgContain, err)
			}
		})
	}
}

func TestACogV3VariantOverTheLimitsIsRefused(t *testing.T) {
	t.Parallel()
	if _, err := template.ParseMustache(strings.Repeat("a", template.MaxSourceBytes+1)); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("expected the size limit, got %v", err)
	}
	deep := strings.Repeat("{{#a}}", 100) + strings.Repeat("{{/a}}", 100)
	if _, err := template.ParseMustache(deep); err == nil || !strings.Contains(err.Error(), "nest more than") {
		t.Errorf("expected the depth limit, got %v", err)
	}
}

// TestBothCogV3TemplatesOfThePublishedBundlesParse reads the corpus's
// per-provider variants (circle's list and status, Slack only) as the
// Mustache they are.
func TestBothCogV3TemplatesOfThePublishedBundlesParse(t *testing.T) {
	t.Parallel()
	dir := testenv.CogBundlesDir(t)
	paths, err := filepath.Glob(filepath.Join(dir, "*config.y*ml"))
	if err != nil {
		t.Fatal(err)
	}
	variants := 0
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := bundle.Load(data)
		if err != nil {
			continue // the one v2 config is refused by the loader's own tests
		}
		for _, tm := range b.Templates() {
			for provider, v := range tm.Providers {
				variants++
				if _, err := template.ParseMustache(v.Source); err != nil {
					t.Errorf("%s %s.%s: %v", filepath.Base(path), tm.Name, provider, err)
				}
			}
		}
	}
	if variants != 2 {
		t.Fatalf("expected the corpus's 2 per-provider variants, found %d", variants)
	}
}
