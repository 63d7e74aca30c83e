package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain/dispatch"
)

// answered is what POST /v1/requests answered.
type answered struct {
	status    int
	requestID string
	reply     *dispatch.Reply
	body      string
	err       error
}

// postInBackground sends a request body as token's user with ?wait=1 from
// another goroutine, so the test can act while it waits.
func (p *platform) postInBackground(token string, body map[string]string) <-chan answered {
	out := make(chan answered, 1)
	go func() {
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, p.url+"/v1/requests?wait=1", bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- answered{err: err}
			return
		}
		defer resp.Body.Close()
		text, err := io.ReadAll(resp.Body)
		a := answered{status: resp.StatusCode, body: string(text), err: err}
		var decoded struct {
			RequestID string          `json:"request_id"`
			Reply     *dispatch.Reply `json:"reply"`
		}
		if json.Unmarshal(text, &decoded) == nil {
			a.requestID, a.reply = decoded.RequestID, decoded.Reply
		}
		out <- a
	}()
	return out
}

func within[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatalf("no %s within 15s", what)
	}
	var zero T
	return zero
}

// Bob reuses the message id of the admin's request while it is being
// answered: he must get the answer to his own command, never the admin's.
func TestAMessageIdOfAnotherUsersRunningRequestDoesNotHandBobItsReply(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	bob := p.addUser(t, "bob")
	p.say(t, p.adminToken, "user create carol")

	// Given the admin's "user token carol" under message id M, whose reply
	// is being posted (held) when bob arrives.
	const shared = "deploy-42"
	holding, release := p.posts.hold()
	defer release()
	adminAnswer := p.postInBackground(p.adminToken, map[string]string{"text": "user token carol", "message_id": shared})
	adminRequest := within(t, "admin's reply to be posted", holding)

	// When bob sends whoami with the same message id and waits for the
	// reply; his request is handed to the dispatcher before the admin's
	// reply is let go.
	received := p.requests.watch()
	bobAnswer := p.postInBackground(bob, map[string]string{"text": "whoami", "message_id": shared})
	if err := within(t, "bob's request to be received", received); err != nil {
		t.Fatalf("bob's request was refused: %v", err)
	}
	release()

	// Then bob gets the answer to his own request, and the admin gets
	// carol's token.
	got := within(t, "bob's answer", bobAnswer)
	if got.err != nil || got.reply == nil || got.requestID == adminRequest || strings.Contains(got.body, "carol") || !strings.Contains(got.reply.Text, "You are bob") {
		t.Fatalf("bob answered %d %s (%v); want his own whoami, not the admin's request %s", got.status, got.body, got.err, adminRequest)
	}
	admin := within(t, "the admin's answer", adminAnswer)
	if admin.err != nil || admin.reply == nil || admin.requestID != adminRequest || issuedToken.FindString(admin.reply.Text) == "" {
		t.Fatalf("the admin answered %d %s (%v); want carol's token", admin.status, admin.body, admin.err)
	}
}

// Bob takes a message id first; the admin's later request with it must
// still run, as the admin's.
func TestAMessageIdAnotherUserTookFirstStillRunsTheAdminsRequest(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	bob := p.addUser(t, "bob")
	const squatted = "ci-build-7"
	bobRequest, bobReply := p.post(t, bob, map[string]string{"text": "echo squatted", "message_id": squatted})
	if strings.TrimSpace(bobReply.Text) != "squatted" {
		t.Fatalf("bob's request answered %+v", bobReply)
	}

	adminRequest, adminReply := p.post(t, p.adminToken, map[string]string{"text": "echo the real build", "message_id": squatted})
	if adminRequest == bobRequest || strings.TrimSpace(adminReply.Text) != "the real build" {
		t.Fatalf("the admin's request %s answered %+v; want its own request run (bob's is %s)", adminRequest, adminReply, bobRequest)
	}
	events, err := p.store.ReadStream(context.Background(), dispatch.Stream(adminRequest), 0, 1)
	if err != nil || len(events) != 1 || actorOf(t, events[0]) != "admin" {
		t.Fatalf("the admin's request stream starts with %v (%v)", events, err)
	}
}

