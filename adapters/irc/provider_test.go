package irc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unicode"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/irc/ircdtest"
	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/pipeline"
	"github.com/logbookhq/logbook/internal/testenv"
)

// bot is a provider running against a test server, with what its handler
// received.
type bot struct {
	*Provider
	messages chan chat.Message
	stop     func()
	err      chan error
}

// startBot runs a provider on srv, joined to #ops, fast (tests need not
// wait a second a line unless they test the throttle).
func startBot(t *testing.T, srv *ircdtest.Server, edit func(*Config)) *bot {
	t.Helper()
	return startBotWith(t, srv, edit, nil)
}

// startBotWith runs the bot with a handler that may refuse messages: fail
// returns the error the handler gives for a message (nil records it).
func startBotWith(t *testing.T, srv *ircdtest.Server, edit func(*Config), fail func(chat.Message) error) *bot {
	t.Helper()
	cfg := Config{
		Server: srv.Addr, Nick: "logbook", Channels: []string{"#ops"},
		LinesPerSecond: 200, Burst: 50,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		Timeout: 5 * time.Second,
		Logger:  zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel),
	}
	if edit != nil {
		edit(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &bot{Provider: p, messages: make(chan chat.Message, 100), err: make(chan error, 1)}
	go func() {
		b.err <- p.Run(ctx, func(_ context.Context, m chat.Message) error {
			if fail != nil {
				if err := fail(m); err != nil {
					return err
				}
			}
			b.messages <- m
			return nil
		})
	}()
	var once sync.Once
	b.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-b.err:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Run returned %v, want context.Canceled", err)
				}
			case <-time.After(5 * time.Second):
				t.Error("Run did not return within 5s of its context ending")
			}
		})
	}
	t.Cleanup(b.stop)
	return b
}

