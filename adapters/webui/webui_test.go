package webui_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/webui"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/internal/samplebundle"
	"github.com/logbookhq/logbook/internal/testenv"
)

func TestNoPageIsReadableWithoutASession(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	for _, path := range []string{"/", "/console", "/history", "/history?status=failed", "/requests/x", "/runs/x", "/runs/x/transcript",
		"/users", "/users/admin", "/groups", "/roles", "/audit", "/executors", "/no/such/page"} {
		resp, body := b.get(path)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next="+url.QueryEscape(path) {
			t.Errorf("GET %s without a session answered %d to %q, want 303 to the login form", path, resp.StatusCode, resp.Header.Get("Location"))
		}
		if strings.Contains(body, "Logged in as") {
			t.Errorf("GET %s without a session shows %q", path, body)
		}
	}
	// A script asking for data gets a bare 401, and so does every POST.
	req, _ := http.NewRequest(http.MethodGet, f.url+"/console/requests/x/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	if resp := b.do(req); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the event stream without a session answered %d, want 401", resp.StatusCode)
	}
	for _, path := range []string{"/console", "/audit/verify", "/logout"} {
		if resp := b.post(path, url.Values{"text": {"echo hi"}}, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s without a session answered %d, want 401", path, resp.StatusCode)
		}
	}
	// The login form and the assets need no session.
	for _, path := range []string{"/login", "/static/app.css", "/static/console.js", "/static/transcript.js"} {
		if resp, _ := b.get(path); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s answered %d, want 200", path, resp.StatusCode)
		}
	}
}

func TestABadTokenDoesNotLogIn(t *testing.T) {
	f := newFixture(t)
	for name, token := range map[string]string{"empty": "", "unknown": "lbk_nope", "hash of a real one": access.HashToken(f.adminToken)} {
		t.Run(name, func(t *testing.T) {
			b := f.browser(t)
			resp := b.post("/login", url.Values{"token": {token}}, nil)
			if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
				t.Fatalf("login with a bad token answered %d with cookies %v, want 401 and none", resp.StatusCode, resp.Cookies())
			}
			if resp, _ := b.get("/console"); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("after a failed login the console answered %d", resp.StatusCode)
			}
		})
	}
}