// One user's message id sent as one user, then as another, is not the
// same message again: it is refused, and nothing of the first is handed
// back.
func TestAMessageIdSentAsAnotherUserIsAConflict(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	p.addUser(t, "bob")
	p.addUser(t, "carol")
	first, _ := p.post(t, p.adminToken, map[string]string{"text": "echo for bob", "message_id": "as-1", "as": "bob"})
	raw, _ := json.Marshal(map[string]string{"text": "echo for carol", "message_id": "as-1", "as": "carol"})
	status, _, body := p.do(t, http.MethodPost, "/v1/requests?wait=1", p.adminToken, raw)
	if status != http.StatusConflict || !strings.Contains(string(body), "another sender") || strings.Contains(string(body), first) || strings.Contains(string(body), "for bob") {
		t.Fatalf("as carol under bob's message id: %d %s; want 409 saying the id is another sender's", status, body)
	}
}

// A retry of a request that was answered already gets the same answer at
// once, without the secret its first answer showed.
func TestRepeatingAnAnsweredMessageIdAnswersAtOnceWithItsReply(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	p.say(t, p.adminToken, "user create carol")
	for _, c := range []struct{ text, messageID string }{{"echo twice", "retry-1"}, {"user token carol", "retry-2"}} {
		firstID, first := p.post(t, p.adminToken, map[string]string{"text": c.text, "message_id": c.messageID})
		start := time.Now()
		againID, again := p.post(t, p.adminToken, map[string]string{"text": c.text, "message_id": c.messageID})
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("the retry of %q took %s", c.text, took)
		}
		if againID != firstID || again.Failed != first.Failed {
			t.Fatalf("the retry of %q answered %s %+v; the first %s %+v", c.text, againID, again, firstID, first)
		}
		token := issuedToken.FindString(first.Text)
		if token == "" {
			if again.Text != first.Text {
				t.Errorf("the retry of %q answered %q; the first %q", c.text, again.Text, first.Text)
			}
			continue
		}
		if strings.Contains(again.Text, token) || strings.Contains(string(again.Value), token) || strings.Contains(again.Text, "[secret:") ||
			!strings.Contains(again.Text, "not shown again") {
			t.Errorf("the retry of %q showed %q; want the token left out, saying it was shown once", c.text, again.Text)
		}
	}
}

// Given requests sent one after another without a message id, when they
// are recorded, then each has a fresh UUIDv7 message id of Logbook's own,
// marked TimedID, and their request ids keep its time, so they sort in
// the order they came (those of one millisecond among themselves by
// hash); a request with the client's own message id derives its id as
// before, from the message id alone.
func TestRequestsWithoutAMessageIdGetIdsInTheOrderTheyCame(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	ctx := context.Background()
	var ids []string
	for range 3 {
		id, _ := p.say(t, p.adminToken, "echo in order")
		events, err := p.store.ReadStream(ctx, dispatch.Stream(id), 0, 1)
		if err != nil || len(events) != 1 {
			t.Fatalf("request %s: %v", id, err)
		}
		var rec dispatch.RequestReceived
		if err := json.Unmarshal(events[0].Data, &rec); err != nil {
			t.Fatal(err)
		}
		if m, err := uuid.Parse(rec.MessageID); err != nil || m.Version() != 7 || !rec.TimedID || id[:13] != rec.MessageID[:13] {
			t.Fatalf("request %s from message id %q (timed %v): want a UUIDv7 message id whose time the request id keeps", id, rec.MessageID, rec.TimedID)
		}
		ids = append(ids, id[:13]) // the time: requests within a millisecond share it
	}
	if !slices.IsSorted(ids) {
		t.Errorf("request ids starting %v do not sort in the order the requests came", ids)
	}
	own := uuid.Must(uuid.NewV7()).String()
	raw, _ := json.Marshal(map[string]string{"text": "echo mine", "message_id": own})
	status, _, out := p.do(t, http.MethodPost, "/v1/requests?wait=1", p.adminToken, raw)
	var answer struct {
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(out, &answer); status != http.StatusOK || err != nil {
		t.Fatalf("POST with a message id: %d %s", status, out)
	}
	want := dispatch.RequestReceived{Adapter: "api", MessageID: own, Sender: "admin"}.ID()
	if answer.RequestID != want || answer.RequestID[:13] == own[:13] {
		t.Errorf("a client's message id %s gave request %s, want %s, derived as before", own, answer.RequestID, want)
	}
}
