// Package slacktest plays Slack's Web API and Socket Mode on a local HTTP
// server, for tests and benchmarks of the Slack provider: auth.test,
// conversations.list/info/open/history/replies, users.info/list,
// chat.postMessage (with metadata), the files.uploadV2 flow,
// apps.connections.open and a Socket Mode websocket. Failures can be
// scripted per method: a 429 with Retry-After, a Slack error code, a 5xx,
// or a connection dropped after the message was taken.
package slacktest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Bot identity the server answers auth.test with.
const (
	BotUserID = "UBOTLOGBK"
	BotName   = "logbook"
)

// Channel is a channel the server knows.
type Channel struct {
	ID, Name string
	Member   bool
}

// User is a user the server knows.
type User struct {
	ID, Name, RealName string
}

// Message is a message posted to the server (chat.postMessage, or a file
// shared by files.completeUploadExternal).
type Message struct {
	Channel     string
	TS          string
	Text        string
	ThreadTS    string
	Attachments []Attachment // legacy attachments, as chat.postMessage took them
	Metadata    *Metadata
	File        *File
	// Blocks are the message's Block Kit blocks, as chat.postMessage took
	// them.
	Blocks json.RawMessage
	At     time.Time // when the server received it
}

// Button is an interactive button of a posted message.
type Button struct {
	ActionID, Value, Text, Style string
}

// Buttons lists the buttons of the message's actions blocks.
func (m Message) Buttons() []Button {
	var blocks []struct {
		Type     string `json:"type"`
		Elements []struct {
			Type     string `json:"type"`
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
			Style    string `json:"style"`
			Text     struct {
				Text string `json:"text"`
			} `json:"text"`
		} `json:"elements"`
	}
	if len(m.Blocks) == 0 || json.Unmarshal(m.Blocks, &blocks) != nil {
		return nil
	}
	var out []Button
	for _, b := range blocks {
		for _, e := range b.Elements {
			if b.Type == "actions" && e.Type == "button" {
				out = append(out, Button{ActionID: e.ActionID, Value: e.Value, Text: e.Text.Text, Style: e.Style})
			}
		}
	}
	return out
}

// BlockAction is the interaction payload Slack sends when user clicks
// button on message (block_actions), for Socket Mode (SendInteraction)
// or the interactivity request URL (form field "payload").
func BlockAction(user string, message Message, button Button, at time.Time) map[string]any {
	ts := fmt.Sprintf("%d.%06d", at.Unix(), at.Nanosecond()/1000)
	return map[string]any{
		"type":       "block_actions",
		"trigger_id": "trigger-" + ts,
		"user":       map[string]any{"id": user},
		"team":       map[string]any{"id": "T0LOGBOOK"},
		"channel":    map[string]any{"id": message.Channel},
		"container":  map[string]any{"type": "message", "message_ts": message.TS, "channel_id": message.Channel, "thread_ts": message.ThreadTS},
		"message":    map[string]any{"type": "message", "ts": message.TS, "text": message.Text},
		"actions": []map[string]any{{
			"type": "button", "action_id": button.ActionID, "block_id": "logbook_approval", "value": button.Value,
			"text": map[string]any{"type": "plain_text", "text": button.Text}, "action_ts": ts,
		}},
	}
}

// SendInteraction sends an interaction payload over Socket Mode, as an
// "interactive" envelope, and returns its envelope id.
func (s *Server) SendInteraction(payload map[string]any) (string, error) {
	id := fmt.Sprintf("env-interactive-%d", time.Now().UnixNano())
	return id, s.SendEnvelope(map[string]any{"envelope_id": id, "type": "interactive", "accepts_response_payload": false, "payload": payload})
}

// Attachment is a message's legacy attachment.
type Attachment struct {
	Color      string            `json:"color"`
	Title      string            `json:"title"`
	TitleLink  string            `json:"title_link"`
	Pretext    string            `json:"pretext"`
	Text       string            `json:"text"`
	Fallback   string            `json:"fallback"`
	Fields     []AttachmentField `json:"fields"`
	MarkdownIn []string          `json:"mrkdwn_in"`
}

// AttachmentField is an attachment's field.
type AttachmentField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

// Metadata is a message's metadata.
type Metadata struct {
	EventType    string         `json:"event_type"`
	EventPayload map[string]any `json:"event_payload"`
}

