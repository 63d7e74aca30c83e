package irc

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ergochat/irc-go/ircevent"
	"github.com/ergochat/irc-go/ircmsg"

	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/pipeline"
)

func TestConfigFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	if _, ok, err := ConfigFromEnv(env(nil)); ok || err != nil {
		t.Fatalf("no LOGBOOK_IRC_SERVER: ok=%v err=%v; want the provider off, no error", ok, err)
	}
	cfg, ok, err := ConfigFromEnv(env(map[string]string{
		EnvServer: "irc.example.org:6697", EnvNick: "opsbot", EnvChannels: " #ops, #dev ,,&local",
	}))
	if err != nil || !ok {
		t.Fatalf("a good configuration: ok=%v err=%v", ok, err)
	}
	if !cfg.TLS || cfg.Nick != "opsbot" || strings.Join(cfg.Channels, "|") != "#ops|#dev|&local" {
		t.Fatalf("got %+v; want TLS on port 6697, nick opsbot, three channels", cfg)
	}
	cfg, _, err = ConfigFromEnv(env(map[string]string{EnvServer: "irc.example.org:6697", EnvChannels: "#ops", EnvTLS: "0"}))
	if err != nil || cfg.TLS {
		t.Fatalf("LOGBOOK_IRC_TLS=0 on 6697: TLS=%v err=%v; want plain", cfg.TLS, err)
	}

	_, _, err = ConfigFromEnv(env(map[string]string{
		EnvServer: "irc.example.org", EnvNick: "9bot", EnvChannels: "ops,#a b", EnvTLS: "maybe",
		EnvSASLUser: "bot", EnvRate: "-1", EnvBurst: "x", EnvMaxLines: "0",
	}))
	if err == nil {
		t.Fatal("a bad configuration was accepted")
	}
	for _, want := range []string{EnvServer, EnvNick, `"ops"`, `"#a b"`, EnvTLS, EnvSASLPass, EnvRate, EnvBurst, EnvMaxLines} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s:\n%v", want, err)
		}
	}
	if _, _, err := ConfigFromEnv(env(map[string]string{EnvServer: "h:6667"})); err == nil || !strings.Contains(err.Error(), EnvChannels) {
		t.Fatalf("no channels: %v; want an error naming %s", err, EnvChannels)
	}
}

func TestTargets(t *testing.T) {
	cases := []struct {
		kind    pipeline.DestinationKind
		name    string
		want    string
		channel bool
		err     error
	}{
		{pipeline.DestinationRoom, "ops", "#ops", true, nil},      // > #ops, and replies to #ops
		{pipeline.DestinationRoom, "#ops", "##ops", true, nil},    // > ##ops
		{pipeline.DestinationRoom, "&local", "&local", true, nil}, // > &local
		{pipeline.DestinationRoom, "@alice", "alice", false, nil}, // replies to a private message
		{pipeline.DestinationUser, "alice", "alice", false, nil},  // > @alice
		{pipeline.DestinationURL, "chat://#ops", "#ops", true, nil},
		{pipeline.DestinationURL, "chat://@alice", "alice", false, nil},
		{pipeline.DestinationRoom, "ops\r\nQUIT", "", true, chat.ErrUnknownRoom},
		{pipeline.DestinationRoom, "a,b", "", true, chat.ErrUnknownRoom},
		{pipeline.DestinationUser, "al ice", "", false, chat.ErrUnknownUser},
		{pipeline.DestinationUser, "9lives", "", false, chat.ErrUnknownUser},
	}
	for _, c := range cases {
		got, err := targetOf(dispatch.Destination{Kind: c.kind, Name: c.name})
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("targetOf(%s %q) = %v; want %v", c.kind, c.name, err, c.err)
			}
			continue
		}
		if err != nil || got.name != c.want || got.channel != c.channel {
			t.Errorf("targetOf(%s %q) = %+v, %v; want %q (channel %v)", c.kind, c.name, got, err, c.want, c.channel)
		}
	}
	for _, ch := range []string{"#ops", "##ops", "&local"} {
		if got := channelOf(roomOf(ch)); got != ch {
			t.Errorf("channelOf(roomOf(%q)) = %q", ch, got)
		}
	}
}

