package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/logbookhq/logbook/adapters/slack/slacktest"
	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/pipeline"
	"github.com/logbookhq/logbook/domain/template/render"
)

const secret = "8f742231b10e8888abcd99yyyzzz85a5"

// received collects what the provider hands the dispatcher.
type received struct {
	mu   sync.Mutex
	msgs []chat.Message
	fail int // fail this many calls first
	ch   chan chat.Message
}

func newReceived() *received { return &received{ch: make(chan chat.Message, 100)} }

func (r *received) handle(_ context.Context, m chat.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return errors.New("the store is down")
	}
	r.msgs = append(r.msgs, m)
	r.ch <- m
	return nil
}

func (r *received) all() []chat.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]chat.Message(nil), r.msgs...)
}

func (r *received) next(t *testing.T) chat.Message {
	t.Helper()
	select {
	case m := <-r.ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message reached the handler")
		return chat.Message{}
	}
}

type fixture struct {
	api  *slacktest.Server
	p    *Provider
	got  *received
	http *httptest.Server
}

func start(t *testing.T, mutate func(*Config)) *fixture {
	t.Helper()
	api := slacktest.New(
		[]slacktest.Channel{{ID: "C0OPS", Name: "ops", Member: true}, {ID: "C0RANDOM", Name: "random"}},
		[]slacktest.User{{ID: "U0ALICE", Name: "alice", RealName: "Alice Liddell"}},
	)
	t.Cleanup(api.Close)
	cfg := Config{BotToken: "xoxb-test", SigningSecret: secret, APIURL: api.APIURL(), PostInterval: time.Millisecond}
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := newReceived()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, got.handle) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-p.ready:
	case <-time.After(5 * time.Second):
		t.Fatal("the provider never connected")
	}
	mux := http.NewServeMux()
	mux.Handle("/slack/events", p.EventsHandler())
	mux.Handle("/slack/commands", p.CommandsHandler())
	mux.Handle("/slack/interactivity", p.InteractivityHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{api: api, p: p, got: got, http: srv}
}

// deliver posts a body to the events endpoint, signed at the given time.
func (f *fixture) deliver(t *testing.T, path string, body []byte, at time.Time, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.http.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, "commands") || strings.HasSuffix(path, "interactivity") {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	if !at.IsZero() {
		SignRequest(req, secret, body, at)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// callback is an event_callback as Slack documents it.
func callback(eventID string, event map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{
		"token": "ignored", "team_id": "T0LOGBOOK", "api_app_id": "A0LOGBOOK", "type": "event_callback",
		"event_id": eventID, "event_time": 1700000000, "event": event,
	})
	return b
}

func channelMessage(channel, user, text, ts string) map[string]any {
	return map[string]any{"type": "message", "channel": channel, "user": user, "text": text, "ts": ts, "event_ts": ts, "channel_type": "channel"}
}

func TestURLVerificationIsAnswered(t *testing.T) {
	f := start(t, nil)
	body := []byte(`{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`)
	resp := f.deliver(t, "/slack/events", body, time.Now(), nil)
	var answer map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, %v", resp.StatusCode, err)
	}
	if answer["challenge"] != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Fatalf("answer = %v", answer)
	}
}

