package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/internal/testenv"
)

// post issues a request body as token's user with ?wait=1 and returns the
// request id and the reply.
func (p *platform) post(t *testing.T, token string, body map[string]string) (string, dispatch.Reply) {
	t.Helper()
	raw, _ := json.Marshal(body)
	status, _, out := p.do(t, http.MethodPost, "/v1/requests?wait=1", token, raw)
	var answer struct {
		RequestID string         `json:"request_id"`
		Reply     dispatch.Reply `json:"reply"`
	}
	if status != http.StatusOK || json.Unmarshal(out, &answer) != nil {
		t.Fatalf("POST /v1/requests %v: %d %s", body, status, out)
	}
	return answer.RequestID, answer.Reply
}

// lastRun is the newest run of user with command, as token's user lists it.
func (p *platform) lastRun(t *testing.T, token, user, command string) string {
	t.Helper()
	runs := getJSON[httpapi.RunsPage](t, p, "/v1/runs?limit=1&user="+user+"&command="+command, token)
	if len(runs.Runs) != 1 {
		t.Fatalf("%s has no %s run: %+v", user, command, runs)
	}
	return runs.Runs[0].RunID
}

func TestEveryReadRouteKeepsOtherUsersHistoryFromAPlainUser(t *testing.T) {
	t.Parallel()
	// Given the admin's request that issued carol a token, under a message
	// id of the admin's choosing; bob, a plain user, with a request of his
	// own; and a Slack request from a handle no user is linked to.
	p := newPlatform(t)
	bob := p.addUser(t, "bob")
	p.say(t, p.adminToken, "user create carol")
	const adminMessage = "admin-message-5c1e"
	adminRequest, tokenReply := p.post(t, p.adminToken, map[string]string{"text": "user token carol", "message_id": adminMessage})
	carolToken := issuedToken.FindString(tokenReply.Text)
	adminRun := p.lastRun(t, p.adminToken, "admin", "logbook:user")
	bobRequest, _ := p.say(t, bob, "echo bob words")
	bobRun := p.lastRun(t, bob, "bob", "logbook:echo")
	unknownRequest := p.unknownSenderRequest(t, "U404SENDER")

	secrets := []string{adminRequest, adminMessage, "user token carol", adminRun, unknownRequest, "U404SENDER"}
	if carolToken != "" {
		secrets = append(secrets, carolToken)
	}
	leaks := func(path string, body []byte) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(path, s) {
				continue // what bob asked for may be echoed back
			}
			if strings.Contains(string(body), s) {
				t.Errorf("GET %s as bob shows %q: %s", path, s, body)
			}
		}
	}
	// missing is the answer to an id nothing has, with the id blanked.
	missing := func(path, id string) (int, string) {
		t.Helper()
		status, _, body := p.do(t, http.MethodGet, strings.ReplaceAll(path, id, "no-such-id-0"), bob, nil)
		return status, strings.ReplaceAll(string(body), "no-such-id-0", "ID")
	}

	// When bob tries every read route of the table against their data,
	// then nothing of theirs comes back.
	tried := 0
	for _, r := range httpapi.Routes() {
		if r.Public || r.Method != http.MethodGet {
			continue
		}
		tried++
		var paths []string
		switch {
		case strings.Contains(r.Path, "{name}"):
			paths = []string{concrete(r.Path, map[string]string{"name": "admin"})}
		case strings.HasPrefix(r.Path, "/v1/requests/{id}"):
			for _, id := range []string{adminRequest, unknownRequest} {
				paths = append(paths, concrete(r.Path, map[string]string{"id": id}))
			}
		case strings.Contains(r.Path, "{id}"):
			base := concrete(r.Path, map[string]string{"id": adminRun})
			paths = []string{base}
			if strings.HasSuffix(r.Path, "/transcript") {
				paths = append(paths, base+"?format=chunks", base+"?follow=1")
			}
		case r.Path == "/v1/access/who":
			paths = []string{r.Path + "?command=logbook:user"}
		case r.Path == "/v1/search":
			paths = []string{r.Path + "?q=words"}
		default:
			paths = []string{r.Path}
		}
		takesUser := false
		for _, q := range r.Query {
			takesUser = takesUser || q.Name == "user"
		}
		for _, path := range paths {
			status, _, body := p.do(t, http.MethodGet, path, bob, nil)
			leaks(path, body)
			switch {
			case strings.Contains(r.Path, "{id}"):
				// Another user's request, run or transcript is answered as a
				// missing one, word for word.
				id := adminRun
				if strings.HasPrefix(r.Path, "/v1/requests/") {
					id = strings.TrimPrefix(path, "/v1/requests/")
				}
				wantStatus, wantBody := missing(path, id)
				if status != http.StatusNotFound || wantStatus != http.StatusNotFound || strings.ReplaceAll(string(body), id, "ID") != wantBody {
					t.Errorf("GET %s as bob: %d %s; want the 404 of a missing id: %d %s", path, status, body, wantStatus, wantBody)
				}
			case r.Path == "/v1/approvals":
				// bob's own and those he may answer: none of admin's.
				if status != http.StatusOK || !strings.Contains(string(body), `"approvals":[]`) {
					t.Errorf("GET %s as bob: %d %s; want 200 with none of admin's", path, status, body)
				}
			case takesUser:
				// A list without a filter is bob's own.
				if status != http.StatusOK || !strings.Contains(string(body), `"username":"bob"`) {
					t.Errorf("GET %s as bob: %d %s; want 200 with bob's own", path, status, body)
				}
			case status == http.StatusOK:
				t.Errorf("GET %s as bob: 200 %s; want a refusal", path, body)
			}
		}
		if takesUser {
			// Another user's list is a 403 naming the permission.
			path := r.Path + "?user=admin"
			if r.Path == "/v1/search" {
				path += "&q=words"
			}
			status, _, body := p.do(t, http.MethodGet, path, bob, nil)
			leaks(path, body)
			if status != http.StatusForbidden || !strings.Contains(string(body), "logbook:read_history") {
				t.Errorf("GET %s as bob: %d %s; want 403 naming logbook:read_history", path, status, body)
			}
		}
	}
	if tried < 10 {
		t.Fatalf("only %d read routes were tried", tried)
	}

	// And bob reads his own; someone holding logbook:read_history reads
	// the admin's and the unknown sender's.
	for _, path := range []string{"/v1/requests/" + bobRequest, "/v1/runs/" + bobRun, "/v1/runs/" + bobRun + "/transcript"} {
		if status, _, body := p.do(t, http.MethodGet, path, bob, nil); status != http.StatusOK {
			t.Errorf("GET %s as bob: %d %s; want his own", path, status, body)
		}
	}
	auditor := p.addUser(t, "ann")
	for _, text := range []string{"role create auditor", "role grant auditor logbook:read_history", "group create auditors",
		"group grant auditors auditor", "group add auditors ann"} {
		p.say(t, p.adminToken, text)
	}
	for _, path := range []string{"/v1/requests/" + adminRequest, "/v1/requests/" + unknownRequest, "/v1/runs/" + adminRun,
		"/v1/runs/" + adminRun + "/transcript", "/v1/history?user=admin"} {
		if status, _, body := p.do(t, http.MethodGet, path, auditor, nil); status != http.StatusOK {
			t.Errorf("GET %s with logbook:read_history: %d %s", path, status, body)
		}
	}
}

// unknownSenderRequest records a Slack message from handle, which no user
// is linked to, and returns its request id once the dispatcher has said
// the sender is unknown.
func (p *platform) unknownSenderRequest(t *testing.T, handle string) string {
	t.Helper()
	in := dispatch.RequestReceived{Adapter: "slack", MessageID: "C1:" + handle, Room: "C1", ChatUser: handle, Text: "echo hi"}
	id := dispatch.RequestID(in.Adapter, in.MessageID)
	ctx := context.Background()
	if _, err := p.store.Append(ctx, dispatch.Stream(id), eventstore.NoStream, domain.MustEncode(in, domain.Metadata{Actor: "slack"})); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the unknown sender's request to be decided", func() bool {
		events, err := p.store.ReadStream(ctx, dispatch.Stream(id), 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.Type == "IdentityUnknown" {
				return true
			}
		}
		return false
	})
	return id
}
