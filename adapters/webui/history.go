package webui

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/template/render"
	"github.com/logbookhq/logbook/projections"
)

type historyData struct {
	Form     map[string]string // the filters as typed, to fill the form again
	Statuses []string
	Rows     []historyRow
	Next     string // the next page's address; empty on the last page
	// Query is the filters as a query string (no cursor), for the export
	// links and the live updates.
	Query    string
	Errors   []string // why the filters were refused, one sentence each
	Filtered bool
	// OwnOnly: the viewer may read only their own requests, so the list
	// holds only theirs.
	OwnOnly bool
}

type historyRow struct {
	httpapi.RequestView
	Runs []projections.RunRow
}

// Link is the history's address with these filters (no cursor), with
// suffix after /history: ".csv", ".json" or "".
func (d historyData) Link(suffix string) string {
	if d.Query == "" {
		return "/history" + suffix
	}
	return "/history" + suffix + "?" + d.Query
}

// Active reports whether the request has not ended, so the page follows it.
func (r historyRow) Active() bool { return !slices.Contains(endedStatuses, r.Status) }

// endedStatuses are the history view's statuses of a request that ended.
var endedStatuses = []string{projections.RequestCompleted, projections.RequestFailed, projections.RequestDenied, projections.RequestRejected, projections.RequestUnknownUser}

// historyFilters reads and checks the history's filters for the viewer:
// each bad one named, a user that does not exist said so (with the name
// meant, when only its case differs), another user's without
// logbook:read_history refused. On failure it answers the status to use.
func (ui *UI) historyFilters(r *http.Request, v *viewer) (historyQuery, historyData, int) {
	q := r.URL.Query()
	data := historyData{Form: map[string]string{}, Statuses: requestStatuses}
	query := url.Values{}
	for _, name := range historyParams {
		if name != "cursor" {
			data.Form[name] = q.Get(name)
			data.Filtered = data.Filtered || q.Get(name) != ""
			if q.Get(name) != "" {
				query.Set(name, q.Get(name))
			}
		}
	}
	data.Query = query.Encode()
	hq, err := parseHistoryQuery(q, ui.cfg.Now())
	if err != nil {
		data.Errors = filterErrors(err)
	}
	if user := strings.TrimSpace(q.Get("user")); user != "" {
		if _, ok := ui.cfg.Users.UserByUsername(user); !ok {
			msg := fmt.Sprintf("The filter user: no user is named %q", user)
			if _, ok := ui.cfg.Users.UserByUsername(strings.ToLower(user)); ok && strings.ToLower(user) != user {
				msg += fmt.Sprintf(" (usernames are lower case: %q)", strings.ToLower(user))
			}
			data.Errors = append(data.Errors, msg+".")
		}
	}
	if len(data.Errors) > 0 {
		return historyQuery{}, data, http.StatusBadRequest
	}
	reader := v.historyReader()
	if hq.User, err = reader.ListFilter(hq.User); err != nil {
		data.Errors = []string{"The filter user: " + err.Error() + "."}
		return historyQuery{}, data, http.StatusForbidden
	}
	data.OwnOnly = !reader.ReadsEveryone()
	return hq, data, http.StatusOK
}

func (ui *UI) historyPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	hq, data, status := ui.historyFilters(r, v)
	p := page{Title: "History", Section: "history", Viewer: v}
	if status != http.StatusOK {
		p.Data = data
		ui.render(w, r, status, "history", p)
		return
	}
	ctx := r.Context()
	if err := ui.catchUp(ctx, "history"); err != nil {
		ui.unavailable(w, r, v, "reading the history view", err)
		return
	}
	result, err := ui.cfg.History.Requests(ctx, hq.filter())
	if errors.Is(err, projections.ErrBadCursor) {
		data.Errors = []string{"The filter cursor: " + err.Error() + "."}
		p.Data = data
		ui.render(w, r, http.StatusBadRequest, "history", p)
		return
	}
	if err != nil {
		ui.unavailable(w, r, v, "reading the history", err)
		return
	}
	for _, row := range result.Requests {
		hr, err := ui.historyRowOf(ctx, row)
		if err != nil {
			ui.unavailable(w, r, v, "reading the runs of a request", err)
			return
		}
		data.Rows = append(data.Rows, hr)
	}
	if result.Next != "" {
		next, _ := url.ParseQuery(data.Query)
		next.Set("cursor", result.Next)
		data.Next = "/history?" + next.Encode()
	}
	p.Data = data
	ui.render(w, r, http.StatusOK, "history", p)
}

