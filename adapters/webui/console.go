package webui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
)

// consoleRoom is the room console requests come from.
const consoleRoom = "console"

type consoleData struct {
	Entries []consoleEntry
}

func (ui *UI) consolePage(w http.ResponseWriter, r *http.Request, v *viewer) {
	ui.render(w, r, http.StatusOK, "console", page{Title: "Console", Section: "console", Viewer: v,
		Data: consoleData{Entries: v.Session.entries()}})
}

// submitted answers a script's console POST.
type submitted struct {
	RequestID string `json:"request_id"`
	Text      string `json:"text"`
}

// consoleSubmit records the typed command as a RequestReceived from
// provider "web", sent by the logged-in user (the dispatcher resolves a web
// request's handle as a username, as it does for the API). A script gets
// the request id back and follows it; a plain form goes to the request's
// page.
func (ui *UI) consoleSubmit(w http.ResponseWriter, r *http.Request, v *viewer) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	text := strings.TrimSpace(r.PostFormValue("text"))
	if text == "" {
		if wantsData(r) {
			http.Error(w, "type a command, such as !echo hello", http.StatusBadRequest)
			return
		}
		ui.fail(w, r, v, http.StatusBadRequest, "Type a command, such as !echo hello.")
		return
	}
	// The chat prefix is optional; "!!" becomes "!", which the dispatcher
	// reads as "run my previous request again".
	in := dispatch.RequestReceived{Adapter: "web", MessageID: uuid.NewString(), Room: consoleRoom, ChatUser: v.User.Username, Text: strings.TrimPrefix(text, "!")}
	id := dispatch.RequestID(in.Adapter, in.MessageID)
	reply := ui.cfg.Requests.WaitForReply(id)
	if _, err := ui.cfg.Requests.Receive(r.Context(), in, v.User.Username); err != nil {
		ui.cfg.Logger.Error().Err(err).Str("request_id", id).Str("user", v.User.Username).Msg("recording a console request")
		if wantsData(r) {
			http.Error(w, "the request could not be recorded: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		ui.fail(w, r, v, http.StatusServiceUnavailable, "The request could not be recorded: "+err.Error())
		return
	}
	ui.cfg.Logger.Info().Str("request_id", id).Str("user", v.User.Username).Msg("console request recorded")
	v.Session.remember(consoleEntry{RequestID: id, Text: text, At: ui.cfg.Now()}, reply)
	if wantsData(r) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(submitted{RequestID: id, Text: text})
		return
	}
	http.Redirect(w, r, "/requests/"+id, http.StatusSeeOther)
}

// Server-Sent Event names of a followed console request.
const (
	eventRun    = "run"     // a run was requested: {run_id, command, stage}
	eventChunk  = "chunk"   // output: {run_id, seq, stream, text}
	eventRunEnd = "run_end" // a run ended: {run_id, status}
	eventReply  = "reply"   // the reply: {text, failed}
	eventEnd    = "end"     // the request ended: {status}
)

type sseMessage struct {
	Event string
	Data  any
}

type runStarted struct {
	RunID   string `json:"run_id"`
	Command string `json:"command"`
	Stage   int    `json:"stage"`
}

type chunkOut struct {
	RunID  string `json:"run_id"`
	Seq    int64  `json:"seq"`
	Stream string `json:"stream"`
	Text   string `json:"text"`
}

type runEnded struct {
	RunID  string `json:"run_id"`
	Status string `json:"status"`
}

type replyOut struct {
	Text   string `json:"text"`
	Failed bool   `json:"failed"`
}

type requestEnded struct {
	RequestID string `json:"request_id"`
	Status    string `json:"status"`
}

// requestFollower folds a request's events and its runs' events, in the
// order they are read, into what the console shows: runs as they start,
// their output as it arrives, how each ended, and, once the request has
// ended, the reply the dispatcher computes from the same events.
type requestFollower struct {
	requestID string
	runPrefix string
	// req is the request with every event but ReplyPosted folded in, so
	// that PendingReply renders the reply even after it was posted.
	req  dispatch.Request
	runs map[string]bool
}

func newRequestFollower(requestID string) *requestFollower {
	return &requestFollower{requestID: requestID, runPrefix: run.Stream(requestID + "-s"), runs: map[string]bool{}}
}

// concerns reports whether an event of stream belongs to the request.
func (f *requestFollower) concerns(stream string) bool {
	return stream == dispatch.Stream(f.requestID) || strings.HasPrefix(stream, f.runPrefix)
}

// apply folds one event and returns what to send.
func (f *requestFollower) apply(e domain.RecordedEvent) ([]sseMessage, error) {
	if !f.concerns(e.Stream) {
		return nil, nil
	}
	p, err := domain.Decode(e)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", f.requestID, err)
	}
	if e.Stream == dispatch.Stream(f.requestID) {
		if _, posted := p.(dispatch.ReplyPosted); !posted {
			f.req = dispatch.Evolve(f.req, p)
		}
		return nil, nil
	}
	runID := strings.TrimPrefix(e.Stream, run.StreamPrefix)
	f.req = dispatch.Evolve(f.req, dispatch.RunEvent{RunID: runID, Event: p})
	switch p := p.(type) {
	case run.RunRequested:
		if f.runs[runID] {
			return nil, nil
		}
		f.runs[runID] = true
		return []sseMessage{{eventRun, runStarted{RunID: runID, Command: p.Bundle + ":" + p.Command, Stage: p.Stage}}}, nil
	case run.OutputChunk:
		return []sseMessage{{eventChunk, chunkOut{RunID: runID, Seq: p.Seq, Stream: string(p.Stream), Text: displayText(p.Bytes)}}}, nil
	default:
		if status := terminalStatus(p); status != "" {
			return []sseMessage{{eventRunEnd, runEnded{RunID: runID, Status: status}}}, nil
		}
	}
	return nil, nil
}