func TestLoginSetsAStrictSessionCookieAndLogoutEndsIt(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	resp := b.post("/login", url.Values{"token": {"  " + f.adminToken + "\n"}, "next": {"/history?user=admin"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/history?user=admin" {
		t.Fatalf("login answered %d to %q, want 303 back to the page asked for", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("login set %d cookies", len(cookies))
	}
	c := cookies[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure {
		t.Fatalf("the session cookie is %+v; want HttpOnly, SameSite=Strict, Path=/ and not Secure over plain HTTP", c)
	}
	if strings.Contains(c.Value, f.adminToken) {
		t.Fatal("the cookie carries the token itself")
	}
	resp, body := b.get("/history")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="whoami" href="/users/admin">admin</a>`) {
		t.Fatalf("after login the history answered %d without saying who is logged in:\n%s", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("the page lacks its security headers: %v", resp.Header)
	}
	// A login with a foreign next goes to the dashboard instead, whatever
	// a browser would forgive in it.
	for _, foreign := range []string{"//evil.example/x", "/\t/evil.example", "/%2F%2Fevil.example", " //evil.example"} {
		b2 := f.browser(t)
		if resp := b2.post("/login", url.Values{"token": {f.adminToken}, "next": {foreign}}, nil); resp.Header.Get("Location") != "/" {
			t.Fatalf("login sent the foreign next %q to %q", foreign, resp.Header.Get("Location"))
		}
	}

	csrf := regexpFind(t, body, `name="csrf" value="([^"]+)"`)
	if resp := b.post("/logout", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout answered %d", resp.StatusCode)
	}
	if resp, _ := b.get("/history"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after logout the history answered %d, want a redirect to login", resp.StatusCode)
	}
}

func TestARevokedTokenEndsItsSession(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, f.bobToken)
	f.append(t, access.UserStream(bobID), access.TokenRevoked{User: bobID, Hash: access.HashToken(f.bobToken)})
	testenv.Eventually(t, "the revocation to be folded", func() bool { _, ok := f.facts.UserForToken(f.bobToken); return !ok })
	if resp, _ := b.get("/console"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("with its token revoked, the session still opens the console (%d)", resp.StatusCode)
	}
}

func TestPostsNeedTheSessionsCSRFTokenAndThisSite(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, f.adminToken)
	cases := map[string]struct {
		form   url.Values
		header http.Header
	}{
		"no token":         {url.Values{"text": {"echo hi"}}, nil},
		"a wrong token":    {url.Values{"text": {"echo hi"}, "csrf": {"forged"}}, nil},
		"another site":     {url.Values{"text": {"echo hi"}, "csrf": {b.csrf}}, http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		"a foreign origin": {url.Values{"text": {"echo hi"}, "csrf": {b.csrf}}, http.Header{"Origin": {"http://evil.example"}}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if resp := b.post("/console", c.form, c.header); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("POST /console with %s answered %d, want 403", name, resp.StatusCode)
			}
		})
	}
	// Nothing was recorded: the log holds no web request.
	events, err := f.store.ReadAll(context.Background(), 1, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Type == "RequestReceived" {
			t.Fatalf("a refused POST was recorded: %s", e.Data)
		}
	}
	// The same form with its token goes through, to the request's page.
	resp := b.post("/console", url.Values{"text": {"!echo form"}, "csrf": {b.csrf}}, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/requests/") {
		t.Fatalf("the console form answered %d to %q, want 303 to the request", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestTheConsoleRunsACommandAsTheUserFromProviderWebAndStreamsItsOutput(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, f.adminToken)
	id := b.say("!echo hello")

	events := b.follow(id)
	var kinds []string
	output, reply, replyHTML, status := "", "", "", ""
	for _, e := range events {
		kinds = append(kinds, e.Event)
		switch e.Event {
		case "chunk":
			output += e.Data["text"].(string)
		case "reply":
			reply = e.Data["text"].(string)
			replyHTML, _ = e.Data["html"].(string)
		case "end":
			status = e.Data["status"].(string)
		}
	}
	// The reply comes as text and as the HTML the web's renderer made.
	if output != "hello\n" || reply != "hello" || replyHTML != "<p>hello</p>\n" || status != "completed" {
		t.Fatalf("the stream gave output %q, reply %q (html %q), status %q; events %v", output, reply, replyHTML, status, kinds)
	}
	if strings.Join(kinds, " ") != "run chunk run_end reply end" {
		t.Fatalf("the stream's events are %v", kinds)
	}

	// The request is recorded as typed by admin from provider web.
	stored, err := f.store.ReadStream(context.Background(), dispatch.Stream(id), 0, 1)
	if err != nil || len(stored) != 1 {
		t.Fatalf("request stream: %v %v", stored, err)
	}
	p, _ := domain.Decode(stored[0])
	rec := p.(dispatch.RequestReceived)
	if rec.Adapter != "web" || rec.ChatUser != "admin" || rec.Room != "console" || rec.Text != "echo hello" || stored[0].Metadata().Actor != "admin" {
		t.Fatalf("recorded %+v by %q", rec, stored[0].Metadata().Actor)
	}

	// Following it again, once ended, replays the same.
	again := b.follow(id)
	if len(again) != len(events) {
		t.Fatalf("following the ended request again gave %v, first %v", again, events)
	}

	// The console remembers the session's commands.
	_, body := b.get("/console")
	if !strings.Contains(body, `data-request="`+id+`"`) || !strings.Contains(body, "!echo hello") {
		t.Fatalf("the console's scrollback lacks the command:\n%s", body)
	}

	// The history lists it under provider web, linked to its request and run.
	_, body = b.get("/history?provider=web&user=admin")
	for _, want := range []string{`href="/requests/` + id + `"`, `href="/runs/` + id + `-s0-i0"`, `href="/runs/` + id + `-s0-i0/transcript"`, "completed"} {
		if !strings.Contains(body, want) {
			t.Fatalf("the history lacks %s:\n%s", want, body)
		}
	}
}

func TestAnEmptyCommandIsRefused(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, f.adminToken)
	if resp := b.post("/console", url.Values{"text": {"   "}}, http.Header{"X-Csrf-Token": {b.csrf}, "Accept": {"application/json"}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an empty command answered %d, want 400", resp.StatusCode)
	}
}

func TestTheRequestPageShowsItsRunsReplyAndCheckedChain(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, f.adminToken)
	id := b.say("echo 'chained <b>'")
	b.follow(id)
	resp, body := b.get("/requests/" + id)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the request page answered %d:\n%s", resp.StatusCode, body)
	}
	// The output as printed and the reply as rendered and posted (HTML,
	// the value escaped once by the renderer) are both there.
	for _, want := range []string{"RequestReceived", "IdentityResolved", "PipelineParsed", "PermissionChecked", "StageStarted", "RequestCompleted",
		`<pre class="reply" id="reply">chained &lt;b&gt;</pre>`, `<div class="rendered" id="rendered"><p>chained &lt;b&gt;</p>`,
		"html for web, Cog's default rendering", `href="/runs/` + id + `-s0-i0"`, "logbook:echo"} {
		if !strings.Contains(body, want) {
			t.Fatalf("the request page lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, "does not match") || !strings.Contains(body, `<span class="ok">ok</span>`) {
		t.Fatal("the request page does not show every hash as checked")
	}

	for path, want := range map[string]int{
		"/requests/not-a-uuid":                           http.StatusNotFound,
		"/requests/7c9e6679-7425-40de-944b-e07fc1f90ae7": http.StatusNotFound,
		"/runs/" + strings.Repeat("x", 200):              http.StatusNotFound,
		"/runs/nope":                                     http.StatusNotFound,
		"/runs/nope/transcript":                          http.StatusNotFound,
		"/nowhere":                                       http.StatusNotFound,
	} {
		if resp, _ := b.get(path); resp.StatusCode != want {
			t.Errorf("GET %s answered %d, want %d", path, resp.StatusCode, want)
		}
	}
}

func TestTheRunAndTranscriptPagesShowTheOutput(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, f.adminToken)
	id := b.say("echo on stdout")
	b.follow(id)
	runID := id + "-s0-i0"
	resp, body := b.get("/runs/" + runID)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `href="/runs/`+runID+`/transcript"`) || !strings.Contains(body, "OutputChunk") {
		t.Fatalf("the run page answered %d:\n%s", resp.StatusCode, body)
	}
	resp, body = b.get("/runs/" + runID + "/transcript")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the transcript answered %d", resp.StatusCode)
	}
	for _, want := range []string{`<div class="line" id="L1" data-t="0"><a class="ln" href="#L1" data-n="1"></a><span class="tx">on stdout</span></div>`,
		`id="play"`, `<option value="10">10×</option>`} {
		if !strings.Contains(body, want) {
			t.Fatalf("the transcript lacks %s:\n%s", want, body)
		}
	}
	resp, body = b.get("/runs/" + runID + "/chunks")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"stream":"stdout","offset_ms":`) || !strings.Contains(body, `"text":"on stdout\n"`) {
		t.Fatalf("the chunks answered %d: %s", resp.StatusCode, body)
	}
}

func TestTheHistoryRefusesBadFiltersNamingThem(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, f.adminToken)
	for query, names := range map[string]string{
		"status=bogus":                      "status",
		"since=yesterday":                   "since",
		"until=2026-13-01":                  "until",
		"since=2026-02-01&until=2026-01-01": "until",
		"command=echo+hello":                "command",
		"colour=red":                        "colour",
		"user=a&user=b":                     "user",
		"cursor=-4":                         "cursor",
	} {
		resp, body := b.get("/history?" + query)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "The filter "+names+":") {
			t.Errorf("GET /history?%s answered %d without naming %s:\n%s", query, resp.StatusCode, names, body)
		}
	}
	// Empty fields, as a GET form sends them, filter nothing.
	if resp, _ := b.get("/history?user=&room=&provider=&command=&status=&since=&until="); resp.StatusCode != http.StatusOK {
		t.Fatalf("an empty form answered %d", resp.StatusCode)
	}
}

func TestTheHistoryFiltersAndPages(t *testing.T) {
	f := newFixture(t)
	for i := range 53 {
		msg := fmt.Sprintf("m%d", i)
		f.append(t, dispatch.Stream(dispatch.RequestID("slack", msg)),
			dispatch.RequestReceived{Adapter: "slack", MessageID: msg, Room: "#ops", ChatUser: "U1", Text: fmt.Sprintf("echo %d", i)})
	}
	b := f.login(t, f.adminToken)
	b.say("echo from the web")
	_, first := b.get("/history?provider=slack")
	if n := strings.Count(first, `<tr data-request=`); n != 50 {
		t.Fatalf("the first page has %d rows, want 50", n)
	}
	if strings.Contains(first, "echo from the web") {
		t.Fatal("provider=slack shows the web request")
	}
	next := regexpFind(t, first, `<a href="([^"]+)" rel="next"`)
	next = strings.ReplaceAll(next, "&amp;", "&")
	if !strings.Contains(next, "provider=slack") || !strings.Contains(next, "cursor=") {
		t.Fatalf("the next link %q loses the filter or the cursor", next)
	}
	_, second := b.get(next)
	if n := strings.Count(second, `<tr data-request=`); n != 3 || strings.Contains(second, `rel="next"`) {
		t.Fatalf("the second page has %d rows (want 3) and next link %v", n, strings.Contains(second, `rel="next"`))
	}
	if !strings.Contains(second, "echo 0") || strings.Contains(second, "echo 52") {
		t.Fatal("the pages are not newest first")
	}
	_, none := b.get("/history?room=%23nowhere")
	if !strings.Contains(none, "No requests match these filters.") {
		t.Fatalf("a filter matching nothing says:\n%s", none)
	}
}

