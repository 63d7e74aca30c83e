package slack

import (
	"cmp"
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/internal/supervisor"
)

// maxBody bounds an Events API request; Slack's are a few KiB.
const maxBody = 1 << 20

// Run implements chat.Provider: it learns who the bot is, then receives
// over Socket Mode (when an app token is set) until ctx ends, reconnecting
// with backoff; Events API deliveries arrive through the HTTP handlers
// meanwhile. It returns early only when Slack rejects the tokens.
func (p *Provider) Run(ctx context.Context, h chat.Handler) error {
	p.mu.Lock()
	p.handler = h
	p.mu.Unlock()
	retry := newReconnectBackOff()
	for {
		err := p.connect(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, chat.ErrRetry) {
			return fmt.Errorf("slack: %w (check LOGBOOK_SLACK_BOT_TOKEN)", err)
		}
		supervisor.Unready(ctx, err)
		delay := retry.NextBackOff()
		p.log.Warn().Err(err).Dur("retry_in", delay).Msg("Slack is not reachable; retrying")
		if !sleep(ctx, delay) {
			return ctx.Err()
		}
	}
	supervisor.Ready(ctx)
	var refresh sync.WaitGroup
	defer refresh.Wait()
	refresh.Go(func() { p.refreshEvery(ctx, 10*time.Minute) })
	if p.cfg.AppToken == "" {
		<-ctx.Done()
		return ctx.Err()
	}
	retry.Reset()
	for {
		started := time.Now()
		err := p.runSocketMode(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, errRejected) {
			return fmt.Errorf("slack socket mode: %w (check LOGBOOK_SLACK_APP_TOKEN)", err)
		}
		if time.Since(started) > time.Minute {
			retry.Reset() // it ran well for a while: start backing off afresh
		}
		delay := retry.NextBackOff()
		p.log.Warn().Err(err).Dur("retry_in", delay).Msg("Slack Socket Mode disconnected; reconnecting")
		if !sleep(ctx, delay) {
			return ctx.Err()
		}
	}
}

// newReconnectBackOff gives the waits between attempts to reach Slack:
// one second doubling to a minute, with jitter.
func newReconnectBackOff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = time.Second, time.Minute
	return b
}

var errRejected = errors.New("Slack rejected the token")

func (p *Provider) refreshEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.refreshChannels(ctx); err != nil {
				p.log.Warn().Err(err).Msg("refreshing the channel list")
			}
		}
	}
}

// runSocketMode holds one Socket Mode client until it fails: each envelope
// is acknowledged once its message is recorded, so one that could not be
// recorded is delivered again by Slack.
func (p *Provider) runSocketMode(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	client := socketmode.New(p.api)
	done := make(chan error, 1)
	go func() { done <- client.RunContext(ctx) }()
	for {
		select {
		case err := <-done:
			if err != nil && (strings.Contains(err.Error(), "invalid_auth") || strings.Contains(err.Error(), "not_authed") || strings.Contains(err.Error(), "token_revoked")) {
				return fmt.Errorf("%w: %v", errRejected, err)
			}
			if err == nil {
				err = errors.New("socket mode client stopped")
			}
			return err
		case evt := <-client.Events:
			p.socketEvent(ctx, client, evt)
		}
	}
}

