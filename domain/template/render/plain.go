package render

import (
	"strconv"
	"strings"

	"github.com/logbookhq/logbook/domain/template"
)

// IRC formatting codes.
const (
	ircBold    = "\x02"
	ircItalics = "\x1d"
)

// Text renders directives as plain text: blocks apart by a blank line,
// lists with bullets, tables aligned in columns under a rule, attachments
// as a title over an indented body. Control characters in the data are
// removed (a tab becomes spaces).
func Text(doc template.Document) string {
	return strings.Join(plainStyle{}.blocks(doc), "\n")
}

// IRC renders directives as IRC lines: Text's layout, with bold and
// italics as IRC's codes (closed at the end of every line, since each line
// is a message of its own), table headers and attachment titles in bold,
// and every control character of the data removed, so a value cannot
// colour, format or CTCP.
func IRC(doc template.Document) string {
	lines := plainStyle{irc: true}.blocks(doc)
	return strings.Join(balanceIRC(lines), "\n")
}

type plainStyle struct{ irc bool }

func (s plainStyle) bold(x string) string {
	if s.irc && x != "" {
		return ircBold + x + ircBold
	}
	return x
}

func (s plainStyle) italics(x string) string {
	if s.irc && x != "" {
		return ircItalics + x + ircItalics
	}
	return x
}

// clean removes control characters from data; line breaks stay (the
// layout decides what they mean) and a tab becomes four spaces.
func clean(text string) string {
	if !strings.ContainsFunc(text, isControl) {
		return text
	}
	var b strings.Builder
	for _, r := range text {
		switch {
		case r == '\n':
			b.WriteRune(r)
		case r == '\t':
			b.WriteString("    ")
		case isControl(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isControl: C0, DEL and C1 controls, IRC's formatting codes among them.
func isControl(r rune) bool { return r < 0x20 || r >= 0x7f && r < 0xa0 }

func (s plainStyle) blocks(doc []template.Directive) []string {
	var out []string
	for _, d := range doc {
		lines := s.block(d)
		if len(lines) == 0 {
			continue
		}
		if len(out) > 0 {
			out = append(out, "")
		}
		out = append(out, lines...)
	}
	return out
}

func (s plainStyle) block(d template.Directive) []string {
	switch d.Kind {
	case template.Paragraph:
		return trimBlank(strings.Split(s.inline(d.Children), "\n"))
	case template.Header:
		return []string{s.bold(strings.ReplaceAll(s.inline(d.Children), "\n", " "))}
	case template.CodeBlock:
		return trimBlank(strings.Split(clean(d.Text), "\n"))
	case template.UnorderedList, template.OrderedList:
		return s.list(d, "")
	case template.Table:
		return s.table(d)
	case template.Attachment:
		return s.attachment(d)
	}
	return nil
}

func trimBlank(lines []string) []string {
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func (s plainStyle) list(d template.Directive, indent string) []string {
	var out []string
	for i, item := range d.Children {
		marker := "• "
		if d.Kind == template.OrderedList {
			marker = strconv.Itoa(i+1) + ". "
		}
		var inline []template.Directive
		var nested []template.Directive
		for _, c := range item.Children {
			if c.Kind == template.UnorderedList || c.Kind == template.OrderedList {
				nested = append(nested, c)
			} else {
				inline = append(inline, c)
			}
		}
		hang := indent + strings.Repeat(" ", displayWidth(marker))
		for j, line := range strings.Split(s.inline(inline), "\n") {
			if j == 0 {
				out = append(out, indent+marker+line)
			} else {
				out = append(out, hang+line)
			}
		}
		for _, n := range nested {
			out = append(out, s.list(n, hang)...)
		}
	}
	return out
}

func (s plainStyle) table(d template.Directive) []string {
	var rows [][]string
	for _, row := range d.Children {
		var cells []string
		for _, c := range row.Children {
			cells = append(cells, strings.ReplaceAll(plainInline(c.Children), "\n", " "))
		}
		rows = append(rows, cells)
	}
	if len(rows) == 0 {
		return nil
	}
	if !s.irc {
		rows = append(rows[:1], append([][]string{dashes(rows)}, rows[1:]...)...)
	}
	lines := alignRows(rows)
	if s.irc {
		lines[0] = s.bold(lines[0])
	}
	return lines
}

// attachment is a title over an indented body: pretext, fields as
// "Title: value", the body's blocks, then images and the footer.
func (s plainStyle) attachment(d template.Directive) []string {
	a := d.Attachment
	if a == nil {
		a = &template.AttachmentInfo{}
	}
	var out, body []string
	if a.Pretext != "" {
		out = append(out, strings.Split(clean(a.Pretext), "\n")...)
	}
	if title := strings.ReplaceAll(clean(a.Title), "\n", " "); title != "" {
		if a.TitleURL != "" {
			title += " (" + clean(a.TitleURL) + ")"
		}
		out = append(out, s.bold(title))
	}
	if a.Author != "" {
		body = append(body, clean(a.Author))
	}
	for _, f := range a.Fields {
		body = append(body, strings.Split(clean(f.Title)+": "+clean(f.Value), "\n")...)
	}
	body = append(body, s.blocks(d.Children)...)
	for _, url := range []string{a.ImageURL, a.ThumbURL} {
		if url != "" {
			body = append(body, clean(url))
		}
	}
	if a.Footer != "" {
		body = append(body, clean(a.Footer))
	}
	for _, line := range body {
		if line == "" {
			out = append(out, "")
			continue
		}
		out = append(out, "  "+line)
	}
	return out
}

func (s plainStyle) inline(ds []template.Directive) string {
	var b strings.Builder
	for _, d := range ds {
		switch d.Kind {
		case template.Text, template.Code:
			b.WriteString(clean(d.Text))
		case template.Bold:
			b.WriteString(s.bold(s.inline(d.Children)))
		case template.Italics:
			b.WriteString(s.italics(s.inline(d.Children)))
		case template.Link:
			text := s.inline(d.Children)
			switch url := clean(d.URL); {
			case text == "":
				b.WriteString(url)
			case url == "" || url == text:
				b.WriteString(text)
			default:
				b.WriteString(text + " (" + url + ")")
			}
		case template.Newline:
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func plainInline(ds []template.Directive) string { return plainStyle{}.inline(ds) }

// balanceIRC closes bold and italics left open at the end of a line and
// opens them again on the next, since each line is a message of its own.
func balanceIRC(lines []string) []string {
	bold, italics := false, false
	for i, line := range lines {
		prefix := ""
		if bold {
			prefix += ircBold
		}
		if italics {
			prefix += ircItalics
		}
		if strings.TrimSpace(line) == "" {
			continue // a blank line is skipped by IRC; state carries on
		}
		bold = bold != (strings.Count(line, ircBold)%2 == 1)
		italics = italics != (strings.Count(line, ircItalics)%2 == 1)
		suffix := ""
		if italics {
			suffix += ircItalics
		}
		if bold {
			suffix += ircBold
		}
		lines[i] = prefix + line + suffix
	}
	return lines
}