func TestAPrefixedMessageIsReceived(t *testing.T) {
	f := start(t, nil)
	resp := f.deliver(t, "/slack/events", callback("Ev01", channelMessage("C0OPS", "U0ALICE", "!echo hi &amp; bye &gt; <#C0RANDOM|random>", "1700000000.000100")), time.Now(), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	m := f.got.next(t)
	want := chat.Message{Provider: "slack", MessageID: "C0OPS:1700000000.000100", Room: "ops", User: "U0ALICE", Text: "echo hi & bye > #random"}
	if m != want {
		t.Fatalf("message = %+v\nwant      %+v", m, want)
	}
}

func TestAMentionAndItsMessageEventAreOneRequest(t *testing.T) {
	f := start(t, nil)
	ts := "1700000001.000200"
	mention := map[string]any{"type": "app_mention", "channel": "C0OPS", "user": "U0ALICE", "text": "<@UBOTLOGBK> which echo", "ts": ts}
	f.deliver(t, "/slack/events", callback("Ev02", mention), time.Now(), nil)
	f.deliver(t, "/slack/events", callback("Ev03", channelMessage("C0OPS", "U0ALICE", "<@UBOTLOGBK> which echo", ts)), time.Now(), nil)
	a, b := f.got.next(t), f.got.next(t)
	if a.Text != "which echo" || a.MessageID != b.MessageID {
		t.Fatalf("mention %+v and message %+v should be one request (same message id)", a, b)
	}
	if dispatch.RequestID(a.Provider, a.MessageID) != dispatch.RequestID(b.Provider, b.MessageID) {
		t.Fatal("different request ids")
	}
}

func TestARetriedDeliveryIsHandledOnce(t *testing.T) {
	f := start(t, nil)
	body := callback("Ev04", channelMessage("C0OPS", "U0ALICE", "!echo once", "1700000002.000300"))
	f.deliver(t, "/slack/events", body, time.Now(), nil)
	retry := http.Header{"X-Slack-Retry-Num": {"1"}, "X-Slack-Retry-Reason": {"http_timeout"}}
	if resp := f.deliver(t, "/slack/events", body, time.Now(), retry); resp.StatusCode != 200 {
		t.Fatalf("a retry is answered %d, want 200", resp.StatusCode)
	}
	f.got.next(t)
	// An event is answered once it is recorded, so by the answer to the
	// next one, a second handling of the retry would have been seen.
	f.deliver(t, "/slack/events", callback("Ev04b", channelMessage("C0OPS", "U0ALICE", "!echo after", "1700000002.000301")), time.Now(), nil)
	if after := f.got.next(t); after.Text != "echo after" {
		t.Fatalf("next handled %+v, want the later message (the retry was handled again)", after)
	}
	if n := len(f.got.all()); n != 2 {
		t.Fatalf("handled %d messages, want the first once and the later one", n)
	}
}

func TestAnEventNotRecordedIsRefusedSoSlackRetries(t *testing.T) {
	f := start(t, nil)
	f.got.fail = 1
	body := callback("Ev05", channelMessage("C0OPS", "U0ALICE", "!echo later", "1700000003.000400"))
	if resp := f.deliver(t, "/slack/events", body, time.Now(), nil); resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500 so that Slack retries", resp.StatusCode)
	}
	if resp := f.deliver(t, "/slack/events", body, time.Now(), http.Header{"X-Slack-Retry-Num": {"1"}}); resp.StatusCode != 200 {
		t.Fatalf("the retry's status = %d", resp.StatusCode)
	}
	if m := f.got.next(t); m.Text != "echo later" {
		t.Fatalf("message = %+v", m)
	}
}

func TestBadRequestsAreRefused(t *testing.T) {
	f := start(t, nil)
	body := callback("Ev06", channelMessage("C0OPS", "U0ALICE", "!echo no", "1700000004.000500"))
	cases := []struct {
		name   string
		at     time.Time
		header http.Header
		body   []byte
		status int
	}{
		{"no signature", time.Time{}, nil, body, 401},
		{"a signature by another secret", time.Time{}, http.Header{"X-Slack-Request-Timestamp": {fmt.Sprint(time.Now().Unix())}, "X-Slack-Signature": {"v0=" + strings.Repeat("ab", 32)}}, body, 401},
		{"a stale timestamp (six minutes old)", time.Now().Add(-6 * time.Minute), nil, body, 401},
		{"a timestamp from the future", time.Now().Add(6 * time.Minute), nil, body, 401},
		{"malformed JSON", time.Now(), nil, []byte(`{"type": "event_callback", `), 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if resp := f.deliver(t, "/slack/events", c.body, c.at, c.header); resp.StatusCode != c.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, c.status)
			}
		})
	}
	// A body changed after signing fails too.
	req, _ := http.NewRequest(http.MethodPost, f.http.URL+"/slack/events", bytes.NewReader(body))
	SignRequest(req, secret, []byte(`{"type":"url_verification","challenge":"x"}`), time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("a tampered body: status %d", resp.StatusCode)
	}
	if n := len(f.got.all()); n != 0 {
		t.Fatalf("%d refused requests reached the handler", n)
	}
}