// File is an uploaded file.
type File struct {
	ID, Name, Title, Content string
}

// Failure scripts how the server answers one call of a method.
type Failure struct {
	Status     int           // an HTTP status (429, 500…); 0 for 200
	RetryAfter time.Duration // with 429
	SlackError string        // {"ok": false, "error": …} with 200
	// DropAfterTaking keeps the message (chat.postMessage) and then drops
	// the connection without answering: the poster cannot know it landed.
	DropAfterTaking bool
}

// Server is the fake Slack.
type Server struct {
	*httptest.Server
	mu       sync.Mutex
	channels []Channel
	users    []User
	messages []Message
	files    map[string]*File
	failures map[string][]Failure
	calls    map[string]int
	nextTS   int64
	posted   chan Message
	socket   *websocket.Conn
	socketMu sync.Mutex
	acks     chan json.RawMessage
	connects chan struct{}
}

// New starts a server knowing the channels and users given. Posted
// messages are also sent on Posted() (buffered; a full buffer drops).
func New(channels []Channel, users []User) *Server {
	s := &Server{
		channels: channels, users: users, files: map[string]*File{},
		failures: map[string][]Failure{}, calls: map[string]int{},
		nextTS: time.Now().Unix() * 1_000_000, posted: make(chan Message, 4096),
		acks: make(chan json.RawMessage, 1024), connects: make(chan struct{}, 16),
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// APIURL is the base URL to give the Slack client (OptionAPIURL).
func (s *Server) APIURL() string { return s.URL + "/api/" }

// Posted delivers each message as it is posted.
func (s *Server) Posted() <-chan Message { return s.posted }

// Messages are the messages posted so far, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Calls says how many times a method was called.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Fail scripts the next calls of a method, one failure each.
func (s *Server) Fail(method string, failures ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[method] = append(s.failures[method], failures...)
}

// SetMember changes whether the bot is in a channel.
func (s *Server) SetMember(channelID string, member bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.channels {
		if s.channels[i].ID == channelID {
			s.channels[i].Member = member
		}
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/socket" {
		s.serveSocket(w, r)
		return
	}
	if id, ok := strings.CutPrefix(r.URL.Path, "/upload/"); ok {
		s.serveUpload(w, r, id)
		return
	}
	method, ok := strings.CutPrefix(r.URL.Path, "/api/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if err := parseForm(r); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.calls[method]++
	var failure *Failure
	if queue := s.failures[method]; len(queue) > 0 {
		failure = &queue[0]
		s.failures[method] = queue[1:]
	}
	s.mu.Unlock()
	if failure != nil && !failure.DropAfterTaking {
		switch {
		case failure.Status == http.StatusTooManyRequests:
			w.Header().Set("Retry-After", strconv.Itoa(max(int(failure.RetryAfter.Seconds()), 1)))
			w.WriteHeader(http.StatusTooManyRequests)
			return
		case failure.Status != 0:
			w.WriteHeader(failure.Status)
			return
		case failure.SlackError != "":
			writeJSON(w, map[string]any{"ok": false, "error": failure.SlackError})
			return
		}
	}
	answer := s.answer(method, r)
	if failure != nil && failure.DropAfterTaking {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
	}
	writeJSON(w, answer)
}

func parseForm(r *http.Request) error {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		r.Form = map[string][]string{}
		for k, v := range body {
			switch v := v.(type) {
			case string:
				r.Form.Set(k, v)
			default:
				b, _ := json.Marshal(v)
				r.Form.Set(k, string(b))
			}
		}
		return nil
	}
	return r.ParseForm()
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) answer(method string, r *http.Request) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := func(fields map[string]any) map[string]any {
		fields["ok"] = true
		return fields
	}
	switch method {
	case "auth.test":
		return ok(map[string]any{"user_id": BotUserID, "user": BotName, "team": "Logbook Test", "team_id": "T0LOGBOOK", "bot_id": "B0LOGBOOK"})
	case "apps.connections.open":
		return ok(map[string]any{"url": "ws" + strings.TrimPrefix(s.URL, "http") + "/socket"})
	case "conversations.list":
		var list []map[string]any
		for _, c := range s.channels {
			list = append(list, channelJSON(c))
		}
		return ok(map[string]any{"channels": list, "response_metadata": map[string]any{"next_cursor": ""}})
	case "conversations.info":
		for _, c := range s.channels {
			if c.ID == r.Form.Get("channel") {
				return ok(map[string]any{"channel": channelJSON(c)})
			}
		}
		return map[string]any{"ok": false, "error": "channel_not_found"}
	case "conversations.open":
		user := r.Form.Get("users")
		if s.user(user) == nil {
			return map[string]any{"ok": false, "error": "user_not_found"}
		}
		return ok(map[string]any{"channel": map[string]any{"id": "D" + strings.TrimPrefix(user, "U"), "is_im": true}})
	case "users.info":
		if u := s.user(r.Form.Get("user")); u != nil {
			return ok(map[string]any{"user": userJSON(*u)})
		}
		return map[string]any{"ok": false, "error": "user_not_found"}
	case "users.list":
		var list []map[string]any
		for _, u := range s.users {
			list = append(list, userJSON(u))
		}
		return ok(map[string]any{"members": list, "response_metadata": map[string]any{"next_cursor": ""}})
	case "chat.postMessage":
		channel := r.Form.Get("channel")
		if !s.canPost(channel) {
			return map[string]any{"ok": false, "error": "channel_not_found"}
		}
		m := Message{Channel: channel, Text: r.Form.Get("text"), ThreadTS: r.Form.Get("thread_ts")}
		if md := r.Form.Get("metadata"); md != "" {
			m.Metadata = &Metadata{}
			if err := json.Unmarshal([]byte(md), m.Metadata); err != nil {
				return map[string]any{"ok": false, "error": "invalid_metadata_format"}
			}
		}
		if b := r.Form.Get("blocks"); b != "" {
			if !json.Valid([]byte(b)) {
				return map[string]any{"ok": false, "error": "invalid_blocks"}
			}
			m.Blocks = json.RawMessage(b)
		}
		if a := r.Form.Get("attachments"); a != "" {
			if err := json.Unmarshal([]byte(a), &m.Attachments); err != nil {
				return map[string]any{"ok": false, "error": "invalid_attachments"}
			}
		}
		if m.Text == "" && len(m.Attachments) == 0 {
			return map[string]any{"ok": false, "error": "no_text"}
		}
		if len(m.Text) > 40000 {
			return map[string]any{"ok": false, "error": "msg_too_long"}
		}
		m = s.record(m)
		return ok(map[string]any{"channel": channel, "ts": m.TS})
	case "conversations.history", "conversations.replies":
		return ok(s.history(r.Form.Get("channel"), r.Form.Get("ts"), r.Form.Get("oldest"), method == "conversations.replies"))
	case "files.getUploadURLExternal":
		id := fmt.Sprintf("F%06d", len(s.files)+1)
		s.files[id] = &File{ID: id, Name: r.Form.Get("filename")}
		return ok(map[string]any{"upload_url": s.URL + "/upload/" + id, "file_id": id})
	case "files.completeUploadExternal":
		var files []struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		}
		if err := json.Unmarshal([]byte(r.Form.Get("files")), &files); err != nil || len(files) != 1 || s.files[files[0].ID] == nil {
			return map[string]any{"ok": false, "error": "invalid_arguments"}
		}
		f := s.files[files[0].ID]
		f.Title = files[0].Title
		channel := r.Form.Get("channel_id")
		if !s.canPost(channel) {
			return map[string]any{"ok": false, "error": "channel_not_found"}
		}
		copied := *f
		s.record(Message{Channel: channel, Text: r.Form.Get("initial_comment"), ThreadTS: r.Form.Get("thread_ts"), File: &copied})
		return ok(map[string]any{"files": []map[string]any{{"id": f.ID, "title": f.Title}}})
	}
	return map[string]any{"ok": false, "error": "unknown_method"}
}

