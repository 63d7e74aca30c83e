package template_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/template"
)

// fuzzScope is data with the shapes bundles return: nested objects, lists,
// nulls, numbers and strings.
var fuzzScope = func() map[string]any {
	scope, err := template.CogScope(json.RawMessage(`[
		{"name": "web-1", "state": {"name": "running", "color": "green"}, "tags": {"Name": "web"}, "count": 3, "items": [1, 2, 3], "none": null},
		{"name": "db-1", "state": {"name": "stopped", "color": "red"}, "tags": {}, "count": 0, "items": [], "body": ["a", "b"]}
	]`))
	if err != nil {
		panic(err)
	}
	scope["x"], scope["y"], scope["b"], scope["name"] = "up", json.Number("2"), true, "Logbook"
	return scope
}()

// FuzzParse checks that no source panics or hangs, that a refused one
// says where on a line that exists, and that a parsed one executes into
// directives that encode as JSON.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, source string) {
		tm, err := template.Parse(source)
		if err != nil {
			var syn *template.SyntaxError
			if !errors.As(err, &syn) {
				t.Fatalf("an error that is not a *SyntaxError: %v", err)
			}
			lines := strings.Count(source, "\n") + strings.Count(source, "\r") + 1
			if syn.Line < 1 || syn.Line > lines || syn.Column < 1 {
				t.Fatalf("error at %v of a %d-line source: %v", syn.Pos, lines, err)
			}
			return
		}
		doc := tm.Execute(fuzzScope)
		if _, err := json.Marshal(doc); err != nil {
			t.Fatalf("directives do not encode: %v", err)
		}
	})
}

// FuzzDataIsNeverMarkup checks the rule the renderers rely on: whatever a
// value holds, it comes out as text (and line breaks), never as bold, a
// list, a table, code or a link.
func FuzzDataIsNeverMarkup(f *testing.F) {
	tm, err := template.Parse("~$results[0]~")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, value string) {
		doc := tm.Execute(map[string]any{"results": []any{value}})
		for _, block := range doc {
			if block.Kind != template.Paragraph {
				t.Fatalf("data %q made a %s block", value, block.Kind)
			}
			for _, d := range block.Children {
				if d.Kind != template.Text && d.Kind != template.Newline {
					t.Fatalf("data %q made a %s directive", value, d.Kind)
				}
			}
		}
	})
}

// FuzzParseGort checks that no Gort template panics or hangs Logbook's
// reading of it: a refused one says where, a parsed one executes into
// directives or an error.
func FuzzParseGort(f *testing.F) {
	env := template.GortEnvelope{
		Request:  template.GortRequest{Bundle: template.GortNamed{Name: "ec2"}, Command: template.GortNamed{Name: "find"}, Parameters: template.GortParameters{"a"}},
		Response: template.GortResponse{Lines: []string{"one", "two"}, Out: "one\ntwo", Title: "T"},
		Payload:  map[string]any{"name": "web", "list": []any{"a", json.Number("1")}},
	}
	f.Fuzz(func(t *testing.T, source string) {
		g, err := template.ParseGort(source)
		if err != nil {
			var syn *template.SyntaxError
			if !errors.As(err, &syn) || syn.Line < 1 {
				t.Fatalf("a parse error without a line: %v", err)
			}
			return
		}
		doc, err := g.Execute(env)
		if err == nil {
			if _, err := json.Marshal(doc); err != nil {
				t.Fatalf("directives do not encode: %v", err)
			}
		}
	})
}

// fuzzContexts are Cog v3 contexts with the shapes the circle bundle's
// builds have: numbers, strings, nulls, nested objects and lists.
var fuzzContexts = func() []any {
	contexts, err := template.CogV3Contexts(json.RawMessage(`[
		{"build_num": 12, "branch": "main", "status": "success", "author_name": "Ada", "steps": [{"name": "test"}, {"name": "deploy"}], "vcs": {"revision": "abc"}, "stop_time": null},
		{"build_num": 13, "branch": "fix/*x*", "status": "failed", "steps": [], "queued": false}
	]`))
	if err != nil {
		panic(err)
	}
	return contexts
}()

// FuzzParseMustache checks that no Cog v3 variant panics or hangs: a
// refused one says where, on a line that exists, and a parsed one runs in
// either markup into directives that encode as JSON.
func FuzzParseMustache(f *testing.F) {
	f.Fuzz(func(t *testing.T, source string) {
		m, err := template.ParseMustache(source)
		if err != nil {
			var syn *template.SyntaxError
			if !errors.As(err, &syn) {
				t.Fatalf("an error that is not a *SyntaxError: %v", err)
			}
			lines := strings.Count(source, "\n") + 1
			if syn.Line < 1 || syn.Line > lines || syn.Column < 1 {
				t.Fatalf("error at %v of a %d-line source: %v", syn.Pos, lines, err)
			}
			return
		}
		for _, markup := range []template.Markup{template.MarkupMrkdwn, template.MarkupPlain} {
			if _, err := json.Marshal(m.Execute(fuzzContexts, markup)); err != nil {
				t.Fatalf("directives do not encode: %v", err)
			}
		}
	})
}

// FuzzCogV3DataIsNeverMarkup checks that a value a Cog v3 variant shows is
// text (and line breaks) in either markup, never bold, code or a link.
func FuzzCogV3DataIsNeverMarkup(f *testing.F) {
	m, err := template.ParseMustache("{{v}}")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, value string) {
		for _, markup := range []template.Markup{template.MarkupMrkdwn, template.MarkupPlain} {
			for _, block := range m.Execute([]any{map[string]any{"v": value}}, markup) {
				if block.Kind != template.Paragraph {
					t.Fatalf("data %q made a %s block", value, block.Kind)
				}
				for _, d := range block.Children {
					if d.Kind != template.Text && d.Kind != template.Newline {
						t.Fatalf("data %q made a %s directive", value, d.Kind)
					}
				}
			}
		}
	})
}
