package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/slack"
	"github.com/logbookhq/logbook/adapters/slack/slacktest"
	"github.com/logbookhq/logbook/internal/testenv"
)

// TestSlackCommandsAreAnsweredInTheChannel runs `logbook serve` with Slack
// pointed at a local server playing Slack's Web API. alice, linked by her
// Slack user id, types `!echo hello` in #ops; the Events API delivery is
// signed; the reply is posted to #ops; a retried delivery of the same event
// changes nothing; history says the request came from Slack.
func TestSlackCommandsAreAnsweredInTheChannel(t *testing.T) {
	const secret = "e2e-signing-secret"
	api := slacktest.New([]slacktest.Channel{{ID: "C0OPS", Name: "ops", Member: true}}, []slacktest.User{{ID: "U0ALICE", Name: "alice"}})
	defer api.Close()
	env := []string{"LOGBOOK_DATA_DIR=" + filepath.Join(t.TempDir(), "data")}
	s := startServer(t, append(env,
		"LOGBOOK_RUNTIME=process",
		"LOGBOOK_SLACK_BOT_TOKEN=xoxb-e2e",
		"LOGBOOK_SLACK_SIGNING_SECRET="+secret,
		"LOGBOOK_SLACK_API_URL="+api.APIURL(),
	)...)
	s.waitReady(t)
	admin := s.token(t)
	mustCLI(t, s, admin, env, "user", "create", "alice", "--email", "alice@example.com")
	mustCLI(t, s, admin, env, "user", "link", "alice", "slack", "U0ALICE")

	deliver := func(body []byte, header http.Header) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, "http://"+s.addr+"/slack/events", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		slack.SignRequest(req, secret, body, time.Now())
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	event, _ := json.Marshal(map[string]any{
		"type": "event_callback", "team_id": "T0LOGBOOK", "api_app_id": "A0LOGBOOK", "event_id": "Ev0E2E0001", "event_time": time.Now().Unix(),
		"event": map[string]any{"type": "message", "channel": "C0OPS", "channel_type": "channel", "user": "U0ALICE", "text": "!echo hello", "ts": "1700000000.000100"},
	})
	// Slack starts delivering once the server answers: until the provider
	// connected, a delivery is refused and Slack would retry it.
	testenv.Eventually(t, "the Events API accepting the delivery", func() bool { return deliver(event, nil) == http.StatusOK })

	select {
	case m := <-api.Posted():
		if m.Channel != "C0OPS" || m.Text != "hello" {
			t.Fatalf("posted %q to %s; want \"hello\" to C0OPS", m.Text, m.Channel)
		}
		if m.Metadata == nil || m.Metadata.EventPayload["request_id"] == "" {
			t.Fatalf("the reply carries no part metadata: %+v", m.Metadata)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no reply was posted to Slack within 20s")
	}

	// Slack retries the delivery (it did not see our answer in time): the
	// request is recorded once and answered once.
	if code := deliver(event, http.Header{"X-Slack-Retry-Num": {"1"}, "X-Slack-Retry-Reason": {"http_timeout"}}); code != http.StatusOK {
		t.Fatalf("a retried delivery answered %d", code)
	}
	// A forged delivery is refused.
	forged, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+"/slack/events", bytes.NewReader(event))
	forged.Header.Set("X-Slack-Request-Timestamp", fmt.Sprint(time.Now().Unix()))
	forged.Header.Set("X-Slack-Signature", "v0="+strings.Repeat("00", 32))
	resp, err := http.DefaultClient.Do(forged)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a forged delivery answered %s; want 401", resp.Status)
	}

	type historyRow struct {
		RequestID string `json:"request_id"`
		Adapter   string `json:"adapter"`
		Room      string `json:"room"`
		ChatUser  string `json:"chat_user"`
		Username  string `json:"username"`
		Text      string `json:"text"`
		Status    string `json:"status"`
	}
	var rows []historyRow
	testenv.Eventually(t, "the Slack request in history as completed", func() bool {
		var page struct {
			Requests []historyRow `json:"requests"`
		}
		if err := json.Unmarshal([]byte(mustCLI(t, s, admin, env, "history", "--json", "--since", "10m")), &page); err != nil {
			t.Fatal(err)
		}
		rows = rows[:0]
		for _, r := range page.Requests {
			if r.Adapter == "slack" {
				rows = append(rows, r)
			}
		}
		return len(rows) == 1 && rows[0].Status == "completed"
	})
	want := historyRow{RequestID: rows[0].RequestID, Adapter: "slack", Room: "ops", ChatUser: "U0ALICE", Username: "alice", Text: "echo hello", Status: "completed"}
	if rows[0] != want {
		t.Fatalf("history has the Slack request as %+v; want %+v", rows[0], want)
	}
	// A later message to the same room: replies to one room are posted in
	// order, so once its reply is posted, a second reply to the request
	// delivered twice would have been posted before it.
	later, _ := json.Marshal(map[string]any{
		"type": "event_callback", "team_id": "T0LOGBOOK", "api_app_id": "A0LOGBOOK", "event_id": "Ev0E2E0002", "event_time": time.Now().Unix(),
		"event": map[string]any{"type": "message", "channel": "C0OPS", "channel_type": "channel", "user": "U0ALICE", "text": "!echo later", "ts": "1700000000.000200"},
	})
	if code := deliver(later, nil); code != http.StatusOK {
		t.Fatalf("a later delivery answered %d", code)
	}
	select {
	case m := <-api.Posted():
		if m.Text != "later" {
			t.Fatalf("posted %q after the retried delivery; want only the later message's reply", m.Text)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no reply to the later message within 20s")
	}
	if n := len(api.Messages()); n != 2 {
		t.Fatalf("Slack got %d messages for one request delivered twice and one more; want 2", n)
	}
}