func TestWhatIsNotACommandIsIgnored(t *testing.T) {
	f := start(t, nil)
	events := []map[string]any{
		channelMessage("C0OPS", "U0ALICE", "just chatting", "1.1"),
		channelMessage("C0OPS", "UBOTLOGBK", "!echo my own reply", "1.2"),
		{"type": "message", "subtype": "bot_message", "bot_id": "B9", "channel": "C0OPS", "text": "!echo a bot", "ts": "1.3"},
		{"type": "message", "subtype": "message_changed", "channel": "C0OPS", "ts": "1.4", "message": map[string]any{"text": "!echo edited", "user": "U0ALICE"}},
		{"type": "reaction_added", "user": "U0ALICE", "reaction": "thumbsup"},
	}
	for i, e := range events {
		if resp := f.deliver(t, "/slack/events", callback(fmt.Sprintf("EvI%d", i), e), time.Now(), nil); resp.StatusCode != 200 {
			t.Fatalf("event %d: status %d", i, resp.StatusCode)
		}
	}
	if got := f.got.all(); len(got) != 0 {
		t.Fatalf("ignored events reached the handler: %+v", got)
	}
}

func TestADirectMessageIsACommandWithoutPrefix(t *testing.T) {
	f := start(t, nil)
	dm := map[string]any{"type": "message", "channel": "D0ALICE", "channel_type": "im", "user": "U0ALICE", "text": "whoami", "ts": "1700000005.000600"}
	f.deliver(t, "/slack/events", callback("Ev07", dm), time.Now(), nil)
	m := f.got.next(t)
	if !m.Direct || m.Room != "U0ALICE" || m.Text != "whoami" || m.Thread != "" {
		t.Fatalf("message = %+v", m)
	}
}

func TestThreadsWhenConfigured(t *testing.T) {
	f := start(t, func(c *Config) { c.Threads = true })
	f.deliver(t, "/slack/events", callback("Ev08", channelMessage("C0OPS", "U0ALICE", "!echo a", "1700000006.000700")), time.Now(), nil)
	if m := f.got.next(t); m.Thread != "1700000006.000700" {
		t.Fatalf("a request in a channel is answered in a thread under it: %+v", m)
	}
	inThread := channelMessage("C0OPS", "U0ALICE", "!echo b", "1700000007.000800")
	inThread["thread_ts"] = "1700000000.000001"
	f.deliver(t, "/slack/events", callback("Ev09", inThread), time.Now(), nil)
	if m := f.got.next(t); m.Thread != "1700000000.000001" {
		t.Fatalf("a request in a thread is answered there: %+v", m)
	}
}