// Given filters naming users that do not exist and several bad filters at
// once, when the history is asked for, then each problem is named: a
// user filter never answers an empty list without a word.
func TestTheHistoryNamesEveryBadFilterAndUnknownUsers(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, f.adminToken)
	for query, wants := range map[string][]string{
		"user=nosuch":                       {`no user is named &#34;nosuch&#34;`},
		"user=ADMIN":                        {`no user is named &#34;ADMIN&#34;`, `usernames are lower case: &#34;admin&#34;`},
		"status=done&since=soon&colour=red": {"The filter status:", "The filter since:", "The filter colour:"},
	} {
		resp, body := b.get("/history?" + query)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET /history?%s answered %d, want 400", query, resp.StatusCode)
		}
		for _, want := range wants {
			if !strings.Contains(body, want) {
				t.Errorf("GET /history?%s does not say %s", query, want)
			}
		}
	}
	// An age in days, as the CLI's --since takes it.
	for _, age := range []string{"7d", "1d"} {
		if resp, body := b.get("/history?since=" + age); resp.StatusCode != http.StatusOK {
			t.Errorf("GET /history?since=%s answered %d:\n%s", age, resp.StatusCode, body)
		}
	}
}

func TestThePermissionPages(t *testing.T) {
	f := newFixture(t)
	admin := f.login(t, f.adminToken)
	bob := f.login(t, f.bobToken)

	_, users := admin.get("/users")
	for _, want := range []string{`href="/users/admin"`, `href="/users/bob"`} {
		if !strings.Contains(users, want) {
			t.Fatalf("/users lacks %s:\n%s", want, users)
		}
	}
	_, adminPage := admin.get("/users/admin")
	for _, want := range []string{"<code>logbook:admin</code>", `id="may-run"`, "<code>logbook:echo</code>", `<span class="ok">allowed</span>`, "<dt>Groups</dt><dd>admin </dd>"} {
		if !strings.Contains(adminPage, want) {
			t.Fatalf("/users/admin lacks %s:\n%s", want, adminPage)
		}
	}
	_, checked := admin.get("/users/bob?check=" + url.QueryEscape("echo hi | echo there"))
	if !strings.Contains(checked, `id="check-result"`) || !strings.Contains(checked, "<code>echo hi | echo there</code>") {
		t.Fatalf("checking a command line for bob shows:\n%s", checked)
	}
	_, groups := admin.get("/groups")
	if !strings.Contains(groups, `<tr id="group-admin"><td>admin</td>`) || !strings.Contains(groups, `<a href="/users/admin">admin</a>`) {
		t.Fatalf("/groups:\n%s", groups)
	}
	_, roles := admin.get("/roles")
	if !strings.Contains(roles, `<tr id="role-admin">`) || !strings.Contains(roles, "<code>logbook:manage_users</code>") || !strings.Contains(roles, `id="permissions-table"`) {
		t.Fatalf("/roles:\n%s", roles)
	}
	if _, executors := admin.get("/executors"); !strings.Contains(executors, "runs its commands in-process") {
		t.Fatalf("/executors on the in-process bus:\n%s", executors)
	}
	if resp, _ := admin.get("/users/nobody"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("an unknown user answered %d", resp.StatusCode)
	}

	// Bob holds no logbook:manage_* permission: he reads his own page,
	// what he may run included, and nothing else, as over the API.
	_, own := bob.get("/users/bob")
	if !strings.Contains(own, `id="may-run"`) || !strings.Contains(own, "<p>None.</p>") || !strings.Contains(own, "<code>logbook:echo</code>") {
		t.Fatalf("bob's own page:\n%s", own)
	}
	for path, perm := range map[string]string{"/users": "logbook:manage_users", "/users/admin": "logbook:manage_users", "/users/nobody": "logbook:manage_users",
		"/groups": "logbook:manage_groups", "/roles": "logbook:manage_roles", "/executors": "logbook:manage_bundles"} {
		resp, body := bob.get(path)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "needs the "+perm+" permission") || strings.Contains(body, "/users/admin\"") {
			t.Errorf("GET %s as bob answered %d:\n%s", path, resp.StatusCode, body)
		}
	}
}