func (p *Provider) socketEvent(ctx context.Context, client *socketmode.Client, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnected:
		p.log.Info().Msg("Slack Socket Mode connected")
	case socketmode.EventTypeEventsAPI:
		if evt.Request == nil {
			return
		}
		var outer outerEvent
		if err := json.Unmarshal(evt.Request.Payload, &outer); err != nil {
			p.log.Warn().Err(err).Msg("a Socket Mode event that is not JSON; acknowledged and dropped")
			_ = client.Ack(*evt.Request)
			return
		}
		if err := p.handleCallback(ctx, outer.EventID, outer.Event); err != nil {
			p.log.Error().Err(err).Str("event_id", outer.EventID).Msg("not acknowledged: Slack delivers it again")
			return
		}
		_ = client.Ack(*evt.Request)
	case socketmode.EventTypeInteractive:
		callback, ok := evt.Data.(slack.InteractionCallback)
		if !ok || evt.Request == nil {
			return
		}
		if err := p.handleInteraction(ctx, callback); err != nil {
			p.log.Error().Err(err).Str("trigger_id", callback.TriggerID).Msg("an interaction not acknowledged: Slack delivers it again")
			return
		}
		_ = client.Ack(*evt.Request)
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slack.SlashCommand)
		if !ok || evt.Request == nil {
			return
		}
		answer, err := p.handleSlash(ctx, cmd)
		if err != nil {
			p.log.Error().Err(err).Str("trigger_id", cmd.TriggerID).Msg("recording a slash command")
			answer = "Logbook could not record that command; try again."
		}
		_ = client.Ack(*evt.Request, map[string]any{"response_type": "ephemeral", "text": answer})
	case socketmode.EventTypeErrorBadMessage:
		// A payload the library cannot read (an event type it does not
		// know, malformed JSON): acknowledge it so Slack stops sending it.
		bad, _ := evt.Data.(*socketmode.ErrorBadMessage)
		if bad == nil {
			return
		}
		var env struct {
			EnvelopeID string `json:"envelope_id"`
		}
		if json.Unmarshal(bad.Message, &env) == nil && env.EnvelopeID != "" {
			if err := p.handleRawEnvelope(ctx, bad.Message); err != nil {
				p.log.Error().Err(err).Msg("not acknowledged: Slack delivers it again")
				return
			}
			_ = client.Ack(socketmode.Request{EnvelopeID: env.EnvelopeID})
		}
		p.log.Debug().Err(bad.Cause).Msg("a Socket Mode message the library could not parse")
	case socketmode.EventTypeInvalidAuth:
		p.log.Error().Msg("Slack rejected the app token")
	}
}