// record keeps a message; the caller holds s.mu. Its ts is when it was
// posted, in microseconds, as Slack's is (and unique), so that a search of
// the history from a time on (oldest) finds what was posted since.
func (s *Server) record(m Message) Message {
	s.nextTS = max(s.nextTS+1, time.Now().UnixMicro())
	m.TS = fmt.Sprintf("%d.%06d", s.nextTS/1_000_000, s.nextTS%1_000_000)
	m.At = time.Now()
	s.messages = append(s.messages, m)
	select {
	case s.posted <- m:
	default:
	}
	return m
}

func (s *Server) canPost(channel string) bool {
	if strings.HasPrefix(channel, "D") {
		return true
	}
	for _, c := range s.channels {
		if c.ID == channel {
			return c.Member
		}
	}
	return false
}

func (s *Server) user(id string) *User {
	for i := range s.users {
		if s.users[i].ID == id {
			return &s.users[i]
		}
	}
	return nil
}

func (s *Server) history(channel, thread, oldest string, replies bool) map[string]any {
	var msgs []map[string]any
	for _, m := range s.messages {
		if m.Channel != channel || (oldest != "" && m.TS < oldest) {
			continue
		}
		if replies && m.ThreadTS != thread && m.TS != thread {
			continue
		}
		out := map[string]any{"type": "message", "ts": m.TS, "text": m.Text, "user": BotUserID, "bot_id": "B0LOGBOOK"}
		if m.ThreadTS != "" {
			out["thread_ts"] = m.ThreadTS
		}
		if m.Metadata != nil {
			out["metadata"] = m.Metadata
		}
		if m.File != nil {
			out["files"] = []map[string]any{{"id": m.File.ID, "name": m.File.Name, "title": m.File.Title}}
		}
		msgs = append(msgs, out)
	}
	if !replies { // history is newest first
		for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
			msgs[i], msgs[j] = msgs[j], msgs[i]
		}
	}
	return map[string]any{"messages": msgs, "has_more": false}
}