func TestFoldUsesRFC1459CaseMapping(t *testing.T) {
	if fold("Alice[Ops]\\~") != "alice{ops}|^" {
		t.Fatalf("fold = %q", fold("Alice[Ops]\\~"))
	}
}

func TestLinesOf(t *testing.T) {
	cases := []struct {
		text string
		max  int
		want []string
	}{
		{"one\ntwo\r\nthree\rfour", 100, []string{"one", "two", "three", "four"}},
		{"a\n\n  \nb\n", 100, []string{"a", "b"}},
		{"aaaa bbbb cccc", 10, []string{"aaaa bbbb", "cccc"}},
		{"tab\there\x1b[1m\x00\x01", 100, []string{"tab here[1m"}},
		{"", 100, nil},
	}
	for _, c := range cases {
		if got := linesOf(c.text, c.max, false); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("linesOf(%q, %d) = %q; want %q", c.text, c.max, got, c.want)
		}
	}
}

func TestAFormattedPartKeepsOnlyBoldAndItalics(t *testing.T) {
	// Given lines rendered from a template: IRC's bold and italics codes
	// the renderer wrote, and (were any left) other control characters
	text := "\x02Name\x02  \x1dstate\x1d\x0304red\x01\n\x02\x02\n  body"
	// When they are cut into PRIVMSG bodies
	got := linesOf(text, 100, true)
	// Then bold and italics stay, everything else goes, and a line of
	// nothing but codes is skipped
	want := []string{"\x02Name\x02  \x1dstate\x1d04red", "  body"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("linesOf = %q; want %q", got, want)
	}
}

func TestLineBudgetMatchesTheLibrary(t *testing.T) {
	// ircevent's MaxMessageLength counts the same framing with its
	// default user@host; the two must agree or lines could overflow.
	c := &ircevent.Connection{}
	if got, want := lineBudget(0, defaultUserHostLen, len("#ops")), c.MaxMessageLength("#ops"); got != want {
		t.Fatalf("lineBudget = %d; ircevent says %d", got, want)
	}
	// A full line at the budget is exactly 512 bytes on the wire.
	nick, userHost, target := "logbook", "~logbook@localhost", "#ops"
	text := strings.Repeat("x", lineBudget(len(nick), len(userHost), len(target)))
	line := ":" + nick + "!" + userHost + " PRIVMSG " + target + " :" + text + "\r\n"
	if len(line) != 512 {
		t.Fatalf("a line at the budget is %d bytes on the wire; want 512", len(line))
	}
}

func TestBackoffGrowsWithJitterAndStaysBounded(t *testing.T) {
	min, max := 100*time.Millisecond, 2*time.Second
	p := &Provider{cfg: Config{MinBackoff: min, MaxBackoff: max}}
	for range 50 {
		b := p.newBackOff()
		for n := 1; n <= 10; n++ {
			ceiling := min << (n - 1)
			if ceiling > max {
				ceiling = max
			}
			if d := b.NextBackOff(); d < ceiling/2 || d > ceiling*3/2 {
				t.Fatalf("wait before attempt %d = %v; want between %v and %v", n, d, ceiling/2, ceiling*3/2)
			}
		}
	}
}

// testSession is a session whose connection never connected: its nick is
// empty, which is all messageOf reads from it.
func testSession() *session {
	return &session{id: "conn", conn: &ircevent.Connection{}, done: make(chan struct{}), whois: map[string]chan whois{}}
}