func TestASlashCommandIsAcknowledgedThenReceived(t *testing.T) {
	f := start(t, nil)
	form := url.Values{
		"token": {"x"}, "team_id": {"T0LOGBOOK"}, "channel_id": {"C0OPS"}, "channel_name": {"ops"},
		"user_id": {"U0ALICE"}, "user_name": {"alice"}, "command": {"/logbook"}, "text": {"echo slash"},
		"trigger_id": {"13345224609.738474920.8088930838d88f008e0"}, "response_url": {"https://hooks.slack.com/commands/1234/5678"},
	}
	resp := f.deliver(t, "/slack/commands", []byte(form.Encode()), time.Now(), nil)
	var answer map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, %v", resp.StatusCode, err)
	}
	if answer["response_type"] != "ephemeral" || !strings.Contains(answer["text"], "echo slash") {
		t.Fatalf("answer = %v", answer)
	}
	m := f.got.next(t)
	if m.Text != "echo slash" || m.Room != "ops" || m.MessageID != "slash:13345224609.738474920.8088930838d88f008e0" {
		t.Fatalf("message = %+v", m)
	}
	// An empty command gets the usage and records nothing.
	form.Set("text", "  ")
	form.Set("trigger_id", "2")
	resp = f.deliver(t, "/slack/commands", []byte(form.Encode()), time.Now(), nil)
	_ = json.NewDecoder(resp.Body).Decode(&answer)
	if !strings.HasPrefix(answer["text"], "Usage:") || len(f.got.all()) != 1 {
		t.Fatalf("empty command: %v, %d recorded", answer, len(f.got.all()))
	}
}

func TestSocketModeReceivesAcknowledgesAndReconnects(t *testing.T) {
	f := start(t, func(c *Config) { c.AppToken = "xapp-test" })
	waitConnected := func() {
		t.Helper()
		select {
		case <-f.api.SocketConnected():
		case <-time.After(10 * time.Second):
			t.Fatal("Socket Mode never connected")
		}
	}
	waitAck := func(envelopeID string) json.RawMessage {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case ack := <-f.api.Acks():
				var a struct {
					EnvelopeID string `json:"envelope_id"`
				}
				if json.Unmarshal(ack, &a) == nil && a.EnvelopeID == envelopeID {
					return ack
				}
			case <-deadline:
				t.Fatalf("envelope %s was never acknowledged", envelopeID)
				return nil
			}
		}
	}
	waitConnected()
	send := func(env map[string]any) {
		t.Helper()
		if err := f.api.SendEnvelope(env); err != nil {
			t.Fatal(err)
		}
	}
	payload := json.RawMessage(callback("EvS1", channelMessage("C0OPS", "U0ALICE", "!echo socket", "1700000010.000100")))
	send(map[string]any{"envelope_id": "env-1", "type": "events_api", "accepts_response_payload": false, "retry_attempt": 0, "payload": payload})
	if m := f.got.next(t); m.Text != "echo socket" || m.Room != "ops" {
		t.Fatalf("message = %+v", m)
	}
	waitAck("env-1")

	// A slash command is acknowledged with the ephemeral answer.
	send(map[string]any{"envelope_id": "env-2", "type": "slash_commands", "accepts_response_payload": true, "payload": map[string]any{
		"channel_id": "C0OPS", "channel_name": "ops", "user_id": "U0ALICE", "command": "/logbook", "text": "echo slash", "trigger_id": "t-1",
	}})
	if m := f.got.next(t); m.Text != "echo slash" {
		t.Fatalf("message = %+v", m)
	}
	if ack := waitAck("env-2"); !strings.Contains(string(ack), "ephemeral") {
		t.Fatalf("slash ack = %s", ack)
	}

	// An event type the library does not know is acknowledged, not redelivered forever.
	send(map[string]any{"envelope_id": "env-3", "type": "events_api", "payload": json.RawMessage(callback("EvS3", map[string]any{"type": "no_such_event_type"}))})
	waitAck("env-3")

	// Slack drops the connection: the provider reconnects and goes on.
	f.api.DropSocket()
	waitConnected()
	payload = json.RawMessage(callback("EvS4", channelMessage("C0OPS", "U0ALICE", "!echo again", "1700000011.000100")))
	send(map[string]any{"envelope_id": "env-4", "type": "events_api", "payload": payload})
	if m := f.got.next(t); m.Text != "echo again" {
		t.Fatalf("after reconnecting: %+v", m)
	}
	waitAck("env-4")
}

var ops = dispatch.Destination{Kind: pipeline.DestinationRoom, Name: "ops"}

