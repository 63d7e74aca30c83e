package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/irc/ircdtest"
	"github.com/logbookhq/logbook/adapters/slack"
	"github.com/logbookhq/logbook/adapters/slack/slacktest"
	"github.com/logbookhq/logbook/internal/testenv"
)

// fleetStatus prints what a Cog command prints to have its output
// rendered: the template to use, then its JSON. A value holds markup and a
// Slack mention, which must reach chat as text.
const fleetStatus = `#!/bin/sh
echo "COG_TEMPLATE: status"
echo "JSON"
echo '[{"name": "web-1", "state": "running", "color": "green", "note": "*not bold* <!channel>"},'
echo ' {"name": "db-1", "state": "stopped", "color": "red", "note": "disk full"}]'
`

// fleetConfig is a Cog bundle without an image (its command runs on the
// host, under the process runtime) with the template the command names.
const fleetConfig = `cog_bundle_version: 4
name: fleet
description: Fleet status
version: "1.0.0"
commands:
  status:
    executable: EXECUTABLE
    description: Show the fleet
    rules:
      - allow
templates:
  status:
    body: |
      **Fleet:** ~count var=$results~ hosts
      | Host | State |
      | --- | --- |
      ~each var=$results~
      | ~$item.name~ | ~$item.state~ |
      ~end~
      ~each var=$results as=host~
      ~attachment title=$host.name color=$host.color~
      ~$host.note~
      ~end~
      ~end~
`

// buildsList is a Cog v3 command: it names its template and prints the
// builds as JSON, a value with a Slack mention and one with mrkdwn in it.
const buildsList = `#!/bin/sh
echo "COG_TEMPLATE: list"
echo "JSON"
echo '[{"build_num": 1042, "branch": "master", "status": "success", "author_name": "Ada <!channel>"},'
echo ' {"build_num": 1041, "branch": "fix/*flaky*", "status": "failed", "author_name": null}]'
`

// buildsConfig is a Cog bundle version 3 whose template has only
// per-provider variants: Slack's in mrkdwn, HipChat's in plain text.
const buildsConfig = `cog_bundle_version: 3
name: builds
version: "0.2.0"
commands:
  list:
    executable: EXECUTABLE
    description: List recent builds
    rules:
      - allow
templates:
  list:
    slack: "{{#.}}*{{build_num}}* {{branch}} _{{status}}_ {{author_name}}{{/.}}"
    hipchat: "{{#.}}{{build_num}} {{branch}}: {{status}} ({{author_name}}){{/.}}"
`

