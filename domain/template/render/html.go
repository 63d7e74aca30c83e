package render

import (
	"html"
	"math"
	"strconv"
	"strings"

	"github.com/logbookhq/logbook/domain/template"
)

// HTML renders directives as HTML for the web UI: <p> with <br>, <strong>,
// <em>, <code>, <pre>, <ul>/<ol>, <table> with <thead>, <a> for http,
// https and mailto links only (rel="noopener noreferrer nofollow"), and an
// attachment as a <div class="attachment color-NAME">. Every text is
// escaped, and no attribute holds data but an escaped href, a data-color
// of #hex digits and a class name from a fixed list: the page's CSP allows
// no inline style, so a colour is one of a small palette.
func HTML(doc template.Document) string {
	var b strings.Builder
	for _, d := range doc {
		htmlBlock(&b, d)
	}
	return b.String()
}

func htmlBlock(b *strings.Builder, d template.Directive) {
	switch d.Kind {
	case template.Paragraph:
		b.WriteString("<p>")
		htmlInline(b, d.Children)
		b.WriteString("</p>\n")
	case template.Header:
		b.WriteString("<h3>")
		htmlInline(b, d.Children)
		b.WriteString("</h3>\n")
	case template.CodeBlock:
		b.WriteString("<pre><code>" + html.EscapeString(strings.Trim(clean(d.Text), "\n")) + "</code></pre>\n")
	case template.UnorderedList, template.OrderedList:
		tag := "ul"
		if d.Kind == template.OrderedList {
			tag = "ol"
		}
		b.WriteString("<" + tag + ">\n")
		for _, item := range d.Children {
			b.WriteString("<li>")
			for _, c := range item.Children {
				if c.Kind == template.UnorderedList || c.Kind == template.OrderedList {
					htmlBlock(b, c)
				} else {
					htmlInline(b, []template.Directive{c})
				}
			}
			b.WriteString("</li>\n")
		}
		b.WriteString("</" + tag + ">\n")
	case template.Table:
		b.WriteString("<table>\n")
		body := false
		for _, row := range d.Children {
			cell := "td"
			if row.Kind == template.TableHeader {
				cell = "th"
				b.WriteString("<thead>")
			} else if !body {
				body = true
				b.WriteString("<tbody>\n")
			}
			b.WriteString("<tr>")
			for _, c := range row.Children {
				b.WriteString("<" + cell + ">")
				htmlInline(b, c.Children)
				b.WriteString("</" + cell + ">")
			}
			b.WriteString("</tr>")
			if row.Kind == template.TableHeader {
				b.WriteString("</thead>")
			}
			b.WriteString("\n")
		}
		if body {
			b.WriteString("</tbody>\n")
		}
		b.WriteString("</table>\n")
	case template.Attachment:
		htmlAttachment(b, d)
	}
}

func htmlAttachment(b *strings.Builder, d template.Directive) {
	a := d.Attachment
	if a == nil {
		a = &template.AttachmentInfo{}
	}
	hex := template.ColorHex(a.Color)
	b.WriteString(`<div class="attachment color-` + colorClass(hex) + `"`)
	if hex != "" {
		b.WriteString(` data-color="` + hex + `"`)
	}
	b.WriteString(">\n")
	if a.Pretext != "" {
		b.WriteString(`<div class="attachment-pretext">` + escapeLines(a.Pretext) + "</div>\n")
	}
	if a.Author != "" {
		b.WriteString(`<div class="attachment-author">` + htmlLink(a.AuthorLink, html.EscapeString(oneLine(a.Author))) + "</div>\n")
	}
	if a.Title != "" {
		b.WriteString(`<div class="attachment-title">` + htmlLink(a.TitleURL, html.EscapeString(oneLine(a.Title))) + "</div>\n")
	}
	if len(a.Fields) > 0 {
		b.WriteString(`<dl class="attachment-fields">`)
		for _, f := range a.Fields {
			class := ""
			if f.Short {
				class = ` class="short"`
			}
			b.WriteString("<dt" + class + ">" + html.EscapeString(oneLine(f.Title)) + "</dt><dd" + class + ">" + escapeLines(f.Value) + "</dd>")
		}
		b.WriteString("</dl>\n")
	}
	for _, c := range d.Children {
		htmlBlock(b, c)
	}
	for _, u := range []string{a.ImageURL, a.ThumbURL} {
		if u != "" {
			// The page loads nothing from elsewhere: an image is a link.
			b.WriteString(`<div class="attachment-image">` + htmlLink(u, html.EscapeString(oneLine(u))) + "</div>\n")
		}
	}
	if a.Footer != "" {
		b.WriteString(`<div class="attachment-footer">` + html.EscapeString(oneLine(a.Footer)) + "</div>\n")
	}
	b.WriteString("</div>\n")
}

func escapeLines(s string) string {
	return strings.ReplaceAll(html.EscapeString(strings.Trim(clean(s), "\n")), "\n", "<br>")
}

// htmlLink links escaped text to u when u may be linked, else shows the
// text (and u) as text.
func htmlLink(u, escapedText string) string {
	target, ok := linkable(u)
	switch {
	case ok:
		if escapedText == "" {
			escapedText = html.EscapeString(target)
		}
		return `<a href="` + html.EscapeString(target) + `" rel="noopener noreferrer nofollow">` + escapedText + "</a>"
	case u != "" && escapedText == "":
		return html.EscapeString(clean(u))
	case u != "":
		return escapedText + " (" + html.EscapeString(clean(u)) + ")"
	}
	return escapedText
}

func htmlInline(b *strings.Builder, ds []template.Directive) {
	for _, d := range ds {
		switch d.Kind {
		case template.Text:
			b.WriteString(html.EscapeString(clean(d.Text)))
		case template.Code:
			b.WriteString("<code>" + html.EscapeString(clean(d.Text)) + "</code>")
		case template.Bold:
			b.WriteString("<strong>")
			htmlInline(b, d.Children)
			b.WriteString("</strong>")
		case template.Italics:
			b.WriteString("<em>")
			htmlInline(b, d.Children)
			b.WriteString("</em>")
		case template.Link:
			var text strings.Builder
			htmlInline(&text, d.Children)
			b.WriteString(htmlLink(d.URL, text.String()))
		case template.Newline:
			b.WriteString("<br>")
		}
	}
}

// colorClass is the palette colour nearest #rrggbb by hue: grey for the
// unsaturated, and "none" when there is no colour.
func colorClass(hex string) string {
	if len(hex) != 7 {
		return "none"
	}
	rgb, err := strconv.ParseUint(hex[1:], 16, 32)
	if err != nil {
		return "none"
	}
	r, g, bl := float64(rgb>>16&0xff)/255, float64(rgb>>8&0xff)/255, float64(rgb&0xff)/255
	hi, lo := math.Max(r, math.Max(g, bl)), math.Min(r, math.Min(g, bl))
	if hi-lo < 0.15 {
		return "grey"
	}
	var hue float64
	switch hi {
	case r:
		hue = math.Mod((g-bl)/(hi-lo), 6)
	case g:
		hue = (bl-r)/(hi-lo) + 2
	default:
		hue = (r-g)/(hi-lo) + 4
	}
	hue *= 60
	if hue < 0 {
		hue += 360
	}
	switch {
	case hue < 15 || hue >= 340:
		return "red"
	case hue < 45:
		return "orange"
	case hue < 70:
		return "yellow"
	case hue < 160:
		return "green"
	case hue < 200:
		return "teal"
	case hue < 255:
		return "blue"
	case hue < 290:
		return "purple"
	}
	return "pink"
}
