package webui_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/internal/samplebundle"
	"github.com/logbookhq/logbook/internal/testenv"
)

// screenshotDir is where the browser tests leave their screenshots:
// LOGBOOK_SCREENSHOTS when set (to look at them), else a directory the
// test removes.
func screenshotDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("LOGBOOK_SCREENSHOTS"); dir != "" {
		dir = filepath.Join(dir, t.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// shoot saves a full-page screenshot as name.png.
func shoot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// colourScheme makes the page prefer a dark or light scheme.
func colourScheme(scheme string) chromedp.Action {
	return emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}})
}

// browserLogin logs the browser in through the form and lands on next.
func browserLogin(t *testing.T, ctx context.Context, f *fixture, token, next string) {
	t.Helper()
	err := chromedp.Run(ctx,
		chromedp.Navigate(f.url+"/login?next="+url.QueryEscape(next)),
		chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.SendKeys("#token", token, chromedp.ByID),
		chromedp.Submit("#token", chromedp.ByID),
		// #whoami is on every page after the login, and not on the
		// login page (which has a #main too): the form's navigation has
		// ended, and no later navigation can abort it.
		chromedp.WaitVisible("#whoami", chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
}

// apiGet reads a /v1 route with token into out.
func apiGet(t *testing.T, f *fixture, token, path string, out any) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s answered %d: %s", path, resp.StatusCode, body.String())
	}
	if out != nil {
		if err := json.Unmarshal(body.Bytes(), out); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return body.Bytes()
}

// apiCount counts every request GET /v1/history lists with query,
// following its pages.
func apiCount(t *testing.T, f *fixture, query url.Values) int {
	t.Helper()
	n := 0
	for cursor := ""; ; {
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		q.Set("limit", "200")
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Requests   []json.RawMessage `json:"requests"`
			NextCursor string            `json:"next_cursor"`
		}
		apiGet(t, f, f.adminToken, "/v1/history?"+q.Encode(), &page)
		n += len(page.Requests)
		if page.NextCursor == "" {
			return n
		}
		cursor = page.NextCursor
	}
}