// waitJoined waits until the provider itself says it is in channel.
func (b *bot) waitJoined(t *testing.T, channel string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := b.LookupRoom(context.Background(), channel); err == nil && r.Joined {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the bot did not join %s within 10s", channel)
}

func (b *bot) next(t *testing.T) chat.Message {
	t.Helper()
	select {
	case m := <-b.messages:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message reached the handler within 5s")
		return chat.Message{}
	}
}

var ops = dispatch.Destination{Kind: pipeline.DestinationRoom, Name: "ops"}

// setup starts a server, the bot in #ops, and alice in #ops.
func setup(t *testing.T, opts ircdtest.Options, edit func(*Config)) (*ircdtest.Server, *bot, *ircdtest.Client) {
	t.Helper()
	srv := ircdtest.Start(t, opts)
	b := startBot(t, srv, edit)
	b.waitJoined(t, "#ops")
	alice := ircdtest.Dial(t, srv.Addr, "Alice")
	alice.Join("#ops")
	// The bot sees alice join, so it may message her.
	testenv.Eventually(t, "the bot sees alice", func() bool {
		return b.CanPost(dispatch.Destination{Kind: pipeline.DestinationUser, Name: "alice"})
	})
	return srv, b, alice
}

func TestIRCCommandsReachTheHandlerAndChatterDoesNot(t *testing.T) {
	t.Parallel()
	_, b, alice := setup(t, ircdtest.Options{}, nil)

	alice.Say("#ops", "good morning everyone")
	alice.Say("#ops", "! that was close")
	alice.Say("#ops", "logbooks are great")
	alice.Say("#ops", "\x01ACTION waves\x01")
	alice.Say("#ops", "!echo hi")
	m := b.next(t)
	if m.Provider != "irc" || m.Room != "ops" || m.User != "alice" || m.Text != "echo hi" || m.Direct {
		t.Fatalf("!echo hi arrived as %+v; want provider irc, room ops, user alice, text \"echo hi\", not direct (and no chatter before it)", m)
	}
	alice.Say("#ops", "logbook: echo hi")
	if m2 := b.next(t); m2.Text != "echo hi" || m2.Room != "ops" {
		t.Fatalf("\"logbook: echo hi\" arrived as %+v", m2)
	}
	alice.Say("#OPS", "LogBook, \x02echo\x02 bold")
	if m3 := b.next(t); m3.Text != "echo bold" || m3.Room != "ops" {
		t.Fatalf("a mention with another case and formatting arrived as %+v; want text \"echo bold\" in room ops", m3)
	}
	alice.Say("logbook", "echo private")
	dm := b.next(t)
	if !dm.Direct || dm.Room != "@alice" || dm.User != "alice" || dm.Text != "echo private" {
		t.Fatalf("a private message arrived as %+v; want direct, room @alice, user alice, text \"echo private\"", dm)
	}
	if m.MessageID == "" || m.MessageID == dm.MessageID {
		t.Fatalf("message ids %q and %q: want unique and not empty", m.MessageID, dm.MessageID)
	}
	select {
	case extra := <-b.messages:
		t.Fatalf("unexpected message %+v", extra)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestIRCLongReplyArrivesAsLinesWithinTheLimit(t *testing.T) {
	t.Parallel()
	_, b, alice := setup(t, ircdtest.Options{}, nil)

	// 5,000 bytes: short lines, a long line with spaces, a long word, UTF-8.
	var sb strings.Builder
	for i := 0; sb.Len() < 2000; i++ {
		fmt.Fprintf(&sb, "line %03d: ok\n", i)
	}
	sb.WriteString(strings.Repeat("lorem ipsum dolor ", 60) + "\n")
	sb.WriteString(strings.Repeat("x", 700) + "\n")
	for sb.Len() < 5000 {
		sb.WriteString("héhé ünïcödé ")
	}
	text := sb.String()
	limits := b.Limits()
	if limits.MaxMessageBytes < 200 || limits.MaxMessageBytes > 512-20 {
		t.Fatalf("Limits().MaxMessageBytes = %d; want a line budget well under 512", limits.MaxMessageBytes)
	}
	if limits.UploadFiles || limits.MaxParts != 10 || limits.MaxLines != 30 {
		t.Fatalf("Limits() = %+v; want MaxParts 10, MaxLines 30 and no uploads", limits)
	}
	if _, err := b.Post(context.Background(), ops, chat.Part{RequestID: "r1", Text: text, Count: 1}); err != nil {
		t.Fatal(err)
	}
	var wantLines []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimRight(l, " "); l != "" {
			wantLines = append(wantLines, l)
		}
	}
	got := alice.Privmsgs("logbook", 1000, time.Second)
	var bodies []string
	for _, l := range got {
		if l.Size > 512 {
			t.Errorf("a line of %d bytes arrived (limit 512): %.60q...", l.Size, l.Raw)
		}
		if l.Params[0] != "#ops" {
			t.Errorf("a line went to %q, want #ops", l.Params[0])
		}
		bodies = append(bodies, l.Params[1])
	}
	// Reassemble: each line of the text is one or more PRIVMSGs in order,
	// cut inside a word or at a space that the wrap dropped.
	i := 0
	for n, want := range wantLines {
		var line string
		for i < len(bodies) && len(line) < len(want) {
			if line != "" && want[len(line)] == ' ' && strings.HasPrefix(want[len(line)+1:], bodies[i]) {
				line += " "
			}
			line += bodies[i]
			i++
		}
		if line != want {
			t.Fatalf("line %d reassembled as %q; want %q", n, line, want)
		}
	}
	if i != len(bodies) {
		t.Fatalf("%d more lines arrived than the text has", len(bodies)-i)
	}
}

func TestIRCPostCannotInjectCommands(t *testing.T) {
	t.Parallel()
	_, b, alice := setup(t, ircdtest.Options{}, nil)

	evil := "first\r\nQUIT :injected\rPART #ops\x00NICK hacker\x01ACTION x\x01 \x1b[31mred\x07\x7f"
	if _, err := b.Post(context.Background(), ops, chat.Part{Text: evil}); err != nil {
		t.Fatal(err)
	}
	got := alice.Privmsgs("logbook", 4, time.Second)
	var bodies []string
	for _, l := range got {
		bodies = append(bodies, l.Params[1])
		for _, r := range l.Params[1] {
			if unicode.IsControl(r) {
				t.Errorf("line %q carries control character %U", l.Params[1], r)
			}
		}
	}
	want := []string{"first", "QUIT :injected", "PART #opsNICK hackerACTION x [31mred"}
	if strings.Join(bodies, "|") != strings.Join(want, "|") {
		t.Fatalf("lines %q; want %q", bodies, want)
	}
	// The bot is still connected, in #ops, and still called logbook.
	if _, err := b.Post(context.Background(), ops, chat.Part{Text: "still here"}); err != nil {
		t.Fatalf("after the injection attempt: %v", err)
	}
	if l := alice.Privmsgs("logbook", 1, 2*time.Second); len(l) != 1 || l[0].Params[1] != "still here" {
		t.Fatalf("after the injection attempt alice got %v", l)
	}
	for _, bad := range []dispatch.Destination{
		{Kind: pipeline.DestinationRoom, Name: "ops\r\nQUIT"},
		{Kind: pipeline.DestinationRoom, Name: "ops evil"},
		{Kind: pipeline.DestinationUser, Name: "alice\nQUIT"},
	} {
		if _, err := b.Post(context.Background(), bad, chat.Part{Text: "x"}); err == nil || errors.Is(err, chat.ErrRetry) {
			t.Errorf("Post to %q = %v; want a permanent error", bad.Name, err)
		}
	}
}

func TestIRCPrivateReplyAndUnknownTargets(t *testing.T) {
	t.Parallel()
	_, b, alice := setup(t, ircdtest.Options{}, nil)
	ctx := context.Background()

	// A reply to a private message goes back to the sender, not to a
	// channel of the same name.
	if _, err := b.Post(ctx, dispatch.Destination{Kind: pipeline.DestinationRoom, Name: "@alice"}, chat.Part{Text: "just for you"}); err != nil {
		t.Fatal(err)
	}
	if l := alice.Privmsgs("logbook", 1, 2*time.Second); len(l) != 1 || !strings.EqualFold(l[0].Params[0], "alice") || l[0].Params[1] != "just for you" {
		t.Fatalf("alice got %v; want one private line", l)
	}
	if !b.CanPost(ops) || !b.CanPost(dispatch.Destination{Kind: pipeline.DestinationURL, Name: "chat://#ops"}) {
		t.Fatal("CanPost(#ops) = false; the bot is in #ops")
	}
	nowhere := dispatch.Destination{Kind: pipeline.DestinationRoom, Name: "nowhere"}
	if b.CanPost(nowhere) {
		t.Fatal("CanPost(#nowhere) = true; the bot is not in #nowhere")
	}
	if b.CanPost(dispatch.Destination{Kind: pipeline.DestinationUser, Name: "bob"}) {
		t.Fatal("CanPost(@bob) = true; the bot has never seen bob")
	}
	if _, err := b.Post(ctx, nowhere, chat.Part{Text: "x"}); !errors.Is(err, chat.ErrUnknownRoom) || errors.Is(err, chat.ErrRetry) {
		t.Fatalf("Post to #nowhere = %v; want ErrUnknownRoom, not worth retrying", err)
	}
	if r, err := b.LookupRoom(ctx, "#ops"); err != nil || r.ID != "#ops" || r.Name != "ops" || !r.Joined {
		t.Fatalf("LookupRoom(#ops) = %+v, %v", r, err)
	}
	if r, err := b.LookupRoom(ctx, "ops"); err != nil || r.ID != "#ops" {
		t.Fatalf("LookupRoom(ops) = %+v, %v", r, err)
	}
	if _, err := b.LookupRoom(ctx, "#nowhere"); !errors.Is(err, chat.ErrUnknownRoom) {
		t.Fatalf("LookupRoom(#nowhere) = %v; want ErrUnknownRoom", err)
	}
	if u, err := b.LookupUser(ctx, "ALICE"); err != nil || u.Handle != "alice" || u.DisplayName != "Alice" {
		t.Fatalf("LookupUser(ALICE) = %+v, %v; want handle alice shown as Alice", u, err)
	}
	// carol is online but shares no channel: WHOIS finds her.
	ircdtest.Dial(t, b.cfg.Server, "carol")
	if u, err := b.LookupUser(ctx, "carol"); err != nil || u.Handle != "carol" {
		t.Fatalf("LookupUser(carol) = %+v, %v; want found by WHOIS", u, err)
	}
	if _, err := b.LookupUser(ctx, "nobody"); !errors.Is(err, chat.ErrUnknownUser) {
		t.Fatalf("LookupUser(nobody) = %v; want ErrUnknownUser", err)
	}
	// A private line to a nick that is gone: the server says so, and the
	// Post fails for good instead of claiming it was delivered.
	gone := dispatch.Destination{Kind: pipeline.DestinationUser, Name: "ghost"}
	if _, err := b.Post(ctx, gone, chat.Part{Text: "hello?"}); !errors.Is(err, chat.ErrUnknownUser) {
		t.Fatalf("Post to a missing nick = %v; want ErrUnknownUser", err)
	}
}

func TestIRCThrottleKeepsWithinTheRate(t *testing.T) {
	t.Parallel()
	const rate, burst, lines = 5.0, 2, 12
	_, b, alice := setup(t, ircdtest.Options{KeepPenalties: true}, func(c *Config) {
		c.LinesPerSecond, c.Burst = rate, burst
	})
	text := strings.TrimSpace(strings.Repeat("tick\n", lines))
	start := time.Now()
	if _, err := b.Post(context.Background(), ops, chat.Part{Text: text}); err != nil {
		t.Fatal(err)
	}
	got := alice.Privmsgs("logbook", lines, 5*time.Second)
	if len(got) != lines {
		t.Fatalf("%d lines arrived; want %d", len(got), lines)
	}
	// The bucket may have spent some tokens on the setup; at most burst
	// lines come at once, then one every 1/rate.
	elapsed := got[len(got)-1].At.Sub(start)
	minimum := time.Duration(float64(lines-burst) / rate * float64(time.Second))
	if elapsed < minimum-50*time.Millisecond {
		t.Fatalf("%d lines took %v; a throttle of %.0f/s with a burst of %d needs at least %v", lines, elapsed, rate, burst, minimum)
	}
	// How they bunch on arrival depends on the server and the machine's
	// load; the pacing itself is checked exactly, in a bubble, below.
	t.Logf("%d lines in %v (%.1f lines/s)", lines, elapsed, float64(lines)/elapsed.Seconds())
}

// Given the throttle of 5 lines a second with a burst of 2, when 12 lines
// go out at once, then the first two leave at once and each next one 200
// ms after the one before: exactly, on a fake clock.
func TestIRCThrottlePacesLinesExactly(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, err := New(Config{Server: "127.0.0.1:6667", Channels: []string{"#ops"}, LinesPerSecond: 5, Burst: 2})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for i := range 12 {
			if err := p.limiter.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			want := time.Duration(max(0, i-1)) * 200 * time.Millisecond
			if got := time.Since(start); got != want {
				t.Fatalf("line %d left at %v, want %v", i+1, got, want)
			}
		}
	})
}

