package dispatch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/template"
	"github.com/logbookhq/logbook/domain/template/render"
)

// Rendering a reply for its provider. The reply's output goes through the
// template its command named (COG_TEMPLATE) from the version of the
// bundle the run used; a Gort bundle's through its command template; any
// other output through Cog's default rendering; a request that did not
// complete through Logbook's error template (or a Gort bundle's
// command_error or message_error). The result says which, for the record.

// TemplateSource finds the bundle version a reply's template comes from.
type TemplateSource interface {
	// BundleVersion is one installed version of a bundle; an empty
	// version asks for the enabled one.
	BundleVersion(name, version string) (*bundle.Bundle, bool)
}

// Where a reply's rendering came from.
const (
	SourceBundle  = "bundle"  // the template the command named, from its bundle
	SourceGort    = "gort"    // a Gort bundle's template
	SourceDefault = "default" // Cog's default rendering
	SourceLogbook = "logbook" // Logbook's error template
)

// Rendered is a reply rendered for its adapter.
type Rendered struct {
	Format      render.Format       `json:"format"`
	Text        string              `json:"text"`
	Attachments []render.Attachment `json:"attachments,omitempty"`
	// Directives are what the text was rendered from, for the API's
	// callers to lay out themselves.
	Directives template.Document `json:"directives,omitempty"`
	Template   string            `json:"template,omitempty"`
	Bundle     string            `json:"bundle,omitempty"`
	Version    string            `json:"version,omitempty"`
	Source     string            `json:"source"`
	// Error says why the named template could not be used; the default
	// rendering stood in.
	Error string `json:"error,omitempty"`
	// Plain is the reply as plain text, for a file upload.
	Plain string `json:"-"`
	// Recorded and RecordedAttachments are Text and Attachments as the
	// record keeps them: a secret the reply reveals (a new token) appears
	// there as its placeholder only.
	Recorded            string              `json:"-"`
	RecordedAttachments []render.Attachment `json:"-"`
}

// RenderInfo says what output was rendered with.
type RenderInfo struct {
	Template string
	Bundle   string
	Version  string
	Source   string
	Error    string
}

// RenderReply renders the reply in f with its templates.
func RenderReply(r Reply, src TemplateSource, f render.Format) Reply {
	doc, info := replyDocument(r, src)
	if r.Notice != "" {
		doc = append(template.Document{{Kind: template.Paragraph, Children: []template.Directive{{Kind: template.Text, Text: r.Notice}}}}, doc...)
	}
	out := render.Render(doc, f)
	r.Rendered = &Rendered{
		Format: out.Format, Text: out.Text, Attachments: out.Attachments, Plain: out.Plain, Recorded: out.Text, RecordedAttachments: out.Attachments,
		Template: info.Template, Bundle: info.Bundle, Version: info.Version, Source: info.Source, Error: info.Error,
	}
	if f == render.FormatText {
		r.Rendered.Directives = doc
	}
	return r
}

func replyDocument(r Reply, src TemplateSource) (template.Document, RenderInfo) {
	bundleName, commandName, _ := strings.Cut(r.Command, ":")
	var b *bundle.Bundle
	if src != nil && bundleName != "" && bundleName != BuiltinBundle {
		b, _ = src.BundleVersion(bundleName, r.Version)
	}
	if r.Problem != nil {
		if b != nil && b.Format == bundle.FormatGort {
			purpose := template.GortMessageError
			if r.Problem.Status == StatusFailed {
				purpose = template.GortCommandError
			}
			if doc, info, ok := gortDocument(b, commandName, purpose, r.Value, r.Problem); ok {
				return doc, info
			}
		}
		p := r.Problem
		return template.ErrorDocument(p.Title, p.Message, p.Hint, p.Output), RenderInfo{Template: template.ErrorTemplateName, Source: SourceLogbook}
	}
	doc, info := CommandOutputDocument(b, commandName, r.Template, r.Value)
	if len(doc) == 0 {
		doc = template.TextDocument(NoOutput)
	}
	return doc, info
}