// ended reports whether the request has ended.
func (f *requestFollower) ended() bool { return f.req.Status().Ended() }

// reply is the reply the request's end calls for.
func (f *requestFollower) reply() (dispatch.Reply, bool) { return f.req.PendingReply() }

// displayText shows bytes as text: invalid UTF-8 becomes U+FFFD; the exact
// bytes stay in the store and behind the API.
func displayText(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// replyGrace is how long the console waits for the dispatcher's reply
// (which carries a secret the log never holds, such as a new token) after
// the log says the request ended, before it renders the reply from the log.
const replyGrace = 3 * time.Second

// consoleEvents streams one request as Server-Sent Events: for a request
// still going, each run's output as it is appended (the store's change
// signal wakes the feed; nothing polls), then the reply; for one that has
// ended, the same messages at once.
func (ui *UI) consoleEvents(w http.ResponseWriter, r *http.Request, v *viewer) {
	id := r.PathValue("id")
	ctx := r.Context()
	if _, err := uuid.Parse(id); err != nil {
		http.Error(w, "no request "+id, http.StatusNotFound)
		return
	}
	stream := dispatch.Stream(id)
	first, err := ui.cfg.Events.ReadStream(ctx, stream, 0, 1)
	if err != nil {
		http.Error(w, "reading the event store: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	if len(first) == 0 {
		http.Error(w, "no request "+id, http.StatusNotFound)
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	send := func(msgs []sseMessage) error {
		for _, m := range msgs {
			data, err := json.Marshal(m.Data)
			if err != nil {
				return err
			}
			if _, err := io.WriteString(w, "event: "+m.Event+"\ndata: "+string(data)+"\n\n"); err != nil {
				return err
			}
		}
		return rc.Flush()
	}
	f := newRequestFollower(id)
	feed := ui.replay
	if !ui.alreadyEnded(ctx, id) {
		feed = func(ctx context.Context, _ string, yield func(domain.RecordedEvent) error) error {
			return ui.follow(ctx, first[0].Position, f, yield)
		}
	}
	err = feed(ctx, id, func(e domain.RecordedEvent) error {
		msgs, err := f.apply(e)
		if err != nil {
			return err
		}
		if err := send(msgs); err != nil {
			return err
		}
		if f.ended() {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		if ctx.Err() == nil {
			ui.cfg.Logger.Error().Err(err).Str("request_id", id).Msg("following a console request")
		}
		return
	}
	if !f.ended() {
		return
	}
	reply, ok := f.reply()
	if ch := v.Session.replyChannel(id); ch != nil {
		select {
		case posted := <-ch:
			reply, ok = posted, true
			v.Session.forgetReply(id)
		case <-time.After(replyGrace):
		case <-ctx.Done():
			return
		}
	}
	var msgs []sseMessage
	if ok {
		msgs = append(msgs, sseMessage{eventReply, replyOut{Text: reply.Text, Failed: reply.Failed}})
	}
	_ = send(append(msgs, sseMessage{eventEnd, requestEnded{RequestID: id, Status: string(f.req.Status())}}))
}

// errStop ends a feed early: the request has ended.
var errStop = errors.New("stop")

// alreadyEnded reports whether the request's stream says it has ended.
func (ui *UI) alreadyEnded(ctx context.Context, id string) bool {
	events, err := readStream(ctx, ui.cfg.Events, dispatch.Stream(id))
	if err != nil {
		return false
	}
	var req dispatch.Request
	for _, e := range events {
		if p, err := domain.Decode(e); err == nil {
			req = dispatch.Evolve(req, p)
		}
	}
	return req.Status().Ended()
}

// replay feeds an ended request's events: its stream, then each run's.
func (ui *UI) replay(ctx context.Context, id string, yield func(domain.RecordedEvent) error) error {
	events, err := readStream(ctx, ui.cfg.Events, dispatch.Stream(id))
	if err != nil {
		return err
	}
	var runs []string
	for _, e := range events {
		if p, err := domain.Decode(e); err == nil {
			if s, ok := p.(dispatch.StageStarted); ok {
				runs = append(runs, s.RunID)
			}
		}
	}
	// The request's own events first: its end is then known before the
	// runs are read, so stop only after the last run.
	var runEvents []domain.RecordedEvent
	for _, runID := range runs {
		more, err := readStream(ctx, ui.cfg.Events, run.Stream(runID))
		if err != nil {
			return err
		}
		runEvents = append(runEvents, more...)
	}
	for _, e := range append(runEvents, events...) {
		if err := yield(e); err != nil {
			return err
		}
	}
	return nil
}

// follow feeds the log from the request's first event on, as it grows.
func (ui *UI) follow(ctx context.Context, from int64, f *requestFollower, yield func(domain.RecordedEvent) error) error {
	for e, err := range eventstore.Follow(ctx, ui.cfg.Events, from, eventstore.FeedOptions{}) {
		if err != nil {
			return err
		}
		if !f.concerns(e.Stream) {
			continue
		}
		if err := yield(e); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// readStream reads a whole stream.
func readStream(ctx context.Context, store eventstore.Store, stream string) ([]domain.RecordedEvent, error) {
	var out []domain.RecordedEvent
	for from := int64(0); ; {
		events, err := store.ReadStream(ctx, stream, from, 500)
		if err != nil {
			return nil, err
		}
		out = append(out, events...)
		if len(events) < 500 {
			return out, nil
		}
		from = events[len(events)-1].Version + 1
	}
}