// historyRowOf is a request's row with its runs, in the order they ran.
func (ui *UI) historyRowOf(ctx context.Context, row projections.RequestRow) (historyRow, error) {
	hr := historyRow{RequestView: httpapi.NewRequestView(row)}
	if row.Runs > 0 {
		runs, err := ui.cfg.History.Runs(ctx, projections.RunFilter{RequestID: row.RequestID, Limit: 100})
		if err != nil {
			return hr, err
		}
		// The view pages newest first; a request's runs read in the
		// order they ran, stage by stage.
		hr.Runs = runs.Runs
		slices.Reverse(hr.Runs)
	}
	return hr, nil
}

// eventRow is one stored event as the chain tables show it.
type eventRow struct {
	Position, Version int64
	Type              string
	At                time.Time
	Actor             string
	Hash, PrevHash    string
	// HashOK: the stored hash matches the event's content and its
	// prev_hash, recomputed here.
	HashOK bool
	Data   string
}

func eventRowOf(e domain.RecordedEvent) eventRow {
	var pretty bytes.Buffer
	data := string(e.Data)
	if json.Indent(&pretty, e.Data, "", "  ") == nil {
		data = pretty.String()
	}
	return eventRow{
		Position: e.Position, Version: e.Version, Type: e.Type, At: e.RecordedAt, Actor: e.Metadata().Actor,
		Hash: hex.EncodeToString(e.Hash), PrevHash: hex.EncodeToString(e.PrevHash),
		HashOK: bytes.Equal(eventstore.ChainHash(e.PrevHash, e), e.Hash), Data: data,
	}
}

// maxChainRows bounds the events a page lists; a run with a long output
// has one event per chunk, and its transcript is the place to read it.
const maxChainRows = 1000

type requestData struct {
	Request httpapi.RequestView
	Runs    []httpapi.RunView
	Reply   *dispatch.Reply
	// Posted is what the reply's record says was posted: the rendered
	// text beside the output as the command printed it (Reply.Text).
	Posted *postedReply
	Events []eventRow
	// Approval is the request's approval, nil when it asked for none.
	Approval *approvalSection
}

// postedReply is a ReplyPosted as the request page shows it.
type postedReply struct {
	dispatch.ReplyPosted
	// HTML is the rendered text when it is HTML (the web UI's own), shown
	// as such: the renderer escaped every value in it.
	HTML template.HTML
	// Shown is any other rendered text, with IRC's formatting codes
	// taken out, and Slack's attachments after it.
	Shown string
}

func postedReplyOf(p dispatch.ReplyPosted) *postedReply {
	out := &postedReply{ReplyPosted: p}
	if p.Format == string(render.FormatHTML) {
		out.HTML = template.HTML(p.Rendered) // render.HTML escaped every value in it
		return out
	}
	out.Shown = strings.Map(func(r rune) rune {
		if r == '\x02' || r == '\x1d' {
			return -1
		}
		return r
	}, p.Rendered)
	for _, a := range p.Attachments {
		out.Shown += "\n\n[attachment " + a.Color + "] " + a.Title + "\n" + a.Text
		for _, f := range a.Fields {
			out.Shown += "\n" + f.Title + ": " + f.Value
		}
	}
	return out
}

