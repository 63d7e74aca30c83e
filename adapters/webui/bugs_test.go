package webui_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/projections"
)

// Bugs found in Chromium (issue 20, item 5), each with the test that
// failed before its fix.

// A console tab left open across a logout and a login sends its stale
// security token: the script gets one sentence to show, not the whole
// 403 page.
func TestAStaleConsoleTabGetsASentenceNotAPage(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, f.adminToken)
	stale := b.csrf
	if resp := b.post("/logout", url.Values{"csrf": {stale}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout answered %d", resp.StatusCode)
	}
	again := f.login(t, f.adminToken)
	again.csrf = stale
	resp := again.post("/console", url.Values{"text": {"echo hi"}}, http.Header{"X-Csrf-Token": {stale}, "Accept": {"application/json"}})
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden || strings.Contains(strings.ToLower(string(body)), "<!doctype") || !strings.Contains(string(body), "Reload the page") {
		t.Fatalf("a stale console POST answered %d: %q", resp.StatusCode, body)
	}
}

// Every status the history view names, for requests and runs, has its
// colour in the style sheet (unknown-user was spelt unknown_user there).
func TestEveryStatusHasItsColour(t *testing.T) {
	f := newFixture(t)
	_, css := f.browser(t).get("/static/app.css")
	statuses := []string{projections.RequestReceived, projections.RequestAwaitingApproval, projections.RequestQueued, projections.RequestRunning,
		projections.RequestCompleted, projections.RequestFailed, projections.RequestDenied, projections.RequestRejected, projections.RequestUnknownUser,
		projections.RunRequested, projections.RunSucceeded, projections.RunTimedOut, projections.RunCancelled, projections.RunLost}
	statuses = append(statuses, projections.ApprovalStatuses...)
	for _, s := range statuses {
		if !regexp.MustCompile(`\.status-` + regexp.QuoteMeta(s) + `[ ,{]`).MatchString(css) {
			t.Errorf("app.css has no .status-%s", s)
		}
	}
}

// The navigation links Users, Groups, Roles and Executors only for those
// who may open them.
func TestTheNavigationShowsOnlyPagesTheViewerMayOpen(t *testing.T) {
	f := newFixture(t)
	nav := func(b *browser) []string {
		_, body := b.get("/history")
		section := body[strings.Index(body, `<nav aria-label="Sections">`):]
		section = section[:strings.Index(section, "</nav>")]
		var links []string
		for _, m := range regexp.MustCompile(`<a href="(/[a-z]*)"`).FindAllStringSubmatch(section, -1) {
			links = append(links, m[1])
		}
		return links
	}
	if got := nav(f.login(t, f.adminToken)); !slices.Equal(got, []string{"/", "/console", "/history", "/approvals", "/users", "/groups", "/roles", "/audit", "/executors"}) {
		t.Errorf("the admin's navigation: %v", got)
	}
	if got := nav(f.login(t, f.bobToken)); !slices.Equal(got, []string{"/", "/console", "/history", "/approvals", "/audit"}) {
		t.Errorf("bob's navigation: %v", got)
	}
}