// TestSlackOverSocketModeAnswersAMention runs `logbook serve` with an app
// token: it connects over Socket Mode, acknowledges the envelope of an
// @mention, and posts the reply in a thread when LOGBOOK_SLACK_THREADS=1.
func TestSlackOverSocketModeAnswersAMention(t *testing.T) {
	api := slacktest.New([]slacktest.Channel{{ID: "C0OPS", Name: "ops", Member: true}}, []slacktest.User{{ID: "U0ALICE", Name: "alice"}})
	defer api.Close()
	env := []string{"LOGBOOK_DATA_DIR=" + filepath.Join(t.TempDir(), "data")}
	s := startServer(t, append(env,
		"LOGBOOK_RUNTIME=process",
		"LOGBOOK_SLACK_BOT_TOKEN=xoxb-e2e",
		"LOGBOOK_SLACK_APP_TOKEN=xapp-e2e",
		"LOGBOOK_SLACK_THREADS=1",
		"LOGBOOK_SLACK_API_URL="+api.APIURL(),
	)...)
	s.waitReady(t)
	admin := s.token(t)
	mustCLI(t, s, admin, env, "user", "create", "alice", "--email", "alice@example.com")
	mustCLI(t, s, admin, env, "user", "link", "alice", "slack", "U0ALICE")
	select {
	case <-api.SocketConnected():
	case <-time.After(20 * time.Second):
		t.Fatal("serve never connected over Socket Mode")
	}
	payload, _ := json.Marshal(map[string]any{
		"type": "event_callback", "team_id": "T0LOGBOOK", "event_id": "Ev0SOCK01", "event_time": time.Now().Unix(),
		"event": map[string]any{"type": "app_mention", "channel": "C0OPS", "user": "U0ALICE", "text": "<@" + slacktest.BotUserID + "> echo over the socket", "ts": "1700000100.000100"},
	})
	if err := api.SendEnvelope(map[string]any{"envelope_id": "env-e2e-1", "type": "events_api", "payload": json.RawMessage(payload)}); err != nil {
		t.Fatal(err)
	}
	acked := false
	for deadline := time.After(20 * time.Second); !acked; {
		select {
		case ack := <-api.Acks():
			acked = strings.Contains(string(ack), "env-e2e-1")
		case <-deadline:
			t.Fatal("the envelope was never acknowledged")
		}
	}
	select {
	case m := <-api.Posted():
		if m.Channel != "C0OPS" || m.Text != "over the socket" || m.ThreadTS != "1700000100.000100" {
			t.Fatalf("posted %+v; want \"over the socket\" in C0OPS, in the thread of the mention", m)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no reply was posted within 20s")
	}
}
