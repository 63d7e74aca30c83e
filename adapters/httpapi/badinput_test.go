package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
)

// concrete fills a route's path parameters.
func concrete(path string, values map[string]string) string {
	for name, v := range values {
		path = strings.ReplaceAll(path, "{"+name+"}", url.PathEscape(v))
	}
	return path
}

// stringField names a string field of each POST route's body, if any.
var stringField = map[string]string{"/v1/requests": "text", "/v1/access/explain": "text", "/v1/secrets": "key",
	"/v1/approvals/{id}/approve": "reason", "/v1/approvals/{id}/reject": "reason"}

// validBody is a body each POST route accepts.
var validBody = map[string]string{
	"/v1/requests":                `{"text": "echo hi"}`,
	"/v1/access/explain":          `{"text": "echo hi"}`,
	"/v1/secrets":                 `{"bundle": "toolbox", "key": "TOKEN", "value": "v"}`,
	"/v1/secrets/rotate-key":      `{}`,
	"/v1/approvals/{id}/approve":  `{"reason": "fine"}`,
	"/v1/approvals/{id}/reject":   `{"reason": "not now"}`,
	"/v1/triggers/{name}/secret":  `{"value": "0123456789abcdef-secret"}`,
	"/v1/triggers":                `{"name": "hook", "pipeline": "echo hi"}`,
	"/v1/triggers/{name}/enable":  `{}`,
	"/v1/triggers/{name}/disable": `{}`,
	"/v1/schedules":               `{"spec": "every 1h", "pipeline": "echo hi"}`,
	"/v1/schedules/{name}/pause":  `{}`,
	"/v1/schedules/{name}/resume": `{}`,
}

func TestEveryRouteRefusesBadInputSayingWhatIsWrong(t *testing.T) {
	t.Parallel()
	// Given a platform holding one request and its run, and the admin.
	p := newPlatform(t)
	requestID, _ := p.say(t, p.adminToken, "echo hi")
	runs := getJSON[httpapi.RunsPage](t, p, "/v1/runs?limit=1", p.adminToken)
	if len(runs.Runs) != 1 {
		t.Fatalf("no run recorded for echo: %+v", runs)
	}
	existing := map[string]map[string]string{
		"/v1/requests/{id}":        {"id": requestID},
		"/v1/runs/{id}":            {"id": runs.Runs[0].RunID},
		"/v1/runs/{id}/transcript": {"id": runs.Runs[0].RunID},
		"/v1/users/{name}":         {"name": "admin"},
		"/v1/groups/{name}":        {"name": "admin"},
		"/v1/roles/{name}":         {"name": "admin"},
		"/v1/bundles/{name}":       {"name": "toolbox"},
	}
	const unknownID = "no-such-thing-7f3a"
	const badToken = "lbk_not-a-token-but-a-guess-0123456789abcdefghijk"

	for _, r := range httpapi.Routes() {
		if r.Public {
			continue
		}
		var body []byte
		if r.Method == http.MethodPost {
			body = []byte(validBody[r.Path])
			if body == nil {
				t.Fatalf("no valid body for %s: add one to validBody", r.Pattern())
			}
		}
		query := ""
		if r.Path == "/v1/access/who" {
			query = "?command=toolbox:echo"
		}
		real := concrete(r.Path, existing[r.Path])
		unknown := concrete(r.Path, map[string]string{"id": unknownID, "name": unknownID})

		// Then without a token, or with a wrong one, the answer is 401 and
		// the same whether the resource exists or not, and it echoes
		// neither the token nor the id.
		var bodies []string
		for _, path := range []string{real, unknown} {
			for _, token := range []string{"", badToken} {
				status, header, got := p.do(t, r.Method, path+query, token, body)
				if status != http.StatusUnauthorized || header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s %s with token %q: %d %s, want 401 with WWW-Authenticate", r.Method, path, token, status, got)
				}
				for _, secret := range []string{badToken, unknownID, "admin", "toolbox", requestID} {
					if strings.Contains(string(got), secret) {
						t.Errorf("%s %s: the 401 leaks %q: %s", r.Method, path, secret, got)
					}
				}
				bodies = append(bodies, string(got))
			}
		}
		if bodies[0] != bodies[2] || bodies[1] != bodies[3] {
			t.Errorf("%s: 401 bodies differ between an existing and an unknown resource: %q", r.Pattern(), bodies)
		}

		// A parameter the route does not take is a 400 naming it.
		sep := "?"
		if query != "" {
			sep = "&"
		}
		status, _, got := p.do(t, r.Method, real+query+sep+"colour=red", p.adminToken, body)
		if status != http.StatusBadRequest || !strings.Contains(string(got), "colour") {
			t.Errorf("%s with ?colour=red: %d %s, want 400 naming colour", r.Pattern(), status, got)
		}

		// An unknown id or name is a 404.
		if strings.Contains(r.Path, "{") {
			status, _, got := p.do(t, r.Method, unknown, p.adminToken, body)
			if status != http.StatusNotFound {
				t.Errorf("%s %s: %d %s, want 404", r.Method, unknown, status, got)
			}
		}

		// A body over the limit is a 413 saying the limit; a body that is
		// not the object expected is a 400 saying what is wrong.
		if r.Method == http.MethodPost {
			huge := []byte(`{"text": "` + strings.Repeat("a", 70<<10) + `"}`)
			status, _, got := p.do(t, r.Method, r.Path, p.adminToken, huge)
			if status != http.StatusRequestEntityTooLarge || !strings.Contains(string(got), "64 KiB") {
				t.Errorf("%s with a 70 KiB body: %d %s, want 413 naming 64 KiB", r.Pattern(), status, got)
			}
			bad := map[string]string{
				``:                              "empty",
				`[1]`:                           "not a JSON object",
				`{"txet": 1}`:                   "txet",
				validBody[r.Path] + ` {"x": 2}`: "more follows",
			}
			// A string field given a number is refused naming the field.
			if field := stringField[r.Path]; field != "" {
				bad[`{"`+field+`": 3}`] = field
			}
			for bad, says := range bad {
				status, _, got := p.do(t, r.Method, r.Path, p.adminToken, []byte(bad))
				if status != http.StatusBadRequest || !strings.Contains(string(got), says) {
					t.Errorf("%s with body %q: %d %s, want 400 saying %q", r.Pattern(), bad, status, got, says)
				}
			}
		}
	}

	// Malformed filters are a 400 naming the parameter.
	for path, param := range map[string]string{
		"/v1/history?status=sleeping":                                       "status",
		"/v1/history?since=yesterday":                                       "since",
		"/v1/history?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z": "until",
		"/v1/history?limit=0":                                               "limit",
		"/v1/runs?limit=201":                                                "limit",
		"/v1/runs?cursor=abc":                                               "cursor",
		"/v1/runs?command=toolbox:echo%20x":                                 "command",
		"/v1/runs?user=a&user=b":                                            "user",
		"/v1/runs/" + runs.Runs[0].RunID + "/transcript?format=pdf":         "format",
		"/v1/runs/" + runs.Runs[0].RunID + "/transcript?follow=maybe":       "follow",
		"/v1/access/who?command=toolbox:echo&args=%3E%20%23room":            "args",
	} {
		status, _, got := p.do(t, http.MethodGet, path, p.adminToken, nil)
		if status != http.StatusBadRequest || !strings.Contains(string(got), "parameter "+param) {
			t.Errorf("GET %s: %d %s, want 400 naming %s", path, status, got, param)
		}
	}
}

