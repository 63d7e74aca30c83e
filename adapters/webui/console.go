package webui

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/template/render"
	"github.com/logbookhq/logbook/projections"
)

// consoleRoom is the room console requests come from.
const consoleRoom = "console"

type consoleData struct {
	Entries []consoleEntryView
}

// consoleEntryView is a command of the scrollback and whether it has
// ended, so the page replays the ended ones at once and never queues
// them behind one still running.
type consoleEntryView struct {
	ConsoleCommand
	Ended bool
}

func (ui *UI) consolePage(w http.ResponseWriter, r *http.Request, v *viewer) {
	var data consoleData
	entries, err := ui.sessions.scrollback(r.Context(), v.Session)
	if err != nil {
		ui.unavailable(w, r, v, "reading the console's history", err)
		return
	}
	if len(entries) > 0 {
		// A lagging view only costs the replay its order: a command it
		// has not seen end is followed as one that runs.
		_ = ui.catchUp(r.Context(), "history")
	}
	for _, e := range entries {
		row, err := ui.cfg.History.Request(r.Context(), e.RequestID)
		// A request the view has not seen yet, or a failed read, is
		// followed as one that runs: its stream says how it ends.
		ended := err == nil && slices.Contains(endedStatuses, row.Status)
		data.Entries = append(data.Entries, consoleEntryView{ConsoleCommand: e, Ended: ended})
	}
	ui.render(w, r, http.StatusOK, "console", page{Title: "Console", Section: "console", Viewer: v, Data: data})
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
	in := dispatch.RequestReceived{Adapter: "web", Room: consoleRoom, ChatUser: v.User.Username,
		Text: strings.TrimPrefix(text, "!"), Sender: v.User.Username}.WithFreshMessageID()
	id := in.ID()
	// The wait outlives this POST: the console's stream takes the reply,
	// which may carry a secret the log never holds. It ends when the
	// session forgets the request, ends, or the UI shuts down, and at the
	// latest after consoleReplyWait.
	waiting, stopWaiting := context.WithTimeout(ui.streams, consoleReplyWait)
	_, replies, err := ui.cfg.Requests.ReceiveAndWait(r.Context(), waiting, in, v.User.Username)
	if err != nil {
		stopWaiting()
		ui.cfg.Logger.Error().Err(err).Str("request_id", id).Str("user", v.User.Username).Msg("recording a console request")
		if wantsData(r) {
			http.Error(w, "the request could not be recorded: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		ui.fail(w, r, v, http.StatusServiceUnavailable, "The request could not be recorded: "+err.Error())
		return
	}
	ui.cfg.Logger.Info().Str("request_id", id).Str("user", v.User.Username).Msg("console request recorded")
	ui.sessions.waits.add(v.Session.id, id, waiting, replies, stopWaiting)
	// The request is recorded whatever happens here; a scrollback that
	// cannot be written only leaves it out of the console's history.
	if err := ui.sessions.remember(r.Context(), v.Session, ConsoleCommand{RequestID: id, Text: text, At: ui.cfg.Now()}); err != nil {
		ui.cfg.Logger.Error().Err(err).Str("request_id", id).Str("user", v.User.Username).Msg("remembering a console command")
	}
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
	// eventWait: the request waits, for approval or for a quota: {text},
	// a sentence saying for what.
	eventWait = "wait"
	eventEnd  = "end" // the request ended: {status}
)

type sseMessage struct {
	Event string
	Data  any
}

type runStarted struct {
	RunID   string `json:"run_id"`
	Command string `json:"command"`
	Stage   int    `json:"stage"`
	// Invocation is the run's place among its stage's parallel
	// invocations (the run id's -i<n>), so each shows on its own, in
	// order.
	Invocation int `json:"invocation"`
}

// invocationOf reads the invocation index from a run id (...-s<stage>-i<n>).
func invocationOf(runID string) int {
	i := strings.LastIndex(runID, "-i")
	if i < 0 {
		return 0
	}
	n, err := strconv.Atoi(runID[i+2:])
	if err != nil {
		return 0
	}
	return n
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
	// HTML is the reply rendered for the web by its templates, when the
	// dispatcher posted it: console.js shows it in place of Text.
	HTML string `json:"html,omitempty"`
}

func replyOutOf(r dispatch.Reply) replyOut {
	out := replyOut{Text: r.Text, Failed: r.Failed}
	if r.Rendered != nil && r.Rendered.Format == render.FormatHTML {
		out.HTML = r.Rendered.Text
	}
	return out
}

type waitOut struct {
	Text string `json:"text"`
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
		return f.waiting(p), nil
	}
	runID := strings.TrimPrefix(e.Stream, run.StreamPrefix)
	f.req = dispatch.Evolve(f.req, dispatch.RunEvent{RunID: runID, Event: p})
	switch p := p.(type) {
	case run.RunRequested:
		if f.runs[runID] {
			return nil, nil
		}
		f.runs[runID] = true
		return []sseMessage{{eventRun, runStarted{RunID: runID, Command: p.Bundle + ":" + p.Command, Stage: p.Stage, Invocation: invocationOf(runID)}}}, nil
	case run.OutputChunk:
		return []sseMessage{{eventChunk, chunkOut{RunID: runID, Seq: p.Seq, Stream: string(p.Stream), Text: displayText(p.Bytes)}}}, nil
	default:
		if status := projections.TerminalRunStatus(p); status != "" {
			return []sseMessage{{eventRunEnd, runEnded{RunID: runID, Status: status}}}, nil
		}
	}
	return nil, nil
}

// waiting says, after an event of the request's stream, what it waits
// for: approval (and who may give it), or room under a quota.
func (f *requestFollower) waiting(p domain.Payload) []sseMessage {
	switch p.(type) {
	case dispatch.ApprovalRequested, dispatch.ApprovalGranted:
		a := f.req.Approval()
		if !a.Pending() {
			return nil
		}
		text := "awaiting approval: it needs " + a.Needs() + " (" + a.Progress() + ")"
		if len(a.Requested.Approvers) > 0 {
			text += "; " + strings.Join(a.Requested.Approvers, ", ") + " may approve"
		}
		return []sseMessage{{eventWait, waitOut{Text: text + "; it expires at " + a.Requested.ExpiresAt.UTC().Format("15:04:05 UTC")}}}
	case dispatch.QuotaWaiting:
		if q, ok := f.req.Queued(); ok {
			return []sseMessage{{eventWait, waitOut{Text: "queued: " + q.Sentence() + "; it waits until " + q.Until.UTC().Format("15:04:05 UTC")}}}
		}
	}
	return nil
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

// consoleReplyWait bounds how long the console keeps waiting for the
// posted reply of a request it sent; past it, the console shows the reply
// rendered from the log.
const consoleReplyWait = time.Hour

// replyGrace is how long the console waits for the dispatcher's reply
// (which carries a secret the log never holds, such as a new token) after
// the log says the request ended, before it renders the reply from the log.
const replyGrace = 3 * time.Second

// consoleEvents streams one request as Server-Sent Events: for a request
// still going, each run's output as it is appended (the hub hands the
// request's and its runs' events over; nothing polls), then the reply; for
// one that has ended, the same messages at once.
func (ui *UI) consoleEvents(w http.ResponseWriter, r *http.Request, v *viewer) {
	id := r.PathValue("id")
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(ui.streams, cancel)()
	if _, err := uuid.Parse(id); err != nil {
		http.Error(w, "no request "+id, http.StatusNotFound)
		return
	}
	ok, err := ui.mayRead(ctx, v, id, httpapi.RequestOwner)
	if err != nil {
		http.Error(w, "reading the event store: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	// Another user's request streams nothing: it is answered as one that
	// does not exist, as on every surface.
	if !ok {
		http.Error(w, "no request "+id, http.StatusNotFound)
		return
	}
	stream, ok := ui.openStream(ctx, cancel, w)
	if !ok {
		return
	}
	defer stream.close()
	send := stream.send
	f := newRequestFollower(id)
	err = ui.feedRequest(ctx, id, true, func(e domain.RecordedEvent) error {
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
	if ch := ui.sessions.waits.channel(v.Session.id, id); ch != nil {
		select {
		case posted := <-ch:
			reply, ok = posted, true
			ui.sessions.waits.forget(v.Session.id, id)
		case <-time.After(replyGrace):
		case <-ctx.Done():
			return
		}
	}
	var msgs []sseMessage
	if ok {
		msgs = append(msgs, sseMessage{eventReply, replyOutOf(reply)})
	}
	_ = send(append(msgs, sseMessage{eventEnd, requestEnded{RequestID: id, Status: string(f.req.Status())}}))
}

// errStop ends a feed early: the request has ended.
var errStop = errors.New("stop")

// feedRequest yields a request's events and its runs' events: what is
// stored now, then, when live, each one as it is appended, until yield
// stops it. Stored, they come in log order, each run's read by stream up to
// the head read first. Live, the hub hands over the request's events and,
// from its StageStarted on, each run's, its stored events first; nothing is
// sent twice and nothing is missed, whatever commit each landed in.
func (ui *UI) feedRequest(ctx context.Context, id string, live bool, yield func(domain.RecordedEvent) error) error {
	if live {
		return ui.followRequest(ctx, id, yield)
	}
	head, _, err := ui.cfg.Events.Head(ctx)
	if err != nil {
		return err
	}
	stored := func(stream string) ([]domain.RecordedEvent, error) {
		events, err := readStream(ctx, ui.cfg.Events, stream)
		for i, e := range events {
			if e.Position > head {
				return events[:i], err
			}
		}
		return events, err
	}
	events, err := stored(dispatch.Stream(id))
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, e := range slices.Clone(events) {
		runID, ok := startedRun(e)
		if !ok || seen[runID] {
			continue
		}
		seen[runID] = true
		runEvents, err := stored(run.Stream(runID))
		if err != nil {
			return err
		}
		events = append(events, runEvents...)
	}
	slices.SortFunc(events, func(a, b domain.RecordedEvent) int { return cmp.Compare(a.Position, b.Position) })
	for _, e := range events {
		if err := yield(e); err != nil {
			return err
		}
	}
	return nil
}

// followRequest is feedRequest live: a subscription to the request's
// stream, to which each run is added as its stage starts.
func (ui *UI) followRequest(ctx context.Context, id string, yield func(domain.RecordedEvent) error) error {
	sub, err := ui.cfg.Live.Subscribe(ctx, dispatch.Stream(id))
	if err != nil {
		return err
	}
	defer sub.Close()
	for e, err := range sub.Events(ctx) {
		if err != nil {
			return err
		}
		// A run may have events from before its stage's start (recorded
		// in an earlier commit): added now, they come next.
		if runID, ok := startedRun(e); ok {
			sub.Add(run.Stream(runID))
		}
		if err := yield(e); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// startedRun names the run a StageStarted event starts.
func startedRun(e domain.RecordedEvent) (string, bool) {
	if e.Type != (dispatch.StageStarted{}).EventType() {
		return "", false
	}
	p, err := domain.Decode(e)
	if err != nil {
		return "", false
	}
	s, ok := p.(dispatch.StageStarted)
	return s.RunID, ok && s.RunID != ""
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

// eventStream is an open Server-Sent Events answer: the events and a
// comment line now and then (so proxies keep a quiet stream open) share
// the connection.
type eventStream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	writing sync.Mutex
	cancel  context.CancelFunc
	beating chan struct{}
}

// openStream starts an event stream answer; it cancels ctx (through
// cancel) when a heartbeat cannot be written. close it before the handler
// returns: nothing writes after that.
func (ui *UI) openStream(ctx context.Context, cancel context.CancelFunc, w http.ResponseWriter) (*eventStream, bool) {
	s := &eventStream{w: w, rc: http.NewResponseController(w), cancel: cancel, beating: make(chan struct{})}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if s.rc.Flush() != nil {
		return nil, false
	}
	go func() {
		defer close(s.beating)
		tick := time.NewTicker(ui.heartbeat)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				s.writing.Lock()
				_, err := io.WriteString(w, ": keepalive\n\n")
				if err == nil {
					err = s.rc.Flush()
				}
				s.writing.Unlock()
				if err != nil {
					cancel()
					return
				}
			}
		}
	}()
	return s, true
}

// send writes msgs and flushes them.
func (s *eventStream) send(msgs []sseMessage) error {
	s.writing.Lock()
	defer s.writing.Unlock()
	for _, m := range msgs {
		data, err := json.Marshal(m.Data)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(s.w, "event: "+m.Event+"\ndata: "+string(data)+"\n\n"); err != nil {
			return err
		}
	}
	return s.rc.Flush()
}

// close stops the heartbeat and waits for it.
func (s *eventStream) close() {
	s.cancel()
	<-s.beating
}
