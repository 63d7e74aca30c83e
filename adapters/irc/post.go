package irc

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/domain/dispatch"
)

// maxProgress bounds the parts whose progress is remembered for a retry.
const maxProgress = 256

// Post implements chat.Provider. It sends the part line by line through the
// throttle and returns once the server has acknowledged every line. It
// returns an error wrapping chat.ErrRetry while the bot is disconnected or
// still joining the channel, and when the connection drops mid-part; the
// retry of the same part resumes after the last acknowledged line.
func (p *Provider) Post(ctx context.Context, to dispatch.Destination, part chat.Part) (string, error) {
	t, err := targetOf(to)
	if err != nil {
		return "", err
	}
	select {
	case p.posting <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-p.posting }()

	s := p.current()
	if s == nil || !s.alive() {
		return "", fmt.Errorf("irc: not connected to %s: %w", p.cfg.Server, chat.ErrRetry)
	}
	if t.channel {
		if err := p.channelReady(t.name); err != nil {
			return "", err
		}
	}

	key := progressKey(part, t)
	prog := p.takeProgress(key)
	if prog == nil {
		text := part.Text
		if part.Link != "" && !strings.Contains(text, part.Link) { // chat.Plan's cut notice already names it
			text = strings.TrimRight(text, "\n") + "\n" + "(the whole output: " + part.Link + ")"
		}
		prog = &partProgress{lines: linesOf(text, p.budget(s, t.name), part.Formatted)}
	}
	l := p.log.With().Str("request_id", part.RequestID).Int("part", part.Index).Str("target", t.name).Logger()
	for prog.sent < len(prog.lines) {
		if err := p.limiter.Wait(ctx); err != nil {
			p.keepProgress(key, prog)
			return "", err
		}
		if err := p.sendLine(ctx, s, t, prog.lines[prog.sent]); err != nil {
			p.keepProgress(key, prog)
			l.Warn().Err(err).Int("lines_sent", prog.sent).Int("lines", len(prog.lines)).Msg("irc: reply cut short")
			return "", err
		}
		prog.sent++
	}
	l.Debug().Int("lines", len(prog.lines)).Msg("irc: part posted")
	return "", nil
}

// sendLine sends one PRIVMSG and waits for the server to acknowledge it.
func (p *Provider) sendLine(ctx context.Context, s *session, t target, line string) error {
	token := "lb" + strconv.FormatUint(s.pings.Add(1), 36)
	a := &ack{token: token, target: fold(t.name), result: make(chan error, 1)}
	s.mu.Lock()
	s.waiting = a
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.waiting = nil
		s.mu.Unlock()
	}()
	msg := ircmsg.MakeMessage(nil, "", "PRIVMSG", t.name, line)
	b, err := msg.LineBytesStrict(true, 512)
	if err != nil {
		return fmt.Errorf("irc: a line to %s cannot be sent: %v", t.name, err)
	}
	// One write, so the server reads the line and its PING together and
	// does not relay the one without answering the other.
	if err := s.conn.SendRaw(string(b) + "PING " + token); err != nil {
		return fmt.Errorf("irc: send to %s: %v: %w", t.name, err, chat.ErrRetry)
	}
	timer := time.NewTimer(p.cfg.Timeout)
	defer timer.Stop()
	select {
	case err := <-a.result:
		return err
	case <-s.done:
		// The read loop handles the PONG before it notices the end of the
		// connection: an acknowledgement that came first still counts.
		select {
		case err := <-a.result:
			return err
		default:
		}
		return fmt.Errorf("irc: disconnected from %s while posting to %s: %w", p.cfg.Server, t.name, chat.ErrRetry)
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return fmt.Errorf("irc: %s did not acknowledge a line to %s within %v: %w", p.cfg.Server, t.name, p.cfg.Timeout, chat.ErrRetry)
	}
}