func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request, id string) {
	file, _, err := r.FormFile("file")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	defer file.Close()
	data, _ := io.ReadAll(file)
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.files[id]
	if f == nil {
		http.NotFound(w, r)
		return
	}
	f.Content = string(data)
	w.WriteHeader(http.StatusOK)
}

// Files are the uploaded files by id.
func (s *Server) File(id string) (File, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[id]
	if !ok {
		return File{}, false
	}
	return *f, true
}

func channelJSON(c Channel) map[string]any {
	return map[string]any{"id": c.ID, "name": c.Name, "is_channel": true, "is_member": c.Member}
}

func userJSON(u User) map[string]any {
	return map[string]any{"id": u.ID, "name": u.Name, "real_name": u.RealName, "profile": map[string]any{"display_name": u.Name, "real_name": u.RealName}}
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// serveSocket is Socket Mode's websocket: it says hello, pings, and keeps
// the acknowledgements the client sends.
func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.socketMu.Lock()
	s.socket = conn
	_ = conn.WriteJSON(map[string]any{"type": "hello", "num_connections": 1})
	s.socketMu.Unlock()
	select {
	case s.connects <- struct{}{}:
	default:
	}
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				s.socketMu.Lock()
				err := conn.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second))
				s.socketMu.Unlock()
				if err != nil {
					return
				}
			}
		}
	}()
	defer close(stop)
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		select {
		case s.acks <- json.RawMessage(data):
		default:
		}
	}
}

// SocketConnected delivers once per Socket Mode connection.
func (s *Server) SocketConnected() <-chan struct{} { return s.connects }

// Acks delivers what the client sends back over Socket Mode.
func (s *Server) Acks() <-chan json.RawMessage { return s.acks }

// SendEnvelope sends a Socket Mode envelope ({"envelope_id", "type",
// "payload", …}) to the connected client.
func (s *Server) SendEnvelope(envelope any) error {
	s.socketMu.Lock()
	defer s.socketMu.Unlock()
	if s.socket == nil {
		return fmt.Errorf("slacktest: no Socket Mode client is connected")
	}
	return s.socket.WriteJSON(envelope)
}

// SendRaw sends bytes as they are over Socket Mode (malformed payloads).
func (s *Server) SendRaw(data []byte) error {
	s.socketMu.Lock()
	defer s.socketMu.Unlock()
	if s.socket == nil {
		return fmt.Errorf("slacktest: no Socket Mode client is connected")
	}
	return s.socket.WriteMessage(websocket.TextMessage, data)
}

// DropSocket closes the Socket Mode connection, as Slack does when it
// refreshes one.
func (s *Server) DropSocket() {
	s.socketMu.Lock()
	defer s.socketMu.Unlock()
	if s.socket != nil {
		s.socket.Close()
		s.socket = nil
	}
}
