package template

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	gotemplate "text/template"
)

// Gort's templates (gort_bundle_version 1) are Go text/template over a
// command's response envelope. They are not named by the command: Gort
// picks one by purpose, from the command's templates, then the bundle's:
// command (a command's output), command_error (a command that failed),
// message and message_error (Gort's own messages: Logbook uses them for
// its informational messages about a command and for a denial of it).
// Their functions build elements:
// {{ header | color "#FF0000" | title "..." }},
// {{ text | monospace true }}...{{ endtext }}, {{ section }}...{{ endsection }},
// {{ image "url" }}, {{ divider }} and {{ alt "..." }}; only the text inside
// elements is shown.
//
// Logbook maps a header to an attachment holding the whole message (its
// title and colour), a text to its Markdown blocks (a code block when
// monospace), a section to its elements, an image to a link. Gort also
// offers the Sprig library; Logbook offers its string and list functions
// (upper, lower, trim, replace, contains, join, default, toJson, ...) but
// none that read the environment, files, the clock or randomness.
//
// In Gort, text/template writes the data into the text before the text is
// read, so a value in a markdown text element can format itself, as it can
// in Gort; every renderer still escapes it for its provider (no mentions,
// no control codes).

// Purposes of Gort templates.
const (
	GortCommand      = "command"
	GortCommandError = "command_error"
	GortMessage      = "message"
	GortMessageError = "message_error"
)

// GortEnvelope is the data a Gort template sees, with Gort's field names.
type GortEnvelope struct {
	Request  GortRequest
	Response GortResponse
	Data     GortData
	// Payload is the output decoded from JSON when it is JSON
	// (Response.Structured), else the output's text.
	Payload any
}

// GortRequest describes what was run.
type GortRequest struct {
	Bundle     GortNamed
	Command    GortNamed
	Parameters GortParameters
	Adapter    string
	ChannelID  string
	UserID     string
	UserName   string
}

// GortNamed is a bundle or command as Gort templates reach it (.Name).
type GortNamed struct {
	Name    string
	Version string
}

// GortParameters are a command's arguments; they print as typed.
type GortParameters []string

func (p GortParameters) String() string { return strings.Join(p, " ") }

// GortResponse is the command's output.
type GortResponse struct {
	Lines      []string
	Out        string
	Structured bool
	Title      string
}

// GortData is about the run.
type GortData struct {
	ExitCode int
	Duration string
}

// GortTemplate is a parsed Gort template.
type GortTemplate struct {
	t *gotemplate.Template
}

var gortErrorLine = regexp.MustCompile(`^template: [^:]*:(\d+):(?:(\d+):)? ?(.*)$`)

// ParseGort parses a Gort template. A template that does not parse (or
// calls a function Logbook does not offer) returns a *SyntaxError with its
// line.
func ParseGort(source string) (*GortTemplate, error) {
	if len(source) > MaxSourceBytes {
		return nil, syntaxErrorf(Pos{1, 1}, "the template is %d bytes; at most %d are allowed", len(source), MaxSourceBytes)
	}
	t, err := gotemplate.New("gort").Funcs(gortFuncs).Parse(source)
	if err != nil {
		return nil, gortSyntaxError(err)
	}
	return &GortTemplate{t: t}, nil
}

func gortSyntaxError(err error) error {
	m := gortErrorLine.FindStringSubmatch(err.Error())
	if m == nil {
		return syntaxErrorf(Pos{1, 1}, "%s", err.Error())
	}
	line, _ := strconv.Atoi(m[1])
	col, _ := strconv.Atoi(m[2])
	return syntaxErrorf(Pos{max(line, 1), max(col, 1)}, "%s", m[3])
}

// errGortTooLong stops an execution past MaxOutputBytes.
var errGortTooLong = fmt.Errorf("the template wrote more than %d bytes", MaxOutputBytes)

type cappedWriter struct{ b strings.Builder }

func (w *cappedWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > MaxOutputBytes {
		return 0, errGortTooLong
	}
	return w.b.Write(p)
}

// Execute runs the template over the envelope into directives. A template
// that fails (a function given the wrong value, elements that do not
// nest) returns the error.
func (g *GortTemplate) Execute(env GortEnvelope) (Document, error) {
	env = sanitizeEnvelope(env)
	var w cappedWriter
	if err := g.t.Execute(&w, env); err != nil {
		return nil, fmt.Errorf("the Gort template failed: %w", err)
	}
	return gortElements(w.b.String())
}

// The functions' elements are written into the output between NUL marks,
// which data cannot forge: NULs are taken out of the envelope first.
const gortMark = "\x00"

func sanitizeEnvelope(env GortEnvelope) GortEnvelope {
	strip := func(s string) string { return strings.ReplaceAll(s, gortMark, "") }
	env.Response.Out = strip(env.Response.Out)
	env.Response.Title = strip(env.Response.Title)
	lines := make([]string, len(env.Response.Lines))
	for i, l := range env.Response.Lines {
		lines[i] = strip(l)
	}
	env.Response.Lines = lines
	params := make(GortParameters, len(env.Request.Parameters))
	for i, p := range env.Request.Parameters {
		params[i] = strip(p)
	}
	env.Request.Parameters = params
	env.Payload = stripValue(env.Payload, strip)
	return env
}

func stripValue(v any, strip func(string) string) any {
	switch x := v.(type) {
	case string:
		return strip(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = stripValue(e, strip)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[strip(k)] = stripValue(e, strip)
		}
		return out
	}
	return v
}

