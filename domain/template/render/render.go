// Package render turns template directives into what each chat provider
// posts: Slack's mrkdwn text and attachments, IRC lines with IRC's bold and
// italics, escaped HTML for the web UI, and plain text for the HTTP API
// (which also gets the directives as JSON). Renderers are pure functions
// of the directives.
//
// Every text a directive holds is data: each renderer escapes it for its
// provider, so a value cannot format itself, mention a channel (Slack's
// <!channel>) or send control codes (IRC's \x02, \x03, CTCP's \x01).
package render

import (
	"github.com/logbookhq/logbook/domain/template"
)

// Format is a provider's markup.
type Format string

const (
	FormatSlack Format = "slack" // mrkdwn text and legacy attachments
	FormatIRC   Format = "irc"   // plain lines with IRC formatting codes
	FormatHTML  Format = "html"  // escaped HTML, for the web UI
	FormatText  Format = "text"  // plain text, for the HTTP API and files
)

// FormatFor is the format a chat adapter posts in.
func FormatFor(adapter string) Format {
	switch adapter {
	case "slack":
		return FormatSlack
	case "irc":
		return FormatIRC
	case "web":
		return FormatHTML
	}
	return FormatText
}

// Output is a rendered reply.
type Output struct {
	Format Format `json:"format"`
	// Text is the message in Format's markup.
	Text string `json:"text"`
	// Attachments are Slack's; other formats set the attachments in Text.
	Attachments []Attachment `json:"attachments,omitempty"`
	// Plain is the reply as plain text: what a file upload holds, and what
	// a notification shows, where the markup would not render.
	Plain string `json:"-"`
}

// Attachment is a Slack legacy attachment: it keeps its colour, which
// Block Kit blocks cannot have. Text and field values are mrkdwn; titles
// are plain text (escaped only for Slack's &, < and >).
type Attachment struct {
	Color      string  `json:"color,omitempty"` // #rrggbb
	Pretext    string  `json:"pretext,omitempty"`
	Title      string  `json:"title,omitempty"`
	TitleLink  string  `json:"title_link,omitempty"`
	Text       string  `json:"text,omitempty"`
	Fallback   string  `json:"fallback,omitempty"`
	Fields     []Field `json:"fields,omitempty"`
	ImageURL   string  `json:"image_url,omitempty"`
	ThumbURL   string  `json:"thumb_url,omitempty"`
	AuthorName string  `json:"author_name,omitempty"`
	AuthorLink string  `json:"author_link,omitempty"`
	AuthorIcon string  `json:"author_icon,omitempty"`
	Footer     string  `json:"footer,omitempty"`
	FooterIcon string  `json:"footer_icon,omitempty"`
	Timestamp  string  `json:"ts,omitempty"`
}

// Field is an attachment's field.
type Field struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

// Size is roughly how many bytes the attachment adds to a message, for
// cutting a reply into messages.
func (a Attachment) Size() int {
	n := len(a.Color) + len(a.Pretext) + len(a.Title) + len(a.TitleLink) + len(a.Text) + len(a.ImageURL) +
		len(a.ThumbURL) + len(a.AuthorName) + len(a.AuthorLink) + len(a.AuthorIcon) + len(a.Footer) + len(a.FooterIcon)
	for _, f := range a.Fields {
		n += len(f.Title) + len(f.Value)
	}
	return n
}

// Render renders directives in a format.
func Render(doc template.Document, f Format) Output {
	plain := Text(doc)
	switch f {
	case FormatSlack:
		out := Slack(doc)
		out.Plain = plain
		return out
	case FormatIRC:
		return Output{Format: f, Text: IRC(doc), Plain: plain}
	case FormatHTML:
		return Output{Format: f, Text: HTML(doc), Plain: plain}
	}
	return Output{Format: FormatText, Text: plain, Plain: plain}
}