func TestIRCReconnectsAndRejoinsAfterTheServerRestarts(t *testing.T) {
	t.Parallel()
	srv, b, _ := setup(t, ircdtest.Options{}, nil)

	srv.Stop()
	testenv.Eventually(t, "the bot notices the disconnect", func() bool { return b.current() == nil })
	_, err := b.Post(context.Background(), ops, chat.Part{Text: "while down"})
	if !errors.Is(err, chat.ErrRetry) {
		t.Fatalf("Post while disconnected = %v; want ErrRetry", err)
	}
	if !b.CanPost(ops) {
		t.Fatal("CanPost(#ops) = false while reconnecting; #ops is configured and will be joined again")
	}
	srv.StartAgain()
	b.waitJoined(t, "#ops")
	alice := ircdtest.Dial(t, srv.Addr, "alice")
	alice.Join("#ops")
	if _, err := b.Post(context.Background(), ops, chat.Part{Text: "back again"}); err != nil {
		t.Fatalf("Post after reconnect: %v", err)
	}
	if l := alice.Privmsgs("logbook", 1, 2*time.Second); len(l) != 1 || l[0].Params[1] != "back again" {
		t.Fatalf("after reconnect alice got %v", l)
	}
	alice.Say("#ops", "!echo again")
	if m := b.next(t); m.Text != "echo again" {
		t.Fatalf("after reconnect the handler got %+v", m)
	}
}

