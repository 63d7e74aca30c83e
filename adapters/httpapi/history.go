package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/projections"
)

// History is what the API reads of the history view.
type History interface {
	Requests(ctx context.Context, f projections.RequestFilter) (projections.RequestPage, error)
	Runs(ctx context.Context, f projections.RunFilter) (projections.RunPage, error)
	Request(ctx context.Context, requestID string) (projections.RequestRow, error)
	Run(ctx context.Context, runID string) (projections.RunRow, error)
}

// ViewProgress lets a read wait until a view has applied the log up to a
// position, so what a client just caused (or what the store already holds)
// is in the view it reads next.
type ViewProgress interface {
	WaitFor(ctx context.Context, name string, position int64) error
}

// viewCatchUp bounds how long a read waits for a lagging view before it
// answers from what the view has.
const viewCatchUp = 3 * time.Second

// RequestView is a request as the API shows it: its history row with times.
type RequestView struct {
	projections.RequestRow
	Received *time.Time `json:"received_at,omitempty"`
	Ended    *time.Time `json:"ended_at,omitempty"`
	Duration *int64     `json:"duration_ms,omitempty"`
}

// RunView is a run as the API shows it: its history row with times and
// exit code.
type RunView struct {
	projections.RunRow
	Exit      *int64     `json:"exit_code,omitempty"`
	Requested *time.Time `json:"requested_at,omitempty"`
	Started   *time.Time `json:"started_at,omitempty"`
	Ended     *time.Time `json:"ended_at,omitempty"`
	Duration  *int64     `json:"duration_ms,omitempty"`
}