// acknowledge settles the waiting line when its PONG arrives.
func (s *session) acknowledge(token string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waiting != nil && s.waiting.token == token {
		select {
		case s.waiting.result <- err:
		default:
		}
	}
}

// refuseTarget fails the waiting line when the server reports an error
// about its target instead of relaying it.
func (s *session) refuseTarget(name string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waiting != nil && s.waiting.target == fold(name) {
		select {
		case s.waiting.result <- err:
		default:
		}
	}
}

// channelReady says whether lines can go to a channel now.
func (p *Provider) channelReady(channel string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.joined[fold(channel)]; ok {
		return nil
	}
	if why, ok := p.refused[fold(channel)]; ok {
		return fmt.Errorf("irc: the server would not let me join %s (%s): %w", channel, why, chat.ErrUnknownRoom)
	}
	if _, ok := p.configured[fold(channel)]; ok {
		return fmt.Errorf("irc: not yet in %s: %w", channel, chat.ErrRetry)
	}
	return fmt.Errorf("irc: I am not in %s (join it through %s): %w", channel, EnvChannels, chat.ErrUnknownRoom)
}

// budget is the text that fits one PRIVMSG to target, from the bot's own
// nick and user@host as the server relays them.
func (p *Provider) budget(s *session, target string) int {
	return lineBudget(len(p.nick()), userHostLen(s), len(target))
}

// userHostLen is the length of the bot's user@host as the server shows it
// to others: ircevent learns it with a WHO after connecting, and counts a
// conservative 96 bytes until then. Its MaxMessageLength uses the same
// framing as lineBudget, so the difference gives the length back.
func userHostLen(s *session) int {
	if s == nil {
		return defaultUserHostLen
	}
	nick := s.conn.CurrentNick()
	if nick == "" {
		return defaultUserHostLen
	}
	const probe = "#"
	return lineBudget(len(nick), 0, len(probe)) - s.conn.MaxMessageLength(probe)
}

func progressKey(part chat.Part, t target) string {
	if part.RequestID == "" {
		return ""
	}
	return part.RequestID + "\x00" + strconv.Itoa(part.Index) + "\x00" + fold(t.name)
}

