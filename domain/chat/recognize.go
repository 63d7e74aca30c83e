package chat

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultPrefix starts a command typed in a room: "!echo hi".
const DefaultPrefix = "!"

// Addressing says how a provider recognises a message addressed to the bot.
type Addressing struct {
	Prefix string // "!" when empty
	// Mentions are the forms that address the bot at the start of a
	// message, compared without case: "logbook", "<@U0BOT>", "@logbook".
	// Each may be followed by ':' or ',' and must be followed by space.
	Mentions []string
}

// Recognize returns the command text of a message addressed to the bot and
// true, or false for ordinary chatter. In a direct message everything is a
// command, with or without the prefix. A lone prefix, or "!" followed by
// space, is chatter, so "! that was close" does not run anything. "!!"
// stays "!!" (re-run the previous request); any other prefixed text loses
// its prefix.
func (a Addressing) Recognize(text string, direct bool) (string, bool) {
	prefix := a.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	text = strings.TrimSpace(text)
	if rest, ok := a.stripMention(text); ok {
		text = strings.TrimSpace(rest)
		if strings.HasPrefix(text, prefix) && text != prefix+prefix {
			text = strings.TrimSpace(strings.TrimPrefix(text, prefix))
		}
		return text, text != ""
	}
	if strings.HasPrefix(text, prefix) {
		if text == prefix+prefix {
			return text, true
		}
		rest := strings.TrimPrefix(text, prefix)
		if r, _ := utf8.DecodeRuneInString(rest); rest == "" || unicode.IsSpace(r) {
			return "", false
		}
		return rest, true
	}
	if direct {
		return text, text != ""
	}
	return "", false
}

// stripMention removes a leading mention of the bot ("logbook: ",
// "<@U0BOT> ") and reports whether there was one.
func (a Addressing) stripMention(text string) (string, bool) {
	for _, m := range a.Mentions {
		if m == "" || len(text) < len(m) || !strings.EqualFold(text[:len(m)], m) {
			continue
		}
		rest := text[len(m):]
		rest = strings.TrimPrefix(strings.TrimPrefix(rest, ":"), ",")
		if r, _ := utf8.DecodeRuneInString(rest); rest == "" || unicode.IsSpace(r) {
			return rest, true
		}
	}
	return "", false
}
