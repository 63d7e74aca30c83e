// Package irc is the IRC chat provider: it connects to one IRC server with
// github.com/ergochat/irc-go's ircevent (plain or TLS, server password or
// SASL PLAIN), joins the configured channels, turns "!cmd", "logbook: cmd"
// and private messages into chat.Messages, and posts replies as throttled,
// acknowledged PRIVMSG lines that fit IRC's 512-byte limit.
//
// IRC gives a message no id and never delivers it twice, so each received
// line gets an id from its connection and its place on it (or the server's
// IRCv3 msgid tag, where the server sends one): unique, and there is no
// redelivery to be stable across. A line the handler fails to record is
// lost to Logbook; the sender is told so, and may send it again.
//
// Delivery: after every line the bot sends a PING and waits for its PONG.
// The server handles a client's lines in order, so the PONG says the line
// before it was relayed. A Post cut by a disconnect returns chat.ErrRetry,
// and the retry of the same part (same request, index and target) resumes
// after the last acknowledged line, so a line is posted twice only if the
// server went away between relaying it and answering the PING after it.
// The progress is kept in memory: after a restart of Logbook the whole
// part is posted again.
package irc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/ergochat/irc-go/ircevent"
	"github.com/ergochat/irc-go/ircfmt"
	"github.com/ergochat/irc-go/ircmsg"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/internal/supervisor"
)

// Name is the provider's adapter name, in RequestReceived and handles.
const Name = "irc"

// defaultUserHostLen is assumed for the bot's user@host before the server
// has told it (RFC 2812 allows 63-byte host names; ircevent uses 96 too).
const defaultUserHostLen = 96

// Provider is one connection to one IRC server. It implements
// chat.Provider and is safe for concurrent use.
type Provider struct {
	cfg     Config
	log     zerolog.Logger
	tls     *tls.Config
	limiter *rate.Limiter
	// posting lets one Post (or WHOIS) talk to the server at a time, so the
	// lines of two replies never interleave and acknowledgements are never
	// mistaken for each other's.
	posting chan struct{}

	mu         sync.Mutex
	session    *session          // the live connection, nil while disconnected
	configured map[string]string // fold(channel) → channel, from the configuration
	joined     map[string]string // fold(channel) → channel, on the live connection
	refused    map[string]string // fold(channel) → why the server refused to let us join
	seen       map[string]string // fold(nick) → nick: people the bot has seen
	progress   map[string]*partProgress
	order      []string // progress keys, oldest first, to bound the map
}

// session is one connection, from connect to disconnect.
type session struct {
	id   string // unique across connections and restarts (UUIDv7)
	conn *ircevent.Connection
	done chan struct{} // closed once the connection is gone
	once sync.Once

	rawMu sync.Mutex
	raw   net.Conn

	received atomic.Uint64 // lines received, for message ids
	pings    atomic.Uint64

	mu      sync.Mutex
	waiting *ack                  // the line being acknowledged
	whois   map[string]chan whois // fold(nick) → pending WHOIS
	fatal   error                 // why the server turned us away for good
}

// ack waits for the PONG after one posted line, or the error numeric the
// server sends instead of relaying it.
type ack struct {
	token  string
	target string // folded
	result chan error
}

type whois struct {
	nick string
	err  error
}

// partProgress remembers how far a part got, for its retry.
type partProgress struct {
	lines []string
	sent  int
}

// New checks the configuration and builds a provider; Run connects it.
func New(cfg Config) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	p := &Provider{
		cfg:        cfg,
		log:        cfg.Logger.With().Str("provider", Name).Str("server", cfg.Server).Logger(),
		tls:        tc,
		limiter:    rate.NewLimiter(rate.Limit(cfg.LinesPerSecond), cfg.Burst),
		posting:    make(chan struct{}, 1),
		configured: map[string]string{},
		joined:     map[string]string{},
		refused:    map[string]string{},
		seen:       map[string]string{},
		progress:   map[string]*partProgress{},
	}
	for _, ch := range cfg.Channels {
		p.configured[fold(ch)] = ch
	}
	return p, nil
}

// Name implements chat.Provider.
func (p *Provider) Name() string { return Name }

// errPermanent marks a refusal that no reconnect will change.
var errPermanent = errors.New("irc: the server refused the bot")

