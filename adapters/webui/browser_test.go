package webui_test

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/internal/samplebundle"
	"github.com/logbookhq/logbook/internal/testenv"
)

// headless starts a headless Chromium, or skips (fails under
// LOGBOOK_REQUIRE_SERVICES=1) when there is none.
func headless(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		testenv.Missing(t, "Chromium", "none of chromium, chromium-browser or google-chrome is on PATH (Debian: apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.Flag("disable-dev-shm-usage", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	return browser
}

// Playback writes each chunk into its stream's pane and the combined
// view in order, pauses where it is, and finishes from there.
func TestTranscriptPlaybackInChromium(t *testing.T) {
	browser := headless(t)
	f := newFixture(t)
	if _, err := dispatcher.InstallBundle(context.Background(), f.store, samplebundle.Config, "test"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the sample bundle to be known", func() bool { return f.facts.BundleInstalled("toolbox") })
	b := f.login(t, f.adminToken)
	id := b.say("!toolbox:echo three chunks")
	runID := id + "-s0-i0"
	testenv.Eventually(t, "the run to be requested", func() bool {
		events, _ := f.store.ReadStream(context.Background(), run.Stream(runID), 0, 1)
		return len(events) == 1
	})
	appendRun := func(p domain.Payload, version int64) domain.RecordedEvent {
		t.Helper()
		e := domain.MustEncode(p, domain.Metadata{Actor: "executor"})
		if _, err := f.store.Append(context.Background(), run.Stream(runID), eventstore.Exact(version), e); err != nil {
			t.Fatal(err)
		}
		// Appended after version, so it is version+1: the start the
		// offsets count from is this event's time, not the one before's.
		stored, err := f.store.ReadStream(context.Background(), run.Stream(runID), version+1, 1)
		if err != nil || len(stored) != 1 {
			t.Fatalf("reading back version %d: %v", version+1, err)
		}
		return stored[0]
	}
	start := appendRun(run.ContainerStarted{ContainerID: "c1"}, 0).RecordedAt
	appendRun(run.OutputChunk{Seq: 0, Stream: run.Stdout, Bytes: []byte("one\n"), At: start}, 1)
	appendRun(run.OutputChunk{Seq: 1, Stream: run.Stderr, Bytes: []byte("two\n"), At: start.Add(400 * time.Millisecond)}, 2)
	appendRun(run.OutputChunk{Seq: 2, Stream: run.Stdout, Bytes: []byte("three\n"), At: start.Add(800 * time.Millisecond)}, 3)
	appendRun(run.RunSucceeded{}, 4)

	// The browser logs in with the same token, through the form. What
	// is read is what shows: innerText, and the pieces not hidden.
	var stdout, stderr, combined, state string
	text := func() chromedp.Tasks {
		return chromedp.Tasks{
			chromedp.Evaluate(`Array.from(document.querySelectorAll("#combined .line:not([hidden]):not(.err-line)")).map(l => l.innerText + "\n").join("")`, &stdout),
			chromedp.Evaluate(`Array.from(document.querySelectorAll("#combined .line.err-line:not([hidden])")).map(l => l.innerText + "\n").join("")`, &stderr),
			chromedp.Evaluate(`document.getElementById("combined").innerText`, &combined),
			chromedp.TextContent("#play-state", &state, chromedp.ByID),
		}
	}
	err := chromedp.Run(browser,
		chromedp.Navigate(f.url+"/login?next="+url.QueryEscape("/runs/"+runID+"/transcript")),
		chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.SendKeys("#token", f.adminToken, chromedp.ByID),
		chromedp.Submit("#token", chromedp.ByID),
		chromedp.WaitVisible("#player", chromedp.ByID),
		text(),
	)
	if err != nil {
		t.Fatal(err)
	}
	// Before playing, the whole output is on the page.
	if stdout != "one\nthree\n" || stderr != "two\n" || combined != "one\ntwo\nthree" {
		t.Fatalf("before playing: stdout %q, stderr %q, combined %q", stdout, stderr, combined)
	}
	// Paused at half speed just after the start: the first chunk (offset
	// 0) at most, nothing after the 400 ms one.
	err = chromedp.Run(browser,
		chromedp.SetValue("#speed", "0.5", chromedp.ByID),
		chromedp.Click("#play", chromedp.ByID),
		chromedp.Click("#pause", chromedp.ByID),
		text(),
	)
	if err != nil {
		t.Fatal(err)
	}
	if state != "paused" || stderr != "" || (combined != "" && combined != "one") {
		t.Fatalf("paused at the start: state %q, stderr %q, combined %q", state, stderr, combined)
	}
	// The seek bar moves to 0.5 s: the first two chunks, not the third.
	var clock string
	err = chromedp.Run(browser,
		chromedp.SetValue("#seek", "500", chromedp.ByID),
		chromedp.Evaluate(`document.getElementById("seek").dispatchEvent(new Event("input"))`, nil),
		text(),
		chromedp.TextContent("#clock", &clock, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	if combined != "one\ntwo" || stdout != "one\n" || clock != "0.5 s / 0.8 s" {
		t.Fatalf("seeked to 0.5 s: combined %q, stdout %q, clock %q", combined, stdout, clock)
	}
	// Home goes back to the start; space plays, at 10×, to the end, with
	// each chunk in its place.
	err = chromedp.Run(browser,
		chromedp.SetValue("#speed", "10", chromedp.ByID),
		chromedp.Evaluate(`document.activeElement.blur()`, nil),
		chromedp.KeyEvent(kb.Home),
		text(),
	)
	if err != nil {
		t.Fatal(err)
	}
	if combined != "one" || stderr != "" {
		t.Fatalf("after Home: combined %q, stderr %q", combined, stderr)
	}
	err = chromedp.Run(browser,
		chromedp.KeyEvent(" "),
		chromedp.Poll(`document.getElementById("play-state").textContent === "finished"`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		text(),
	)
	if err != nil {
		t.Fatal(err)
	}
	if stdout != "one\nthree\n" || stderr != "two\n" || combined != "one\ntwo\nthree" {
		t.Fatalf("after playing: stdout %q, stderr %q, combined %q", stdout, stderr, combined)
	}
	var stderrLines int
	if err := chromedp.Run(browser, chromedp.Evaluate(`document.querySelectorAll("#combined .line.err-line span.stderr").length`, &stderrLines)); err != nil {
		t.Fatal(err)
	}
	if stderrLines != 1 {
		t.Fatalf("the combined view marks %d lines as stderr, want 1", stderrLines)
	}
	// Show keeps one stream.
	for stream, want := range map[string]string{"stderr": "two", "stdout": "one\nthree", "": "one\ntwo\nthree"} {
		err := chromedp.Run(browser,
			chromedp.SetValue("#streams", stream, chromedp.ByID),
			chromedp.Evaluate(`document.getElementById("streams").dispatchEvent(new Event("change"))`, nil),
			chromedp.Evaluate(`document.getElementById("combined").innerText`, &combined),
		)
		if err != nil {
			t.Fatal(err)
		}
		if combined != want {
			t.Fatalf("showing %q: %q, want %q", stream, combined, want)
		}
	}
}
