package template_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/template"
	"github.com/logbookhq/logbook/domain/template/render"
)

func gortEnvelope() template.GortEnvelope {
	return template.GortEnvelope{
		Request: template.GortRequest{Bundle: template.GortNamed{Name: "ec2"}, Command: template.GortNamed{Name: "find"}, Parameters: template.GortParameters{"web", "--all"}},
		Response: template.GortResponse{
			Lines: []string{"web-1 running", "web-2 stopped"}, Out: "web-1 running\nweb-2 stopped", Title: "Lookup failed",
		},
		Payload: map[string]any{"name": "web-1", "tags": []any{"a", "b"}},
	}
}

func TestGortTemplatesRenderTheirElements(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		template string
		want     string
	}{
		{"a monospace text is a code block",
			`{{ text | monospace true }}{{ .Response.Out }}{{ endtext }}`, "web-1 running\nweb-2 stopped"},
		{"text outside elements is not shown",
			"ignored {{ text }}shown{{ endtext }} ignored too", "shown"},
		{"a header holds the message as an attachment with its title",
			`{{ header | color "#FF0000" | title .Response.Title }}
{{ text }}Gort failed to run {{ .Request.Bundle.Name }}:{{ .Request.Command.Name }} {{ .Request.Parameters }}{{ endtext }}`,
			"Lookup failed\n  Gort failed to run ec2:find web --all"},
		{"a text's title is shown in bold above it",
			`{{ text | title "Instances" }}{{ range .Response.Lines }}{{ . }}
{{ end }}{{ endtext }}`, "Instances\n\nweb-1 running\nweb-2 stopped"},
		{"sections, images and dividers",
			`{{ section }}{{ text }}*{{ .Payload.name }}*{{ endtext }}{{ image "https://img/x.png" }}{{ endsection }}{{ divider }}{{ text }}{{ join ", " .Payload.tags | upper }}{{ endtext }}`,
			"web-1\n\nhttps://img/x.png\n\nA, B"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, err := template.ParseGort(tc.template)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := g.Execute(gortEnvelope())
			if err != nil {
				t.Fatal(err)
			}
			if got := render.Text(doc); got != tc.want {
				t.Fatalf("given %q, then expected %q, got %q", tc.template, tc.want, got)
			}
		})
	}
}

func TestAGortHeaderKeepsItsColourOnSlack(t *testing.T) {
	t.Parallel()
	g, err := template.ParseGort(`{{ header | color "#FF0000" | title "Error" }}{{ text }}x{{ endtext }}`)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := g.Execute(gortEnvelope())
	if err != nil {
		t.Fatal(err)
	}
	out := render.Slack(doc)
	if len(out.Attachments) != 1 || out.Attachments[0].Color != "#ff0000" || out.Attachments[0].Title != "Error" || out.Attachments[0].Text != "x" {
		t.Fatalf("expected a red attachment titled Error, got %+v", out)
	}
}

func TestAGortTemplateThatCannotWorkSaysWhere(t *testing.T) {
	t.Parallel()
	parseCases := []struct {
		name, template string
		line           int
		contains       string
	}{
		{"reading the environment is not offered", "{{ text }}\n{{ env \"LOGBOOK_SLACK_TOKEN\" }}{{ endtext }}", 2, `function "env" not defined`},
		{"an unclosed action", "{{ text }}\n\n{{ .Response.Out }{{ endtext }}", 3, "unexpected"},
	}
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := template.ParseGort(tc.template)
			var syn *template.SyntaxError
			if !errors.As(err, &syn) || syn.Line != tc.line || !strings.Contains(syn.Msg, tc.contains) {
				t.Fatalf("expected a syntax error on line %d containing %q, got %v", tc.line, tc.contains, err)
			}
		})
	}
	execCases := []struct {
		name, template, contains string
	}{
		{"a text never closed", "{{ text }}open", "never closed"},
		{"an endtext without a text", "{{ endtext }}", "without {{ text }}"},
		{"a header after other elements", "{{ text }}a{{ endtext }}{{ header }}", "must come first"},
		{"a bad colour", `{{ header | color "red" }}`, "#RRGGBB"},
	}
	for _, tc := range execCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, err := template.ParseGort(tc.template)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := g.Execute(gortEnvelope()); err == nil || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("expected an error containing %q, got %v", tc.contains, err)
			}
		})
	}
}

func TestDataCannotForgeAGortElement(t *testing.T) {
	t.Parallel()
	g, err := template.ParseGort(`{{ text }}{{ .Response.Out }}{{ endtext }}`)
	if err != nil {
		t.Fatal(err)
	}
	env := gortEnvelope()
	env.Response.Out = "a\x00{\"kind\":\"endtext\"}\x00b"
	doc, err := g.Execute(env)
	if err != nil {
		t.Fatal(err)
	}
	if got := render.Text(doc); got != `a{"kind":"endtext"}b` {
		t.Fatalf("expected the value as text, got %q", got)
	}
}
