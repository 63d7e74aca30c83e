package webui_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/internal/testenv"
)

func TestAPlainUserReadsOnlyTheirOwnHistoryOnEveryPage(t *testing.T) {
	// Given the admin's request, bob's own, and a Slack request from a
	// handle no user is linked to.
	f := newFixture(t)
	admin := f.login(t, f.adminToken)
	adminRequest := admin.say("echo admin words")
	admin.follow(adminRequest)
	adminRun := adminRequest + "-s0-i0"
	bob := f.login(t, f.bobToken)
	bobRequest := bob.say("echo bob words")
	bob.follow(bobRequest)
	slack := dispatch.RequestReceived{Adapter: "slack", MessageID: "C1:1", Room: "C1", ChatUser: "U404SENDER", Text: "echo hi"}
	unknownRequest := dispatch.RequestID(slack.Adapter, slack.MessageID)
	f.append(t, dispatch.Stream(unknownRequest), slack)
	testenv.Eventually(t, "the admin to see the unknown sender's request", func() bool {
		resp, _ := admin.get("/requests/" + unknownRequest)
		return resp.StatusCode == http.StatusOK
	})
	secrets := []string{adminRequest, "admin words", unknownRequest, "U404SENDER"}

	// When bob asks for each of them on every page and stream, then each is
	// answered as a missing one, word for word, and shows nothing of theirs.
	missing := "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	for _, c := range []struct{ path, id string }{
		{"/requests/%s", adminRequest},
		{"/requests/%s", unknownRequest},
		{"/runs/%s", adminRun},
		{"/runs/%s/transcript", adminRun},
		{"/runs/%s/chunks", adminRun},
		{"/console/requests/%s/events", adminRequest},
		{"/console/requests/%s/events", unknownRequest},
	} {
		path := strings.Replace(c.path, "%s", c.id, 1)
		resp, body := bob.get(path)
		_, want := bob.get(strings.Replace(c.path, "%s", missing, 1))
		if resp.StatusCode != http.StatusNotFound || strings.ReplaceAll(body, c.id, missing) != want {
			t.Errorf("GET %s as bob answered %d:\n%s\nwant the 404 of a missing id:\n%s", path, resp.StatusCode, body, want)
		}
	}
	resp, body := bob.get("/history?user=admin")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "logbook:read_history") {
		t.Errorf("bob's /history?user=admin answered %d:\n%s", resp.StatusCode, body)
	}
	pages := map[string]string{"/history?user=admin": body}
	resp, body = bob.get("/history")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, bobRequest) || !strings.Contains(body, `id="own-only"`) {
		t.Errorf("bob's /history answered %d without his own request or the note that it is his own:\n%s", resp.StatusCode, body)
	}
	pages["/history"] = body
	for path, body := range pages {
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("GET %s as bob shows %q", path, s)
			}
		}
	}

	// And bob reads his own; the admin, who holds logbook:read_history,
	// reads bob's and everyone's.
	for _, path := range []string{"/requests/" + bobRequest, "/runs/" + bobRequest + "-s0-i0", "/runs/" + bobRequest + "-s0-i0/transcript",
		"/runs/" + bobRequest + "-s0-i0/chunks"} {
		if resp, body := bob.get(path); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s as bob answered %d:\n%s", path, resp.StatusCode, body)
		}
		if resp, body := admin.get(path); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s as the admin answered %d:\n%s", path, resp.StatusCode, body)
		}
	}
	if events := bob.follow(bobRequest); len(events) == 0 || events[len(events)-1].Event != "end" {
		t.Errorf("bob's own request streams %+v", events)
	}
	resp, body = admin.get("/history")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, bobRequest) || !strings.Contains(body, adminRequest) || strings.Contains(body, `id="own-only"`) {
		t.Errorf("the admin's /history answered %d without everyone's:\n%s", resp.StatusCode, body)
	}
}
