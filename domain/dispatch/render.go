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
	// Variant names the Cog v3 per-provider variant (slack, hipchat) the
	// template was rendered from, when it has no Greenbar body.
	Variant string `json:"variant,omitempty"`
	Bundle  string `json:"bundle,omitempty"`
	Version string `json:"version,omitempty"`
	Source  string `json:"source"`
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
	Variant  string
	Bundle   string
	Version  string
	Source   string
	Error    string
}

// RenderReply renders the reply in f with its templates.
func RenderReply(r Reply, src TemplateSource, f render.Format) Reply {
	b, commandName := replyBundle(r, src)
	doc, info := replyDocument(r, b, commandName, f)
	if r.Notice != "" {
		notice, noticeInfo, ok := gortMessage(b, commandName, r.Notice)
		if !ok {
			notice = template.TextDocument(r.Notice)
		}
		if info.Error == "" {
			info.Error = noticeInfo.Error
		}
		doc = append(notice, doc...)
	}
	if r.CutRunID != "" {
		doc = append(doc, cutNoticeDirective(r.CutRunID, r.Transcript))
	}
	out := render.Render(doc, f)
	r.Rendered = &Rendered{
		Format: out.Format, Text: out.Text, Attachments: out.Attachments, Plain: out.Plain, Recorded: out.Text, RecordedAttachments: out.Attachments,
		Template: info.Template, Variant: info.Variant, Bundle: info.Bundle, Version: info.Version, Source: info.Source, Error: info.Error,
	}
	if f == render.FormatText {
		r.Rendered.Directives = doc
	}
	return r
}

// replyBundle is the installed version of the bundle whose command the
// reply is about, and the command's name; nil for a builtin or a reply
// about no command.
func replyBundle(r Reply, src TemplateSource) (*bundle.Bundle, string) {
	bundleName, commandName, _ := strings.Cut(r.Command, ":")
	if src == nil || bundleName == "" || bundleName == BuiltinBundle {
		return nil, commandName
	}
	b, _ := src.BundleVersion(bundleName, r.Version)
	return b, commandName
}

func replyDocument(r Reply, b *bundle.Bundle, commandName string, f render.Format) (template.Document, RenderInfo) {
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
	doc, info := CommandOutputDocument(b, commandName, r.Template, r.Value, f)
	if len(doc) == 0 {
		if doc, info, ok := gortMessage(b, commandName, NoOutput); ok {
			return doc, info
		}
		return template.TextDocument(NoOutput), info
	}
	return doc, info
}

// gortMessage renders a message Logbook itself gives the person about a
// command, not an error (a welcome to a new user, "(no output)"), with
// the message template of the command's Gort bundle, the command's then
// the bundle's: Gort sends its own informational messages through it,
// with the message as the response's one line. ok is false when there is
// no such template; one that fails leaves the message as text, and says
// why.
func gortMessage(b *bundle.Bundle, command, text string) (template.Document, RenderInfo, bool) {
	if b == nil || b.Format != bundle.FormatGort {
		return nil, RenderInfo{}, false
	}
	lines, _ := json.Marshal([]map[string][]string{{"body": {text}}}) // strings always marshal
	return gortDocument(b, command, template.GortMessage, lines, nil)
}

// CommandOutputDocument renders a command's output for format f: with the
// template it named from its bundle b (Greenbar, or the Cog v3 variant
// for f), a Gort bundle's command template, or else Cog's default
// rendering. A named template that cannot be used (the bundle has none of
// that name, or it does not parse) leaves the default rendering in its
// place, and says why.
func CommandOutputDocument(b *bundle.Bundle, command, name string, output json.RawMessage, f render.Format) (template.Document, RenderInfo) {
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
	case t.Body == "" && len(t.Providers) > 0:
		return cogV3Document(b, t, output, f, info)
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

// CogV3Variant is the variant of a Cog v3 template that a reply in format
// f is rendered from (see template.CogV3VariantOrder for why).
func CogV3Variant(t *bundle.Template, f render.Format) (string, bundle.Variant, bool) {
	for _, name := range template.CogV3VariantOrder(f == render.FormatSlack) {
		if v, ok := t.Providers[name]; ok {
			return name, v, true
		}
	}
	return "", bundle.Variant{}, false
}

// cogV3Document renders output with the variant of a Cog v3 template
// (one with only per-provider variants) that format f takes.
func cogV3Document(b *bundle.Bundle, t *bundle.Template, output json.RawMessage, f render.Format, info RenderInfo) (template.Document, RenderInfo) {
	name, v, ok := CogV3Variant(t, f)
	if !ok {
		info.Error = fmt.Sprintf("template %s of bundle %s %s has no variant Logbook renders (slack or hipchat)", t.Name, b.Name, b.Version)
		return template.Default(output), info
	}
	info.Variant = name
	parsed, err := template.ParseMustache(v.Source)
	if err != nil {
		info.Error = fmt.Sprintf("the %s variant of template %s of bundle %s %s does not parse: %v", name, t.Name, b.Name, b.Version, err)
		return template.Default(output), info
	}
	contexts, err := template.CogV3Contexts(output)
	if err != nil {
		info.Error = fmt.Sprintf("the output is not JSON: %v", err)
		return template.Default(output), info
	}
	info.Source = SourceBundle
	return parsed.Execute(contexts, template.MarkupOf(name)), info
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
