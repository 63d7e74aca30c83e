package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/adapters/secretvault"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/trigger"
	"github.com/logbookhq/logbook/internal/testenv"
	"github.com/logbookhq/logbook/projections"
)

func testVault(t *testing.T, store projections.Source) *secretvault.Vault {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "secret.key")
	if _, err := secretvault.EnsureKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	rebind := func(q string) string { return q }
	if store.Dialect() == "sqlite" {
		rebind = sqlstore.RebindQuestion
	}
	v, err := secretvault.Open(secretvault.Config{Read: store.DB(), Write: writeDBOf(store), Rebind: rebind, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var tokenShown = regexp.MustCompile(`lbk_[A-Za-z0-9_-]+`)

// createTrigger creates a trigger through the API as the admin, and
// returns the token its reply shows once (or "").
func createTrigger(t *testing.T, p *platform, text string) string {
	t.Helper()
	_, reply := p.say(t, p.adminToken, text)
	if reply.Failed {
		t.Fatalf("%s: %s", text, reply.Text)
	}
	return tokenShown.FindString(reply.Text)
}

// call makes a real HTTP call to a trigger, checked against the OpenAPI
// document like every other answer.
func call(t *testing.T, p *platform, name string, body []byte, headers map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.url+"/v1/triggers/"+name, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	p.checker.check(t, p.url, req, resp.StatusCode, resp.Header, out)
	return resp.StatusCode, out
}

func head(t *testing.T, p *platform) int64 {
	t.Helper()
	pos, _, err := p.store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

func TestATriggerAnswersWithItsPipelinesOutputAndRecordsTheRequest(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	token := createTrigger(t, p, "trigger create push --pipeline 'echo $body.ref by $headers.x-sender' --timeout 10s")
	if token == "" {
		t.Fatal("no token shown")
	}
	status, out := call(t, p, "push", []byte(`{"ref": "refs/heads/main"}`), map[string]string{"Authorization": "Bearer " + token, "X-Sender": "ci", "Content-Type": "application/json"})
	if status != http.StatusOK {
		t.Fatalf("%d %s", status, out)
	}
	var answer httpapi.TriggerAnswer
	if err := json.Unmarshal(out, &answer); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(answer.Text, "refs/heads/main by ci") || answer.Status != "completed" {
		t.Fatalf("answer %+v", answer)
	}
	// GitHub's form content type: the JSON is the payload field.
	form := []byte("payload=" + url.QueryEscape(`{"ref": "refs/tags/v1"}`))
	if status, out := call(t, p, "push", form, map[string]string{"X-Logbook-Token": token, "X-Sender": "gh", "Content-Type": "application/x-www-form-urlencoded"}); status != http.StatusOK || !strings.Contains(string(out), "refs/tags/v1 by gh") {
		t.Fatalf("a form-encoded call: %d %s", status, out)
	}
	if status, out := call(t, p, "push", []byte(`{"ref": `), map[string]string{"X-Logbook-Token": token, "Content-Type": "application/json"}); status != http.StatusBadRequest || !strings.Contains(string(out), "does not parse") {
		t.Fatalf("a body that says JSON and is not: %d %s", status, out)
	}
	// The request is in the history with provider trigger and the
	// trigger's name, run as its user, and the token is in no event.
	events, err := p.store.ReadStream(context.Background(), dispatch.Stream(answer.RequestID), 0, 100)
	if err != nil || len(events) == 0 {
		t.Fatalf("the request is not recorded: %v", err)
	}
	first, _ := domain.Decode(events[0])
	rec := first.(dispatch.RequestReceived)
	if rec.Adapter != "trigger" || rec.Room != "push" || rec.Source != "push" || rec.ChatUser != "admin" {
		t.Fatalf("recorded %+v", rec)
	}
	// A call without a delivery id gets a message id of Logbook's own,
	// whose time its request id keeps.
	if !rec.TimedID || rec.ID() != answer.RequestID || answer.RequestID[:13] != rec.MessageID[:13] {
		t.Fatalf("request %s from message id %q (timed %v): want a timed id that keeps the message id's time", answer.RequestID, rec.MessageID, rec.TimedID)
	}
	all, _ := p.store.ReadAll(context.Background(), 1, 100000)
	for _, e := range all {
		if bytes.Contains(e.Data, []byte(token)) {
			t.Fatalf("the token is in event %d (%s)", e.Position, e.Type)
		}
	}
	testenvWaitForRequest(t, p, answer.RequestID)
	page := getJSON[httpapi.HistoryPage](t, p, "/v1/history?provider=trigger", p.adminToken)
	if len(page.Requests) != 2 || page.Requests[0].Room != "push" || page.Requests[1].Room != "push" {
		t.Fatalf("history: %+v; want the two calls that parsed, from trigger push", page)
	}

	// No output is a 204; a wrong token a 401 that records nothing.
	quiet := createTrigger(t, p, "trigger create quiet --pipeline 'echo'")
	if status, out := call(t, p, "quiet", nil, map[string]string{"X-Logbook-Token": quiet}); status != http.StatusNoContent {
		t.Fatalf("no output: %d %s", status, out)
	}
	before := head(t, p)
	for _, h := range []map[string]string{{}, {"Authorization": "Bearer " + quiet + "x"}, {"X-Logbook-Token": token}} {
		if status, out := call(t, p, "quiet", nil, h); status != http.StatusUnauthorized {
			t.Fatalf("headers %v: %d %s", h, status, out)
		}
	}
	if status, _ := call(t, p, "nope", nil, nil); status != http.StatusNotFound {
		t.Fatalf("an unknown trigger: %d", status)
	}
	if after := head(t, p); after != before {
		t.Fatalf("refused calls recorded %d events", after-before)
	}

	// A new token replaces the old one at once.
	fresh := createTrigger(t, p, "trigger token quiet")
	if fresh == "" || fresh == quiet {
		t.Fatalf("trigger token showed %q", fresh)
	}
	if status, _ := call(t, p, "quiet", nil, map[string]string{"X-Logbook-Token": quiet}); status != http.StatusUnauthorized {
		t.Fatalf("the old token after a new one: %d", status)
	}
	if status, out := call(t, p, "quiet", nil, map[string]string{"X-Logbook-Token": fresh}); status != http.StatusNoContent {
		t.Fatalf("the new token: %d %s", status, out)
	}
}

func testenvWaitForRequest(t *testing.T, p *platform, id string) {
	t.Helper()
	getJSON[httpapi.RequestDetail](t, p, "/v1/requests/"+id, p.adminToken)
}

func TestATriggerThatTakesLongerThanItsTimeoutAnswers202AndGoesOn(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	// The platform has no container executor: toolbox:sleep never ends.
	token := createTrigger(t, p, "trigger create slow --pipeline 'toolbox:sleep 30' --timeout 300ms")
	status, out := call(t, p, "slow", nil, map[string]string{"X-Logbook-Token": token})
	if status != http.StatusAccepted {
		t.Fatalf("%d %s", status, out)
	}
	var answer httpapi.TriggerAnswer
	if err := json.Unmarshal(out, &answer); err != nil || answer.RequestID == "" {
		t.Fatalf("%s: %v", out, err)
	}
	detail := getJSON[httpapi.RequestDetail](t, p, "/v1/requests/"+answer.RequestID, p.adminToken)
	if detail.Request.Status != "running" {
		t.Fatalf("the request after the 202: %+v", detail.Request)
	}
}

func TestSignedTriggersRefuseBadMissingAndReplayedSignaturesBeforeRecordingAnything(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	if token := createTrigger(t, p, "trigger create gh --pipeline 'echo $body.ref' --require-hmac"); token != "" {
		t.Fatalf("an HMAC-only trigger got a token: %s", token)
	}
	body := []byte(`{"ref": "refs/heads/main", "repository": {"full_name": "acme/app"}}`)
	secret := "it-is-a-long-webhook-secret"
	signed := func(delivery, signature string) map[string]string {
		return map[string]string{"X-Hub-Signature-256": signature, "X-GitHub-Delivery": delivery, "X-GitHub-Event": "push", "Content-Type": "application/json"}
	}
	// Before a secret is set every call is refused.
	if status, out := call(t, p, "gh", body, signed("d-0", trigger.Sign([]byte(secret), body))); status != http.StatusUnauthorized {
		t.Fatalf("without a secret: %d %s", status, out)
	}
	status, _, out := p.do(t, http.MethodPost, "/v1/triggers/gh/secret", p.adminToken, mustMarshal(t, httpapi.SecretBody{Value: secret}))
	if status != http.StatusOK || bytes.Contains(out, []byte(secret)) {
		t.Fatalf("setting the secret: %d %s", status, out)
	}
	before := head(t, p)
	for name, headers := range map[string]map[string]string{
		"a bad signature":     signed("d-1", trigger.Sign([]byte("guessed"), body)),
		"a missing signature": signed("d-1", ""),
		"another body's":      signed("d-1", trigger.Sign([]byte(secret), []byte("{}"))),
		"a good one, no id":   {"X-Hub-Signature-256": trigger.Sign([]byte(secret), body)},
	} {
		status, out := call(t, p, "gh", body, headers)
		want := http.StatusUnauthorized
		if name == "a good one, no id" {
			want = http.StatusBadRequest
		}
		if status != want || bytes.Contains(out, []byte(secret)) {
			t.Errorf("%s: %d %s, want %d", name, status, out, want)
		}
	}
	if after := head(t, p); after != before {
		t.Fatalf("refused calls recorded %d events", after-before)
	}
	good := signed("d-1", trigger.Sign([]byte(secret), body))
	if status, out := call(t, p, "gh", body, good); status != http.StatusOK || !strings.Contains(string(out), "refs/heads/main") {
		t.Fatalf("a good call: %d %s", status, out)
	}
	// The same delivery again is a replay: refused, nothing recorded.
	before = head(t, p)
	if status, out := call(t, p, "gh", body, good); status != http.StatusConflict {
		t.Fatalf("a replay: %d %s", status, out)
	}
	if after := head(t, p); after != before {
		t.Fatalf("a replay recorded %d events", after-before)
	}
	all, _ := p.store.ReadAll(context.Background(), 1, 100000)
	for _, e := range all {
		if bytes.Contains(e.Data, []byte(secret)) {
			t.Fatalf("the secret is in event %d (%s)", e.Position, e.Type)
		}
	}
}

func TestDisabledOversizedAndDeniedCalls(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	token := createTrigger(t, p, "trigger create hook --pipeline 'echo hi'")
	auth := map[string]string{"X-Logbook-Token": token}
	createTrigger(t, p, "trigger disable hook")
	before := head(t, p)
	if status, out := call(t, p, "hook", nil, auth); status != http.StatusLocked || !strings.Contains(string(out), "disabled") {
		t.Fatalf("disabled: %d %s", status, out)
	}
	if after := head(t, p); after != before {
		t.Fatalf("a call to a disabled trigger recorded %d events", after-before)
	}
	createTrigger(t, p, "trigger enable hook")
	before = head(t, p)
	huge := bytes.Repeat([]byte("x"), httpapi.MaxTriggerBody+1)
	if status, out := call(t, p, "hook", huge, auth); status != http.StatusRequestEntityTooLarge || !strings.Contains(string(out), "512 KiB") {
		t.Fatalf("over the limit: %d %s", status, out)
	}
	if after := head(t, p); after != before {
		t.Fatalf("a call over the limit recorded %d events", after-before)
	}
	if status, out := call(t, p, "hook", bytes.Repeat([]byte("x"), httpapi.MaxTriggerBody), auth); status != http.StatusOK {
		t.Fatalf("a body at the limit: %d %s", status, out)
	}
	// bob holds nothing: a trigger that runs as him is denied what he may
	// not run, with a 403.
	p.say(t, p.adminToken, "user create bob")
	bobs := createTrigger(t, p, "trigger create as-bob --as bob --pipeline 'trigger list'")
	status, out := call(t, p, "as-bob", nil, map[string]string{"X-Logbook-Token": bobs})
	if status != http.StatusForbidden || !strings.Contains(string(out), "logbook:manage_triggers") {
		t.Fatalf("denied: %d %s", status, out)
	}
}

func TestTriggerAnswersByHowTheRequestEnded(t *testing.T) {
	for _, c := range []struct {
		name  string
		reply dispatch.Reply
		want  int
	}{
		{"output", dispatch.Reply{Text: "hi", Value: json.RawMessage(`"hi"`)}, http.StatusOK},
		{"no output", dispatch.Reply{Text: dispatch.NoOutput}, http.StatusNoContent},
		{"denied", dispatch.Reply{Problem: &dispatch.Problem{Status: dispatch.StatusDenied}}, http.StatusForbidden},
		{"aborted", dispatch.Reply{Problem: &dispatch.Problem{Status: dispatch.StatusFailed, Aborted: true}}, http.StatusUnprocessableEntity},
		{"failed", dispatch.Reply{Problem: &dispatch.Problem{Status: dispatch.StatusFailed}}, http.StatusInternalServerError},
		{"does not parse", dispatch.Reply{Problem: &dispatch.Problem{Status: dispatch.StatusRejected}}, http.StatusInternalServerError},
	} {
		w := httptest.NewRecorder()
		httpapi.WriteTriggerReply(w, "r1", c.reply)
		if w.Code != c.want {
			t.Errorf("%s: %d, want %d", c.name, w.Code, c.want)
		}
	}
}

func TestTriggersAndSchedulesAreManagedThroughTheAPI(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	post := func(path string, body any) (int, httpapi.ManageAnswer) {
		t.Helper()
		status, _, out := p.do(t, http.MethodPost, path, p.adminToken, mustMarshal(t, body))
		var answer httpapi.ManageAnswer
		_ = json.Unmarshal(out, &answer)
		return status, answer
	}
	const secret = "an-api-given-webhook-secret"
	status, created := post("/v1/triggers", httpapi.TriggerCreateBody{Name: "gh", Pipeline: "echo $body.ref", HMACSecret: secret})
	if status != http.StatusOK || created.SecretVersion != 1 || strings.Contains(created.Reply.Text, secret) {
		t.Fatalf("create: %d %+v", status, created)
	}
	if status, answer := post("/v1/triggers", httpapi.TriggerCreateBody{Name: "gh", Pipeline: "echo"}); status != http.StatusUnprocessableEntity || !strings.Contains(answer.Reply.Text, "exists") {
		t.Fatalf("create again: %d %+v", status, answer)
	}
	body := []byte(`{"ref": "v1.2.3"}`)
	signed := map[string]string{"X-Hub-Signature-256": trigger.Sign([]byte(secret), body), "X-GitHub-Delivery": "api-1"}
	if status, out := call(t, p, "gh", body, signed); status != http.StatusOK || !strings.Contains(string(out), "v1.2.3") {
		t.Fatalf("calling it: %d %s", status, out)
	}
	if status, _ := post("/v1/triggers/gh/disable", httpapi.EmptyBody{}); status != http.StatusOK {
		t.Fatalf("disable: %d", status)
	}
	signed["X-GitHub-Delivery"] = "api-2"
	if status, _ := call(t, p, "gh", body, signed); status != http.StatusLocked {
		t.Fatalf("a disabled trigger answered %d", status)
	}
	if status, _ := post("/v1/triggers/none/enable", httpapi.EmptyBody{}); status != http.StatusNotFound {
		t.Fatalf("enabling a missing trigger: %d", status)
	}

	status, answer := post("/v1/schedules", httpapi.ScheduleAddBody{Spec: "0 9 * * 1-5", Pipeline: "echo standup", Name: "standup", TZ: "Europe/Berlin", Missed: "run-once"})
	if status != http.StatusOK || !strings.Contains(answer.Reply.Text, "Next tick") {
		t.Fatalf("add: %d %+v", status, answer)
	}
	if status, answer := post("/v1/schedules", httpapi.ScheduleAddBody{Spec: "every 1s", Pipeline: "echo"}); status != http.StatusUnprocessableEntity || !strings.Contains(answer.Reply.Text, "shortest interval") {
		t.Fatalf("a bad spec: %d %+v", status, answer)
	}
	if status, _ := post("/v1/schedules/standup/pause", httpapi.EmptyBody{}); status != http.StatusOK {
		t.Fatalf("pause: %d", status)
	}
	testenv.Eventually(t, "the lists to show the trigger disabled and the schedule paused", func() bool {
		triggers := getJSON[httpapi.TriggerList](t, p, "/v1/triggers", p.adminToken)
		schedules := getJSON[httpapi.ScheduleList](t, p, "/v1/schedules", p.adminToken)
		return len(triggers.Triggers) == 1 && !triggers.Triggers[0].Enabled && triggers.Triggers[0].SecretVersion == 1 &&
			len(schedules.Schedules) == 1 && schedules.Schedules[0].Paused && schedules.Schedules[0].Owner == "admin" && schedules.Schedules[0].Missed == "run-once"
	})
	if status, _, out := p.do(t, http.MethodDelete, "/v1/schedules/standup", p.adminToken, nil); status != http.StatusOK {
		t.Fatalf("delete: %d %s", status, out)
	}
	testenv.Eventually(t, "the deleted schedule to leave the list", func() bool {
		return len(getJSON[httpapi.ScheduleList](t, p, "/v1/schedules", p.adminToken).Schedules) == 0
	})
}