func TestPostCarriesMetadataAndThread(t *testing.T) {
	f := start(t, nil)
	part := chat.Part{RequestID: "req-1", Index: 1, Count: 3, Text: "a < b\nc", Thread: "1700000000.000001"}
	id, err := f.p.Post(context.Background(), ops, part)
	if err != nil {
		t.Fatal(err)
	}
	msgs := f.api.Messages()
	if len(msgs) != 1 {
		t.Fatalf("messages = %+v", msgs)
	}
	m := msgs[0]
	if m.TS != id || m.Channel != "C0OPS" || m.ThreadTS != part.Thread || m.Text != "```\na &lt; b\nc\n```" {
		t.Fatalf("posted %+v (id %s)", m, id)
	}
	if m.Metadata == nil || m.Metadata.EventType != metadataType || m.Metadata.EventPayload["request_id"] != "req-1" || m.Metadata.EventPayload["part"] != float64(1) {
		t.Fatalf("metadata = %+v", m.Metadata)
	}
}

func TestAFormattedPartIsPostedAsRenderedWithItsAttachments(t *testing.T) {
	f := start(t, nil)
	// Given a part rendered from a template: mrkdwn, and an attachment
	part := chat.Part{RequestID: "req-2", Count: 1, Formatted: true, Text: "*Instances:* 2\n```\na  b\n```",
		Attachments: []render.Attachment{{Color: "#008000", Title: "web", Text: "_running_", Fields: []render.Field{{Title: "Zone", Value: "eu-1a", Short: true}}}}}
	// When it is posted
	if _, err := f.p.Post(context.Background(), ops, part); err != nil {
		t.Fatal(err)
	}
	// Then the text is posted as it is, and the attachment keeps its colour,
	// with its text and fields read as mrkdwn
	m := f.api.Messages()[0]
	if m.Text != part.Text || len(m.Attachments) != 1 {
		t.Fatalf("posted %+v", m)
	}
	a := m.Attachments[0]
	if a.Color != "#008000" || a.Title != "web" || a.Text != "_running_" || len(a.Fields) != 1 || !a.Fields[0].Short || strings.Join(a.MarkdownIn, ",") != "text,pretext,fields" {
		t.Fatalf("attachment %+v", a)
	}
}

func TestAFormattedPartOfOnlyAttachmentsHasNoText(t *testing.T) {
	f := start(t, nil)
	part := chat.Part{RequestID: "req-3", Count: 1, Formatted: true, Attachments: []render.Attachment{{Title: "only"}}}
	if _, err := f.p.Post(context.Background(), ops, part); err != nil {
		t.Fatal(err)
	}
	if m := f.api.Messages()[0]; m.Text != "" || len(m.Attachments) != 1 {
		t.Fatalf("posted %+v", m)
	}
}

// handlerTransport serves requests with a handler in the caller's
// goroutine: no socket, so a test can run the provider inside a synctest
// bubble, where time is fake and passes only while everything waits.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// startInBubble runs the provider against api's handler without a socket.
// Call it inside synctest.Test; api is made outside (it listens).
func startInBubble(t *testing.T, api *slacktest.Server, mutate func(*Config)) *Provider {
	t.Helper()
	cfg := Config{BotToken: "xoxb-test", SigningSecret: secret, APIURL: api.APIURL(), PostInterval: time.Millisecond,
		HTTPClient: &http.Client{Transport: handlerTransport{api.Config.Handler}}}
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, newReceived().handle) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	<-p.ready
	return p
}

func newTestAPI(t *testing.T) *slacktest.Server {
	api := slacktest.New(
		[]slacktest.Channel{{ID: "C0OPS", Name: "ops", Member: true}, {ID: "C0RANDOM", Name: "random"}},
		[]slacktest.User{{ID: "U0ALICE", Name: "alice", RealName: "Alice Liddell"}},
	)
	t.Cleanup(api.Close)
	return api
}

