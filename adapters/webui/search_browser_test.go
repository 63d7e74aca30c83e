package webui_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// screenshot is shoot as an action of a chromedp sequence.
func screenshot(t *testing.T, dir, name string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		shoot(t, ctx, dir, name)
		return nil
	})
}

// A word a command printed is found from the search box in the
// navigation (reached with the / key), and its hit opens the transcript
// at the line (#L), with the find box marking it.
func TestSearchFindsAPrintedWordAndOpensTheTranscriptAtItInChromium(t *testing.T) {
	browser := headless(t)
	shots := screenshotDir(t)
	f := newFixture(t)
	b := f.login(t, f.adminToken)
	var chunks [][2]string
	for i := range 40 {
		line := "line of ordinary output\n"
		if i == 29 {
			line = "deploy finished on host quokka-7 at 10.0.3.7\n"
		}
		chunks = append(chunks, [2]string{"stdout", line})
	}
	runID := f.containerRun(t, b, "!toolbox:echo long", chunks...)

	var activeID, location, target, found string
	var targetInView bool
	err := chromedp.Run(browser,
		chromedp.EmulateViewport(1400, 1000),
		chromedp.Navigate(f.url+"/login?next="+url.QueryEscape("/history")),
		chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.SendKeys("#token", f.adminToken, chromedp.ByID),
		chromedp.Submit("#token", chromedp.ByID),
		chromedp.WaitVisible("#nav-q", chromedp.ByID),
		// "/" focuses the search box, wherever the page is.
		chromedp.KeyEvent("/"),
		chromedp.Evaluate(`document.activeElement.id`, &activeID),
	)
	if err != nil {
		t.Fatal(err)
	}
	if activeID != "nav-q" {
		t.Fatalf("after /, the focus is on %q, want the search box", activeID)
	}
	err = chromedp.Run(browser,
		chromedp.KeyEvent("quokka"),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible("#hits .hit-link", chromedp.ByQuery),
		screenshot(t, shots, "search-results"),
		chromedp.Click(`#hits li[data-kind="output"] .hit-link`, chromedp.ByQuery),
		chromedp.WaitVisible("#player", chromedp.ByID),
		chromedp.Poll(`document.getElementById("find-count").textContent !== ""`, nil, chromedp.WithPollingTimeout(5*time.Second)),
		chromedp.Location(&location),
		chromedp.Evaluate(`document.querySelector(".line:target") ? document.querySelector(".line:target").innerText : ""`, &target),
		chromedp.Evaluate(`(function () { var r = document.querySelector(".line:target").getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight; })()`, &targetInView),
		chromedp.TextContent("#find-count", &found, chromedp.ByID),
		screenshot(t, shots, "transcript-at-match"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(location, "/runs/"+runID+"/transcript?q=quokka#L30") {
		t.Fatalf("the hit opened %s, want the transcript at #L30", location)
	}
	if !strings.Contains(target, "deploy finished on host quokka-7") || !targetInView {
		t.Fatalf("the targeted line is %q (in view: %v)", target, targetInView)
	}
	if found != "1 line" {
		t.Fatalf("the find box counts %q", found)
	}
	// Next in the find box steps to the line and keeps its #L.
	var current string
	err = chromedp.Run(browser,
		chromedp.Click("#find-next", chromedp.ByID),
		chromedp.Evaluate(`document.querySelector(".line.found-current").id + " " + location.hash`, &current),
	)
	if err != nil {
		t.Fatal(err)
	}
	if current != "L30 #L30" {
		t.Fatalf("find's next is %q", current)
	}
}
