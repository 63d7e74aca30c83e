package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/projections"
)

// sourcesServer plays the API for the trigger and schedule commands: the
// texts sent, the secrets set, and canned lists.
type sourcesServer struct {
	texts   []string
	secrets map[string]string
}

func newSourcesServer(t *testing.T) *sourcesServer {
	t.Helper()
	s := &sourcesServer{secrets: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, `{"error":"token"}`, http.StatusUnauthorized)
			return
		}
		switch {
		case r.URL.Path == "/v1/requests":
			var body struct{ Text string }
			_ = json.NewDecoder(r.Body).Decode(&body)
			s.texts = append(s.texts, body.Text)
			_ = json.NewEncoder(w).Encode(map[string]any{"request_id": "r1", "reply": dispatch.Reply{Text: "Done."}})
		case strings.HasSuffix(r.URL.Path, "/secret"):
			var body httpapi.SecretBody
			_ = json.NewDecoder(r.Body).Decode(&body)
			name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/triggers/"), "/secret")
			s.secrets[name] = body.Value
			_ = json.NewEncoder(w).Encode(httpapi.SecretAnswer{Trigger: name, Version: 1})
		case r.URL.Path == "/v1/triggers":
			_ = json.NewEncoder(w).Encode(httpapi.TriggerList{Triggers: []projections.TriggerRow{
				{Name: "github", Pipeline: "echo $body.ref > #ops", RunAs: "admin", Provider: "irc", TimeoutMS: 30000, RequireHMAC: true, SignatureHeader: "X-Hub-Signature-256", SecretVersion: 2, Enabled: true}}})
		case r.URL.Path == "/v1/schedules":
			_ = json.NewEncoder(w).Encode(httpapi.ScheduleList{Schedules: []projections.ScheduleRow{
				{Name: "standup", Spec: "0 9 * * 1-5", TZ: "Europe/Berlin", Pipeline: "echo standup", Owner: "admin", Provider: "irc", Room: "ops", Missed: "skip", LastOutcome: "decided"}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	t.Setenv("LOGBOOK_URL", srv.URL)
	t.Setenv("LOGBOOK_TOKEN", "tok")
	return s
}

func TestTriggerCreateSendsTheSecretFromStandardInputApart(t *testing.T) {
	s := newSourcesServer(t)
	const secret = "a-webhook-secret-of-some-length"
	var out bytes.Buffer
	root := newRootCmd()
	root.SetArgs([]string{"trigger", "create", "github", "--pipeline", "echo $body.ref > #ops", "--provider", "irc", "--hmac-secret-from-stdin"})
	root.SetIn(strings.NewReader(secret + "\n"))
	root.SetOut(&out)
	root.SetErr(&out)
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	want := `trigger create github --pipeline="echo \$body.ref > #ops" --provider=irc --require-hmac`
	if len(s.texts) != 1 || s.texts[0] != want {
		t.Fatalf("sent %q, want %q", s.texts, want)
	}
	if s.secrets["github"] != secret || strings.Contains(s.texts[0], secret) || strings.Contains(out.String(), secret) {
		t.Fatalf("the secret: %q set, texts %q, output %q", s.secrets, s.texts, out.String())
	}
}

func TestTriggerAndScheduleListsAreTablesOrJSON(t *testing.T) {
	newSourcesServer(t)
	out, _, err := runCLIOutput(t, "trigger", "list")
	if err != nil || !strings.Contains(out, "NAME") || !strings.Contains(out, "github") || !strings.Contains(out, "X-Hub-Signature-256") || !strings.Contains(out, "v2") {
		t.Fatalf("trigger list: %q, %v", out, err)
	}
	out, _, err = runCLIOutput(t, "schedule", "list", "--json")
	var list httpapi.ScheduleList
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Schedules) != 1 || list.Schedules[0].TZ != "Europe/Berlin" {
		t.Fatalf("schedule list --json: %q, %v", out, err)
	}
	out, _, err = runCLIOutput(t, "schedule", "list")
	if err != nil || !strings.Contains(out, "irc ops") || !strings.Contains(out, "0 9 * * 1-5") {
		t.Fatalf("schedule list: %q, %v", out, err)
	}
}

func TestScheduleAddSendsWhatChatWouldSay(t *testing.T) {
	s := newSourcesServer(t)
	if _, _, err := runCLIOutput(t, "schedule", "add", "*/5 * * * *", "ops:status --env prod", "--tz", "Europe/Berlin", "--provider", "irc", "--room", "ops"); err != nil {
		t.Fatal(err)
	}
	want := `schedule add "*/5 * * * *" "ops:status --env prod" --tz=Europe/Berlin --provider=irc --room=ops`
	if len(s.texts) != 1 || s.texts[0] != want {
		t.Fatalf("sent %q, want %q", s.texts, want)
	}
}