func testProvider(t testing.TB) *Provider {
	p, err := New(Config{Server: "127.0.0.1:6667", Channels: []string{"#ops"}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMessageOf(t *testing.T) {
	p, s := testProvider(t), testSession()
	cases := []struct {
		line string
		ok   bool
		want chat.Message
	}{
		{":Alice!a@h PRIVMSG #OPS :!echo hi", true, chat.Message{Room: "ops", User: "alice", Text: "echo hi"}},
		{":alice!a@h PRIVMSG logbook :uptime", true, chat.Message{Room: "@alice", User: "alice", Text: "uptime", Direct: true}},
		{"@msgid=abc123 :bob!b@h PRIVMSG #dev :!!", true, chat.Message{MessageID: "msgid:abc123", Room: "dev", User: "bob", Text: "!!"}},
		{":alice!a@h PRIVMSG #ops :hello all", false, chat.Message{}},
		{":alice!a@h PRIVMSG #ops :\x01ACTION !echo\x01", false, chat.Message{}},
		{":irc.example.org PRIVMSG #ops :!echo from a server", false, chat.Message{}},
		{":alice!a@h PRIVMSG #ops", false, chat.Message{}},
		{":alice!a@h PRIVMSG :!echo", false, chat.Message{}},
	}
	for _, c := range cases {
		msg, err := ircmsg.ParseLine(c.line)
		if err != nil {
			t.Fatalf("%q: %v", c.line, err)
		}
		got, ok := p.messageOf(s, msg)
		if ok != c.ok {
			t.Errorf("%q: ok = %v; want %v (%+v)", c.line, ok, c.ok, got)
			continue
		}
		if !ok {
			continue
		}
		if c.want.MessageID == "" {
			if !strings.HasPrefix(got.MessageID, "conn-") {
				t.Errorf("%q: message id %q; want the connection's id and a sequence", c.line, got.MessageID)
			}
			c.want.MessageID = got.MessageID
		}
		c.want.Provider = "irc"
		if got != c.want {
			t.Errorf("%q:\n got %+v\nwant %+v", c.line, got, c.want)
		}
	}
}

// FuzzMessageOf feeds arbitrary server lines to the receiving side: it
// never panics, and what it accepts is a command from a valid nick with no
// control characters.
func FuzzMessageOf(f *testing.F) {
	for _, seed := range []string{
		":alice!a@h PRIVMSG #ops :!echo hi",
		":alice!a@h PRIVMSG logbook :echo hi",
		"@msgid=x;time=2026-01-01T00:00:00Z :bob!b@h PRIVMSG #ops :logbook: uptime",
		":a PRIVMSG # :!",
		":alice!a@h PRIVMSG #ops :\x02!echo\x0f \x0304red",
		"PRIVMSG",
	} {
		f.Add(seed)
	}
	p, s := testProvider(f), testSession()
	f.Fuzz(func(t *testing.T, line string) {
		msg, err := ircmsg.ParseLine(line)
		if err != nil {
			return
		}
		m, ok := p.messageOf(s, msg)
		if !ok {
			return
		}
		if m.Text == "" || m.MessageID == "" || m.Room == "" || m.Provider != "irc" {
			t.Fatalf("accepted %q as %+v: empty fields", line, m)
		}
		if !validNick(msg.Nick()) || m.User != fold(msg.Nick()) {
			t.Fatalf("accepted %q from %q as user %q", line, msg.Nick(), m.User)
		}
		if strings.IndexFunc(m.Text, unicode.IsControl) >= 0 || !utf8.ValidString(m.Text) {
			t.Fatalf("accepted %q with text %q: control characters or invalid UTF-8", line, m.Text)
		}
	})
}

// FuzzLinesOf: whatever the output, every line fits the budget, carries no
// control character, and the words of the text survive in order.
func FuzzLinesOf(f *testing.F) {
	f.Add("hello\nworld", 20)
	f.Add("a very long line with many words in it", 8)
	f.Add("ééééé\r\n\x00\x01\x1b[0m", 4)
	f.Add(strings.Repeat("x", 1000), 300)
	f.Fuzz(func(t *testing.T, text string, budget int) {
		if budget < 4 || budget > 512 {
			return
		}
		lines := linesOf(text, budget, false)
		for _, l := range lines {
			if len(l) > budget || l == "" {
				t.Fatalf("line %q of %d bytes; budget %d", l, len(l), budget)
			}
			if strings.IndexFunc(l, unicode.IsControl) >= 0 || !utf8.ValidString(l) {
				t.Fatalf("line %q has control characters or invalid UTF-8", l)
			}
			if _, err := (&ircmsg.Message{Command: "PRIVMSG", Params: []string{"#ops", l}}).LineBytesStrict(true, 512); err != nil {
				t.Fatalf("line %q cannot be sent: %v", l, err)
			}
		}
		strip := func(s string) string {
			return strings.Map(func(r rune) rune {
				if unicode.IsSpace(r) || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
					return -1
				}
				return r
			}, strings.ToValidUTF8(s, "\uFFFD"))
		}
		if got, want := strip(strings.Join(lines, "")), strip(text); got != want {
			t.Fatalf("text %q came out as %q", want, got)
		}
	})
}