// Given Slack answers a post with 429 and Retry-After: 1, when the part is
// posted, then the provider posts it again exactly one second later, once.
func TestPostWaitsOutA429(t *testing.T) {
	api := newTestAPI(t)
	synctest.Test(t, func(t *testing.T) {
		p := startInBubble(t, api, nil)
		api.Fail("chat.postMessage", slacktest.Failure{Status: 429, RetryAfter: time.Second})
		started := time.Now()
		if _, err := p.Post(context.Background(), ops, chat.Part{RequestID: "r", Text: "hi", Count: 1}); err != nil {
			t.Fatal(err)
		}
		msgs := api.Messages()
		if n := api.Calls("chat.postMessage"); n != 2 || len(msgs) != 1 {
			t.Fatalf("%d calls, %d messages; want 2 calls, 1 message", n, len(msgs))
		}
		if waited := msgs[0].At.Sub(started); waited != time.Second {
			t.Fatalf("posted again after %s, want the Retry-After of exactly 1s", waited)
		}
	})
}

// Given a pace of one post per 200 ms in a channel, when three parts go
// to it at once, then they are posted 200 ms apart.
func TestPostPacesOneChannel(t *testing.T) {
	api := newTestAPI(t)
	synctest.Test(t, func(t *testing.T) {
		p := startInBubble(t, api, func(c *Config) { c.PostInterval = 200 * time.Millisecond })
		for i := range 3 {
			if _, err := p.Post(context.Background(), ops, chat.Part{RequestID: "r", Index: i, Count: 3, Text: "x"}); err != nil {
				t.Fatal(err)
			}
		}
		msgs := api.Messages()
		if len(msgs) != 3 {
			t.Fatalf("%d messages, want 3", len(msgs))
		}
		for i := 1; i < len(msgs); i++ {
			if gap := msgs[i].At.Sub(msgs[i-1].At); gap != 200*time.Millisecond {
				t.Fatalf("posts %d and %d to one channel %s apart, want 200ms", i-1, i, gap)
			}
		}
	})
}

func TestPostErrorsSayWhetherToRetry(t *testing.T) {
	f := start(t, nil)
	part := chat.Part{RequestID: "r", Text: "hi", Count: 1}
	f.api.Fail("chat.postMessage", slacktest.Failure{Status: 503})
	if _, err := f.p.Post(context.Background(), ops, part); !errors.Is(err, chat.ErrRetry) {
		t.Fatalf("a 503: %v, want ErrRetry", err)
	}
	f.api.Fail("chat.postMessage", slacktest.Failure{SlackError: "channel_not_found"})
	if _, err := f.p.Post(context.Background(), ops, part); !errors.Is(err, chat.ErrUnknownRoom) || errors.Is(err, chat.ErrRetry) {
		t.Fatalf("channel_not_found: %v, want ErrUnknownRoom and no retry", err)
	}
	unknown := dispatch.Destination{Kind: pipeline.DestinationRoom, Name: "nowhere"}
	if _, err := f.p.Post(context.Background(), unknown, part); !errors.Is(err, chat.ErrUnknownRoom) {
		t.Fatalf("an unknown channel name: %v", err)
	}
	random := dispatch.Destination{Kind: pipeline.DestinationRoom, Name: "random"}
	if _, err := f.p.Post(context.Background(), random, part); !errors.Is(err, chat.ErrUnknownRoom) {
		t.Fatalf("a channel the bot is not in: %v", err)
	}
}

