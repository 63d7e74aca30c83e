package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/projections"
)

// Searcher is what the API reads of the search view.
type Searcher interface {
	Search(ctx context.Context, f projections.SearchFilter) (projections.SearchPage, error)
}

// SearchHitView is a hit as the API shows it, with its request's time.
type SearchHitView struct {
	projections.SearchHit
	Received *time.Time `json:"received_at,omitempty"`
}

// SearchResults answers GET /v1/search; NextCursor is empty on the last page.
type SearchResults struct {
	Query      string          `json:"query"` // as parsed, in the query syntax
	Hits       []SearchHitView `json:"hits"`
	NextCursor string          `json:"next_cursor,omitempty"`
}

// NewSearchHitView adds the hit's time.
func NewSearchHitView(h projections.SearchHit) SearchHitView {
	return SearchHitView{SearchHit: h, Received: timePtr(h.Received())}
}

// searchParams are the history list's and the query.
var searchParams = append([]string{"q"}, listParams...)

// parseSearch reads a search's query string: q in the search syntax
// (projections.ParseSearchQuery) and the history list's filters. Every
// problem is a *ParamError naming its parameter.
func parseSearch(q url.Values) (projections.SearchQuery, listQuery, error) {
	if err := onlyParams(q, searchParams); err != nil {
		return projections.SearchQuery{}, listQuery{}, err
	}
	rest := url.Values{}
	for name, values := range q {
		if name != "q" {
			rest[name] = values
		}
	}
	lq, err := parseListQuery(rest, requestStatuses)
	if err != nil {
		return projections.SearchQuery{}, listQuery{}, err
	}
	if q.Get("q") == "" {
		return projections.SearchQuery{}, listQuery{}, paramError("q", "is missing: give a word, a prefix such as deplo*, or a substring such as 10.0.3.7")
	}
	query, err := projections.ParseSearchQuery(q.Get("q"))
	if err != nil {
		return projections.SearchQuery{}, listQuery{}, paramError("q", "%s", err.Error())
	}
	return query, lq, nil
}

// searchFilterOf is the view's filter for a parsed search.
func searchFilterOf(query projections.SearchQuery, lq listQuery) projections.SearchFilter {
	return projections.SearchFilter{Query: query, Username: lq.User, Command: lq.Command, Status: lq.Status, Adapter: lq.Provider,
		Room: lq.Room, From: lq.Since, To: lq.Until, Limit: lq.Limit, Cursor: lq.Cursor}
}

func (a *API) search(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if a.Search == nil {
		writeJSON(w, http.StatusNotImplemented, apiError{"this server does not serve search"})
		return
	}
	query, lq, err := parseSearch(r.URL.Query())
	if writeParamError(w, err) {
		return
	}
	if lq.User, err = HistoryReaderOf(a.Users, user).ListFilter(lq.User); err != nil {
		writeJSON(w, http.StatusForbidden, apiError{err.Error()})
		return
	}
	for _, view := range []string{"history", "search"} {
		if err := a.catchUp(r.Context(), view); err != nil {
			unavailable(w, "the "+view+" view", err)
			return
		}
	}
	page, err := a.Search.Search(r.Context(), searchFilterOf(query, lq))
	if writeParamError(w, err) {
		return
	}
	if errors.Is(err, projections.ErrBadSearch) {
		writeJSON(w, http.StatusBadRequest, apiError{"parameter q: " + err.Error()})
		return
	}
	if err != nil {
		unavailable(w, "searching", err)
		return
	}
	out := SearchResults{Query: query.String(), Hits: make([]SearchHitView, 0, len(page.Hits)), NextCursor: page.Next}
	for _, h := range page.Hits {
		out.Hits = append(out.Hits, NewSearchHitView(h))
	}
	writeJSON(w, http.StatusOK, out)
}
