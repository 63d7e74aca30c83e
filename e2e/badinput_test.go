package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/internal/testenv"
)

// Bad input through `logbook say`: each gets a failed reply (exit 1) saying
// what was wrong and where, and each request is recorded, received to
// reply. A builtin's output is in its transcript.
func TestBadInputIsAnsweredClearlyAndRecorded(t *testing.T) {
	for name, storeEnv := range stores(t) {
		t.Run(name, func(t *testing.T) {
			env := storeEnv(t)
			s := startServer(t, append(env, "LOGBOOK_RUNTIME=process")...)
			s.waitReady(t)
			admin := s.token(t)
			say := func(token, text string) (string, string, int) {
				t.Helper()
				out, err := cli(t, s, token, env, "say", "--json", text)
				code := exitCode(err)
				var answer struct {
					RequestID string `json:"request_id"`
					Reply     struct {
						Text   string `json:"text"`
						Failed bool   `json:"failed"`
					} `json:"reply"`
				}
				if jerr := json.Unmarshal([]byte(out), &answer); jerr != nil || answer.RequestID == "" {
					t.Fatalf("say --json %q exited %d and printed %q (%v)", text, code, out, jerr)
				}
				if answer.Reply.Failed != (code == 1) {
					t.Fatalf("say %q exited %d for a reply failed=%v", text, code, answer.Reply.Failed)
				}
				return answer.RequestID, answer.Reply.Text, code
			}
			for _, args := range [][]string{{"user", "create", "bob"}, {"bundle", "disable", "toolbox"}} {
				if out := mustCLI(t, s, admin, env, args...); out == "" {
					t.Fatalf("logbook %s printed nothing", strings.Join(args, " "))
				}
			}
			bob := issuedToken.FindString(mustCLI(t, s, admin, env, "user", "token", "bob"))

			cases := []struct {
				name, token, text string
				mention           []string
				end               string
			}{
				{"an unknown command", admin, "ehco hi", []string{"column 1", "did you mean echo?"}, "PipelineRejected"},
				{"a pipeline that does not parse", admin, `echo "unterminated`, []string{"column 6"}, "PipelineRejected"},
				{"a disabled bundle", admin, "toolbox:echo hi", []string{"the bundle toolbox is disabled"}, "PipelineRejected"},
				{"a request over 16 KiB", admin, "echo " + strings.Repeat("x", 17<<10), []string{"the limit is 16384 bytes"}, "PipelineRejected"},
				{"a redirect to a room the bot cannot post in", admin, "echo hi > #ops", []string{"cannot post to #ops (column 11)"}, "RequestDenied"},
				{"a user without permission", bob, "user list", []string{"logbook:manage_users"}, "RequestDenied"},
			}
			ids := map[string]string{}
			for _, c := range cases {
				id, text, code := say(c.token, c.text)
				if code != 1 {
					t.Fatalf("%s: say exited %d, want 1: %s", c.name, code, text)
				}
				for _, m := range c.mention {
					if !strings.Contains(text, m) {
						t.Fatalf("%s: reply %q does not say %q", c.name, text, m)
					}
				}
				ids[c.name] = id
			}
			echoID, text, code := say(admin, "echo hello")
			if code != 0 || text != "hello" {
				t.Fatalf("echo hello: exit %d, reply %q", code, text)
			}

			events := storedEvents(t, env)
			for _, c := range cases {
				types := strings.Join(typesOf(events, "request-"+ids[c.name]), " ")
				if !strings.HasPrefix(types, "RequestReceived IdentityResolved") || !strings.HasSuffix(types, c.end+" ReplyPosted") {
					t.Fatalf("%s: request-%s = %s, want it received, ended by %s and replied", c.name, ids[c.name], types, c.end)
				}
			}
			runID := echoID + "-s0-i0"
			if types := strings.Join(typesOf(events, "run-"+runID), " "); types != "RunRequested OutputChunk RunSucceeded" {
				t.Fatalf("run-%s = %s", runID, types)
			}
			testenv.Eventually(t, "the builtin's transcript", func() bool {
				out, err := cli(t, s, admin, env, "transcript", runID)
				return err == nil && out == "hello\n"
			})
		})
	}
}