// Run implements chat.Provider: connect, join, deliver, reconnect with
// exponential backoff and jitter, until ctx ends. It returns early only
// when the server refuses the configuration (password, SASL, nick).
func (p *Provider) Run(ctx context.Context, h chat.Handler) error {
	queue := make(chan chat.Message, 256)
	var wg sync.WaitGroup
	defer wg.Wait()
	deliverCtx, stopDelivering := context.WithCancel(ctx)
	defer stopDelivering()
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.deliver(deliverCtx, h, queue)
	}()

	retry := p.newBackOff()
	failures := 0
	for {
		s, err := p.connect(ctx, queue)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if errors.Is(err, errPermanent) {
				p.log.Error().Err(err).Msg("irc: giving up: the server refuses this configuration")
				return supervisor.Permanent(err)
			}
			supervisor.Unready(ctx, err)
			failures++
			delay := retry.NextBackOff()
			p.log.Warn().Err(err).Int("attempt", failures).Dur("retry_in", delay).Msg("irc: connect failed; retrying")
			if !sleep(ctx, delay) {
				return ctx.Err()
			}
			continue
		}
		connectedAt := time.Now()
		supervisor.Ready(ctx)
		p.log.Info().Str("nick", s.conn.CurrentNick()).Str("connection", s.id).Msg("irc: connected")
		select {
		case <-ctx.Done():
			s.conn.Quit()
			select {
			case <-s.done:
			case <-time.After(2 * time.Second):
			}
			p.drop(s)
			return ctx.Err()
		case <-s.done:
		}
		p.drop(s)
		if err := s.fatalErr(); err != nil {
			p.log.Error().Err(err).Msg("irc: giving up: the server refuses this configuration")
			return supervisor.Permanent(err)
		}
		supervisor.Unready(ctx, errors.New("irc: disconnected; reconnecting"))
		// A connection the server keeps cutting right after registration
		// backs off like a failed connect; one that held starts over.
		if time.Since(connectedAt) >= stableConnection {
			retry.Reset()
			failures = 0
		}
		failures++
		delay := retry.NextBackOff()
		p.log.Warn().Str("connection", s.id).Dur("retry_in", delay).Msg("irc: disconnected; reconnecting")
		if !sleep(ctx, delay) {
			return ctx.Err()
		}
	}
}

// stableConnection is how long a connection must hold for the backoff to
// start over after it ends.
const stableConnection = time.Minute

// newBackOff gives the waits between reconnect attempts: MinBackoff
// doubled after each failure up to MaxBackoff, each spread by half of it
// either way at random, so many bots cut off together do not come back
// together.
func (p *Provider) newBackOff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = p.cfg.MinBackoff, p.cfg.MaxBackoff
	b.Multiplier, b.RandomizationFactor = 2, 0.5
	return b
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// connect opens one connection, registers and asks to join the channels.
func (p *Provider) connect(ctx context.Context, queue chan<- chat.Message) (*session, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	s := &session{id: id.String(), done: make(chan struct{}), whois: map[string]chan whois{}}
	c := &ircevent.Connection{
		Server:        p.cfg.Server,
		Nick:          p.cfg.Nick,
		User:          p.cfg.Nick,
		RealName:      "Logbook ChatOps",
		Password:      p.cfg.Password,
		SASLLogin:     p.cfg.SASLUser,
		SASLPassword:  p.cfg.SASLPassword,
		UseTLS:        p.cfg.TLS,
		TLSConfig:     p.tls.Clone(),
		Timeout:       p.cfg.Timeout,
		KeepAlive:     p.cfg.KeepAlive,
		QuitMessage:   "Logbook is shutting down",
		Version:       "Logbook",
		FetchUserHost: true,
		// msgid gives received lines the server's own ids where it has them.
		RequestCaps: []string{"message-tags"},
		Log:         log.New(ircLogWriter{p.log}, "", 0),
	}
	c.DialContext = func(dctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(dctx, network, addr)
		if err == nil {
			s.rawMu.Lock()
			s.raw = conn
			s.rawMu.Unlock()
		}
		return conn, err
	}
	s.conn = c
	p.addCallbacks(s, queue)

	errc := make(chan error, 1)
	go func() { errc <- c.Connect() }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		s.closeRaw()
		<-errc
		return nil, ctx.Err()
	}
	if err != nil {
		if fatal := s.fatalErr(); fatal != nil {
			return nil, fatal
		}
		if errors.Is(err, ircevent.SASLFailed) { // the server offers no SASL
			return nil, fmt.Errorf("%w: SASL login as %q (%s): %v", errPermanent, p.cfg.SASLUser, EnvSASLUser, err)
		}
		return nil, err
	}
	p.mu.Lock()
	p.session = s
	p.joined = map[string]string{}
	p.mu.Unlock()
	p.joinConfigured(s)
	return s, nil
}