func TestIRCPartCutByADisconnectResumesWithoutRepeating(t *testing.T) {
	t.Parallel()
	const lines = 40
	srv, b, alice := setup(t, ircdtest.Options{}, func(c *Config) { c.LinesPerSecond, c.Burst = 20, 1 })
	var want []string
	for i := range lines {
		want = append(want, fmt.Sprintf("row %02d", i))
	}
	part := chat.Part{RequestID: "req-cut", Index: 0, Count: 1, Text: strings.Join(want, "\n")}

	errc := make(chan error, 1)
	go func() { _, err := b.Post(context.Background(), ops, part); errc <- err }()
	first := alice.Privmsgs("logbook", 10, 2*time.Second)
	srv.Restart()
	if err := <-errc; !errors.Is(err, chat.ErrRetry) {
		t.Fatalf("Post cut by a restart = %v; want ErrRetry", err)
	}
	// Lines the first connection relayed before it died.
	for {
		select {
		case l := <-alice.Lines:
			if l.Command == "PRIVMSG" {
				first = append(first, l)
			}
			continue
		case <-alice.Closed():
		}
		break
	}
	b.waitJoined(t, "#ops")
	alice2 := ircdtest.Dial(t, srv.Addr, "alice")
	alice2.Join("#ops")
	if _, err := b.Post(context.Background(), ops, part); err != nil {
		t.Fatalf("retried Post: %v", err)
	}
	second := alice2.Privmsgs("logbook", lines, time.Second)
	var got []string
	for _, l := range append(first, second...) {
		got = append(got, l.Params[1])
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("across the restart alice got %d lines %q; want each of the %d once, in order", len(got), got, lines)
	}
	t.Logf("%d lines before the restart, %d after", len(first), len(second))
}