func TestEveryChangeIsRecordedWithTheTokensUserAsActor(t *testing.T) {
	t.Parallel()
	// Given bob, created by the admin through the API.
	p := newPlatform(t)
	bob := p.addUser(t, "bob")
	ctx := context.Background()

	// When the admin creates a group, and issues a request as bob.
	groupRequest, _ := p.say(t, p.adminToken, "group create ops")
	raw, _ := json.Marshal(map[string]string{"text": "echo for bob", "as": "bob"})
	status, _, out := p.do(t, http.MethodPost, "/v1/requests?wait=1", p.adminToken, raw)
	if status != http.StatusOK {
		t.Fatalf("POST as bob: %d %s", status, out)
	}
	var asBob struct {
		RequestID string `json:"request_id"`
	}
	_ = json.Unmarshal(out, &asBob)
	// And bob issues one himself.
	bobRequest, _ := p.say(t, bob, "echo mine")

	// Then each RequestReceived names the token's user as its actor (the
	// admin, also for the request made as bob), and the group's events
	// name the admin, whose request made them.
	for id, want := range map[string]string{groupRequest: "admin", asBob.RequestID: "admin", bobRequest: "bob"} {
		events, err := p.store.ReadStream(ctx, dispatch.Stream(id), 0, 1)
		if err != nil || len(events) != 1 || events[0].Type != "RequestReceived" {
			t.Fatalf("request %s: %v %v", id, events, err)
		}
		if got := actorOf(t, events[0]); got != want {
			t.Errorf("request %s was recorded with actor %q, want %q", id, got, want)
		}
	}
	events, err := p.store.ReadStream(ctx, access.GroupStream("ops"), 0, 10)
	if err != nil || len(events) == 0 {
		t.Fatalf("group ops has no events: %v", err)
	}
	for _, e := range events {
		if got := actorOf(t, e); got != "admin" {
			t.Errorf("%s in %s was recorded with actor %q, want admin", e.Type, e.Stream, got)
		}
	}
	// And a request as bob from bob's own token is refused: "as" needs
	// logbook:admin, and nothing is recorded.
	raw, _ = json.Marshal(map[string]string{"text": "echo sneaky", "as": "admin", "message_id": "sneaky"})
	if status, _, out := p.do(t, http.MethodPost, "/v1/requests", bob, raw); status != http.StatusForbidden {
		t.Fatalf("bob posting as admin: %d %s, want 403", status, out)
	}
	if events, _ := p.store.ReadStream(ctx, dispatch.Stream(dispatch.RequestID("api", "sneaky")), 0, 1); len(events) != 0 {
		t.Fatalf("a refused request was recorded: %v", events)
	}
}

func actorOf(t *testing.T, e domain.RecordedEvent) string {
	t.Helper()
	var md domain.Metadata
	if err := json.NewDecoder(bytes.NewReader(e.RawMetadata)).Decode(&md); err != nil {
		t.Fatalf("metadata of %s: %v", e.Type, err)
	}
	return md.Actor
}
