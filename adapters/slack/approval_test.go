package slack

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/slack/slacktest"
	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/domain/dispatch"
)

const approvalID = "0190aaaa-1111-7000-8000-000000000001"

// postApproval posts an approval notice to #ops and returns the message.
func postApproval(t *testing.T, f *fixture) slacktest.Message {
	t.Helper()
	part := chat.Part{RequestID: approvalID, Index: 0, Count: 1, Text: "alice asks to run: rel:prod db", Notice: dispatch.ApprovalNoticeKey, Approval: approvalID}
	if _, err := f.p.Post(context.Background(), ops, part); err != nil {
		t.Fatal(err)
	}
	msgs := f.api.Messages()
	return msgs[len(msgs)-1]
}

func TestAnApprovalNoticeCarriesApproveAndRejectButtons(t *testing.T) {
	f := start(t, nil)
	m := postApproval(t, f)
	buttons := m.Buttons()
	if len(buttons) != 2 || buttons[0] != (slacktest.Button{ActionID: ActionApprove, Value: approvalID, Text: "Approve", Style: "primary"}) ||
		buttons[1] != (slacktest.Button{ActionID: ActionReject, Value: approvalID, Text: "Reject", Style: "danger"}) {
		t.Fatalf("buttons %+v", buttons)
	}
	if !strings.Contains(m.Text, "alice asks to run") || m.Metadata.EventPayload["notice"] != dispatch.ApprovalNoticeKey {
		t.Fatalf("message %+v", m)
	}
	reply := chat.Part{RequestID: approvalID, Index: 0, Count: 1, Text: "done"}
	if _, err := f.p.Post(context.Background(), ops, reply); err != nil {
		t.Fatal(err)
	}
	if got := f.api.Messages()[1].Buttons(); len(got) != 0 {
		t.Fatalf("a reply has buttons %+v", got)
	}
	// The notice and the reply share the request id; each is found as
	// itself only.
	notice := chat.Part{RequestID: approvalID, Index: 0, Count: 1, Notice: dispatch.ApprovalNoticeKey}
	if id, found, err := f.p.FindPart(context.Background(), ops, notice, time.Now().Add(-time.Minute)); err != nil || !found || id != m.TS {
		t.Fatalf("finding the notice: %q %v %v", id, found, err)
	}
	if id, found, err := f.p.FindPart(context.Background(), ops, reply, time.Now().Add(-time.Minute)); err != nil || !found || id != f.api.Messages()[1].TS {
		t.Fatalf("finding the reply: %q %v %v", id, found, err)
	}
}

func TestAButtonClickedOverTheInteractivityURLIsTheAnswerChatWouldSend(t *testing.T) {
	f := start(t, nil)
	m := postApproval(t, f)
	buttons := m.Buttons()
	click := func(button slacktest.Button, at time.Time) []byte {
		payload, _ := json.Marshal(slacktest.BlockAction("U0ALICE", m, button, at))
		return []byte(url.Values{"payload": {string(payload)}}.Encode())
	}
	at := time.Now()
	body := click(buttons[0], at)
	if resp := f.deliver(t, "/slack/interactivity", body, time.Now(), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("a signed click: %d", resp.StatusCode)
	}
	got := f.got.next(t)
	if got.Text != "approve "+approvalID || got.User != "U0ALICE" || got.Room != "ops" || !strings.HasPrefix(got.MessageID, "action:C0OPS:") {
		t.Fatalf("message %+v", got)
	}
	// The same click delivered again is the same message id: one request.
	if resp := f.deliver(t, "/slack/interactivity", body, time.Now(), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the click again: %d", resp.StatusCode)
	}
	if again := f.got.next(t); again.MessageID != got.MessageID {
		t.Fatalf("the click again has id %s, want %s", again.MessageID, got.MessageID)
	}
	if resp := f.deliver(t, "/slack/interactivity", click(buttons[1], at.Add(time.Second)), time.Now(), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("a reject click: %d", resp.StatusCode)
	}
	if got := f.got.next(t); got.Text != dispatch.AnswerText(dispatch.VerdictReject, approvalID, buttonReason) {
		t.Fatalf("reject %q", got.Text)
	}
	for name, tc := range map[string]struct {
		body []byte
		at   time.Time
		want int
	}{
		"unsigned":           {click(buttons[0], at), time.Time{}, http.StatusUnauthorized},
		"signed long ago":    {click(buttons[0], at), time.Now().Add(-time.Hour), http.StatusUnauthorized},
		"without a payload":  {[]byte("x=1"), time.Now(), http.StatusBadRequest},
		"a payload not JSON": {[]byte("payload=%7Bnope"), time.Now(), http.StatusBadRequest},
	} {
		if resp := f.deliver(t, "/slack/interactivity", tc.body, tc.at, nil); resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", name, resp.StatusCode, tc.want)
		}
	}
	f.got.fail = 1
	if resp := f.deliver(t, "/slack/interactivity", click(buttons[0], at.Add(2*time.Second)), time.Now(), nil); resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("a click not recorded: %d, want 500", resp.StatusCode)
	}
}

func TestAButtonClickedOverSocketModeIsAcknowledgedOnceRecorded(t *testing.T) {
	f := start(t, func(c *Config) { c.AppToken = "xapp-test" })
	select {
	case <-f.api.SocketConnected():
	case <-time.After(10 * time.Second):
		t.Fatal("Socket Mode never connected")
	}
	m := postApproval(t, f)
	envelope, err := f.api.SendInteraction(slacktest.BlockAction("U0ALICE", m, m.Buttons()[0], time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.got.next(t); got.Text != "approve "+approvalID || got.User != "U0ALICE" {
		t.Fatalf("message %+v", got)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ack := <-f.api.Acks():
			if strings.Contains(string(ack), envelope) {
				return
			}
		case <-deadline:
			t.Fatalf("envelope %s was never acknowledged", envelope)
		}
	}
}