// There is a favicon, for the browsers that ask /favicon.ico too, without
// a session.
func TestThereIsAFavicon(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	resp, body := b.get("/favicon.ico")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(body, "<svg") {
		t.Fatalf("GET /favicon.ico answered %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if _, login := b.get("/login"); !strings.Contains(login, `<link rel="icon" href="/static/favicon.svg"`) {
		t.Fatal("the pages do not link the icon")
	}
}

// The login error is a sentence, not Markdown.
func TestTheLoginErrorHasNoMarkdown(t *testing.T) {
	f := newFixture(t)
	resp := f.browser(t).post("/login", url.Values{"token": {"lbk_wrong"}}, nil)
	body := readAll(t, resp)
	msg := regexpFind(t, body, `<p role="alert" class="error" id="login-error">([^<]*)</p>`)
	if strings.Contains(msg, "`") || !strings.Contains(msg, "!user token") {
		t.Fatalf("the login error says %q", msg)
	}
}

// Stages are counted from 1 on the request and run pages, as in the
// dispatcher's reasons and on the user page.
func TestStagesAreCountedFromOne(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, f.adminToken)
	id := b.say("echo one | echo two")
	b.follow(id)
	_, request := b.get("/requests/" + id)
	runs := request[strings.Index(request, `id="runs"`):]
	runs = runs[:strings.Index(runs, "</table>")]
	var stages []string
	for _, m := range regexp.MustCompile(`<tr><td>(\d+)</td>`).FindAllStringSubmatch(runs, -1) {
		stages = append(stages, m[1])
	}
	if !slices.Equal(stages, []string{"1", "2"}) {
		t.Fatalf("the request page numbers its stages %v", stages)
	}
	if _, run := b.get("/runs/" + id + "-s0-i0"); !strings.Contains(run, "(stage 1)") {
		t.Fatal("the run page does not call the first stage stage 1")
	}
}

// The console marks which of the session's commands have ended, so a
// reload replays those at once and follows the running ones side by side.
func TestTheConsoleMarksEndedCommands(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, f.adminToken)
	id := b.say("echo done")
	b.follow(id)
	_, page := b.get("/console")
	if !strings.Contains(page, `<li class="entry" data-request="`+id+`" data-ended>`) {
		t.Fatalf("the ended command is not marked:\n%s", page)
	}
}

// The history's live stream sends a running request's row, then the row
// again when it completes, then ends; another user's request is not
// followed.
func TestTheHistoryStreamSendsARowUntilItsRequestEnds(t *testing.T) {
	f := newFixture(t)
	running := someHistory(t, f)
	b := f.login(t, f.adminToken)
	events := b.streamPath("/history/events?request=" + running)
	first := next(t, events)
	if first.Event != "row" || first.Data["request_id"] != running || first.Data["active"] != true ||
		!strings.Contains(first.Data["html"].(string), `badge status-running`) {
		t.Fatalf("the first event is %+v", first)
	}
	endRun(t, f, running+"-s0-i0", "done\n")
	for {
		e := next(t, events)
		if e.Event == "row" && e.Data["active"] == false {
			if !strings.Contains(e.Data["html"].(string), `badge status-completed`) {
				t.Fatalf("the ended row is %s", e.Data["html"])
			}
			break
		}
	}
	if e := next(t, events); e.Event != "end" {
		t.Fatalf("after the last row came %+v", e)
	}
	bob := f.login(t, f.bobToken)
	if resp, _ := bob.get("/history/events?request=" + running); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("bob following the admin's request answered %d", resp.StatusCode)
	}
}

// Without logbook:read_history the dashboard counts the viewer's own
// requests and leaves out everyone's run charts; a range it does not
// know is named.
func TestTheDashboardShowsAViewerWithoutReadHistoryTheirOwn(t *testing.T) {
	f := newFixture(t)
	someHistory(t, f)
	bob := f.login(t, f.bobToken)
	resp, page := bob.get("/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="requests-total">1</a>`) || strings.Contains(page, `id="top-users"`) ||
		strings.Contains(page, `id="durations"`) || !strings.Contains(page, "These are your own requests") {
		t.Fatalf("bob's dashboard answered %d:\n%s", resp.StatusCode, page)
	}
	admin := f.login(t, f.adminToken)
	if _, page := admin.get("/?range=7d"); !strings.Contains(page, `id="requests-total">6</a>`) || !strings.Contains(page, `id="top-users"`) {
		t.Fatalf("the admin's dashboard over 7 days:\n%s", page)
	}
	for _, query := range []string{"range=1y", "colour=red"} {
		if resp, _ := admin.get("/?" + query); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET /?%s answered %d, want 400", query, resp.StatusCode)
		}
	}
}