// requestPage shows a request, its runs, its reply and its whole event
// chain with each hash checked: the audit view of one request.
func (ui *UI) requestPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	id := r.PathValue("id")
	ctx := r.Context()
	if _, err := uuid.Parse(id); err != nil {
		ui.fail(w, r, v, http.StatusNotFound, "There is no request "+id+": request ids look like 7c9e6679-7425-40de-944b-e07fc1f90ae7.")
		return
	}
	if !ui.readable(w, r, v, "request", id, httpapi.RequestOwner) {
		return
	}
	events, err := readStream(ctx, ui.cfg.Events, dispatch.Stream(id))
	if err != nil {
		ui.unavailable(w, r, v, "reading the event store", err)
		return
	}
	row, ok := ui.historyRow(w, r, v, "request "+id, func(ctx context.Context) (any, error) { return ui.cfg.History.Request(ctx, id) })
	if !ok {
		return
	}
	data := requestData{Request: httpapi.NewRequestView(row.(projections.RequestRow))}
	runs, err := ui.cfg.History.Runs(ctx, projections.RunFilter{RequestID: id, Limit: 1000})
	if err != nil {
		ui.unavailable(w, r, v, "reading the runs of the request", err)
		return
	}
	slices.Reverse(runs.Runs) // in the order they ran
	for _, run := range runs.Runs {
		data.Runs = append(data.Runs, httpapi.NewRunView(run))
	}
	for _, e := range events {
		data.Events = append(data.Events, eventRowOf(e))
		if p, err := domain.Decode(e); err == nil {
			if posted, ok := p.(dispatch.ReplyPosted); ok && posted.Rendered != "" {
				data.Posted = postedReplyOf(posted)
			}
		}
	}
	f := newRequestFollower(id)
	if err := ui.feedRequest(ctx, id, false, func(e domain.RecordedEvent) error { _, err := f.apply(e); return err }); err != nil {
		ui.unavailable(w, r, v, "reading the request's runs", err)
		return
	}
	if reply, ok := f.reply(); ok {
		data.Reply = &reply
	}
	data.Approval = approvalOf(id, events, v)
	ui.render(w, r, http.StatusOK, "request", page{Title: "Request " + id, Section: "history", Viewer: v, Data: data})
}

// historyRow reads a row of the history view once the view has caught up;
// a row the view does not hold yet (the store does) is a 503 to retry.
func (ui *UI) historyRow(w http.ResponseWriter, r *http.Request, v *viewer, what string, read func(context.Context) (any, error)) (any, bool) {
	ctx := r.Context()
	if err := ui.catchUp(ctx, "history"); err != nil {
		ui.unavailable(w, r, v, "reading the history view", err)
		return nil, false
	}
	row, err := read(ctx)
	if errors.Is(err, projections.ErrNotFound) {
		w.Header().Set("Retry-After", "1")
		ui.fail(w, r, v, http.StatusServiceUnavailable, "The history view has not caught up with "+what+" yet. Reload in a moment.")
		return nil, false
	}
	if err != nil {
		ui.unavailable(w, r, v, "reading the history", err)
		return nil, false
	}
	return row, true
}

type runData struct {
	Run       httpapi.RunView
	Events    []eventRow
	MoreEvent bool // the chain has more events than are listed
}

// ownerReader reads whose request or run id is (httpapi.RequestOwner,
// httpapi.RunOwner).
type ownerReader func(context.Context, eventstore.Store, string) (owner string, found bool, err error)

// mayRead says whether the viewer may read the request or run id: the
// store says whether it exists and whose it is, access.HistoryReader
// decides. A caller answers another user's as one that does not exist.
func (ui *UI) mayRead(ctx context.Context, v *viewer, id string, ownerOf ownerReader) (bool, error) {
	owner, found, err := ownerOf(ctx, ui.cfg.Events, id)
	return err == nil && id != "" && found && v.historyReader().MayRead(owner), err
}

// readable is mayRead for a page: when the viewer may not read the id, it
// renders the 404 of an id that does not exist.
func (ui *UI) readable(w http.ResponseWriter, r *http.Request, v *viewer, kind, id string, ownerOf ownerReader) bool {
	ok, err := ui.mayRead(r.Context(), v, id, ownerOf)
	if err != nil {
		ui.unavailable(w, r, v, "reading the event store", err)
		return false
	}
	if !ok {
		ui.fail(w, r, v, http.StatusNotFound, "There is no "+kind+" "+id+".")
	}
	return ok
}

func (ui *UI) runPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	id := r.PathValue("id")
	if !ui.readable(w, r, v, "run", id, httpapi.RunOwner) {
		return
	}
	row, ok := ui.historyRow(w, r, v, "run "+id, func(ctx context.Context) (any, error) { return ui.cfg.History.Run(ctx, id) })
	if !ok {
		return
	}
	events, err := ui.cfg.Events.ReadStream(r.Context(), run.Stream(id), 0, maxChainRows+1)
	if err != nil {
		ui.unavailable(w, r, v, "reading the event store", err)
		return
	}
	data := runData{Run: httpapi.NewRunView(row.(projections.RunRow))}
	if len(events) > maxChainRows {
		events, data.MoreEvent = events[:maxChainRows], true
	}
	for _, e := range events {
		data.Events = append(data.Events, eventRowOf(e))
	}
	ui.render(w, r, http.StatusOK, "run", page{Title: "Run " + id, Section: "history", Viewer: v, Data: data})
}