// joinConfigured asks to join every configured channel not refused, in as
// few JOIN lines as fit.
func (p *Provider) joinConfigured(s *session) {
	var batch []string
	size := 0
	flush := func() {
		if len(batch) > 0 {
			_ = s.conn.Join(strings.Join(batch, ","))
		}
		batch, size = nil, 0
	}
	for _, ch := range p.cfg.Channels {
		if size+len(ch)+1 > 400 {
			flush()
		}
		batch = append(batch, ch)
		size += len(ch) + 1
	}
	flush()
}

// drop forgets a connection that has ended.
func (p *Provider) drop(s *session) {
	s.end()
	s.closeRaw()
	p.mu.Lock()
	if p.session == s {
		p.session = nil
		p.joined = map[string]string{}
	}
	p.mu.Unlock()
}

func (s *session) end() { s.once.Do(func() { close(s.done) }) }

func (s *session) closeRaw() {
	s.rawMu.Lock()
	defer s.rawMu.Unlock()
	if s.raw != nil {
		s.raw.Close()
	}
}

func (s *session) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

func (s *session) setFatal(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fatal == nil {
		s.fatal = err
	}
}

func (s *session) fatalErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fatal
}

// current is the live session, or nil.
func (p *Provider) current() *session {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.session
}

// nick is the bot's nick now: the server's when connected.
func (p *Provider) nick() string {
	if s := p.current(); s != nil {
		if n := s.conn.CurrentNick(); n != "" {
			return n
		}
	}
	return p.cfg.Nick
}

// MentionName implements chat.Provider: the bot's current nick.
func (p *Provider) MentionName() string { return p.nick() }