// handleRawEnvelope reads an events_api envelope the library gave up on.
func (p *Provider) handleRawEnvelope(ctx context.Context, raw json.RawMessage) error {
	var env struct {
		Type    string     `json:"type"`
		Payload outerEvent `json:"payload"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || env.Type != socketmode.RequestTypeEventsAPI {
		return nil // nothing Logbook can use
	}
	return p.handleCallback(ctx, env.Payload.EventID, env.Payload.Event)
}

// outerEvent is what Logbook reads of an Events API request.
type outerEvent struct {
	Type      string          `json:"type"`
	Challenge string          `json:"challenge"`
	EventID   string          `json:"event_id"`
	Event     json.RawMessage `json:"event"`
}

// innerEvent holds the fields of the inner events Logbook handles
// (message, app_mention, member_joined_channel, member_left_channel,
// channel_created, channel_rename).
type innerEvent struct {
	Type        string          `json:"type"`
	SubType     string          `json:"subtype"`
	User        string          `json:"user"`
	BotID       string          `json:"bot_id"`
	Text        string          `json:"text"`
	Channel     json.RawMessage `json:"channel"` // an id, or an object in channel_created
	ChannelType string          `json:"channel_type"`
	TS          string          `json:"ts"`
	ThreadTS    string          `json:"thread_ts"`
}

func (e innerEvent) channelID() string {
	var id string
	if json.Unmarshal(e.Channel, &id) == nil {
		return id
	}
	var obj struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(e.Channel, &obj)
	return obj.ID
}

// handleCallback handles one event_callback's inner event. An event id
// seen before (a retried delivery) is not handled again; an error means
// nothing was recorded and the delivery should be retried.
func (p *Provider) handleCallback(ctx context.Context, eventID string, raw json.RawMessage) error {
	if eventID != "" && p.seen.has(eventID) {
		p.log.Debug().Str("event_id", eventID).Msg("a delivery of an event already handled")
		return nil
	}
	var ev innerEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		p.log.Warn().Err(err).Str("event_id", eventID).Msg("an event that is not the JSON Slack documents; dropped")
		return nil // a delivery again would be as malformed
	}
	var err error
	switch ev.Type {
	case "message", "app_mention":
		err = p.handleMessage(ctx, ev)
	case "member_joined_channel", "member_left_channel":
		if p.isBot(ev.User) {
			p.setMembership(ctx, ev.channelID(), ev.Type == "member_joined_channel")
		}
	case "channel_created", "channel_rename", "channel_archive", "channel_unarchive", "group_rename":
		if rerr := p.refreshChannels(ctx); rerr != nil {
			p.log.Warn().Err(rerr).Msg("refreshing the channel list")
		}
	}
	if err != nil {
		return err
	}
	if eventID != "" {
		p.seen.add(eventID)
	}
	return nil
}

func (p *Provider) isBot(user string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return user != "" && user == p.botID
}

func (p *Provider) addressing() chat.Addressing {
	p.mu.RLock()
	defer p.mu.RUnlock()
	mentions := []string{"<@" + p.botID + ">"}
	if p.botName != "" {
		mentions = append(mentions, "@"+p.botName, p.botName)
	}
	return chat.Addressing{Mentions: mentions}
}

// handleMessage turns a message addressed to the bot into a chat.Message:
// the `!` prefix, a leading @mention, or anything in a direct message.
// The bot's own messages, other bots' and edits are not commands.
func (p *Provider) handleMessage(ctx context.Context, ev innerEvent) error {
	switch ev.SubType {
	case "", "thread_broadcast", "file_share":
	default:
		return nil
	}
	if ev.BotID != "" || ev.User == "" || p.isBot(ev.User) || ev.TS == "" {
		return nil
	}
	channel := ev.channelID()
	direct := ev.ChannelType == "im" || strings.HasPrefix(channel, "D")
	text, ok := p.addressing().Recognize(ev.Text, direct)
	if !ok {
		return nil
	}
	m := chat.Message{
		Provider: Name, MessageID: channel + ":" + ev.TS, User: ev.User,
		Text: PlainText(text), Direct: direct, Thread: ev.ThreadTS,
	}
	if direct {
		m.Room = ev.User // a direct message's room is its person
	} else {
		m.Room = p.roomName(ctx, channel)
		if m.Thread == "" && p.cfg.Threads {
			m.Thread = ev.TS
		}
	}
	return p.deliver(ctx, m)
}

// deliver hands a message to the handler Run was given.
func (p *Provider) deliver(ctx context.Context, m chat.Message) error {
	p.mu.RLock()
	h := p.handler
	p.mu.RUnlock()
	if h == nil {
		return errors.New("slack: not running yet")
	}
	return h(ctx, m)
}

// handleSlash records "/logbook TEXT" and returns the ephemeral answer.
func (p *Provider) handleSlash(ctx context.Context, cmd slack.SlashCommand) (string, error) {
	text := strings.TrimSpace(cmd.Text)
	if rest, ok := strings.CutPrefix(text, chat.DefaultPrefix); ok && text != "!!" {
		text = strings.TrimSpace(rest)
	}
	if text == "" {
		return fmt.Sprintf("Usage: %s COMMAND, for example `%s echo hello` or `%s help`.", cmd.Command, cmd.Command, cmd.Command), nil
	}
	direct := cmd.ChannelName == "directmessage" || strings.HasPrefix(cmd.ChannelID, "D")
	m := chat.Message{
		Provider: Name, MessageID: "slash:" + cmd.TriggerID, User: cmd.UserID, Text: PlainText(text), Direct: direct,
	}
	if direct {
		m.Room = cmd.UserID
	} else {
		m.Room = cmd.ChannelName
		if m.Room == "" || m.Room == "privategroup" {
			m.Room = p.roomName(ctx, cmd.ChannelID)
		}
	}
	if cmd.TriggerID == "" {
		return "", errors.New("slack: a slash command without a trigger_id")
	}
	if err := p.deliver(ctx, m); err != nil {
		return "", err
	}
	return "Running `" + text + "`…", nil
}

// EventsHandler answers POST /slack/events: Slack's Events API. Every
// request is checked against the signing secret and the replay window;
// url_verification is answered; an event is acknowledged (200) once its
// message is recorded, or refused (500) so that Slack retries it.
func (p *Provider) EventsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := p.verified(w, r)
		if !ok {
			return
		}
		var outer outerEvent
		if err := json.Unmarshal(body, &outer); err != nil {
			http.Error(w, "the body is not JSON: "+err.Error(), http.StatusBadRequest)
			return
		}
		switch outer.Type {
		case "url_verification":
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"challenge": outer.Challenge})
			return
		case "event_callback":
			if retry := r.Header.Get("X-Slack-Retry-Num"); retry != "" {
				p.log.Debug().Str("event_id", outer.EventID).Str("retry_num", retry).Str("reason", r.Header.Get("X-Slack-Retry-Reason")).Msg("a retried delivery")
			}
			if err := p.handleCallback(r.Context(), outer.EventID, outer.Event); err != nil {
				p.log.Error().Err(err).Str("event_id", outer.EventID).Msg("recording an event; Slack will retry it")
				http.Error(w, "not recorded: "+err.Error(), http.StatusInternalServerError)
				return
			}
		case "app_rate_limited":
			p.log.Warn().Msg("Slack is dropping events for this app: it exceeded 30,000 events an hour")
		}
		w.WriteHeader(http.StatusOK)
	})
}

// InteractivityHandler answers POST /slack/interactivity: Slack's
// interactivity requests (a form with the JSON payload), signed like the
// Events API's. A click on an approval's button is acknowledged (200) once
// its answer is recorded, or refused (500) so that the person can click
// again.
func (p *Provider) InteractivityHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := p.verified(w, r)
		if !ok {
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil || form.Get("payload") == "" {
			http.Error(w, "the body is not a form with a payload", http.StatusBadRequest)
			return
		}
		var callback slack.InteractionCallback
		if err := json.Unmarshal([]byte(form.Get("payload")), &callback); err != nil {
			http.Error(w, "the payload is not JSON: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := p.handleInteraction(r.Context(), callback); err != nil {
			p.log.Error().Err(err).Str("trigger_id", callback.TriggerID).Msg("recording an interaction")
			http.Error(w, "not recorded: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// buttonReason is the reason a rejection by button gives: a button has no
// field to type one in.
const buttonReason = "rejected with the button in Slack"

// handleInteraction turns a click on an approval's button into the answer
// chat would send ("approve ID", "reject ID reason") from the person who
// clicked, in the channel of the button. Other interactions are ignored.
// The message id derives from the click (channel, action time and the
// person), so a redelivered interaction is one request.
func (p *Provider) handleInteraction(ctx context.Context, cb slack.InteractionCallback) error {
	if cb.Type != slack.InteractionTypeBlockActions || cb.User.ID == "" || p.isBot(cb.User.ID) {
		return nil
	}
	channel := cmp.Or(cb.Container.ChannelID, cb.Channel.ID)
	for _, a := range cb.ActionCallback.BlockActions {
		verdict, reason := dispatch.VerdictApprove, ""
		switch a.ActionID {
		case ActionApprove:
		case ActionReject:
			verdict, reason = dispatch.VerdictReject, buttonReason
		default:
			continue
		}
		if a.Value == "" || strings.ContainsAny(a.Value, " \t\r\n\"") {
			p.log.Warn().Str("value", a.Value).Msg("an approval button without a request id; ignored")
			continue
		}
		m := chat.Message{
			Provider: Name, MessageID: "action:" + channel + ":" + cmp.Or(a.ActionTs, cb.ActionTs) + ":" + cb.User.ID,
			User: cb.User.ID, Text: dispatch.AnswerText(verdict, a.Value, reason), Thread: cb.Container.ThreadTs,
		}
		if direct := strings.HasPrefix(channel, "D"); direct {
			m.Room, m.Direct = cb.User.ID, true
		} else {
			m.Room = p.roomName(ctx, channel)
		}
		if err := p.deliver(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// CommandsHandler answers POST /slack/commands: the /logbook slash
// command, answered at once with an ephemeral note; the reply follows in
// the channel.
func (p *Provider) CommandsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := p.verified(w, r)
		if !ok {
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			http.Error(w, "the body is not a form: "+err.Error(), http.StatusBadRequest)
			return
		}
		cmd := slack.SlashCommand{
			TeamID: form.Get("team_id"), ChannelID: form.Get("channel_id"), ChannelName: form.Get("channel_name"),
			UserID: form.Get("user_id"), UserName: form.Get("user_name"), Command: form.Get("command"),
			Text: form.Get("text"), TriggerID: form.Get("trigger_id"), ResponseURL: form.Get("response_url"),
		}
		if cmd.UserID == "" || cmd.ChannelID == "" {
			http.Error(w, "a slash command needs user_id and channel_id", http.StatusBadRequest)
			return
		}
		answer, err := p.handleSlash(r.Context(), cmd)
		if err != nil {
			p.log.Error().Err(err).Str("trigger_id", cmd.TriggerID).Msg("recording a slash command")
			http.Error(w, "not recorded: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"response_type": "ephemeral", "text": answer})
	})
}

// verified reads the body and checks Slack's signature: v0, HMAC-SHA256
// of "v0:timestamp:body" under the signing secret, with the timestamp
// within the replay window. It answers the request itself when not.
func (p *Provider) verified(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return nil, false
	}
	if p.cfg.SigningSecret == "" {
		http.Error(w, "the Events API is off: LOGBOOK_SLACK_SIGNING_SECRET is not set", http.StatusNotFound)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, fmt.Sprintf("the body is over %d bytes or unreadable", maxBody), http.StatusRequestEntityTooLarge)
		return nil, false
	}
	if err := VerifySignature(p.cfg.SigningSecret, r.Header, body, p.cfg.Now(), p.cfg.ReplayWindow); err != nil {
		p.log.Warn().Err(err).Str("remote", r.RemoteAddr).Msg("an Events API request refused")
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return nil, false
	}
	return body, true
}

// Signature errors.
var (
	ErrMissingSignature = errors.New("slack request: X-Slack-Signature or X-Slack-Request-Timestamp is missing")
	ErrStaleTimestamp   = errors.New("slack request: the timestamp is outside the replay window")
	ErrBadSignature     = errors.New("slack request: the signature does not match the signing secret")
)

// VerifySignature checks a request's X-Slack-Signature against the
// signing secret, and its X-Slack-Request-Timestamp against now.
func VerifySignature(secret string, h http.Header, body []byte, now time.Time, window time.Duration) error {
	sig, tsText := h.Get("X-Slack-Signature"), h.Get("X-Slack-Request-Timestamp")
	if sig == "" || tsText == "" {
		return ErrMissingSignature
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not a number", ErrStaleTimestamp, tsText)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > window || d < -window {
		return fmt.Errorf("%w: %s from now, over %s", ErrStaleTimestamp, d.Round(time.Second), window)
	}
	hexSig, ok := strings.CutPrefix(sig, "v0=")
	if !ok {
		return fmt.Errorf("%w: not a v0 signature", ErrBadSignature)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: not hex", ErrBadSignature)
	}
	if !hmac.Equal(got, Sign(secret, tsText, body)) {
		return ErrBadSignature
	}
	return nil
}

// Sign computes the v0 signature of a body at a timestamp (what Slack puts
// in X-Slack-Signature after "v0=").
func Sign(secret, timestamp string, body []byte) []byte {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:", timestamp)
	mac.Write(body)
	return mac.Sum(nil)
}

// SignRequest sets the signature headers Slack would on a request.
func SignRequest(r *http.Request, secret string, body []byte, at time.Time) {
	ts := strconv.FormatInt(at.Unix(), 10)
	r.Header.Set("X-Slack-Request-Timestamp", ts)
	r.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(Sign(secret, ts, body)))
}

// recentIDs remembers the last n ids, to recognise a retried delivery.
type recentIDs struct {
	mu    sync.Mutex
	n     int
	order *list.List
	ids   map[string]*list.Element
}

func newRecentIDs(n int) *recentIDs {
	return &recentIDs{n: n, order: list.New(), ids: map[string]*list.Element{}}
}

func (r *recentIDs) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.ids[id]
	return ok
}

func (r *recentIDs) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.ids[id]; ok {
		return
	}
	r.ids[id] = r.order.PushBack(id)
	if r.order.Len() > r.n {
		oldest := r.order.Front()
		r.order.Remove(oldest)
		delete(r.ids, oldest.Value.(string))
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