// gortElement is what a function writes: its kind and settings.
type gortElement struct {
	Kind      string `json:"kind"`
	Title     string `json:"title,omitempty"`
	Color     string `json:"color,omitempty"`
	Monospace bool   `json:"monospace,omitempty"`
	Markdown  bool   `json:"markdown,omitempty"`
	Inline    bool   `json:"inline,omitempty"`
	Emoji     bool   `json:"emoji,omitempty"`
	URL       string `json:"url,omitempty"`
	Thumbnail bool   `json:"thumbnail,omitempty"`
	Text      string `json:"text,omitempty"`
}

func (e *gortElement) String() string {
	b, _ := json.Marshal(e)
	return gortMark + string(b) + gortMark
}

var gortFuncs = func() gotemplate.FuncMap {
	fm := safeSprig()
	element := func(kind string) func() *gortElement {
		return func() *gortElement { return &gortElement{Kind: kind} }
	}
	fm["header"] = element("header")
	fm["section"] = element("section")
	fm["endsection"] = element("endsection")
	fm["endtext"] = element("endtext")
	fm["endheader"] = element("endheader")
	fm["divider"] = element("divider")
	fm["text"] = func() *gortElement { return &gortElement{Kind: "text", Markdown: true, Emoji: true} }
	fm["image"] = func(url string) *gortElement { return &gortElement{Kind: "image", URL: url} }
	fm["alt"] = func(text string) *gortElement { return &gortElement{Kind: "alt", Text: text} }
	fm["color"] = func(c string, e *gortElement) (*gortElement, error) {
		hex := strings.TrimPrefix(c, "#")
		if _, err := strconv.ParseUint(hex, 16, 32); err != nil || len(hex) != 6 {
			return nil, errors.New("colors are written #RRGGBB")
		}
		e.Color = "#" + strings.ToLower(hex)
		return e, nil
	}
	fm["title"] = func(s string, e *gortElement) *gortElement { e.Title = s; return e }
	fm["monospace"] = func(b bool, e *gortElement) *gortElement { e.Monospace = b; return e }
	fm["markdown"] = func(b bool, e *gortElement) *gortElement { e.Markdown = b; return e }
	fm["inline"] = func(b bool, e *gortElement) *gortElement { e.Inline = b; return e }
	fm["emoji"] = func(b bool, e *gortElement) *gortElement { e.Emoji = b; return e }
	fm["thumbnail"] = func(b bool, e *gortElement) *gortElement { e.Thumbnail = b; return e }
	return fm
}()

// gortElements reads the executed text: the elements between marks, and
// the text between a text element and its endtext.
func gortElements(out string) (Document, error) {
	var doc Document
	var header *AttachmentInfo
	var open *gortElement // a text being read
	openAt := 0
	inSection := false
	for pos := 0; ; {
		start := strings.Index(out[pos:], gortMark)
		if start < 0 {
			break
		}
		start += pos
		end := strings.Index(out[start+1:], gortMark)
		if end < 0 {
			break
		}
		end += start + 1
		var e gortElement
		if err := json.Unmarshal([]byte(out[start+1:end]), &e); err != nil {
			return nil, fmt.Errorf("the Gort template wrote an element Logbook cannot read: %w", err)
		}
		line := strings.Count(out[:start], "\n") + 1
		if open != nil && e.Kind != "endtext" {
			return nil, fmt.Errorf("line %d of the output: {{ %s }} inside {{ text }}; close it with {{ endtext }} first", line, e.Kind)
		}
		switch e.Kind {
		case "header":
			if header != nil || len(doc) > 0 {
				return nil, fmt.Errorf("line %d of the output: {{ header }} must come first, and once", line)
			}
			header = &AttachmentInfo{Title: e.Title, Color: e.Color}
		case "text":
			open, openAt = &e, end+1
		case "endtext":
			if open == nil {
				return nil, fmt.Errorf("line %d of the output: {{ endtext }} without {{ text }}", line)
			}
			doc = append(doc, gortText(*open, out[openAt:start])...)
			open = nil
		case "section":
			if inSection {
				return nil, fmt.Errorf("line %d of the output: {{ section }} inside {{ section }}", line)
			}
			inSection = true
		case "endsection":
			if !inSection {
				return nil, fmt.Errorf("line %d of the output: {{ endsection }} without {{ section }}", line)
			}
			inSection = false
		case "image":
			doc = append(doc, Directive{Kind: Paragraph, Children: []Directive{{Kind: Link, URL: e.URL, Children: []Directive{{Kind: Text, Text: e.URL}}}}})
		case "endheader", "divider", "alt":
			// A divider is the break between blocks; alt text is for
			// providers that cannot show elements, and Logbook shows them.
		}
		pos = end + 1
	}
	switch {
	case open != nil:
		return nil, errors.New("a {{ text }} is never closed with {{ endtext }}")
	case inSection:
		return nil, errors.New("a {{ section }} is never closed with {{ endsection }}")
	}
	if header != nil {
		return Document{{Kind: Attachment, Attachment: header, Children: doc}}, nil
	}
	return doc, nil
}

func gortText(e gortElement, text string) Document {
	var doc Document
	if e.Title != "" {
		doc = append(doc, Directive{Kind: Paragraph, Children: []Directive{{Kind: Bold, Children: []Directive{{Kind: Text, Text: e.Title}}}}})
	}
	switch {
	case strings.TrimSpace(text) == "":
	case e.Monospace:
		doc = append(doc, Directive{Kind: CodeBlock, Text: strings.Trim(text, "\n")})
	case e.Markdown:
		doc = append(doc, markdown([]piece{{kind: pieceLiteral, text: text}})...)
	default:
		doc = append(doc, markdown([]piece{{kind: pieceData, text: text}})...)
	}
	return doc
}