// addCallbacks wires the server's messages to the provider's state.
func (p *Provider) addCallbacks(s *session, queue chan<- chat.Message) {
	c := s.conn
	c.AddDisconnectCallback(func(ircmsg.Message) { s.end() })
	c.AddCallback("PRIVMSG", func(e ircmsg.Message) { p.onPrivmsg(s, e, queue) })
	c.AddCallback("PONG", func(e ircmsg.Message) {
		if len(e.Params) > 0 {
			s.acknowledge(e.Params[len(e.Params)-1], nil)
		}
	})
	c.AddCallback("JOIN", func(e ircmsg.Message) {
		if len(e.Params) == 0 {
			return
		}
		ch := e.Params[0]
		if fold(e.Nick()) != fold(c.CurrentNick()) {
			p.see(e.Nick())
			return
		}
		p.mu.Lock()
		if conf, ok := p.configured[fold(ch)]; ok {
			ch = conf
		}
		p.joined[fold(ch)] = ch
		delete(p.refused, fold(ch))
		p.mu.Unlock()
		p.log.Info().Str("channel", ch).Msg("irc: joined")
	})
	left := func(ch, why string) {
		p.mu.Lock()
		delete(p.joined, fold(ch))
		p.mu.Unlock()
		p.log.Warn().Str("channel", ch).Str("reason", why).Msg("irc: no longer in channel")
	}
	c.AddCallback("PART", func(e ircmsg.Message) {
		if len(e.Params) > 0 && fold(e.Nick()) == fold(c.CurrentNick()) {
			left(e.Params[0], "parted")
		}
	})
	c.AddCallback("KICK", func(e ircmsg.Message) {
		if len(e.Params) < 2 || fold(e.Params[1]) != fold(c.CurrentNick()) {
			return
		}
		ch := e.Params[0]
		left(ch, "kicked by "+e.Nick())
		p.mu.Lock()
		_, wanted := p.configured[fold(ch)]
		p.mu.Unlock()
		if wanted { // a configured channel: try again later, once
			time.AfterFunc(30*time.Second, func() {
				if s.alive() {
					_ = c.Join(ch)
				}
			})
		}
	})
	c.AddCallback("NICK", func(e ircmsg.Message) {
		if len(e.Params) > 0 && fold(e.Params[0]) != fold(c.CurrentNick()) {
			p.see(e.Params[0])
		}
	})
	c.AddCallback(ircevent.RPL_NAMREPLY, func(e ircmsg.Message) {
		// "<me> <symbol> <channel> :[prefix]nick [prefix]nick ..."
		if len(e.Params) < 4 {
			return
		}
		for _, n := range strings.Fields(e.Params[3]) {
			p.see(strings.TrimLeft(n, "~&@%+"))
		}
	})
	for _, code := range []string{ircevent.ERR_NOSUCHCHANNEL, ircevent.ERR_TOOMANYCHANNELS, ircevent.ERR_CHANNELISFULL,
		ircevent.ERR_INVITEONLYCHAN, ircevent.ERR_BANNEDFROMCHAN, ircevent.ERR_BADCHANNELKEY, ircevent.ERR_BADCHANMASK,
		ircevent.ERR_NEEDREGGEDNICK} {
		c.AddCallback(code, func(e ircmsg.Message) { p.onJoinRefused(e) })
	}
	// An error about a target while a line to it waits for its PONG means
	// the server did not relay that line.
	for _, code := range []string{ircevent.ERR_NOSUCHNICK, ircevent.ERR_CANNOTSENDTOCHAN, ircevent.ERR_NOSUCHCHANNEL} {
		c.AddCallback(code, func(e ircmsg.Message) {
			if len(e.Params) < 2 {
				return
			}
			reason := e.Params[len(e.Params)-1]
			var err error
			switch e.Command {
			case ircevent.ERR_NOSUCHNICK:
				err = fmt.Errorf("irc: %s: %s: %w", e.Params[1], reason, chat.ErrUnknownUser)
			case ircevent.ERR_NOSUCHCHANNEL:
				err = fmt.Errorf("irc: %s: %s: %w", e.Params[1], reason, chat.ErrUnknownRoom)
			default:
				err = fmt.Errorf("irc: the server would not relay to %s: %s", e.Params[1], reason)
			}
			s.refuseTarget(e.Params[1], err)
		})
	}
	c.AddCallback(ircevent.RPL_WHOISUSER, func(e ircmsg.Message) {
		// "<me> <nick> <user> <host> * :<realname>"
		if len(e.Params) >= 2 {
			p.see(e.Params[1])
			s.whoisAnswer(e.Params[1], nil)
		}
	})
	c.AddCallback(ircevent.RPL_ENDOFWHOIS, func(e ircmsg.Message) {
		if len(e.Params) >= 2 {
			s.whoisAnswer(e.Params[1], fmt.Errorf("irc: no such nick %s: %w", e.Params[1], chat.ErrUnknownUser))
		}
	})
	fatal := func(what string) func(ircmsg.Message) {
		return func(e ircmsg.Message) {
			reason := ""
			if len(e.Params) > 0 {
				reason = e.Params[len(e.Params)-1]
			}
			s.setFatal(fmt.Errorf("%w: %s: %s", errPermanent, what, reason))
		}
	}
	// Some servers (ngircd) refuse a password with a bare ERROR before the
	// welcome, and no 464.
	c.AddCallback("ERROR", func(e ircmsg.Message) {
		if len(e.Params) > 0 && c.CurrentNick() == "" && strings.Contains(strings.ToLower(e.Params[0]), "password") {
			fatal("server password rejected (" + EnvPassword + ")")(e)
		}
	})
	sasl := fatal("SASL login as " + p.cfg.SASLUser + " refused (" + EnvSASLUser + ", " + EnvSASLPass + ")")
	for _, code := range []string{ircevent.ERR_NICKLOCKED, ircevent.ERR_SASLFAIL, ircevent.ERR_SASLTOOLONG} {
		c.AddCallback(code, sasl)
	}
	c.AddCallback(ircevent.ERR_PASSWDMISMATCH, fatal("server password rejected ("+EnvPassword+")"))
	c.AddCallback(ircevent.ERR_YOUREBANNEDCREEP, fatal("banned from the server"))
	c.AddCallback(ircevent.ERR_ERRONEUSNICKNAME, fatal("nick "+p.cfg.Nick+" refused ("+EnvNick+")"))
}