func TestAPartWhoseAnswerWasLostIsFound(t *testing.T) {
	f := start(t, nil)
	part := chat.Part{RequestID: "req-lost", Index: 0, Count: 2, Text: "landed"}
	attempt := time.Now()
	f.api.Fail("chat.postMessage", slacktest.Failure{DropAfterTaking: true})
	if _, err := f.p.Post(context.Background(), ops, part); !errors.Is(err, chat.ErrRetry) {
		t.Fatalf("a dropped connection: %v, want ErrRetry", err)
	}
	id, found, err := f.p.FindPart(context.Background(), ops, part, attempt)
	if err != nil || !found || id != f.api.Messages()[0].TS {
		t.Fatalf("FindPart = %q, %v, %v", id, found, err)
	}
	other := part
	other.Index = 1
	if _, found, _ := f.p.FindPart(context.Background(), ops, other, attempt); found {
		t.Fatal("found a part that was never posted")
	}
}

func TestOverlongOutputIsUploadedAsAFile(t *testing.T) {
	f := start(t, nil)
	text := strings.Repeat("a line of output\n", 2000)
	parts := chat.Plan("req-long", dispatch.Reply{Text: text}, f.p.Limits(), "http://logbook.test/runs/r1/transcript")
	if len(parts) != 1 || !parts[0].Attachment {
		t.Fatalf("plan = %d parts", len(parts))
	}
	id, err := f.p.Post(context.Background(), ops, parts[0])
	if err != nil {
		t.Fatal(err)
	}
	file, ok := f.api.File(id)
	if !ok || file.Content != text || file.Name != "logbook-req-long.txt" {
		t.Fatalf("file %s = %+v", id, file)
	}
	msgs := f.api.Messages()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "http://logbook.test/runs/r1/transcript") {
		t.Fatalf("the file's message = %+v", msgs)
	}
	if got, found, err := f.p.FindPart(context.Background(), ops, parts[0], time.Now().Add(-time.Minute)); err != nil || !found || got != id {
		t.Fatalf("FindPart(file) = %q, %v, %v", got, found, err)
	}
}

func TestADirectReplyGoesToTheIM(t *testing.T) {
	f := start(t, nil)
	me := dispatch.Destination{Kind: pipeline.DestinationUser, Name: "U0ALICE"}
	if _, err := f.p.Post(context.Background(), me, chat.Part{RequestID: "r", Text: "psst", Count: 1}); err != nil {
		t.Fatal(err)
	}
	if m := f.api.Messages()[0]; m.Channel != "D0ALICE" {
		t.Fatalf("posted to %s, want the IM D0ALICE", m.Channel)
	}
	nobody := dispatch.Destination{Kind: pipeline.DestinationUser, Name: "U0NOBODY"}
	if _, err := f.p.Post(context.Background(), nobody, chat.Part{RequestID: "r", Text: "psst", Count: 1}); !errors.Is(err, chat.ErrUnknownUser) {
		t.Fatalf("an unknown user: %v", err)
	}
}

func TestCanPostFollowsMembership(t *testing.T) {
	f := start(t, nil)
	random := dispatch.Destination{Kind: pipeline.DestinationRoom, Name: "random"}
	if !f.p.CanPost(ops) || f.p.CanPost(random) || f.p.CanPost(dispatch.Destination{Kind: pipeline.DestinationRoom, Name: "nowhere"}) {
		t.Fatal("CanPost does not follow conversations.list membership")
	}
	if !f.p.CanPost(dispatch.Destination{Kind: pipeline.DestinationUser, Name: "U0ALICE"}) {
		t.Fatal("a user can be messaged")
	}
	f.api.SetMember("C0RANDOM", true)
	joined := map[string]any{"type": "member_joined_channel", "user": "UBOTLOGBK", "channel": "C0RANDOM", "channel_type": "C"}
	f.deliver(t, "/slack/events", callback("EvJ", joined), time.Now(), nil)
	if !f.p.CanPost(random) {
		t.Fatal("after the bot joined #random it still cannot post there")
	}
}

