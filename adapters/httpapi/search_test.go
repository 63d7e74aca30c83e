package httpapi_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/projections"
)

func searchPath(q string, filters ...string) string {
	return "/v1/search?q=" + url.QueryEscape(q) + strings.Join(filters, "")
}

func TestSearchFindsOutputUnderTheHistoryRule(t *testing.T) {
	t.Parallel()
	// Given bob's echo of an address and the admin's echo of another word
	// and the same address.
	p := newPlatform(t)
	bob := p.addUser(t, "bob")
	bobRequest, _ := p.say(t, bob, "echo reached 10.0.3.7 fine")
	p.say(t, p.adminToken, "echo adminonly 10.0.3.7")

	// When bob searches, he finds his own output on its line, and nothing
	// of the admin's.
	hits := getJSON[httpapi.SearchResults](t, p, searchPath("10.0.3.7"), bob)
	var kinds []string
	for _, h := range hits.Hits {
		if h.Username != "bob" {
			t.Fatalf("bob's search shows %s's hit: %+v", h.Username, h)
		}
		kinds = append(kinds, h.Kind)
		if h.Kind == projections.SearchKindOutput {
			if h.RequestID != bobRequest || h.Line != 1 || h.RunID == "" || h.Received == nil {
				t.Fatalf("the output hit is %+v", h)
			}
			if got := strings.Join([]string{h.Snippet[0].Text, h.Snippet[1].Text}, "|"); got != "reached |10.0.3.7" || !h.Snippet[1].Match {
				t.Fatalf("the snippet is %+v", h.Snippet)
			}
		}
	}
	slices.Sort(kinds)
	if strings.Join(kinds, ",") != "command,output,request" {
		t.Fatalf("bob's hits are %v, want his output, arguments and text", kinds)
	}
	if got := getJSON[httpapi.SearchResults](t, p, searchPath("adminonly"), bob); len(got.Hits) != 0 {
		t.Fatalf("bob finds the admin's words: %+v", got.Hits)
	}
	// Another user's history needs the permission, as for the lists.
	if status, _, body := p.do(t, http.MethodGet, searchPath("10.0.3.7", "&user=admin"), bob, nil); status != http.StatusForbidden || !strings.Contains(string(body), "logbook:read_history") {
		t.Fatalf("bob searching the admin's history: %d %s", status, body)
	}
	// The admin reads everyone's, filtered like the history.
	all := getJSON[httpapi.SearchResults](t, p, searchPath("10.0.3.7", "&command=logbook:echo&limit=2"), p.adminToken)
	if len(all.Hits) != 2 || all.NextCursor == "" || all.Hits[0].Username != "admin" {
		t.Fatalf("the admin's first page: %+v", all)
	}
	rest := getJSON[httpapi.SearchResults](t, p, searchPath("10.0.3.7", "&command=logbook:echo&limit=50&cursor="+all.NextCursor), p.adminToken)
	if len(rest.Hits) != 2 || rest.NextCursor != "" || rest.Hits[0].Username != "bob" {
		t.Fatalf("the admin's second page: %+v", rest)
	}
	// Bad queries are 400s naming the parameter and what is wrong.
	for q, want := range map[string]string{
		"/v1/search":                    "parameter q: is missing",
		searchPath(`"open`):             "parameter q: bad search: column 1: the quote is never closed",
		searchPath("x", "&status=nope"): "parameter status",
		searchPath("x", "&stream=out"):  "parameter stream: is not a parameter here",
		searchPath("ab", "&q=twice"):    "parameter q: is given 2 times",
	} {
		status, _, body := p.do(t, http.MethodGet, q, bob, nil)
		if status != http.StatusBadRequest || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %s, want 400 with %q", q, status, body, want)
		}
	}
	// The chat builtin applies the same rule.
	_, reply := p.say(t, bob, "search 10.0.3.7")
	if !strings.Contains(reply.Text, "in bob's history") || !strings.Contains(reply.Text, "line 1: reached 10.0.3.7 fine") || strings.Contains(reply.Text, "adminonly") {
		t.Fatalf("!search as bob: %q", reply.Text)
	}
	_, reply = p.post(t, bob, map[string]string{"text": "search 10.0.3.7 --user=admin"})
	if !strings.Contains(reply.Text, "logbook:read_history") {
		t.Fatalf("!search of the admin's history as bob: %q", reply.Text)
	}
}