// onJoinRefused records why the server would not let the bot join.
func (p *Provider) onJoinRefused(e ircmsg.Message) {
	if len(e.Params) < 2 {
		return
	}
	ch, reason := e.Params[1], e.Params[len(e.Params)-1]
	p.mu.Lock()
	_, wanted := p.configured[fold(ch)]
	if wanted {
		p.refused[fold(ch)] = reason
	}
	p.mu.Unlock()
	if wanted {
		p.log.Error().Str("channel", ch).Str("reason", reason).Str("code", e.Command).Msg("irc: cannot join channel")
	}
}

func (p *Provider) see(nick string) {
	if !validNick(nick) {
		return
	}
	p.mu.Lock()
	p.seen[fold(nick)] = nick
	p.mu.Unlock()
}

// onPrivmsg turns a line addressed to the bot into a message for the
// handler; everything else is chatter and ignored.
func (p *Provider) onPrivmsg(s *session, e ircmsg.Message, queue chan<- chat.Message) {
	m, ok := p.messageOf(s, e)
	if !ok {
		return
	}
	p.see(e.Nick())
	select {
	case queue <- m:
	default:
		p.log.Error().Str("message_id", m.MessageID).Str("user", m.User).Msg("irc: too many messages waiting to be recorded; dropped one")
		p.notice(s, e.Nick(), "I am too busy to take that right now; please send it again in a moment.")
	}
}

// messageOf reads a PRIVMSG. ok is false for chatter, CTCP, malformed
// lines and the bot's own lines.
func (p *Provider) messageOf(s *session, e ircmsg.Message) (chat.Message, bool) {
	if len(e.Params) < 2 {
		return chat.Message{}, false
	}
	nick := e.Nick()
	me := s.conn.CurrentNick()
	if !validNick(nick) || fold(nick) == fold(me) {
		return chat.Message{}, false // a server, a service with a dotted name, or ourselves
	}
	to, text := e.Params[0], e.Params[1]
	if to == "" || strings.HasPrefix(text, "\x01") {
		return chat.Message{}, false // CTCP (ACTION, VERSION...): not a command
	}
	text = sanitize(ircfmt.Strip(text), false)
	m := chat.Message{Provider: Name, User: fold(nick)}
	if strings.ContainsRune("#&+!", rune(to[0])) {
		if !validChannel(to) {
			return chat.Message{}, false
		}
		p.mu.Lock()
		if conf, ok := p.configured[fold(to)]; ok {
			to = conf
		}
		p.mu.Unlock()
		m.Room = roomOf(to)
	} else {
		m.Room, m.Direct = directRoom(fold(nick)), true
	}
	addressing := chat.Addressing{Prefix: p.cfg.Prefix, Mentions: []string{me}}
	cmd, ok := addressing.Recognize(text, m.Direct)
	if !ok {
		return chat.Message{}, false
	}
	m.Text = cmd
	if has, id := e.GetTag("msgid"); has && id != "" {
		m.MessageID = "msgid:" + id
	} else {
		m.MessageID = fmt.Sprintf("%s-%d", s.id, s.received.Add(1))
	}
	return m, true
}

// deliver hands messages to the handler one at a time, in the order they
// came, off the connection's read loop (a slow store must not stall PONGs).
func (p *Provider) deliver(ctx context.Context, h chat.Handler, queue <-chan chat.Message) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-queue:
			l := p.log.With().Str("message_id", m.MessageID).Str("user", m.User).Str("room", m.Room).Logger()
			if err := h(ctx, m); err != nil {
				if ctx.Err() != nil {
					return
				}
				// IRC cannot deliver the line again; the sender is the only
				// one who can.
				l.Error().Err(err).Msg("irc: could not record a message")
				if s := p.current(); s != nil {
					p.notice(s, m.User, "I could not record your request ("+m.Text+"); nothing ran. Please send it again.")
				}
				continue
			}
			l.Debug().Msg("irc: message recorded")
		}
	}
}

// notice sends a best-effort NOTICE through the throttle, for errors.
func (p *Provider) notice(s *session, nick, text string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Timeout)
		defer cancel()
		if p.limiter.Wait(ctx) == nil {
			_ = s.conn.Notice(nick, sanitize(text, false))
		}
	}()
}

// ircLogWriter sends ircevent's own log lines to zerolog.
type ircLogWriter struct{ log zerolog.Logger }

func (w ircLogWriter) Write(b []byte) (int, error) {
	w.log.Warn().Str("component", "ircevent").Msg(strings.TrimSpace(string(b)))
	return len(b), nil
}
