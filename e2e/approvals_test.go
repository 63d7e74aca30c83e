package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/logbookhq/logbook/adapters/irc/ircdtest"
	"github.com/logbookhq/logbook/adapters/slack"
	"github.com/logbookhq/logbook/adapters/slack/slacktest"
	"github.com/logbookhq/logbook/internal/testenv"
)

// deployScript is the command approvals guard: it says what it deployed,
// as a Cog command reads its first argument.
const deployScript = `#!/bin/sh
echo "deployed $COG_ARGV_0"
`

// relConfig's prod command needs one approval from rel:approver; the
// approvers' room is #approvers on the request's provider. It has no image:
// the process runtime runs the script on the host.
const relConfig = `cog_bundle_version: 4
name: rel
description: Releases
version: "1.0.0"
permissions:
  - rel:run
  - rel:approver
approvals:
  room: approvers
commands:
  prod:
    executable: EXECUTABLE
    description: Deploy to production
    rules:
      - must have rel:run with approval from rel:approver
`

var shortRequestID = regexp.MustCompile(`!approve ([0-9a-f]{8})`)

// TestApprovalsOnEveryProviderAndStore runs `logbook serve` on each store
// with Slack (a local server playing its Web API, Events API and Socket
// Mode) and IRC (a real ngircd), alice allowed to run rel:prod and bob
// allowed to approve it. On Slack, alice's own click on Approve is refused
// and bob's click counts; on IRC, alice's own !approve is refused and
// bob's counts; in the web UI in Chromium, alice asks in the console, bob
// approves on the approvals page, and alice's request page shows who
// approved it. Each time the command runs once approved, and not before.
func TestApprovalsOnEveryProviderAndStore(t *testing.T) {
	chromium := findChromium(t)
	for name, storeEnv := range stores(t) {
		t.Run(name, func(t *testing.T) {
			approvalsOn(t, storeEnv(t), chromium)
		})
	}
}