func (p *Provider) takeProgress(key string) *partProgress {
	if key == "" {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	prog := p.progress[key]
	delete(p.progress, key)
	return prog
}

func (p *Provider) keepProgress(key string, prog *partProgress) {
	if key == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.progress[key]; !ok {
		p.order = append(p.order, key)
	}
	p.progress[key] = prog
	for len(p.progress) > maxProgress && len(p.order) > 0 {
		delete(p.progress, p.order[0])
		p.order = p.order[1:]
	}
	if len(p.order) > 4*maxProgress { // keys taken since; compact
		kept := p.order[:0]
		for _, k := range p.order {
			if _, ok := p.progress[k]; ok {
				kept = append(kept, k)
			}
		}
		p.order = kept
	}
}

// CanPost implements chat.Provider: a channel the bot is in, or is
// configured to be in and not refused (it may be rejoining after a
// reconnect); a nick the bot has seen (in a shared channel, or writing to
// it).
func (p *Provider) CanPost(to dispatch.Destination) bool {
	t, err := targetOf(to)
	if err != nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !t.channel {
		_, ok := p.seen[fold(t.name)]
		return ok
	}
	if _, ok := p.joined[fold(t.name)]; ok {
		return true
	}
	_, configured := p.configured[fold(t.name)]
	_, refused := p.refused[fold(t.name)]
	return configured && !refused
}

// Limits implements chat.Provider. MaxMessageBytes is the line budget for
// the longest target the bot may post to, with the longest nick the server
// may give it, so a part always fits one PRIVMSG.
func (p *Provider) Limits() chat.Limits {
	s := p.current()
	longest := 30 // a nick, for private replies (NICKLEN where the server says)
	if s != nil {
		if n, err := strconv.Atoi(s.conn.ISupport()["NICKLEN"]); err == nil && n > 0 {
			longest = n
		}
	}
	p.mu.Lock()
	for _, ch := range p.configured {
		longest = max(longest, len(ch))
	}
	for _, ch := range p.joined {
		longest = max(longest, len(ch))
	}
	p.mu.Unlock()
	nick := max(len(p.nick()), len(p.cfg.Nick)+2) // the library appends _N when the nick is taken
	return chat.Limits{MaxMessageBytes: lineBudget(nick, userHostLen(s), longest), MaxParts: p.cfg.MaxParts, MaxLines: p.cfg.MaxLines}
}

// LookupUser implements chat.Provider: a nick the bot has seen, else a
// WHOIS. The handle is the folded nick.
func (p *Provider) LookupUser(ctx context.Context, nameOrHandle string) (chat.User, error) {
	nick := strings.TrimPrefix(strings.TrimSpace(nameOrHandle), "@")
	if !validNick(nick) {
		return chat.User{}, fmt.Errorf("irc: %q is not a nick: %w", nameOrHandle, chat.ErrUnknownUser)
	}
	p.mu.Lock()
	shown, ok := p.seen[fold(nick)]
	p.mu.Unlock()
	if ok {
		return chat.User{Handle: fold(shown), DisplayName: shown}, nil
	}
	s := p.current()
	if s == nil {
		return chat.User{}, fmt.Errorf("irc: not connected, cannot look up %s: %w", nick, chat.ErrRetry)
	}
	select {
	case p.posting <- struct{}{}:
	case <-ctx.Done():
		return chat.User{}, ctx.Err()
	}
	defer func() { <-p.posting }()
	answer := make(chan whois, 1)
	s.mu.Lock()
	s.whois[fold(nick)] = answer
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.whois, fold(nick))
		s.mu.Unlock()
	}()
	if err := s.conn.Send("WHOIS", nick); err != nil {
		return chat.User{}, fmt.Errorf("irc: WHOIS %s: %v: %w", nick, err, chat.ErrRetry)
	}
	timer := time.NewTimer(p.cfg.Timeout)
	defer timer.Stop()
	select {
	case w := <-answer:
		if w.err != nil {
			return chat.User{}, w.err
		}
		return chat.User{Handle: fold(w.nick), DisplayName: w.nick}, nil
	case <-s.done:
		return chat.User{}, fmt.Errorf("irc: disconnected while looking up %s: %w", nick, chat.ErrRetry)
	case <-ctx.Done():
		return chat.User{}, ctx.Err()
	case <-timer.C:
		return chat.User{}, fmt.Errorf("irc: no WHOIS answer for %s within %v: %w", nick, p.cfg.Timeout, chat.ErrRetry)
	}
}

// whoisAnswer settles a pending WHOIS; the first answer wins (311 before
// the 318 that ends every WHOIS).
func (s *session) whoisAnswer(nick string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.whois[fold(nick)]; ok {
		select {
		case ch <- whois{nick: nick, err: err}:
		default:
		}
		delete(s.whois, fold(nick))
	}
}

// LookupRoom implements chat.Provider for configured and joined channels.
// It takes a channel ("#ops") or a room name ("ops").
func (p *Provider) LookupRoom(_ context.Context, name string) (chat.Room, error) {
	name = strings.TrimSpace(name)
	candidates := []string{channelOf(name)}
	if validChannel(name) {
		candidates = []string{name, channelOf(name)}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ch := range candidates {
		if joined, ok := p.joined[fold(ch)]; ok {
			return chat.Room{ID: joined, Name: roomOf(joined), Joined: true}, nil
		}
		if conf, ok := p.configured[fold(ch)]; ok {
			return chat.Room{ID: conf, Name: roomOf(conf), Joined: false}, nil
		}
	}
	return chat.Room{}, fmt.Errorf("irc: %q is not a channel I am configured to join (%s): %w", name, EnvChannels, chat.ErrUnknownRoom)
}