// TestATemplatedReplyIsRenderedForSlackAndIRC runs `logbook serve` with
// Slack (a local server playing its Web API) and IRC (a real ngircd). A
// bundle's command prints COG_TEMPLATE: status and JSON; alice runs it on
// both. Slack gets mrkdwn and one coloured attachment per host, IRC gets
// lines with IRC's bold and the attachments indented, the markup in the
// data stays text on both, and the reply's record names the template and
// the bundle version and keeps the rendered text. A Cog v3 bundle's
// command is rendered from the variant each provider takes: Slack's on
// Slack, HipChat's plain text on IRC and for logbook say.
func TestATemplatedReplyIsRenderedForSlackAndIRC(t *testing.T) {
	const secret = "e2e-signing-secret"
	dir := t.TempDir()
	script := filepath.Join(dir, "fleet-status")
	if err := os.WriteFile(script, []byte(fleetStatus), 0o755); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(config, []byte(strings.Replace(fleetConfig, "EXECUTABLE", script, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	builds := filepath.Join(dir, "builds-list")
	if err := os.WriteFile(builds, []byte(buildsList), 0o755); err != nil {
		t.Fatal(err)
	}
	buildsBundle := filepath.Join(dir, "builds.yaml")
	if err := os.WriteFile(buildsBundle, []byte(strings.Replace(buildsConfig, "EXECUTABLE", builds, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	api := slacktest.New([]slacktest.Channel{{ID: "C0OPS", Name: "ops", Member: true}}, []slacktest.User{{ID: "U0ALICE", Name: "alice"}})
	defer api.Close()
	ircd := ircdtest.Start(t, ircdtest.Options{})
	env := []string{"LOGBOOK_DATA_DIR=" + filepath.Join(dir, "data")}
	s := startServer(t, append(env,
		"LOGBOOK_RUNTIME=process",
		"LOGBOOK_SLACK_BOT_TOKEN=xoxb-e2e",
		"LOGBOOK_SLACK_SIGNING_SECRET="+secret,
		"LOGBOOK_SLACK_API_URL="+api.APIURL(),
		"LOGBOOK_IRC_SERVER="+ircd.Addr,
		"LOGBOOK_IRC_NICK=logbook",
		"LOGBOOK_IRC_CHANNELS=#ops",
		"LOGBOOK_IRC_TLS=0",
	)...)
	s.waitReady(t)
	admin := s.token(t)
	mustCLI(t, s, admin, env, "bundle", "install", config)
	mustCLI(t, s, admin, env, "bundle", "install", buildsBundle)
	mustCLI(t, s, admin, env, "user", "create", "alice", "--email", "alice@example.com")
	mustCLI(t, s, admin, env, "user", "link", "alice", "slack", "U0ALICE")
	mustCLI(t, s, admin, env, "user", "link", "alice", "irc", "alice")

	// slackSays delivers alice's message to the Events API and returns the
	// reply Slack was asked to post.
	slackSays := func(t *testing.T, eventID, ts, text string) slacktest.Message {
		t.Helper()
		event, _ := json.Marshal(map[string]any{
			"type": "event_callback", "team_id": "T0LOGBOOK", "api_app_id": "A0LOGBOOK", "event_id": eventID, "event_time": time.Now().Unix(),
			"event": map[string]any{"type": "message", "channel": "C0OPS", "channel_type": "channel", "user": "U0ALICE", "text": text, "ts": ts},
		})
		testenv.Eventually(t, "the Events API accepting the delivery", func() bool {
			req, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+"/slack/events", bytes.NewReader(event))
			req.Header.Set("Content-Type", "application/json")
			slack.SignRequest(req, secret, event, time.Now())
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		select {
		case m := <-api.Posted():
			return m
		case <-time.After(20 * time.Second):
			t.Fatalf("no reply to %s was posted to Slack within 20s", text)
			return slacktest.Message{}
		}
	}

	t.Run("Slack", func(t *testing.T) {
		m := slackSays(t, "Ev0TPL0001", "1700000200.000100", "!fleet:status")
		wantText := "*Fleet:* 2 hosts\n\n```\nHost   State\n-----  -------\nweb-1  running\ndb-1   stopped\n```"
		if m.Channel != "C0OPS" || m.Text != wantText {
			t.Fatalf("Slack got %q in %s; want %q", m.Text, m.Channel, wantText)
		}
		if len(m.Attachments) != 2 {
			t.Fatalf("Slack got %d attachments; want one per host: %+v", len(m.Attachments), m.Attachments)
		}
		web, db := m.Attachments[0], m.Attachments[1]
		if web.Title != "web-1" || web.Color != "#008000" || web.Text != "\u200b*not bold*\u200b &lt;!channel&gt;" {
			t.Errorf("the web-1 attachment is %+v", web)
		}
		if db.Title != "db-1" || db.Color != "#ff0000" || db.Text != "disk full" {
			t.Errorf("the db-1 attachment is %+v", db)
		}
	})

	t.Run("a Cog v3 template on Slack, from its Slack variant", func(t *testing.T) {
		m := slackSays(t, "Ev0TPL0002", "1700000200.000200", "!builds:list")
		want := "*1042* master _success_ Ada &lt;!channel&gt;\n*1041* fix/\u200b*flaky*\u200b _failed_"
		if m.Text != want || len(m.Attachments) != 0 {
			t.Fatalf("Slack got %q and %d attachments; want %q", m.Text, len(m.Attachments), want)
		}
	})

	alice := ircdtest.Dial(t, ircd.Addr, "alice")
	alice.Join("#ops")
	alice.WaitFor("#ops", "logbook", 20*time.Second)
	t.Run("IRC", func(t *testing.T) {
		alice.Say("#ops", "!fleet:status")
		want := []string{
			"\x02Fleet:\x02 2 hosts",
			"\x02Host   State\x02",
			"web-1  running",
			"db-1   stopped",
			"\x02web-1\x02",
			"  *not bold* <!channel>",
			"\x02db-1\x02",
			"  disk full",
		}
		got := alice.Privmsgs("logbook", len(want), 20*time.Second)
		var lines []string
		for _, l := range got {
			lines = append(lines, l.Params[1])
		}
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Fatalf("alice got in #ops:\n%q\nwant:\n%q", lines, want)
		}
	})

	t.Run("a Cog v3 template on IRC and through logbook say, from its HipChat variant", func(t *testing.T) {
		alice.Say("#ops", "!builds:list")
		want := []string{"1042 master: success (Ada <!channel>)", "1041 fix/*flaky*: failed ()"}
		got := alice.Privmsgs("logbook", len(want), 20*time.Second)
		var lines []string
		for _, l := range got {
			lines = append(lines, l.Params[1])
		}
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Fatalf("alice got in #ops:\n%q\nwant:\n%q", lines, want)
		}
		if out := mustCLI(t, s, admin, env, "say", "builds:list"); out != strings.Join(want, "\n")+"\n" {
			t.Fatalf("logbook say printed %q; want the HipChat variant's lines %q", out, want)
		}
	})

	t.Run("the record of a Cog v3 reply names the variant", func(t *testing.T) {
		variants := map[string]string{}
		testenv.Eventually(t, "the Cog v3 replies recorded", func() bool {
			for _, e := range storedEvents(t, env) {
				var p struct {
					Adapter         string `json:"adapter"`
					Template        string `json:"template"`
					TemplateVariant string `json:"template_variant"`
					BundleVersion   string `json:"bundle_version"`
				}
				if e.Type == "ReplyPosted" && json.Unmarshal(e.Data, &p) == nil && p.Template == "list" && p.BundleVersion == "0.2.0" {
					variants[p.Adapter] = p.TemplateVariant
				}
			}
			return len(variants) == 3
		})
		if variants["slack"] != "slack" || variants["irc"] != "hipchat" || variants["api"] != "hipchat" {
			t.Fatalf("the Cog v3 replies are recorded with variants %v; want slack on Slack, hipchat on IRC and the API", variants)
		}
	})

	t.Run("the record keeps the template, the bundle version and what was posted", func(t *testing.T) {
		type posted struct {
			Adapter       string `json:"adapter"`
			Format        string `json:"format"`
			Rendered      string `json:"rendered"`
			Template      string `json:"template"`
			Source        string `json:"source"`
			Bundle        string `json:"bundle"`
			BundleVersion string `json:"bundle_version"`
			Attachments   []any  `json:"attachments"`
		}
		var replies []posted
		testenv.Eventually(t, "both replies recorded", func() bool {
			replies = replies[:0]
			for _, e := range storedEvents(t, env) {
				var p posted
				if e.Type == "ReplyPosted" && json.Unmarshal(e.Data, &p) == nil && p.Template == "status" {
					replies = append(replies, p)
				}
			}
			return len(replies) == 2
		})
		for _, p := range replies {
			if p.Source != "bundle" || p.Bundle != "fleet" || p.BundleVersion != "1.0.0" || !strings.Contains(p.Rendered, "Fleet:") {
				t.Errorf("a reply is recorded as %+v", p)
			}
			if p.Adapter == "slack" && (p.Format != "slack" || len(p.Attachments) != 2) || p.Adapter == "irc" && p.Format != "irc" {
				t.Errorf("the %s reply is recorded as %+v", p.Adapter, p)
			}
		}
	})
}