func TestLookups(t *testing.T) {
	f := start(t, nil)
	ctx := context.Background()
	for _, name := range []string{"U0ALICE", "alice", "@alice", "Alice Liddell"} {
		u, err := f.p.LookupUser(ctx, name)
		if err != nil || u.Handle != "U0ALICE" {
			t.Fatalf("LookupUser(%q) = %+v, %v", name, u, err)
		}
	}
	if _, err := f.p.LookupUser(ctx, "mallory"); !errors.Is(err, chat.ErrUnknownUser) {
		t.Fatalf("LookupUser(mallory) = %v", err)
	}
	if r, err := f.p.LookupRoom(ctx, "#ops"); err != nil || r.ID != "C0OPS" || !r.Joined {
		t.Fatalf("LookupRoom(#ops) = %+v, %v", r, err)
	}
	if _, err := f.p.LookupRoom(ctx, "nowhere"); !errors.Is(err, chat.ErrUnknownRoom) {
		t.Fatalf("LookupRoom(nowhere) = %v", err)
	}
	if f.p.MentionName() != "@logbook" {
		t.Fatalf("MentionName = %s", f.p.MentionName())
	}
}

func TestARejectedTokenStopsRun(t *testing.T) {
	api := slacktest.New(nil, nil)
	defer api.Close()
	api.Fail("auth.test", slacktest.Failure{SlackError: "invalid_auth"})
	p, err := New(Config{BotToken: "xoxb-bad", SigningSecret: secret, APIURL: api.APIURL()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Run(ctx, newReceived().handle); err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "invalid_auth") {
		t.Fatalf("Run = %v, want an invalid_auth error at once", err)
	}
}

func TestPlainText(t *testing.T) {
	cases := map[string]string{
		"echo hi":                      "echo hi",
		"echo a &amp;&amp; b":          "echo a && b",
		"echo x &gt; <#C024BE7LR|ops>": "echo x > #ops",
		"echo x &gt; <#C024BE7LR>":     "echo x > #C024BE7LR",
		"echo &gt; <@U024BE7LH>":       "echo > @U024BE7LH",
		"curl <https://example.com/a?b=1&amp;c=2|example.com/a>": "curl https://example.com/a?b=1&c=2",
		"mail <mailto:bob@example.com|bob@example.com>":          "mail bob@example.com",
		"<!here> look":       "@here look",
		"a < b and no close": "a < b and no close",
	}
	for in, want := range cases {
		if got := PlainText(in); got != want {
			t.Errorf("PlainText(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzPlainText(f *testing.F) {
	for _, s := range []string{"echo &gt; <#C1|ops>", "<", "<>", "<|>", "&amp;lt;", "<!subteam^S1>", "<@U1|bob> hi"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := PlainText(s)
		if !strings.ContainsAny(s, "<&") && out != s {
			t.Fatalf("text without markup changed: %q → %q", s, out)
		}
		if len(out) > len(s)+1 { // only "<!here>" → "@here" style rewrites; never growth beyond a sigil
			t.Fatalf("PlainText grew %q into %q", s, out)
		}
	})
}

// FuzzEventsHandler: a signed body of any shape never panics the handler
// and is answered 200 or 400.
func FuzzEventsHandler(f *testing.F) {
	f.Add([]byte(`{"type":"url_verification","challenge":"c"}`))
	f.Add(callback("Ev", channelMessage("C0OPS", "U0ALICE", "!echo hi", "1.1")))
	f.Add([]byte(`{"type":"event_callback","event":{"type":"message","channel":{"id":1}}}`))
	f.Add([]byte(`{"type":"event_callback","event":null}`))
	f.Add([]byte(`[1,2`))
	p, err := New(Config{BotToken: "xoxb-x", SigningSecret: secret, APIURL: "http://127.0.0.1:1/api/"})
	if err != nil {
		f.Fatal(err)
	}
	p.handler = func(context.Context, chat.Message) error { return nil }
	h := p.EventsHandler()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/slack/events", bytes.NewReader(body))
		SignRequest(req, secret, body, time.Now())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 400 {
			t.Fatalf("status %d for %q", rec.Code, body)
		}
	})
}
