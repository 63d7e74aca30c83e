package render

import (
	"strconv"
	"strings"

	"github.com/logbookhq/logbook/domain/template"
)

// zwsp is a zero-width space: set next to a character Slack would read as
// formatting, it keeps the character from opening or closing bold,
// italics, strike-through or code, without changing what is shown.
const zwsp = "\u200b"

// Slack renders directives as mrkdwn text and legacy attachments (which
// keep their colour). Bold is *x*, italics _x_, code `x`, code blocks and
// tables ``` blocks (tables aligned in columns), lists • lines, links
// <url|text>. Data is escaped: &, < and > as entities (so <!channel> is
// shown, never a mention), and a *, _, ~ or ` where it could open or close
// formatting gets a zero-width space beside it; inside a word
// (snake_case) it is left alone, so identifiers copy as they are.
func Slack(doc template.Document) Output {
	out := Output{Format: FormatSlack}
	var text []string
	for _, d := range doc {
		if d.Kind == template.Attachment {
			out.Attachments = append(out.Attachments, slackAttachment(d))
			continue
		}
		if s := (&slackWriter{}).block(d); s != "" {
			text = append(text, s)
		}
	}
	out.Text = strings.Join(text, "\n\n")
	return out
}

func slackAttachment(d template.Directive) Attachment {
	a := d.Attachment
	if a == nil {
		a = &template.AttachmentInfo{}
	}
	var body []string
	for _, c := range d.Children {
		if s := (&slackWriter{}).block(c); s != "" {
			body = append(body, s)
		}
	}
	out := Attachment{
		Color:      template.ColorHex(a.Color),
		Pretext:    slackData(a.Pretext),
		Title:      slackEntities(oneLine(a.Title)),
		Text:       strings.Join(body, "\n\n"),
		AuthorName: slackEntities(oneLine(a.Author)),
		Footer:     slackEntities(oneLine(a.Footer)),
	}
	out.TitleLink, _ = linkable(a.TitleURL)
	out.ImageURL, _ = linkable(a.ImageURL)
	out.ThumbURL, _ = linkable(a.ThumbURL)
	out.AuthorLink, _ = linkable(a.AuthorLink)
	out.AuthorIcon, _ = linkable(a.AuthorIcon)
	out.FooterIcon, _ = linkable(a.FooterIcon)
	if _, err := strconv.ParseInt(a.Timestamp, 10, 64); err == nil {
		out.Timestamp = a.Timestamp
	}
	for _, f := range a.Fields {
		out.Fields = append(out.Fields, Field{Title: slackEntities(oneLine(f.Title)), Value: slackData(f.Value), Short: f.Short})
	}
	out.Fallback = slackEntities(attachmentFallback(d))
	return out
}

// attachmentFallback is an attachment as plain text, unindented: what a
// notification shows.
func attachmentFallback(d template.Directive) string {
	var parts []string
	if a := d.Attachment; a != nil {
		for _, s := range []string{a.Fallback, a.Pretext, a.Title} {
			if s = oneLine(s); s != "" {
				parts = append(parts, s)
			}
		}
		for _, f := range a.Fields {
			parts = append(parts, oneLine(f.Title)+": "+oneLine(f.Value))
		}
	}
	if body := Text(d.Children); body != "" {
		parts = append(parts, body)
	}
	return strings.Join(parts, "\n")
}

func oneLine(s string) string { return strings.ReplaceAll(clean(s), "\n", " ") }

// slackWriter renders blocks; it knows which styles are open so that bold
// inside bold is written once.
type slackWriter struct {
	bold, italics bool
}

func (w *slackWriter) block(d template.Directive) string {
	switch d.Kind {
	case template.Paragraph:
		return strings.Trim(w.inline(d.Children), "\n")
	case template.Header:
		return w.styled("*", strings.ReplaceAll(plainInline(d.Children), "\n", " "), true)
	case template.CodeBlock:
		return slackCodeBlock(d.Text)
	case template.UnorderedList, template.OrderedList:
		return strings.Join(w.list(d, ""), "\n")
	case template.Table:
		var rows [][]string
		for _, row := range d.Children {
			var cells []string
			for _, c := range row.Children {
				cells = append(cells, strings.ReplaceAll(plainInline(c.Children), "\n", " "))
			}
			rows = append(rows, cells)
		}
		if len(rows) == 0 {
			return ""
		}
		rows = append(rows[:1], append([][]string{dashes(rows)}, rows[1:]...)...)
		return slackCodeBlock(strings.Join(alignRows(rows), "\n"))
	case template.Attachment:
		// An attachment inside one: Slack cannot nest them.
		a := slackAttachment(d)
		parts := []string{}
		if a.Title != "" {
			parts = append(parts, "*"+a.Title+"*")
		}
		if a.Text != "" {
			parts = append(parts, a.Text)
		}
		return strings.Join(parts, "\n")
	}
	return ""
}