// HistoryPage answers GET /v1/history; NextCursor is empty on the last page.
type HistoryPage struct {
	Requests   []RequestView `json:"requests"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// RunsPage answers GET /v1/runs.
type RunsPage struct {
	Runs       []RunView `json:"runs"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// EventView is one stored event of a request's or a run's stream.
type EventView struct {
	ID         string          `json:"id"`
	Stream     string          `json:"stream"`
	Version    int64           `json:"version"`
	Position   int64           `json:"position"`
	Type       string          `json:"type"`
	Data       json.RawMessage `json:"data"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	RecordedAt time.Time       `json:"recorded_at"`
}

// RequestDetail answers GET /v1/requests/{id}: the row and every event of
// request-<id>, in order.
type RequestDetail struct {
	Request RequestView `json:"request"`
	Events  []EventView `json:"events"`
}

// RunDetail answers GET /v1/runs/{id}.
type RunDetail struct {
	Run    RunView     `json:"run"`
	Events []EventView `json:"events"`
}

var (
	requestStatuses = []string{
		projections.RequestReceived, projections.RequestAwaitingApproval, projections.RequestQueued, projections.RequestRunning,
		projections.RequestCompleted, projections.RequestFailed, projections.RequestDenied, projections.RequestRejected, projections.RequestUnknownUser,
	}
	runStatuses = []string{
		projections.RunRequested, projections.RunRunning, projections.RunSucceeded, projections.RunFailed,
		projections.RunTimedOut, projections.RunCancelled, projections.RunLost,
	}
)

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func durationPtr(valid bool, ms int64) *int64 {
	if !valid {
		return nil
	}
	return &ms
}

// NewRequestView adds the row's times.
func NewRequestView(r projections.RequestRow) RequestView {
	received, ended, _ := r.Times()
	return RequestView{RequestRow: r, Received: timePtr(received), Ended: timePtr(ended), Duration: durationPtr(r.DurationMS.Valid, r.DurationMS.Int64)}
}

// NewRunView adds the row's times and exit code.
func NewRunView(r projections.RunRow) RunView {
	requested, started, ended, _ := r.Times()
	v := RunView{RunRow: r, Requested: timePtr(requested), Started: timePtr(started), Ended: timePtr(ended), Duration: durationPtr(r.DurationMS.Valid, r.DurationMS.Int64)}
	if r.ExitCode.Valid {
		code := r.ExitCode.Int64
		v.Exit = &code
	}
	return v
}

func writeParamError(w http.ResponseWriter, err error) bool {
	var pe *ParamError
	if errors.As(err, &pe) {
		writeJSON(w, http.StatusBadRequest, apiError{pe.Error()})
		return true
	}
	if errors.Is(err, projections.ErrBadCursor) {
		writeJSON(w, http.StatusBadRequest, apiError{"parameter cursor: " + err.Error()})
		return true
	}
	return false
}

// catchUp waits, briefly, until view has applied everything the store held
// when the read began. A view that stopped is an error; one that is merely
// slow is read as it is.
func (a *API) catchUp(ctx context.Context, view string) error {
	if a.Views == nil {
		return nil
	}
	head, err := a.heads.head(ctx, a.Events)
	if err != nil {
		return err
	}
	wait, cancel := context.WithTimeout(ctx, viewCatchUp)
	defer cancel()
	if err := a.Views.WaitFor(wait, view, head); err != nil && wait.Err() == nil {
		return err
	}
	return ctx.Err()
}

// headCache remembers the store's head until the store signals a change,
// so a read costs no head query while nothing is appended: the change
// channel is taken before the head is read, so an append committed after
// that read closes it and the next read asks again. maxHeadAge bounds how
// long a head is trusted, in case a cross-process signal was lost.
type headCache struct {
	mu      sync.Mutex
	pos     int64
	changed <-chan struct{}
	at      time.Time
}

const maxHeadAge = time.Second

func (c *headCache) head(ctx context.Context, store eventstore.Store) (int64, error) {
	c.mu.Lock()
	pos, changed, at := c.pos, c.changed, c.at
	c.mu.Unlock()
	if changed != nil && time.Since(at) < maxHeadAge {
		select {
		case <-changed:
		default:
			return pos, nil
		}
	}
	changed = store.Changed()
	at = time.Now()
	pos, _, err := store.Head(ctx)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	if at.After(c.at) {
		c.pos, c.changed, c.at = pos, changed, at
	}
	c.mu.Unlock()
	return pos, nil
}

func unavailable(w http.ResponseWriter, what string, err error) {
	writeJSON(w, http.StatusServiceUnavailable, apiError{what + ": " + err.Error()})
}

// servesHistory answers 501 when the server was started without the
// history and transcript readers and the store.
func (a *API) servesHistory(w http.ResponseWriter) bool {
	if a.History == nil || a.Transcripts == nil || a.Events == nil {
		writeJSON(w, http.StatusNotImplemented, apiError{"this server does not serve the history"})
		return false
	}
	return true
}

// historyListQuery is the start of both history lists: the server serves
// the history, the filters parse (statuses are the list's own), the user
// filter is the one the history rule gives the caller (their own without
// logbook:read_history; another user's is a 403), and the view has caught
// up with the store.
func (a *API) historyListQuery(w http.ResponseWriter, r *http.Request, user access.UserInfo, statuses []string) (listQuery, bool) {
	if !a.servesHistory(w) {
		return listQuery{}, false
	}
	lq, err := parseListQuery(r.URL.Query(), statuses)
	if writeParamError(w, err) {
		return listQuery{}, false
	}
	if lq.User, err = HistoryReaderOf(a.Users, user).ListFilter(lq.User); err != nil {
		writeJSON(w, http.StatusForbidden, apiError{err.Error()})
		return listQuery{}, false
	}
	if err := a.catchUp(r.Context(), "history"); err != nil {
		unavailable(w, "the history view", err)
		return listQuery{}, false
	}
	return lq, true
}

func (a *API) listHistory(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	lq, ok := a.historyListQuery(w, r, user, requestStatuses)
	if !ok {
		return
	}
	page, err := a.History.Requests(r.Context(), projections.RequestFilter{
		Username: lq.User, Command: lq.Command, Status: lq.Status, Adapter: lq.Provider, Room: lq.Room,
		From: lq.Since, To: lq.Until, Limit: lq.Limit, Cursor: lq.Cursor,
	})
	if writeParamError(w, err) {
		return
	}
	if err != nil {
		unavailable(w, "reading the history", err)
		return
	}
	out := HistoryPage{Requests: make([]RequestView, 0, len(page.Requests)), NextCursor: page.Next}
	for _, row := range page.Requests {
		out.Requests = append(out.Requests, NewRequestView(row))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) listRuns(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	lq, ok := a.historyListQuery(w, r, user, runStatuses)
	if !ok {
		return
	}
	page, err := a.History.Runs(r.Context(), projections.RunFilter{
		Username: lq.User, Command: lq.Command, Status: lq.Status, Adapter: lq.Provider, Room: lq.Room,
		From: lq.Since, To: lq.Until, Limit: lq.Limit, Cursor: lq.Cursor,
	})
	if writeParamError(w, err) {
		return
	}
	if err != nil {
		unavailable(w, "reading the history", err)
		return
	}
	out := RunsPage{Runs: make([]RunView, 0, len(page.Runs)), NextCursor: page.Next}
	for _, row := range page.Runs {
		out.Runs = append(out.Runs, NewRunView(row))
	}
	writeJSON(w, http.StatusOK, out)
}

// maxIDLength bounds ids in paths; longer ones name nothing (run ids are at
// most 128 characters, request ids are UUIDs).
const maxIDLength = 128

func (a *API) getRequest(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	id := r.PathValue("id")
	a.detail(w, r, user, id, dispatch.Stream(id), "request", RequestOwner, func(ctx context.Context) (any, error) {
		row, err := a.History.Request(ctx, id)
		return NewRequestView(row), err
	})
}

func (a *API) getRun(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	id := r.PathValue("id")
	a.detail(w, r, user, id, run.Stream(id), "run", RunOwner, func(ctx context.Context) (any, error) {
		row, err := a.History.Run(ctx, id)
		return NewRunView(row), err
	})
}

// ownerReader reads whose request or run id is (RequestOwner, RunOwner).
type ownerReader func(ctx context.Context, store eventstore.Store, id string) (owner string, found bool, err error)

// readable answers whether user may read the request or run id, and when
// not, answers 404 as for an id that does not exist: another user's id is
// not told apart from a missing one.
func (a *API) readable(w http.ResponseWriter, r *http.Request, user access.UserInfo, kind, id string, ownerOf ownerReader) bool {
	owner, found, err := ownerOf(r.Context(), a.Events, id)
	if err != nil {
		unavailable(w, "reading the event store", err)
		return false
	}
	if !found || !HistoryReaderOf(a.Users, user).MayRead(owner) {
		writeJSON(w, http.StatusNotFound, apiError{"no " + kind + " " + id})
		return false
	}
	return true
}

// detail answers {"<kind>": row, "events": [...]} when user may read it:
// the store decides whether the id exists and whose it is; the events are
// streamed out as they are read, so a run with a large output is never
// held in memory whole.
func (a *API) detail(w http.ResponseWriter, r *http.Request, user access.UserInfo, id, stream, kind string, ownerOf ownerReader, row func(context.Context) (any, error)) {
	if !a.servesHistory(w) {
		return
	}
	if len(r.URL.Query()) > 0 {
		writeParamError(w, onlyParams(r.URL.Query(), nil))
		return
	}
	if !a.readable(w, r, user, kind, id, ownerOf) {
		return
	}
	ctx := r.Context()
	if err := a.catchUp(ctx, "history"); err != nil {
		unavailable(w, "the history view", err)
		return
	}
	view, err := row(ctx)
	if errors.Is(err, projections.ErrNotFound) {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, apiError{"the history view has not caught up with " + kind + " " + id + " yet; try again"})
		return
	}
	if err != nil {
		unavailable(w, "reading the history", err)
		return
	}
	head, err := json.Marshal(view)
	if err != nil {
		unavailable(w, "encoding the "+kind, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	buf := append([]byte(`{"`+kind+`":`), head...)
	buf = append(buf, `,"events":[`...)
	first := true
	for from := int64(0); ; {
		events, err := a.Events.ReadStream(ctx, stream, from, 500)
		if err != nil {
			// The status is sent; a cut-off body is the only honest signal left.
			return
		}
		for _, e := range events {
			if !first {
				buf = append(buf, ',')
			}
			first = false
			line, err := json.Marshal(eventView(e))
			if err != nil {
				return
			}
			buf = append(buf, line...)
			from = e.Version + 1
		}
		if _, err := w.Write(buf); err != nil {
			return
		}
		buf = buf[:0]
		if len(events) < 500 {
			break
		}
	}
	_, _ = w.Write([]byte("]}\n"))
}

func eventView(e domain.RecordedEvent) EventView {
	return EventView{
		ID: e.ID.String(), Stream: e.Stream, Version: e.Version, Position: e.Position, Type: e.Type,
		Data: e.Data, Metadata: e.RawMetadata, RecordedAt: e.RecordedAt.UTC(),
	}
}