// CommandOutputDocument renders a command's output: with the Greenbar
// template it named from its bundle b, a Gort bundle's command template,
// or else Cog's default rendering. A named template that cannot be used
// (the bundle has none of that name, or only Cog v3 per-provider
// variants) leaves the default rendering in its place, and says why.
func CommandOutputDocument(b *bundle.Bundle, command, name string, output json.RawMessage) (template.Document, RenderInfo) {
	info := RenderInfo{Source: SourceDefault}
	if b == nil {
		if name != "" {
			info.Error = fmt.Sprintf("the output names template %s, but its bundle is not installed", name)
		}
		return template.Default(output), info
	}
	info.Bundle, info.Version = b.Name, b.Version
	if b.Format == bundle.FormatGort {
		if doc, ginfo, ok := gortDocument(b, command, template.GortCommand, output, nil); ok {
			return doc, ginfo
		}
		return template.Default(output), info
	}
	if name == "" {
		return template.Default(output), info
	}
	info.Template = name
	t, ok := b.Template(name)
	switch {
	case !ok:
		info.Error = fmt.Sprintf("bundle %s %s has no template %s", b.Name, b.Version, name)
		return template.Default(output), info
	case t.Body == "":
		info.Error = fmt.Sprintf("template %s of bundle %s %s has only Cog v3 per-provider variants, no Greenbar body", name, b.Name, b.Version)
		return template.Default(output), info
	}
	parsed, err := template.Parse(t.Body)
	if err != nil {
		info.Error = fmt.Sprintf("template %s of bundle %s %s does not parse: %v", name, b.Name, b.Version, err)
		return template.Default(output), info
	}
	scope, err := template.CogScope(output)
	if err != nil {
		info.Error = fmt.Sprintf("the output is not JSON: %v", err)
		return template.Default(output), info
	}
	info.Source = SourceBundle
	return parsed.Execute(scope), info
}

// GortTemplate finds a Gort bundle's template for a purpose: the
// command's own, then the bundle's.
func GortTemplate(b *bundle.Bundle, command, purpose string) (*bundle.Template, bool) {
	if c, ok := b.Command(command); ok {
		for _, t := range c.Templates() {
			if t.Name == purpose {
				return t, true
			}
		}
	}
	for _, t := range b.Templates() {
		if t.Name == purpose {
			return t, true
		}
	}
	return nil, false
}

// gortDocument renders output with a Gort bundle's template for purpose;
// ok is false when the bundle declares none. A template that fails leaves
// the caller's fallback, with the error recorded.
func gortDocument(b *bundle.Bundle, command, purpose string, output json.RawMessage, problem *Problem) (template.Document, RenderInfo, bool) {
	t, ok := GortTemplate(b, command, purpose)
	if !ok {
		return nil, RenderInfo{}, false
	}
	info := RenderInfo{Template: purpose, Bundle: b.Name, Version: b.Version, Source: SourceGort}
	g, err := template.ParseGort(t.Body)
	if err == nil {
		var doc template.Document
		if doc, err = g.Execute(GortEnvelope(b, command, output, problem)); err == nil {
			return doc, info, true
		}
	}
	if problem != nil {
		return template.ErrorDocument(problem.Title, problem.Message, problem.Hint, problem.Output),
			RenderInfo{Template: template.ErrorTemplateName, Source: SourceLogbook, Error: err.Error()}, true
	}
	return template.Default(output), RenderInfo{Bundle: b.Name, Version: b.Version, Source: SourceDefault, Error: err.Error()}, true
}

// GortEnvelope is what a Gort template sees of a command's output: its
// lines, as text and, when the text is JSON, decoded as Payload.
func GortEnvelope(b *bundle.Bundle, command string, output json.RawMessage, problem *Problem) template.GortEnvelope {
	env := template.GortEnvelope{Request: template.GortRequest{
		Bundle: template.GortNamed{Name: b.Name, Version: b.Version}, Command: template.GortNamed{Name: command},
	}}
	lines, isText := bodyLines(bytes.TrimSpace(output))
	switch {
	case isText:
	case len(bytes.TrimSpace(output)) > 0:
		lines = strings.Split(renderOutput(output), "\n")
	}
	if problem != nil {
		env.Response.Title = problem.Title
		if len(lines) == 0 {
			lines = []string{problem.Message}
		}
	}
	env.Response.Lines = lines
	env.Response.Out = strings.Join(lines, "\n")
	env.Payload = env.Response.Out
	if v, err := template.DecodeJSON([]byte(env.Response.Out)); err == nil && strings.TrimSpace(env.Response.Out) != "" {
		env.Response.Structured, env.Payload = true, v
	}
	return env
}
