package webui_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/internal/samplebundle"
	"github.com/logbookhq/logbook/internal/testenv"
)

// containerRun sends text (a toolbox command) from b and records, as an
// executor would, its run printing chunks (a stream and its bytes each,
// 100 ms apart) and succeeding. It returns the run id.
func (f *fixture) containerRun(t testing.TB, b *browser, text string, chunks ...[2]string) string {
	t.Helper()
	if !f.facts.BundleInstalled("toolbox") {
		if _, err := dispatcher.InstallBundle(context.Background(), f.store, samplebundle.Config, "test"); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, "the sample bundle to be known", func() bool { return f.facts.BundleInstalled("toolbox") })
	}
	runID := b.say(text) + "-s0-i0"
	testenv.Eventually(t, "the run to be requested", func() bool {
		events, _ := f.store.ReadStream(context.Background(), run.Stream(runID), 0, 1)
		return len(events) == 1
	})
	version := int64(0)
	appendRun := func(p domain.Payload) domain.RecordedEvent {
		t.Helper()
		if _, err := f.store.Append(context.Background(), run.Stream(runID), eventstore.Exact(version), domain.MustEncode(p, domain.Metadata{Actor: "executor"})); err != nil {
			t.Fatal(err)
		}
		version++
		stored, err := f.store.ReadStream(context.Background(), run.Stream(runID), version, 1)
		if err != nil || len(stored) != 1 {
			t.Fatalf("reading back version %d: %v", version, err)
		}
		return stored[0]
	}
	start := appendRun(run.ContainerStarted{ContainerID: "c-" + runID}).RecordedAt
	for i, c := range chunks {
		appendRun(run.OutputChunk{Seq: int64(i), Stream: run.OutputStream(c[0]), Bytes: []byte(c[1]), At: start.Add(time.Duration(i) * 100 * time.Millisecond)})
	}
	appendRun(run.RunSucceeded{})
	return runID
}

func TestTheTranscriptPageNumbersLinesMarksStderrAndFoldsCogsJSON(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, f.adminToken)
	runID := f.containerRun(t, b, "!toolbox:echo json",
		[2]string{"stdout", "JSON\n{\"host\":\"<b>web-1</b>\",\"ok\":true}\n"},
		[2]string{"stderr", "warning: <script>alert(1)</script>\n"},
		[2]string{"stderr", "\xff tail"})
	resp, body := b.get("/runs/" + runID + "/transcript?q=" + url.QueryEscape(`"><x`))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("the transcript answered %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		// The marker line is hidden, its anchor kept.
		`<div class="line marker" id="L1" data-t="0">`,
		// The value, pretty-printed at its first line, escaped.
		`<div class="line" id="L2"><a class="ln" href="#L2" data-n="2"></a><span class="tx json">{
  &#34;host&#34;: &#34;&lt;b&gt;web-1&lt;/b&gt;&#34;,
  &#34;ok&#34;: true
}</span></div>`,
		// stderr is marked on the static page, its markup shown as text.
		`<div class="line err-line" id="L3" data-t="100"><a class="ln" href="#L3" data-n="3"></a><span class="tx"><span class="stderr">warning: &lt;script&gt;alert(1)&lt;/script&gt;</span></span></div>`,
		`<div class="line err-line" id="L4" data-t="200">`, "\uFFFD tail",
		// The player: seek bar over the whole length, find box, download.
		`<input type="range" id="seek" min="0" max="200"`, `0.2 s / 0.2 s`,
		`<input type="search" id="find" name="q" value="&#34;&gt;&lt;x"`,
		`<a id="raw" href="/runs/` + runID + `/raw" download>`,
		`<link rel="stylesheet" href="/static/player.css">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the transcript lacks %s", want)
		}
	}
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "<b>web-1") {
		t.Fatalf("output reached the page as markup:\n%s", body)
	}

	// The raw download is the exact bytes, as an attachment.
	resp, raw := b.get("/runs/" + runID + "/raw")
	want := "JSON\n{\"host\":\"<b>web-1</b>\",\"ok\":true}\nwarning: <script>alert(1)</script>\n\xff tail"
	if resp.StatusCode != http.StatusOK || raw != want || resp.Header.Get("Content-Type") != "application/octet-stream" ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="run-`+runID+`.txt"` {
		t.Fatalf("the download: %d %q %v", resp.StatusCode, raw, resp.Header)
	}
	resp, raw = b.get("/runs/" + runID + "/raw?stream=stderr")
	if resp.StatusCode != http.StatusOK || raw != "warning: <script>alert(1)</script>\n\xff tail" || !strings.Contains(resp.Header.Get("Content-Disposition"), "-stderr.txt") {
		t.Fatalf("the stderr download: %d %q", resp.StatusCode, raw)
	}
	if resp, _ := b.get("/runs/" + runID + "/raw?stream=both"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a stream that does not exist: %d", resp.StatusCode)
	}
	// Another user's run is the 404 of one that does not exist.
	bob := f.login(t, f.bobToken)
	if resp, _ := bob.get("/runs/" + runID + "/raw"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("bob downloading the admin's transcript: %d", resp.StatusCode)
	}
	if resp, body := bob.get("/static/player.css"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "var(--bad") {
		t.Fatalf("player.css: %d", resp.StatusCode)
	}
}

func TestTheSearchPageFindsOwnOutputAndMarksItSafely(t *testing.T) {
	f := newFixture(t)
	admin := f.login(t, f.adminToken)
	bob := f.login(t, f.bobToken)
	adminRun := f.containerRun(t, admin, "!toolbox:echo x", [2]string{"stdout", "first\nzebra <i>crossing</i> at 10.0.3.7\n"})
	bobRequest := bob.say("echo zebra of bob")
	bob.follow(bobRequest)

	// The admin finds the output line and its link opens the transcript
	// at that line, with the query for the find box.
	resp, body := admin.get("/search?q=zebra")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("search answered %d:\n%s", resp.StatusCode, body)
	}
	for _, want := range []string{
		`href="/runs/` + adminRun + `/transcript?q=zebra#L2"`,
		`<mark>zebra</mark> &lt;i&gt;crossing&lt;/i&gt; at 10.0.3.7`,
		`echo <mark>zebra</mark> of bob`,
		`id="nav-q"`, `<script src="/static/search.js" defer></script>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the admin's search lacks %s", want)
		}
	}
	// Bob, without logbook:read_history, finds only his own, and is told.
	_, body = bob.get("/search?q=zebra")
	if !strings.Contains(body, `echo <mark>zebra</mark> of bob`) || strings.Contains(body, "crossing") || !strings.Contains(body, `id="own-only"`) {
		t.Fatalf("bob's search:\n%s", body)
	}
	for path, want := range map[string]struct {
		status int
		text   string
	}{
		"/search?q=zebra&user=admin":  {http.StatusForbidden, "logbook:read_history"},
		"/search?q=a.":                {http.StatusBadRequest, "The search bad search: column 1: &#34;a.&#34; is too short"},
		"/search?q=zebra&status=nope": {http.StatusBadRequest, "The filter status"},
		"/search":                     {http.StatusOK, `id="q"`},
	} {
		resp, body := bob.get(path)
		if resp.StatusCode != want.status || !strings.Contains(body, want.text) {
			t.Errorf("GET %s as bob: %d, want %d with %q:\n%s", path, resp.StatusCode, want.status, want.text, body)
		}
	}
}