func approvalsOn(t *testing.T, env []string, chromium string) {
	const secret = "e2e-signing-secret"
	dir := t.TempDir()
	script := filepath.Join(dir, "deploy")
	if err := os.WriteFile(script, []byte(deployScript), 0o755); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "rel.yaml")
	if err := os.WriteFile(config, []byte(strings.Replace(relConfig, "EXECUTABLE", script, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	api := slacktest.New(
		[]slacktest.Channel{{ID: "C0OPS", Name: "ops", Member: true}, {ID: "C0APPR", Name: "approvers", Member: true}},
		[]slacktest.User{{ID: "U0ALICE", Name: "alice"}, {ID: "U0BOB", Name: "bob"}},
	)
	defer api.Close()
	ircd := ircdtest.Start(t, ircdtest.Options{})
	s := startServer(t, append(env,
		"LOGBOOK_RUNTIME=process",
		"LOGBOOK_SLACK_BOT_TOKEN=xoxb-e2e",
		"LOGBOOK_SLACK_APP_TOKEN=xapp-e2e",
		"LOGBOOK_SLACK_SIGNING_SECRET="+secret,
		"LOGBOOK_SLACK_API_URL="+api.APIURL(),
		"LOGBOOK_IRC_SERVER="+ircd.Addr,
		"LOGBOOK_IRC_NICK=logbook",
		"LOGBOOK_IRC_CHANNELS=#ops,#approvers",
		"LOGBOOK_IRC_TLS=0",
	)...)
	s.waitReady(t)
	admin := s.token(t)
	for _, args := range [][]string{
		{"bundle", "install", config},
		{"user", "create", "alice", "--email", "alice@example.com"},
		{"user", "link", "alice", "slack", "U0ALICE"},
		{"user", "link", "alice", "irc", "alice"},
		{"user", "create", "bob", "--email", "bob@example.com"},
		{"user", "link", "bob", "slack", "U0BOB"},
		{"user", "link", "bob", "irc", "bob"},
		{"role", "create", "releaser"}, {"role", "grant", "releaser", "rel:run"},
		{"group", "create", "releasers"}, {"group", "add", "releasers", "alice"}, {"group", "grant", "releasers", "releaser"},
		{"role", "create", "approver"}, {"role", "grant", "approver", "rel:approver"},
		{"group", "create", "approvers"}, {"group", "add", "approvers", "bob"}, {"group", "grant", "approvers", "approver"},
	} {
		mustCLI(t, s, admin, env, args...)
	}
	alice := issuedToken.FindString(mustCLI(t, s, admin, env, "user", "token", "alice"))
	bob := issuedToken.FindString(mustCLI(t, s, admin, env, "user", "token", "bob"))

	// The explanation says what alice's request would wait for.
	if out := mustCLI(t, s, alice, env, "access", "explain", "rel:prod web"); !strings.Contains(out, "would be allowed once approved for alice") ||
		!strings.Contains(out, "1 approval from rel:approver") || !strings.Contains(out, "may approve now: bob") {
		t.Fatalf("access explain:\n%s", out)
	}

	t.Run("Slack, with buttons", func(t *testing.T) {
		select {
		case <-api.SocketConnected():
		case <-time.After(20 * time.Second):
			t.Fatal("serve never connected over Socket Mode")
		}
		event, _ := json.Marshal(map[string]any{
			"type": "event_callback", "team_id": "T0LOGBOOK", "api_app_id": "A0LOGBOOK", "event_id": "Ev0APPR001", "event_time": time.Now().Unix(),
			"event": map[string]any{"type": "message", "channel": "C0OPS", "channel_type": "channel", "user": "U0ALICE", "text": "!rel:prod web", "ts": "1700000300.000100"},
		})
		testenv.Eventually(t, "the Events API accepting alice's request", func() bool {
			return signedPost(t, s, "/slack/events", "application/json", event, secret) == http.StatusOK
		})
		inOps := postedTo(t, api, "C0OPS", func(m slacktest.Message) bool { return strings.Contains(m.Text, "alice asks to run: rel:prod web") })
		inApprovers := postedTo(t, api, "C0APPR", func(m slacktest.Message) bool { return strings.Contains(m.Text, "alice asks to run: rel:prod web") })
		if len(inOps.Buttons()) != 2 || len(inApprovers.Buttons()) != 2 {
			t.Fatalf("the approval request's buttons: %+v in #ops, %+v in #approvers", inOps.Buttons(), inApprovers.Buttons())
		}
		requestID := inOps.Buttons()[0].Value

		// alice clicks Approve on her own request, over the interactivity URL.
		click, _ := json.Marshal(slacktest.BlockAction("U0ALICE", inOps, inOps.Buttons()[0], time.Now()))
		if code := signedPost(t, s, "/slack/interactivity", "application/x-www-form-urlencoded", []byte(url.Values{"payload": {string(click)}}.Encode()), secret); code != http.StatusOK {
			t.Fatalf("alice's click answered %d", code)
		}
		postedTo(t, api, "C0OPS", func(m slacktest.Message) bool {
			return strings.Contains(slackText(m), "is your own; someone else must approve it")
		})

		// bob clicks Approve in #approvers, over Socket Mode.
		if _, err := api.SendInteraction(slacktest.BlockAction("U0BOB", inApprovers, inApprovers.Buttons()[0], time.Now())); err != nil {
			t.Fatal(err)
		}
		postedTo(t, api, "C0APPR", func(m slacktest.Message) bool {
			return strings.Contains(m.Text, "that was the last approval it needed")
		})
		postedTo(t, api, "C0OPS", func(m slacktest.Message) bool { return m.Text == "deployed web" })
		waitApproval(t, s, admin, env, requestID, "approved", "bob")
	})

	t.Run("IRC, with !approve", func(t *testing.T) {
		aliceIRC := ircdtest.Dial(t, ircd.Addr, "alice")
		aliceIRC.Join("#ops")
		aliceIRC.WaitFor("#ops", "logbook", 20*time.Second)
		bobIRC := ircdtest.Dial(t, ircd.Addr, "bob")
		bobIRC.Join("#approvers")
		bobIRC.WaitFor("#approvers", "logbook", 20*time.Second)

		aliceIRC.Say("#ops", "!rel:prod db")
		asked := aliceIRC.Expect(20*time.Second, func(l ircdtest.Line) bool {
			return l.Command == "PRIVMSG" && strings.Contains(l.Params[len(l.Params)-1], "!approve ")
		})
		m := shortRequestID.FindStringSubmatch(asked.Params[len(asked.Params)-1])
		if m == nil {
			t.Fatalf("the approval request names no id: %q", asked.Params)
		}
		short := m[1]
		bobIRC.Expect(20*time.Second, func(l ircdtest.Line) bool {
			return l.Command == "PRIVMSG" && l.Params[0] == "#approvers" && strings.Contains(l.Params[1], "alice asks to run: rel:prod db")
		})

		aliceIRC.Say("#ops", "!approve "+short)
		ircSaid(t, aliceIRC, "#ops", "is your own; someone else must approve it")
		bobIRC.Say("#approvers", "!approve "+short+" looks right")
		ircSaid(t, bobIRC, "#approvers", "that was the last approval it needed")
		aliceIRC.Expect(30*time.Second, func(l ircdtest.Line) bool {
			return l.Command == "PRIVMSG" && l.Params[0] == "#ops" && l.Params[1] == "deployed db"
		})
	})

	t.Run("the CLI refuses alice's own approval", func(t *testing.T) {
		out, err := cli(t, s, alice, env, "say", "--json", "--no-wait", "rel:prod api")
		if err != nil {
			t.Fatalf("say: %v %s", err, out)
		}
		var said struct {
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal([]byte(out), &said); err != nil || said.RequestID == "" {
			t.Fatalf("say --json printed %s", out)
		}
		waitApproval(t, s, admin, env, said.RequestID, "pending", "")
		out, err = cli(t, s, alice, env, "approve", said.RequestID)
		if exitCode(err) != 1 || !strings.Contains(out, "is your own") {
			t.Fatalf("alice approving her own request exited %d: %s", exitCode(err), out)
		}
		pending := mustCLI(t, s, bob, env, "approvals", "--pending")
		if !strings.Contains(pending, said.RequestID) || !strings.Contains(pending, "alice") {
			t.Fatalf("bob's pending approvals:\n%s", pending)
		}
		out, err = cli(t, s, bob, env, "reject", said.RequestID, "not", "today")
		if exitCode(err) != 0 || !strings.Contains(out, "it will not run") {
			t.Fatalf("bob rejecting exited %d: %s", exitCode(err), out)
		}
		waitApproval(t, s, admin, env, said.RequestID, "rejected", "")
	})

	t.Run("the web UI in Chromium", func(t *testing.T) {
		webApprovals(t, "http://"+s.addr, chromium, alice, bob, func(requestID string) {
			testenv.Eventually(t, "the web request to complete", func() bool {
				var page struct {
					Requests []struct {
						RequestID string `json:"request_id"`
						Status    string `json:"status"`
					} `json:"requests"`
				}
				if err := json.Unmarshal([]byte(mustCLI(t, s, alice, env, "history", "--json", "--provider", "web")), &page); err != nil {
					t.Fatal(err)
				}
				for _, r := range page.Requests {
					if r.RequestID == requestID {
						return r.Status == "completed"
					}
				}
				return false
			})
		})
	})
}

// ircSaid waits until the bot's lines to target, run together, say text:
// a reply longer than a line arrives cut into several.
func ircSaid(t *testing.T, c *ircdtest.Client, target, text string) {
	t.Helper()
	var said strings.Builder
	c.Expect(20*time.Second, func(l ircdtest.Line) bool {
		if l.Command != "PRIVMSG" || !strings.EqualFold(l.Nick(), "logbook") || l.Params[0] != target {
			return false
		}
		said.WriteString(" " + l.Params[len(l.Params)-1])
		return strings.Contains(strings.Join(strings.Fields(said.String()), " "), text)
	})
}

// signedPost posts body to the server as Slack would, signed now.
func signedPost(t *testing.T, s *server, path, contentType string, body []byte, secret string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+s.addr+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	slack.SignRequest(req, secret, body, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// postedTo waits for a message posted to channel that ok accepts; the
// messages it passes over are kept for the next call.
func postedTo(t *testing.T, api *slacktest.Server, channel string, ok func(slacktest.Message) bool) slacktest.Message {
	t.Helper()
	var found slacktest.Message
	testenv.Eventually(t, "a message in "+channel, func() bool {
		for _, m := range api.Messages() {
			if m.Channel == channel && ok(m) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// slackText is what a message shows: its text and its attachments' (a
// failed request's reply is rendered as an attachment).
func slackText(m slacktest.Message) string {
	text := m.Text
	for _, a := range m.Attachments {
		text += "\n" + a.Title + "\n" + a.Text
	}
	return text
}

// waitApproval waits until the approvals list shows the request in state,
// approved by approvedBy when given.
func waitApproval(t *testing.T, s *server, token string, env []string, requestID, state, approvedBy string) {
	t.Helper()
	testenv.Eventually(t, "request "+requestID+" "+state, func() bool {
		var page struct {
			Approvals []struct {
				RequestID  string `json:"request_id"`
				Status     string `json:"status"`
				ApprovedBy string `json:"approved_by"`
			} `json:"approvals"`
		}
		if err := json.Unmarshal([]byte(mustCLI(t, s, token, env, "approvals", "--json")), &page); err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Approvals {
			if a.RequestID == requestID {
				return a.Status == state && (approvedBy == "" || a.ApprovedBy == approvedBy)
			}
		}
		return false
	})
}

// webApprovals: alice asks in the console and sees it wait; bob approves
// on the approvals page; alice's request page shows the run and who
// approved it.
func webApprovals(t *testing.T, base, chromium, alice, bob string, completed func(requestID string)) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to sandbox as root
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
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
	login := func(who, token string) {
		t.Helper()
		step("log in as "+who,
			chromedp.Navigate(base+"/login?next=%2Fconsole"), // the console, not the dashboard, the home page
			chromedp.WaitVisible("#token", chromedp.ByID),
			chromedp.SendKeys("#token", token, chromedp.ByID),
			chromedp.Submit("#token", chromedp.ByID),
			chromedp.WaitVisible("#command", chromedp.ByID),
		)
	}
	logout := func() {
		t.Helper()
		step("log out", chromedp.Click(`form[action="/logout"] button`, chromedp.ByQuery), chromedp.WaitVisible("#token", chromedp.ByID))
	}

	login("alice", alice)
	// The entry is read in the evaluation that finds it waiting: the
	// console redraws an entry as its events arrive, so a node looked up
	// in one step may be gone by the next ("Could not find node with
	// given id").
	var entry struct {
		Request string `json:"request"`
		Status  string `json:"status"`
	}
	step("alice asks for rel:prod ui and sees it wait for approval",
		chromedp.SendKeys("#command", "!rel:prod ui", chromedp.ByID),
		chromedp.Click(`#console-form button[type="submit"]`, chromedp.ByQuery),
		chromedp.Poll(`(() => {
			const e = document.querySelector("#scrollback li.entry:last-child");
			const s = e && e.querySelector(".status");
			if (s === null || !s.textContent.includes("awaiting approval")) return null;
			return {request: e.getAttribute("data-request") || "", status: s.innerText};
		})()`, &entry, chromedp.WithPollingTimeout(15*time.Second)),
	)
	requestID, waiting := entry.Request, entry.Status
	if requestID == "" || !strings.Contains(waiting, "bob may approve") {
		t.Fatalf("the console shows %q for request %q", waiting, requestID)
	}
	logout()

	login("bob", bob)
	row := `tr[data-request="` + requestID + `"]`
	var answered string
	step("bob approves it on the approvals page",
		chromedp.Navigate(base+"/approvals"),
		chromedp.WaitVisible(row+" button.approve", chromedp.ByQuery),
		chromedp.SendKeys(row+` form[action$="/approve"] input[name="reason"]`, "ship it", chromedp.ByQuery),
		chromedp.Click(row+" button.approve", chromedp.ByQuery),
		chromedp.WaitVisible("#answered", chromedp.ByID),
		chromedp.Text("#answered", &answered, chromedp.ByID),
	)
	if !strings.Contains(answered, "that was the last approval it needed") {
		t.Fatalf("bob's answer: %q", answered)
	}
	logout()

	completed(requestID)
	login("alice", alice)
	var state, answers, reply string
	step("alice's request page shows the run and who approved it",
		chromedp.Navigate(base+"/requests/"+requestID),
		chromedp.WaitVisible("#approval-state", chromedp.ByID),
		chromedp.WaitVisible("#reply", chromedp.ByID),
		chromedp.Text("#approval-state", &state, chromedp.ByID),
		chromedp.Text("#answers", &answers, chromedp.ByID),
		chromedp.Text("#reply", &reply, chromedp.ByID),
	)
	if state != "approved" || !strings.Contains(answers, "bob") || !strings.Contains(answers, "ship it") || strings.TrimSpace(reply) != "deployed ui" {
		t.Fatalf("the request page shows state %q, answers %q, reply %q", state, answers, reply)
	}
}