func TestTheAuditPageVerifiesTheChainForAdminsAndLooksUpRequests(t *testing.T) {
	f := newFixture(t)
	admin := f.login(t, f.adminToken)
	id := admin.say("echo audited")
	admin.follow(id)
	head, _, err := f.store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Verifying goes back to the audit page (POST, then redirect, then
	// GET), so a reload does not send the form again.
	resp := admin.post("/audit/verify", url.Values{"csrf": {admin.csrf}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/audit#verification" {
		t.Fatalf("verify answered %d to %q, want 303 to the audit page", resp.StatusCode, resp.Header.Get("Location"))
	}
	for range 2 { // the page, then a reload
		resp, body := admin.get("/audit")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "the chain was intact") || !strings.Contains(body, fmt.Sprintf(`<dd id="head-position">%d</dd>`, head)) ||
			!strings.Contains(body, " by admin:") {
			t.Fatalf("the audit page after verifying answered %d (head %d):\n%s", resp.StatusCode, head, body)
		}
	}
	_, verifications := admin.get("/audit?type=verifications")
	if n := strings.Count(verifications, `<tr data-type="ChainVerified">`); n != 1 {
		t.Fatalf("the audit log lists %d verifications, want the one", n)
	}
	bob := f.login(t, f.bobToken)
	if resp := bob.post("/audit/verify", url.Values{"csrf": {bob.csrf}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("verify by bob answered %d, want 403", resp.StatusCode)
	}
	if resp, _ := bob.get("/audit?request=" + id); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/requests/"+id {
		t.Fatalf("the lookup answered %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := bob.get("/audit?request=12"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "is not a request id") {
		t.Fatalf("a bad lookup answered %d:\n%s", resp.StatusCode, body)
	}
	// Bob may not read everyone's administrative events; he still sees
	// the chain's status.
	if resp, body := bob.get("/audit"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="no-stream"`) || strings.Contains(body, `<tr data-type=`) ||
		!strings.Contains(body, "the chain was intact") {
		t.Fatalf("bob's audit page answered %d:\n%s", resp.StatusCode, body)
	}
}

// Given logins and a token issued, when the audit log is filtered by kind
// and actor, then it lists those events with their actors; a head kept
// earlier is compared with the log.
func TestTheAuditLogFiltersAdministrativeEventsAndComparesAKeptHead(t *testing.T) {
	f := newFixture(t)
	admin := f.login(t, f.adminToken)
	f.login(t, f.bobToken)
	_, logins := admin.get("/audit?type=logins")
	if strings.Count(logins, `<tr data-type="SessionStarted">`) != 2 || !strings.Contains(logins, `<td data-label="Actor">bob</td>`) {
		t.Fatalf("the logins:\n%s", logins)
	}
	_, bobs := admin.get("/audit?type=logins&actor=bob")
	if strings.Count(bobs, `<tr data-type="SessionStarted">`) != 1 || strings.Contains(bobs, `<td data-label="Actor">admin</td>`) {
		t.Fatalf("bob's logins:\n%s", bobs)
	}
	_, tokens := admin.get("/audit?type=TokenIssued")
	if !strings.Contains(tokens, `<tr data-type="TokenIssued">`) || strings.Contains(tokens, access.HashToken(f.bobToken)) {
		t.Fatalf("the tokens issued (never with their hash):\n%s", tokens)
	}
	for query, want := range map[string]string{"type=nosuch": "The filter type:", "since=soon&colour=red": "The filter colour:", "position=x&hash=y": "The head to compare, position:"} {
		if resp, body := admin.get("/audit?" + query); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("GET /audit?%s answered %d without %q", query, resp.StatusCode, want)
		}
	}

	events, err := f.store.ReadAll(context.Background(), 3, 1)
	if err != nil || len(events) != 1 {
		t.Fatal(err)
	}
	kept := hex.EncodeToString(events[0].Hash)
	if _, body := admin.get("/audit?position=3&hash=" + kept); !strings.Contains(body, "It matches") {
		t.Fatalf("the kept head does not match:\n%s", body)
	}
	if _, body := admin.get("/audit?position=3&hash=" + strings.Repeat("0", 64)); !strings.Contains(body, "It does not match: the event at that position has another hash now") {
		t.Fatalf("another hash matches:\n%s", body)
	}
	if _, body := admin.get("/audit?position=999999&hash=" + kept); !strings.Contains(body, "events were deleted from its end") {
		t.Fatalf("a head past the end:\n%s", body)
	}
}

func TestWhileStartingTheUIAnswers503(t *testing.T) {
	var current http.Handler
	srv := httptest.NewServer(webui.Starting(func() http.Handler { return current }))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/console")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "Logbook is starting") {
		t.Fatalf("while starting: %d %s", resp.StatusCode, body)
	}
	current = http.NotFoundHandler()
	if resp, _ := http.Get(srv.URL + "/console"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("once started, the UI's own handler was not used (%d)", resp.StatusCode)
	}
}

func TestNewSaysWhatConfigLacks(t *testing.T) {
	_, err := webui.New(webui.Config{})
	if err == nil || !strings.Contains(err.Error(), "Config.Users is required") || !strings.Contains(err.Error(), "Config.Permissions is required") {
		t.Fatalf("New with an empty config: %v", err)
	}
}

// A container run's output streams into the console as the executor
// records it: the stream is open before the first chunk exists.
func TestTheConsoleStreamsARunningCommandsOutputAsItArrives(t *testing.T) {
	f := newFixture(t)
	if _, err := dispatcher.InstallBundle(context.Background(), f.store, samplebundle.Config, "test"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the sample bundle to be known", func() bool { return f.facts.BundleInstalled("toolbox") })
	b := f.login(t, f.adminToken)
	id := b.say("!toolbox:echo slowly")
	runID := id + "-s0-i0"
	// Nothing executes in the fixture: the test records the run's events
	// as an executor would, once the dispatcher has requested the run.
	testenv.Eventually(t, "the run to be requested", func() bool {
		events, _ := f.store.ReadStream(context.Background(), run.Stream(runID), 0, 1)
		return len(events) == 1
	})
	events := b.stream(id)
	if e := next(t, events); e.Event != "run" || e.Data["command"] != "toolbox:echo" || e.Data["run_id"] != runID {
		t.Fatalf("the first event is %+v", e)
	}
	at := time.Now().UTC()
	appendRun := func(p domain.Payload, version int64) {
		t.Helper()
		e := domain.MustEncode(p, domain.Metadata{Actor: "executor"})
		if _, err := f.store.Append(context.Background(), run.Stream(runID), eventstore.Exact(version), e); err != nil {
			t.Fatal(err)
		}
	}
	appendRun(run.ContainerStarted{ContainerID: "c1"}, 0)
	appendRun(run.OutputChunk{Seq: 0, Stream: run.Stdout, Bytes: []byte("first\n"), At: at}, 1)
	if e := next(t, events); e.Event != "chunk" || e.Data["text"] != "first\n" || e.Data["stream"] != "stdout" {
		t.Fatalf("after the first chunk the stream sent %+v", e)
	}
	appendRun(run.OutputChunk{Seq: 1, Stream: run.Stderr, Bytes: []byte("oops\n"), At: at.Add(time.Second)}, 2)
	if e := next(t, events); e.Event != "chunk" || e.Data["text"] != "oops\n" || e.Data["stream"] != "stderr" {
		t.Fatalf("after the second chunk the stream sent %+v", e)
	}
	appendRun(run.RunSucceeded{Result: run.Result{Value: json.RawMessage(`[{"body":["first"]}]`)}}, 3)
	for _, want := range []string{"run_end", "reply", "end"} {
		e := next(t, events)
		if e.Event != want {
			t.Fatalf("got %+v, want %s", e, want)
		}
		if want == "reply" && e.Data["text"] != "first" {
			t.Fatalf("the reply is %+v", e.Data)
		}
	}
	if _, open := <-events; open {
		t.Fatal("the stream stayed open after the end")
	}
}

func TestAnOversizedFormIsRefusedSayingTheLimit(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, f.adminToken)
	resp := b.post("/console", url.Values{"text": {strings.Repeat("x", 70<<10)}, "csrf": {b.csrf}}, nil)
	if body := readAll(t, resp); resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "64 KiB") {
		t.Fatalf("a 70 KiB form answered %d:\n%s", resp.StatusCode, body)
	}
	if resp, _ := b.get("/runs/nope/chunks"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the chunks of an unknown run answered %d", resp.StatusCode)
	}
}

func TestShutdownEndsTheOpenEventStreams(t *testing.T) {
	f := newFixture(t)
	if _, err := dispatcher.InstallBundle(context.Background(), f.store, samplebundle.Config, "test"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the sample bundle to be known", func() bool { return f.facts.BundleInstalled("toolbox") })
	b := f.login(t, f.adminToken)
	// The run is requested and never executed: the stream would stay open
	// until the request timed out.
	events := b.stream(b.say("!toolbox:echo forever"))
	if e := next(t, events); e.Event != "run" {
		t.Fatalf("the first event is %+v", e)
	}
	f.ui.Shutdown()
	select {
	case _, open := <-events:
		if open {
			t.Fatal("the stream sent more after shutdown")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream is still open 5s after shutdown")
	}
}

func TestAQuietStreamCarriesHeartbeats(t *testing.T) {
	f := newFixture(t)
	if _, err := dispatcher.InstallBundle(context.Background(), f.store, samplebundle.Config, "test"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the sample bundle to be known", func() bool { return f.facts.BundleInstalled("toolbox") })
	b := f.login(t, f.adminToken)
	id := b.say("!toolbox:echo quiet")
	req, _ := http.NewRequest(http.MethodGet, f.url+"/console/requests/"+id+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp := b.do(req)
	defer resp.Body.Close()
	// The run is never executed: after its run event, only heartbeats.
	sc := bufio.NewScanner(resp.Body)
	beats := 0
	for beats < 2 && sc.Scan() {
		if sc.Text() == ": keepalive" {
			beats++
		}
	}
	if beats < 2 {
		t.Fatalf("the stream ended (%v) after %d heartbeats", sc.Err(), beats)
	}
}

func TestARequestsRunsAreListedInTheOrderTheyRan(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, f.adminToken)
	id := b.say("echo first | echo second")
	b.follow(id)
	first, second := `href="/runs/`+id+`-s0-i0`, `href="/runs/`+id+`-s1-i0`
	for _, path := range []string{"/history", "/requests/" + id} {
		resp, body := b.get(path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s answered %d", path, resp.StatusCode)
		}
		i, j := strings.Index(body, first), strings.Index(body, second)
		if i < 0 || j < 0 || i > j {
			t.Fatalf("%s lists stage 1's run at %d and stage 2's at %d, want both, in that order:\n%s", path, i, j, body)
		}
	}
}
