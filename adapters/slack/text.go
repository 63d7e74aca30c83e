package slack

import "strings"

// PlainText turns what Slack sends for a typed message back into what the
// person typed: its entities (&amp; &lt; &gt;) and its links, which Slack
// writes in angle brackets: <#C024BE7LR|ops> is #ops, <@U024BE7LH> is
// @U024BE7LH (the handle, which a redirect to a person names),
// <https://example.com|example.com> is the URL, <mailto:a@b.c|a@b.c> the
// address, <!here> is @here. A '<' without its '>' is left as it is.
func PlainText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for {
		open := strings.IndexByte(s, '<')
		if open < 0 {
			break
		}
		end := strings.IndexByte(s[open:], '>')
		if end < 0 {
			break
		}
		b.WriteString(unescape(s[:open]))
		b.WriteString(linkText(s[open+1 : open+end]))
		s = s[open+end+1:]
	}
	b.WriteString(unescape(s))
	return b.String()
}

// linkText is what one <…> stands for.
func linkText(link string) string {
	target, label, hasLabel := strings.Cut(link, "|")
	switch {
	case strings.HasPrefix(target, "#"):
		if hasLabel && label != "" {
			return "#" + unescape(label)
		}
		return target
	case strings.HasPrefix(target, "@"):
		return target
	case strings.HasPrefix(target, "!"):
		if hasLabel && label != "" {
			return unescape(label)
		}
		name, _, _ := strings.Cut(target[1:], "^")
		return "@" + name
	case strings.HasPrefix(target, "mailto:"):
		return unescape(strings.TrimPrefix(target, "mailto:"))
	}
	return unescape(target)
}

var unescaper = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

func unescape(s string) string { return unescaper.Replace(s) }
