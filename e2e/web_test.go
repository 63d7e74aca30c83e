package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/logbookhq/logbook/internal/testenv"
)

// findChromium finds a Chromium or Chrome to drive, or skips (fails under
// LOGBOOK_REQUIRE_SERVICES=1) when there is none.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	testenv.Missing(t, "Chromium", "none of chromium, chromium-browser or google-chrome is on PATH (Debian: apt-get install chromium)")
	return ""
}

// A person logs in to the web UI with the admin token, types !echo hello
// in the console and sees hello stream in, finds the request in the
// history, opens its transcript and plays it back.
func TestTheWebConsoleInHeadlessChromium(t *testing.T) {
	chromium := findChromium(t)
	s := startServer(t, "LOGBOOK_DATA_DIR="+t.TempDir(), "LOGBOOK_RUNTIME=process")
	s.waitReady(t)
	token := s.token(t)
	base := "http://" + s.addr

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to sandbox as root
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()

	step := func(what string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(browser, actions...); err != nil {
			var location, body string
			shot, cancel := context.WithTimeout(browser, 3*time.Second)
			_ = chromedp.Run(shot, chromedp.Location(&location), chromedp.OuterHTML("body", &body, chromedp.ByQuery))
			cancel()
			t.Fatalf("%s: %v\nat %s:\n%s", what, err, location, body)
		}
	}

	// Any page leads to the login form first.
	var location string
	step("open the console, which asks for a login",
		chromedp.Navigate(base+"/console"),
		chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.Location(&location),
	)
	if !strings.HasPrefix(location, base+"/login") {
		t.Fatalf("the console without a session is at %s, want the login form", location)
	}
	var who string
	step("log in with the admin token",
		chromedp.SendKeys("#token", token, chromedp.ByID),
		chromedp.Submit("#token", chromedp.ByID),
		chromedp.WaitVisible("#command", chromedp.ByID),
		chromedp.Text("#whoami", &who, chromedp.ByID),
	)
	if who != "admin" {
		t.Fatalf("the console says %q is logged in", who)
	}

	// The entry is read in the evaluation that finds its reply: the
	// console redraws an entry as its events arrive, so a node looked up
	// in one step may be gone by the next.
	var entry struct {
		Request string `json:"request"`
		Output  string `json:"output"`
		Reply   string `json:"reply"`
	}
	step("type !echo hello and see hello",
		chromedp.SendKeys("#command", "!echo hello", chromedp.ByID),
		// A click, as a person does: form.submit() would skip console.js.
		chromedp.Click(`#console-form button[type="submit"]`, chromedp.ByQuery),
		// The stage's raw output is behind its toggle, under the reply:
		// textContent reads it folded.
		chromedp.Poll(`(() => {
			const e = document.querySelector("#scrollback li.entry");
			const r = e && e.querySelector(".reply");
			if (r === null || r.textContent.trim() !== "hello") return null;
			const o = e.querySelector("details.stage .output");
			return {request: e.getAttribute("data-request") || "", output: o ? o.textContent : "", reply: r.innerText};
		})()`, &entry, chromedp.WithPollingTimeout(15*time.Second)),
	)
	output, reply, requestID := entry.Output, entry.Reply, entry.Request
	if strings.TrimSpace(output) != "hello" || strings.TrimSpace(reply) != "hello" || requestID == "" {
		t.Fatalf("the console shows output %q, reply %q, request %q", output, reply, requestID)
	}

	row := `tr[data-request="` + requestID + `"]`
	var provider string
	step("find the request in the history",
		chromedp.Navigate(base+"/history?provider=web"),
		chromedp.WaitVisible(row, chromedp.ByQuery),
		chromedp.Text(row+` td[data-label="From"]`, &provider, chromedp.ByQuery),
	)
	if provider != "web · console" {
		t.Fatalf("the history lists the request from provider %q", provider)
	}

	var stdout, state string
	step("open its transcript and play it",
		chromedp.Click(row+" a.transcript-link", chromedp.ByQuery),
		chromedp.WaitVisible("#player", chromedp.ByID), // shown once the chunks have loaded
		chromedp.SetValue("#speed", "10", chromedp.ByID),
		chromedp.Click("#play", chromedp.ByID),
		chromedp.Poll(`document.getElementById("play-state").textContent === "finished"`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.SetValue("#streams", "stdout", chromedp.ByID), // show stdout alone
		chromedp.Evaluate(`document.getElementById("streams").dispatchEvent(new Event("change"))`, nil),
		chromedp.Text("#combined", &stdout, chromedp.ByID),
		chromedp.Text("#play-state", &state, chromedp.ByID),
	)
	if strings.TrimSpace(stdout) != "hello" {
		var page string
		step("read the page", chromedp.OuterHTML("main", &page, chromedp.ByQuery))
		t.Fatalf("after playback stdout shows %q (state %q):\n%s", stdout, state, page)
	}
	var combined string
	step("the combined view holds the same output",
		chromedp.SetValue("#streams", "", chromedp.ByID),
		chromedp.Evaluate(`document.getElementById("streams").dispatchEvent(new Event("change"))`, nil),
		chromedp.Text("#combined", &combined, chromedp.ByID),
	)
	if strings.TrimSpace(combined) != "hello" {
		t.Fatalf("after playback the combined view shows %q", combined)
	}
}
