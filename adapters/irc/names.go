package irc

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/pipeline"
)

// How IRC names map to Logbook's rooms and handles.
//
// A room is a channel without its one leading '#', the way a redirect
// names it: "#ops" is room "ops", "##ops" is room "#ops", "&local" stays
// "&local". A direct message's room is the sender's nick behind '@'
// ("@alice"): IRC has no id for a conversation, and a bare "alice" would
// read as channel "#alice", so a reply to a private message could land in a
// channel of the same name.
//
// A handle is the nick folded to lower case with RFC 1459's case mapping
// ("Alice" and "alice" are one nick on the server, so they are one handle).

// roomOf is the room name of a channel.
func roomOf(channel string) string {
	if strings.HasPrefix(channel, "#") {
		return channel[1:]
	}
	return channel
}

// channelOf is the channel a room name stands for: the inverse of roomOf.
func channelOf(room string) string {
	if room != "" && strings.ContainsRune("&!+", rune(room[0])) {
		return room
	}
	return "#" + room
}

// directRoom is the room of a private conversation with nick.
func directRoom(nick string) string { return "@" + nick }

// target is where a destination's lines go on IRC: a channel or a nick.
type target struct {
	name    string // as sent in PRIVMSG: "#ops", "alice"
	channel bool
}

// targetOf resolves a destination, or says why it cannot be one.
func targetOf(to dispatch.Destination) (target, error) {
	name := to.Name
	kind := to.Kind
	if kind == pipeline.DestinationURL {
		// chat://#ops, chat://@alice, chat://ops
		name = strings.TrimPrefix(name, "chat://")
		kind = pipeline.DestinationRoom
		if strings.HasPrefix(name, "#") {
			name = name[1:]
		}
	}
	switch kind {
	case pipeline.DestinationUser:
		name = strings.TrimPrefix(name, "@")
	case pipeline.DestinationRoom:
		if nick, ok := strings.CutPrefix(name, "@"); ok {
			name, kind = nick, pipeline.DestinationUser
		} else {
			name = channelOf(name)
		}
	default:
		return target{}, fmt.Errorf("irc: cannot post to a %q destination", to.Kind)
	}
	if kind == pipeline.DestinationUser {
		if !validNick(name) {
			return target{}, fmt.Errorf("irc: %q is not a valid nick: %w", name, chat.ErrUnknownUser)
		}
		return target{name: name}, nil
	}
	if !validChannel(name) {
		return target{}, fmt.Errorf("irc: %q is not a valid channel name: %w", name, chat.ErrUnknownRoom)
	}
	return target{name: name, channel: true}, nil
}

// validNick follows RFC 2812 section 2.3.1, without a length limit (servers
// set their own): a letter or special first, then letters, digits,
// specials and '-'.
func validNick(nick string) bool {
	if nick == "" || len(nick) > 64 {
		return false
	}
	for i := 0; i < len(nick); i++ {
		c := nick[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', strings.IndexByte("[]\\`_^{|}", c) >= 0:
		case i > 0 && (c >= '0' && c <= '9' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// validChannel accepts '#' and '&' channels (and '+', '!' where servers
// have them) of at most 200 bytes with no space, comma, BEL, CR, LF or NUL
// (RFC 2812 section 1.3).
func validChannel(name string) bool {
	if len(name) < 2 || len(name) > 200 || !strings.ContainsRune("#&+!", rune(name[0])) {
		return false
	}
	return !strings.ContainsAny(name, " ,\a\r\n\x00:") && utf8.ValidString(name)
}

// fold lower-cases an IRC name with RFC 1459's case mapping, where []\~
// are the upper case of {}|^.
func fold(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		case r == '[':
			return '{'
		case r == ']':
			return '}'
		case r == '\\':
			return '|'
		case r == '~':
			return '^'
		}
		return r
	}, name)
}

// sanitize makes one line of text safe to send: valid UTF-8, tabs as
// spaces, and no control characters at all, so output can never end a
// PRIVMSG early (CR, LF, NUL), start a CTCP request (\x01), or smuggle IRC
// formatting or terminal escapes. A formatted line (rendered from a
// template, whose renderer removed every control character of the data)
// keeps IRC's bold and italics codes, which the renderer wrote.
func sanitize(line string, formatted bool) string {
	line = strings.ToValidUTF8(line, "\uFFFD")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return ' '
		case formatted && (r == '\x02' || r == '\x1d'):
			return r
		case unicode.IsControl(r), r == '\u2028', r == '\u2029':
			return -1
		}
		return r
	}, line)
}

// linesOf turns a part's text into the PRIVMSG bodies that carry it: one per
// line of text, each line cut to fit maxBytes, at a space where it can be
// (the space is dropped, as a word wrap would). Blank lines are skipped and
// trailing spaces trimmed: IRC has no empty message, and servers strip
// trailing spaces anyway.
func linesOf(text string, maxBytes int, formatted bool) []string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	var out []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(sanitize(line, formatted), " ")
		if strings.Trim(line, "\x02\x1d ") == "" {
			continue
		}
		for _, piece := range chat.Split(line, maxBytes) {
			if piece = strings.TrimRight(piece, " "); piece != "" {
				out = append(out, piece)
			}
		}
	}
	return out
}

// lineBudget is how many bytes of text fit in one PRIVMSG that the server
// relays as ":nick!userhost PRIVMSG target :text\r\n" within IRC's 512.
func lineBudget(nickLen, userHostLen, targetLen int) int {
	const framing = len(":") + len("!") + len(" PRIVMSG ") + len(" :") + len("\r\n")
	return 512 - framing - nickLen - userHostLen - targetLen
}
