package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/irc/ircdtest"
	"github.com/logbookhq/logbook/domain/trigger"
	"github.com/logbookhq/logbook/internal/testenv"
)

// TestAGitHubPushWebhookPostsToAnIRCRoom runs `logbook serve` connected to
// a real ngircd. A trigger created with the CLI (its HMAC secret from
// standard input) receives a signed GitHub push webhook over HTTP and
// posts what was pushed to #ops, where alice reads it; the history records
// the request with provider trigger and the trigger's name. A schedule
// added with the CLI then posts to #ops on its own clock.
func TestAGitHubPushWebhookPostsToAnIRCRoom(t *testing.T) {
	ircd := ircdtest.Start(t, ircdtest.Options{})
	env := []string{"LOGBOOK_DATA_DIR=" + filepath.Join(t.TempDir(), "data")}
	s := startServer(t, append(env,
		"LOGBOOK_RUNTIME=process",
		"LOGBOOK_IRC_SERVER="+ircd.Addr,
		"LOGBOOK_IRC_NICK=logbook",
		"LOGBOOK_IRC_CHANNELS=#ops",
		"LOGBOOK_IRC_TLS=0",
	)...)
	s.waitReady(t)
	admin := s.token(t)

	alice := ircdtest.Dial(t, ircd.Addr, "alice")
	alice.Join("#ops")
	alice.WaitFor("#ops", "logbook", 20*time.Second)

	const secret = "a-webhook-secret-from-github-settings"
	create := exec.Command(binary, "trigger", "create", "github",
		"--pipeline", "echo pushed $body.ref to $body.repository.full_name by $headers.x-github-event > #ops",
		"--provider", "irc", "--hmac-secret-from-stdin")
	create.Env = append(os.Environ(), append([]string{"LOGBOOK_URL=http://" + s.addr, "LOGBOOK_TOKEN=" + admin}, env...)...)
	create.Stdin = strings.NewReader(secret + "\n")
	if out, err := create.CombinedOutput(); err != nil || !strings.Contains(string(out), "HMAC secret set (version 1)") {
		t.Fatalf("trigger create: %v\n%s", err, out)
	}

	body := []byte(`{"ref": "refs/heads/main", "before": "0000000", "after": "1a2b3c4", "repository": {"full_name": "acme/app"}, "pusher": {"name": "octocat"}}`)
	post := func(signature, delivery string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, "http://"+s.addr+"/v1/triggers/github", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "GitHub-Hookshot/abc123")
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", delivery)
		req.Header.Set("X-Hub-Signature-256", signature)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	if status, out := post(trigger.Sign([]byte("wrong"), body), "72d3162e-cc78-11e3-81ab-4c9367dc0958"); status != http.StatusUnauthorized {
		t.Fatalf("a forged webhook: %d %s", status, out)
	}
	status, out := post(trigger.Sign([]byte(secret), body), "72d3162e-cc78-11e3-81ab-4c9367dc0958")
	if status != http.StatusOK {
		t.Fatalf("the webhook: %d %s", status, out)
	}
	got := alice.Privmsgs("logbook", 1, 20*time.Second)
	if len(got) != 1 || got[0].Params[0] != "#ops" || got[0].Params[1] != "pushed refs/heads/main to acme/app by push" {
		t.Fatalf("in #ops alice got %v", bodies(got))
	}
	if status, out := post(trigger.Sign([]byte(secret), body), "72d3162e-cc78-11e3-81ab-4c9367dc0958"); status != http.StatusConflict {
		t.Fatalf("the same delivery again: %d %s", status, out)
	}

	type historyRow struct {
		Adapter  string `json:"adapter"`
		Room     string `json:"room"`
		Username string `json:"username"`
		Status   string `json:"status"`
	}
	testenv.Eventually(t, "history shows the trigger's request", func() bool {
		var page struct {
			Requests []historyRow `json:"requests"`
		}
		if err := json.Unmarshal([]byte(mustCLI(t, s, admin, env, "history", "--provider", "trigger", "--json")), &page); err != nil {
			t.Fatal(err)
		}
		return slices.Contains(page.Requests, historyRow{Adapter: "trigger", Room: "github", Username: "admin", Status: "completed"})
	})
	var triggers struct {
		Triggers []struct {
			Name          string `json:"name"`
			SecretVersion int    `json:"secret_version"`
		} `json:"triggers"`
	}
	testenv.Eventually(t, "trigger list shows the secret's version", func() bool {
		if err := json.Unmarshal([]byte(mustCLI(t, s, admin, env, "trigger", "list", "--json")), &triggers); err != nil {
			t.Fatal(err)
		}
		return len(triggers.Triggers) == 1 && triggers.Triggers[0].Name == "github" && triggers.Triggers[0].SecretVersion == 1
	})
	if strings.Contains(s.logs.String(), secret) {
		t.Fatal("the secret is in the server's log")
	}
	if !strings.Contains(s.logs.String(), "trigger call refused") {
		t.Fatal("the forged webhook's refusal is not in the server's log")
	}

	// A schedule posts to #ops on its own clock, as its owner.
	mustCLI(t, s, admin, env, "schedule", "add", "every 5s", "echo tick", "--name", "ticker", "--provider", "irc", "--room", "ops")
	got = alice.Privmsgs("logbook", 1, 20*time.Second)
	if len(got) != 1 || got[0].Params[0] != "#ops" || got[0].Params[1] != "tick" {
		t.Fatalf("the schedule posted %v", bodies(got))
	}
	mustCLI(t, s, admin, env, "schedule", "pause", "ticker")
	if list := mustCLI(t, s, admin, env, "schedule", "list"); !strings.Contains(list, "ticker") {
		t.Fatalf("schedule list:\n%s", list)
	}
}
