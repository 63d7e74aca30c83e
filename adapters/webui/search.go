package webui

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/projections"
)

type searchData struct {
	Query    string
	Form     map[string]string // the filters as typed, to fill the form again
	Statuses []string
	Hits     []searchHit
	Next     string // the next page's address; empty on the last page
	Error    string // why the query or a filter was refused
	Searched bool
	// OwnOnly: the viewer may read only their own requests.
	OwnOnly bool
	// Unserved: this server was started without the search view.
	Unserved bool
}

// searchHit is a hit and where it opens: an output line in its
// transcript (with the query, so the find box marks it), a run's
// arguments on the run, a request's text on the request.
type searchHit struct {
	httpapi.SearchHitView
	Link string
}

// searchPageSize is the hits on one search page.
const searchPageSize = 25

// searchPage finds text in requests, command arguments and output, with
// the history's filters, under the history rule (the viewer's own without
// logbook:read_history). Matches are marked in their line with <mark>,
// from the snippet's fragments: the text is escaped as any text.
func (ui *UI) searchPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	q := r.URL.Query()
	data := searchData{Query: q.Get("q"), Form: map[string]string{}, Statuses: requestStatuses, Unserved: ui.cfg.Search == nil}
	for _, name := range historyParams {
		if name != "cursor" {
			data.Form[name] = q.Get(name)
		}
	}
	p := page{Title: "Search", Section: "search", Viewer: v, Data: &data}
	reader := v.historyReader()
	data.OwnOnly = !reader.ReadsEveryone()
	if data.Query == "" || data.Unserved {
		ui.render(w, r, http.StatusOK, "search", p)
		return
	}
	data.Searched = true
	filters := url.Values{}
	for name, values := range q {
		if name != "q" {
			filters[name] = values
		}
	}
	if len(q["q"]) > 1 {
		data.Error = "q is given " + strconv.Itoa(len(q["q"])) + " times; give it once."
		ui.render(w, r, http.StatusBadRequest, "search", p)
		return
	}
	hq, err := parseHistoryQuery(filters, ui.cfg.Now())
	if err != nil {
		data.Error = "The filter " + err.Error() + "."
		ui.render(w, r, http.StatusBadRequest, "search", p)
		return
	}
	query, err := projections.ParseSearchQuery(data.Query)
	if err != nil {
		data.Error = "The search " + err.Error() + "."
		ui.render(w, r, http.StatusBadRequest, "search", p)
		return
	}
	if hq.User, err = reader.ListFilter(hq.User); err != nil {
		data.Error = "The filter user: " + err.Error() + "."
		ui.render(w, r, http.StatusForbidden, "search", p)
		return
	}
	ctx := r.Context()
	for _, view := range []string{"history", "search"} {
		if err := ui.catchUp(ctx, view); err != nil {
			ui.unavailable(w, r, v, "reading the "+view+" view", err)
			return
		}
	}
	f := hq.filter()
	result, err := ui.cfg.Search.Search(ctx, projections.SearchFilter{Query: query, Username: f.Username, Command: f.Command, Status: f.Status,
		Adapter: f.Adapter, Room: f.Room, From: f.From, To: f.To, Limit: searchPageSize, Cursor: f.Cursor})
	if errors.Is(err, projections.ErrBadCursor) {
		data.Error = "The filter cursor: " + err.Error() + "."
		ui.render(w, r, http.StatusBadRequest, "search", p)
		return
	}
	if err != nil {
		ui.unavailable(w, r, v, "searching", err)
		return
	}
	for _, h := range result.Hits {
		hit := searchHit{SearchHitView: httpapi.NewSearchHitView(h), Link: "/requests/" + url.PathEscape(h.RequestID)}
		switch h.Kind {
		case projections.SearchKindOutput:
			hit.Link = "/runs/" + url.PathEscape(h.RunID) + "/transcript?" + url.Values{"q": {query.String()}}.Encode() + "#L" + strconv.FormatInt(h.Line, 10)
		case projections.SearchKindCommand:
			hit.Link = "/runs/" + url.PathEscape(h.RunID)
		}
		data.Hits = append(data.Hits, hit)
	}
	if result.Next != "" {
		next := url.Values{}
		for name, values := range q {
			next[name] = values
		}
		next.Set("cursor", result.Next)
		data.Next = "/search?" + next.Encode()
	}
	ui.render(w, r, http.StatusOK, "search", p)
}