// someHistory records requests of several outcomes: completed echoes by
// two users, one that fails to parse, one from a chat user nobody is
// linked to, and one that stays running (its run is never executed).
func someHistory(t *testing.T, f *fixture) (running string) {
	t.Helper()
	if _, err := dispatcher.InstallBundle(context.Background(), f.store, samplebundle.Config, "test"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the sample bundle to be known", func() bool { return f.facts.BundleInstalled("toolbox") })
	admin, bob := f.login(t, f.adminToken), f.login(t, f.bobToken)
	for _, text := range []string{"!echo one", "!echo two", "!echo \"unclosed"} {
		admin.follow(admin.say(text))
	}
	bob.follow(bob.say("!echo three"))
	f.append(t, dispatch.Stream(dispatch.RequestID("slack", "m-stranger")),
		dispatch.RequestReceived{Adapter: "slack", MessageID: "m-stranger", Room: "#ops", ChatUser: "U-STRANGER", Text: "echo who"})
	running = admin.say("!toolbox:echo slow")
	testenv.Eventually(t, "the slow request to run", func() bool {
		events, _ := f.store.ReadStream(context.Background(), run.Stream(running+"-s0-i0"), 0, 1)
		return len(events) == 1
	})
	return running
}

// endRun records a run's container output and success, as an executor
// would.
func endRun(t *testing.T, f *fixture, runID, output string) {
	t.Helper()
	for i, p := range []domain.Payload{
		run.ContainerStarted{ContainerID: "c1"},
		run.OutputChunk{Seq: 0, Stream: run.Stdout, Bytes: []byte(output), At: time.Now()},
		run.RunSucceeded{},
	} {
		e := domain.MustEncode(p, domain.Metadata{Actor: "executor"})
		if _, err := f.store.Append(context.Background(), run.Stream(runID), eventstore.Exact(int64(i)), e); err != nil {
			t.Fatal(err)
		}
	}
}

// The dashboard's numbers (requests by outcome, the total, those not
// ended, top users) equal what the API counts with the filters each one
// links to.
func TestTheDashboardsNumbersEqualTheAPIsCounts(t *testing.T) {
	ctx := headless(t)
	f := newFixture(t)
	someHistory(t, f)
	dir := screenshotDir(t)
	browserLogin(t, ctx, f, f.adminToken, "/")
	type counted struct {
		Href  string `json:"href"`
		Count string `json:"count"`
	}
	var outcomes, active, users []counted
	var total counted
	read := `(sel) => Array.from(document.querySelectorAll(sel)).map(a => ({href: a.getAttribute("href"), count: a.closest("li, tr").querySelector(".n").textContent.trim()}))`
	err := chromedp.Run(ctx,
		chromedp.WaitVisible("#outcomes", chromedp.ByID),
		chromedp.Evaluate(`(`+read+`)(".outcome-count")`, &outcomes),
		chromedp.Evaluate(`(`+read+`)(".active-count")`, &active),
		chromedp.Evaluate(`(`+read+`)("#top-users th a")`, &users),
		chromedp.Evaluate(`({href: document.getElementById("requests-total").getAttribute("href"), count: document.getElementById("requests-total").textContent.trim()})`, &total),
	)
	if err != nil {
		t.Fatal(err)
	}
	if len(outcomes) < 3 || len(active) != 4 || len(users) < 2 {
		t.Fatalf("the dashboard shows outcomes %v, active %v, users %v", outcomes, active, users)
	}
	seen := map[string]bool{}
	for _, c := range append(append(append(outcomes, active...), users...), total) {
		u, err := url.Parse(c.Href)
		if err != nil || u.Path != "/history" {
			t.Fatalf("%+v does not link to the history", c)
		}
		want := apiCount(t, f, u.Query())
		if c.Count != fmt.Sprint(want) {
			t.Errorf("the dashboard says %s for %s; the API counts %d", c.Count, u.RawQuery, want)
		}
		seen[u.Query().Get("status")] = true
	}
	for _, status := range []string{"completed", "rejected", "unknown-user", "running"} {
		if !seen[status] {
			t.Errorf("the dashboard shows no %s requests: %v", status, outcomes)
		}
	}
	for _, shot := range []struct {
		name   string
		width  int64
		scheme string
	}{{"dashboard-1400-light", 1400, "light"}, {"dashboard-1400-dark", 1400, "dark"}, {"dashboard-390-light", 390, "light"}, {"dashboard-390-dark", 390, "dark"}} {
		if err := chromedp.Run(ctx, chromedp.EmulateViewport(shot.width, 1000), colourScheme(shot.scheme), chromedp.Reload(), chromedp.WaitVisible("#outcomes", chromedp.ByID)); err != nil {
			t.Fatal(err)
		}
		shoot(t, ctx, dir, shot.name)
	}
}

// A request that runs shows as running in the history; when it completes,
// its row says so without a reload, and the console shows its reply
// before its stage's output.
func TestAHistoryRowGoesFromRunningToCompletedWithoutAReload(t *testing.T) {
	ctx := headless(t)
	f := newFixture(t)
	running := someHistory(t, f)
	dir := screenshotDir(t)
	browserLogin(t, ctx, f, f.adminToken, "/history")
	row := `tr[data-request="` + running + `"]`
	var marker string
	err := chromedp.Run(ctx,
		chromedp.EmulateViewport(1400, 1000),
		chromedp.WaitVisible(row+` .badge.status-running`, chromedp.ByQuery),
		// A mark on the page that a reload would lose.
		chromedp.Evaluate(`window.notReloaded = "yes"`, nil),
	)
	if err != nil {
		t.Fatal(err)
	}
	shoot(t, ctx, dir, "history-running-1400")
	endRun(t, f, running+"-s0-i0", "slow done\n")
	err = chromedp.Run(ctx,
		chromedp.WaitVisible(row+` .badge.status-completed`, chromedp.ByQuery),
		chromedp.Evaluate(`window.notReloaded`, &marker),
	)
	if err != nil {
		t.Fatal(err)
	}
	if marker != "yes" {
		t.Fatal("the page was reloaded")
	}
	shoot(t, ctx, dir, "history-completed-1400")
	if err := chromedp.Run(ctx, colourScheme("dark"), chromedp.EmulateViewport(390, 900), chromedp.Reload(), chromedp.WaitVisible("#history-table", chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
	shoot(t, ctx, dir, "history-390-dark")
}

// Reloaded while a slow command runs, the console shows the commands
// after it at once (their replies, each stage's output behind its
// toggle), and the slow one when it ends.
func TestTheConsoleReplaysFinishedCommandsWhileASlowOneRuns(t *testing.T) {
	ctx := headless(t)
	f := newFixture(t)
	if _, err := dispatcher.InstallBundle(context.Background(), f.store, samplebundle.Config, "test"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the sample bundle to be known", func() bool { return f.facts.BundleInstalled("toolbox") })
	dir := screenshotDir(t)
	browserLogin(t, ctx, f, f.adminToken, "/console")
	send := func(text string) chromedp.Tasks {
		// A click, so the script's submit handler sends it (a form's
		// submit() would not fire it).
		return chromedp.Tasks{chromedp.SetValue("#command", text, chromedp.ByID), chromedp.Click("#console-form button", chromedp.ByQuery)}
	}
	var slowID string
	err := chromedp.Run(ctx,
		chromedp.EmulateViewport(1400, 1000),
		send("!toolbox:echo slow"),
		chromedp.WaitVisible(`#scrollback li:nth-child(1) details.stage`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector("#scrollback li:nth-child(1)").dataset.request`, &slowID),
		send("!echo fast | echo after"),
		chromedp.WaitVisible(`#scrollback li:nth-child(2) .badge.status-completed`, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	var reply string
	var order []string
	err = chromedp.Run(ctx,
		chromedp.Reload(),
		chromedp.WaitVisible(`#scrollback li:nth-child(2) .badge.status-completed`, chromedp.ByQuery),
		chromedp.TextContent(`#scrollback li:nth-child(2) .reply`, &reply, chromedp.ByQuery),
		// The reply comes before the stages; the stages in order, each
		// behind its own toggle.
		chromedp.Evaluate(`Array.from(document.querySelectorAll("#scrollback li:nth-child(2) > div")).map(d => d.className).concat(
			Array.from(document.querySelectorAll("#scrollback li:nth-child(2) details.stage summary")).map(s => s.textContent.split(":")[0]))`, &order),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reply, "after") {
		t.Fatalf("the reply of the command after the slow one is %q", reply)
	}
	if strings.Join(order, ",") != "entry-head,reply,stages,Stage 1,Stage 2" {
		t.Fatalf("the entry reads %v, want the reply first and then the stages in order", order)
	}
	shoot(t, ctx, dir, "console-slow-running-1400")
	endRun(t, f, slowID+"-s0-i0", "slow\n")
	if err := chromedp.Run(ctx, chromedp.WaitVisible(`#scrollback li:nth-child(1) .entry-head .badge.status-completed`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(ctx, colourScheme("dark"), chromedp.EmulateViewport(390, 900), chromedp.Reload(),
		chromedp.WaitVisible(`#scrollback li:nth-child(1) .entry-head .badge.status-completed`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	shoot(t, ctx, dir, "console-390-dark")
}

// The CSV export holds what GET /v1/history answers for the same
// filters, cell for cell, and the JSON export the very same rows.
func TestTheCSVExportEqualsTheAPIsJSON(t *testing.T) {
	ctx := headless(t)
	f := newFixture(t)
	someHistory(t, f)
	browserLogin(t, ctx, f, f.adminToken, "/history?provider=web")
	var csvText, jsonText, href string
	err := chromedp.Run(ctx,
		chromedp.AttributeValue("#export-csv", "href", &href, nil, chromedp.ByID),
		chromedp.Evaluate(`fetch(document.getElementById("export-csv").href).then(r => r.text())`, &csvText, awaitPromise),
		chromedp.Evaluate(`fetch(document.getElementById("export-json").href).then(r => r.text())`, &jsonText, awaitPromise),
	)
	if err != nil {
		t.Fatal(err)
	}
	if href != "/history.csv?provider=web" {
		t.Fatalf("the export links to %q", href)
	}
	var api struct {
		Requests []map[string]json.RawMessage `json:"requests"`
	}
	apiGet(t, f, f.adminToken, "/v1/history?provider=web&limit=200", &api)
	records, err := csv.NewReader(strings.NewReader(csvText)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(api.Requests) < 4 || len(records) != len(api.Requests)+1 {
		t.Fatalf("the CSV has %d rows for the API's %d requests:\n%s", len(records)-1, len(api.Requests), csvText)
	}
	header := records[0]
	for i, fields := range api.Requests {
		for j, col := range header {
			want := ""
			if raw, ok := fields[col]; ok {
				var s string
				if json.Unmarshal(raw, &s) == nil {
					want = s
				} else {
					want = string(raw) // a number as the JSON writes it
				}
			}
			if records[i+1][j] != want {
				t.Errorf("row %d column %s: the CSV has %q, the API %q", i, col, records[i+1][j], want)
			}
		}
		for col := range fields {
			if !strings.Contains(","+strings.Join(header, ",")+",", ","+col+",") {
				t.Errorf("the CSV has no column %s", col)
			}
		}
	}
	var exported struct {
		Requests []map[string]json.RawMessage `json:"requests"`
	}
	if err := json.Unmarshal([]byte(jsonText), &exported); err != nil {
		t.Fatalf("the JSON export: %v\n%s", err, jsonText)
	}
	a, _ := json.Marshal(api.Requests)
	b, _ := json.Marshal(exported.Requests)
	if !bytes.Equal(a, b) {
		t.Fatalf("the JSON export differs from the API:\n%s\n%s", b, a)
	}
}

// awaitPromise makes Evaluate wait for the promise the script returns.
func awaitPromise(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }

// Every page is usable at 390 px: nothing is wider than the screen, so
// there is no horizontal scroll (wide tables scroll inside their own box);
// and every page's fields are labelled and its tables have headers.
func TestEveryPageFitsA390PxScreen(t *testing.T) {
	ctx := headless(t)
	f := newFixture(t)
	running := someHistory(t, f)
	endRun(t, f, running+"-s0-i0", strings.Repeat("a long line of output without a break ", 20)+"\n")
	dir := screenshotDir(t)
	browserLogin(t, ctx, f, f.adminToken, "/")
	pages := map[string]string{
		"dashboard": "/", "console": "/console", "history": "/history", "request": "/requests/" + running, "run": "/runs/" + running + "-s0-i0",
		"transcript": "/runs/" + running + "-s0-i0/transcript", "approvals": "/approvals", "users": "/users", "user": "/users/admin",
		"groups": "/groups", "roles": "/roles", "audit": "/audit", "not-found": "/no/such/page",
	}
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	for name, path := range pages {
		var scrollWidth, innerWidth int
		err := chromedp.Run(ctx,
			chromedp.Navigate(f.url+path),
			chromedp.WaitVisible("#main", chromedp.ByID),
			chromedp.Evaluate(`document.documentElement.scrollWidth`, &scrollWidth),
			chromedp.Evaluate(`window.innerWidth`, &innerWidth),
		)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if innerWidth != 390 || scrollWidth > innerWidth {
			t.Errorf("%s (%s) is %d px wide in a %d px window", name, path, scrollWidth, innerWidth)
		}
		// Semantic HTML: every field has a label, every table headers,
		// one h1, and nothing takes focus out of the page's order.
		var problems []string
		err = chromedp.Run(ctx, chromedp.Evaluate(`(() => {
			const out = [];
			document.querySelectorAll("input:not([type=hidden]), select, textarea").forEach(f => {
				if (f.labels.length === 0 && !f.getAttribute("aria-label")) out.push("a field without a label: " + (f.name || f.id));
			});
			document.querySelectorAll("table").forEach(t => { if (!t.querySelector("th")) out.push("a table without headers: " + t.id); });
			if (document.querySelectorAll("h1").length !== 1) out.push(document.querySelectorAll("h1").length + " h1");
			document.querySelectorAll("[tabindex]").forEach(e => { if (Number(e.getAttribute("tabindex")) > 0) out.push("a positive tabindex"); });
			return out;
		})()`, &problems))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s (%s): %s", name, path, p)
		}
		shoot(t, ctx, dir, name+"-390")
	}
	// The login page, logged out.
	var scrollWidth int
	err := chromedp.Run(ctx, network.ClearBrowserCookies(), chromedp.Navigate(f.url+"/login"), chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.Evaluate(`document.documentElement.scrollWidth`, &scrollWidth))
	if err != nil {
		t.Fatal(err)
	}
	if scrollWidth > 390 {
		t.Errorf("the login page is %d px wide", scrollWidth)
	}
}

// Dark mode follows the system's preference through the style sheet's
// custom properties; times read as relative, with the absolute UTC time on
// hover.
func TestDarkModeFollowsTheSystemAndTimesAreRelative(t *testing.T) {
	ctx := headless(t)
	f := newFixture(t)
	someHistory(t, f)
	browserLogin(t, ctx, f, f.adminToken, "/history")
	background := func(scheme string) string {
		t.Helper()
		var bg string
		if err := chromedp.Run(ctx, colourScheme(scheme), chromedp.Reload(), chromedp.WaitVisible("#history-table", chromedp.ByID),
			chromedp.Evaluate(`getComputedStyle(document.body).backgroundColor`, &bg)); err != nil {
			t.Fatal(err)
		}
		return bg
	}
	if light, dark := background("light"), background("dark"); light != "rgb(255, 255, 255)" || dark != "rgb(13, 17, 23)" {
		t.Fatalf("the page's background is %s in light mode and %s in dark mode", light, dark)
	}
	var when struct {
		Text  string `json:"text"`
		Title string `json:"title"`
	}
	if err := chromedp.Run(ctx, chromedp.Evaluate(`(() => { const t = document.querySelector("#history-table time.rel"); return {text: t.textContent, title: t.title}; })()`, &when)); err != nil {
		t.Fatal(err)
	}
	if when.Text != "just now" && !strings.HasSuffix(when.Text, " s ago") {
		t.Errorf("a request received a moment ago reads %q", when.Text)
	}
	if _, err := time.Parse("2006-01-02 15:04:05.000Z", when.Title); err != nil {
		t.Errorf("its title %q is not the absolute UTC time: %v", when.Title, err)
	}
}