func TestIRCNickInUseGetsASuffix(t *testing.T) {
	t.Parallel()
	srv := ircdtest.Start(t, ircdtest.Options{})
	squatter := ircdtest.Dial(t, srv.Addr, "logbook")
	squatter.Join("#ops")
	b := startBot(t, srv, nil)
	b.waitJoined(t, "#ops")
	if got := b.MentionName(); got == "logbook" || !strings.HasPrefix(got, "logbook_") {
		t.Fatalf("MentionName() = %q; want logbook with a suffix, logbook being taken", got)
	}
	squatter.Say("#ops", b.MentionName()+": echo hi")
	if m := b.next(t); m.Text != "echo hi" || m.User != "logbook" {
		t.Fatalf("got %+v", m)
	}
	// "logbook" is the squatter now, not the bot.
	squatter.Say("#ops", "logbook: not for the bot")
	select {
	case m := <-b.messages:
		t.Fatalf("the bot took a mention of someone else: %+v", m)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestIRCOverTLS(t *testing.T) {
	t.Parallel()
	srv := ircdtest.Start(t, ircdtest.Options{TLS: true})
	b := startBot(t, srv, func(c *Config) { c.TLS, c.TLSCAFile = true, srv.CAFile })
	b.waitJoined(t, "#ops")
	alice := ircdtest.DialTLS(t, srv.Addr, "alice")
	alice.Join("#ops")
	alice.Say("#ops", "!echo secure")
	if m := b.next(t); m.Text != "echo secure" {
		t.Fatalf("got %+v", m)
	}

	// Without the CA the certificate is not trusted and the bot never
	// joins: its connect fails on the certificate, which it logs.
	refused := &logWatch{want: []string{"irc: connect failed", "certificate"}, seen: make(chan struct{})}
	untrusted := startBot(t, srv, func(c *Config) {
		c.TLS, c.Nick = true, "logbook2"
		c.Logger = zerolog.New(io.MultiWriter(zerolog.NewTestWriter(t), refused))
	})
	select {
	case <-refused.seen:
	case <-time.After(10 * time.Second):
		t.Fatal("the bot never tried, and failed, to connect without the CA")
	}
	if r, _ := untrusted.LookupRoom(context.Background(), "#ops"); r.Joined {
		t.Fatal("a bot that does not trust the certificate joined anyway")
	}
}

// logWatch closes seen at the first log line holding every string of want.
type logWatch struct {
	want []string
	once sync.Once
	seen chan struct{}
}

func (w *logWatch) Write(p []byte) (int, error) {
	for _, s := range w.want {
		if !strings.Contains(string(p), s) {
			return len(p), nil
		}
	}
	w.once.Do(func() { close(w.seen) })
	return len(p), nil
}

func TestIRCRejectedPasswordStopsRun(t *testing.T) {
	t.Parallel()
	srv := ircdtest.Start(t, ircdtest.Options{Password: "right"})
	b := startBot(t, srv, func(c *Config) { c.Password = "wrong" })
	select {
	case err := <-b.err:
		if err == nil || !strings.Contains(err.Error(), "password") {
			t.Fatalf("Run = %v; want an error about the password", err)
		}
		b.err <- context.Canceled // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Run kept retrying a rejected password")
	}
	ok := startBot(t, srv, func(c *Config) { c.Password, c.Nick = "right", "logbook3" })
	ok.waitJoined(t, "#ops")
}

func TestIRCAMessageThatCannotBeRecordedIsNotLostSilently(t *testing.T) {
	t.Parallel()
	srv := ircdtest.Start(t, ircdtest.Options{})
	b := startBotWith(t, srv, nil, func(m chat.Message) error {
		if m.Text == "echo doomed" {
			return errors.New("the store is down")
		}
		return nil
	})
	b.waitJoined(t, "#ops")
	alice := ircdtest.Dial(t, srv.Addr, "alice")
	alice.Join("#ops")
	alice.Say("#ops", "!echo doomed")
	n := alice.Expect(5*time.Second, func(l ircdtest.Line) bool { return l.Command == "NOTICE" && strings.EqualFold(l.Nick(), "logbook") })
	if !strings.Contains(n.Params[1], "could not record") || !strings.Contains(n.Params[1], "echo doomed") {
		t.Fatalf("the notice says %q; want that the request was not recorded, naming it", n.Params[1])
	}
	// The next message goes through as usual.
	alice.Say("#ops", "!echo fine")
	if m := b.next(t); m.Text != "echo fine" {
		t.Fatalf("after a failed record the handler got %+v", m)
	}
}

func TestIRCAChannelThatRefusesTheBotCannotBePostedTo(t *testing.T) {
	t.Parallel()
	srv := ircdtest.Start(t, ircdtest.Options{})
	owner := ircdtest.Dial(t, srv.Addr, "owner")
	owner.Join("#secret")
	owner.Send("MODE #secret +i")
	owner.Expect(5*time.Second, func(l ircdtest.Line) bool { return l.Command == "MODE" })
	b := startBot(t, srv, func(c *Config) { c.Channels = []string{"#ops", "#secret"} })
	b.waitJoined(t, "#ops")
	secret := dispatch.Destination{Kind: pipeline.DestinationRoom, Name: "secret"}
	testenv.Eventually(t, "the bot learns #secret is invite-only", func() bool { return !b.CanPost(secret) })
	if _, err := b.Post(context.Background(), secret, chat.Part{Text: "x"}); !errors.Is(err, chat.ErrUnknownRoom) || errors.Is(err, chat.ErrRetry) {
		t.Fatalf("Post to an invite-only channel = %v; want ErrUnknownRoom, not worth retrying", err)
	}
	if r, err := b.LookupRoom(context.Background(), "#secret"); err != nil || r.Joined {
		t.Fatalf("LookupRoom(#secret) = %+v, %v; want configured, not joined", r, err)
	}
}