func (w *slackWriter) list(d template.Directive, indent string) []string {
	var out []string
	for i, item := range d.Children {
		marker := "• "
		if d.Kind == template.OrderedList {
			marker = strconv.Itoa(i+1) + ". "
		}
		var inline, nested []template.Directive
		for _, c := range item.Children {
			if c.Kind == template.UnorderedList || c.Kind == template.OrderedList {
				nested = append(nested, c)
			} else {
				inline = append(inline, c)
			}
		}
		hang := indent + "    "
		for j, line := range strings.Split(w.inline(inline), "\n") {
			if j == 0 {
				out = append(out, indent+marker+line)
			} else {
				out = append(out, hang+line)
			}
		}
		for _, n := range nested {
			out = append(out, w.list(n, hang)...)
		}
	}
	return out
}

func (w *slackWriter) inline(ds []template.Directive) string {
	var b strings.Builder
	for _, d := range ds {
		switch d.Kind {
		case template.Text:
			b.WriteString(slackData(d.Text))
		case template.Code:
			if code := slackCode(d.Text); code != "" {
				b.WriteString("`" + code + "`")
			}
		case template.Bold:
			if w.bold {
				b.WriteString(w.inline(d.Children))
				continue
			}
			w.bold = true
			b.WriteString(w.styled("*", w.inline(d.Children), false))
			w.bold = false
		case template.Italics:
			if w.italics {
				b.WriteString(w.inline(d.Children))
				continue
			}
			w.italics = true
			b.WriteString(w.styled("_", w.inline(d.Children), false))
			w.italics = false
		case template.Link:
			text := slackEntities(strings.ReplaceAll(plainInline(d.Children), "\n", " "))
			target, ok := linkable(d.URL)
			switch {
			case ok && text != "":
				b.WriteString("<" + slackURL(target) + "|" + strings.ReplaceAll(text, "|", "¦") + ">")
			case ok:
				b.WriteString("<" + slackURL(target) + ">")
			case d.URL != "" && text != "":
				b.WriteString(slackData(plainInline(d.Children) + " (" + d.URL + ")"))
			default:
				b.WriteString(slackData(plainInline(d.Children) + d.URL))
			}
		case template.Newline:
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// styled wraps text in a delimiter, with the delimiters against the text:
// Slack does not style "* x *". Each line is styled on its own, as Slack
// styles within a line. escaped says text still needs escaping.
func (w *slackWriter) styled(delim, text string, escape bool) string {
	if escape {
		text = slackData(text)
	}
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		core := strings.TrimSpace(line)
		if core == "" {
			continue
		}
		lead := line[:strings.Index(line, core)]
		trail := line[len(lead)+len(core):]
		lines[i] = lead + delim + core + delim + trail
	}
	return strings.Join(lines, "\n")
}

var slackEntityReplacer = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// slackEntities escapes what Slack reads as entities and links.
func slackEntities(s string) string { return slackEntityReplacer.Replace(s) }

// slackData escapes a data text for mrkdwn: entities, formatting
// characters where they could open or close a style, and a > that starts
// a line (a quote).
func slackData(s string) string {
	s = clean(s)
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		switch c {
		case '*', '_', '~', '`':
			prevEdge := i == 0 || isSlackBoundary(r[i-1])
			nextEdge := i == len(r)-1 || isSlackBoundary(r[i+1])
			if prevEdge && !nextEdge {
				b.WriteString(zwsp + string(c)) // could open
				continue
			}
			if nextEdge && !prevEdge {
				b.WriteString(string(c) + zwsp) // could close
				continue
			}
			b.WriteRune(c)
		case '>':
			if i == 0 || r[i-1] == '\n' {
				b.WriteString(zwsp)
			}
			b.WriteString("&gt;")
		case '<':
			b.WriteString("&lt;")
		case '&':
			b.WriteString("&amp;")
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// isSlackBoundary: white space and punctuation, around which Slack's
// formatting characters take effect.
func isSlackBoundary(r rune) bool {
	return r == ' ' || r == '\n' || r == '\t' || strings.ContainsRune(".,;:!?()[]{}\"'*_~`<>/\\-", r)
}

// slackCode is an inline code span's text: entities escaped, and a
// backtick, which would end the span, shown as a full-width one.
func slackCode(s string) string {
	return strings.ReplaceAll(slackEntities(clean(strings.ReplaceAll(s, "\n", " "))), "`", "｀")
}

// slackCodeBlock fences text; a run of three backticks inside is broken by
// zero-width spaces so it cannot end the block early.
func slackCodeBlock(text string) string {
	text = strings.Trim(clean(text), "\n")
	if strings.TrimSpace(text) == "" {
		return ""
	}
	text = strings.ReplaceAll(slackEntities(text), "```", "`"+zwsp+"`"+zwsp+"`")
	return "```\n" + text + "\n```"
}

// slackURL writes a link target; |, < and > would end it.
func slackURL(u string) string {
	return strings.NewReplacer("|", "%7C", "<", "%3C", ">", "%3E").Replace(u)
}
