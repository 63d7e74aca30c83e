package e2e

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/internal/testenv"
)

// A request issued with `logbook say` shows up in `logbook history`, its
// run in `logbook runs`, and the run's output in `logbook transcript`.
func TestARequestCanBeFoundInHistoryRunsAndItsTranscript(t *testing.T) {
	requireDocker(t)
	for name, storeEnv := range stores(t) {
		t.Run(name, func(t *testing.T) {
			env := storeEnv(t)
			s := startServer(t, append(env, "LOGBOOK_RUNTIME=docker")...)
			s.waitReady(t)
			token := s.token(t)

			out, err := cli(t, s, token, env, "say", "--json", "!toolbox:echo hello")
			if err != nil {
				t.Fatalf("say: %v\n%s", err, out)
			}
			var said struct {
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal([]byte(out), &said); err != nil || said.RequestID == "" {
				t.Fatalf("say --json printed %s (%v)", out, err)
			}

			// The views are asynchronous: poll briefly for the finished row.
			var request struct {
				RequestID string `json:"request_id"`
				Username  string `json:"username"`
				Adapter   string `json:"adapter"`
				Commands  string `json:"commands"`
				Status    string `json:"status"`
				Runs      int    `json:"runs"`
			}
			testenv.Eventually(t, "the request in history as completed", func() bool {
				out := mustCLI(t, s, token, env, "history", "--json", "--user", "admin", "--since", "10m")
				var page struct {
					Requests []json.RawMessage `json:"requests"`
				}
				if err := json.Unmarshal([]byte(out), &page); err != nil {
					t.Fatalf("history --json printed %s: %v", out, err)
				}
				for _, raw := range page.Requests {
					_ = json.Unmarshal(raw, &request)
					if request.RequestID == said.RequestID {
						return request.Status == "completed"
					}
				}
				return false
			})
			if request.Username != "admin" || request.Adapter != "api" || request.Commands != "toolbox:echo" || request.Runs != 1 {
				t.Fatalf("history has the request as %+v", request)
			}

			var runs struct {
				Runs []struct {
					RunID     string `json:"run_id"`
					RequestID string `json:"request_id"`
					Command   string `json:"command"`
					Status    string `json:"status"`
					ExitCode  *int   `json:"exit_code"`
				} `json:"runs"`
			}
			out = mustCLI(t, s, token, env, "runs", "--json", "--command", "toolbox:echo", "--status", "succeeded")
			if err := json.Unmarshal([]byte(out), &runs); err != nil {
				t.Fatalf("runs --json printed %s: %v", out, err)
			}
			runID := ""
			for _, r := range runs.Runs {
				if r.RequestID == said.RequestID {
					runID = r.RunID
					if r.ExitCode == nil || *r.ExitCode != 0 {
						t.Fatalf("the run reads %+v; want exit code 0", r)
					}
				}
			}
			if runID == "" {
				t.Fatalf("runs --json has no run of request %s:\n%s", said.RequestID, out)
			}

			if out := mustCLI(t, s, token, env, "transcript", runID); out != "hello\n" {
				t.Fatalf("transcript %s = %q; want %q", runID, out, "hello\n")
			}
			if out := mustCLI(t, s, token, env, "transcript", "--follow", runID); out != "hello\n" {
				t.Fatalf("transcript --follow of a finished run = %q; want %q", out, "hello\n")
			}
			_, err = cli(t, s, token, env, "transcript", "no-such-run")
			if exit := (*exec.ExitError)(nil); !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("transcript of an unknown run: %v; want exit 1", err)
			}
			_, err = cli(t, s, "lbk_not_a_token", env, "history")
			if exit := (*exec.ExitError)(nil); !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("history with a bad token: %v; want exit 2", err)
			}
		})
	}
}

func mustCLI(t *testing.T, s *server, token string, env []string, args ...string) string {
	t.Helper()
	out, err := cli(t, s, token, env, args...)
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("logbook %s: %v\n%s", strings.Join(args, " "), err, exit.Stderr)
		}
		t.Fatalf("logbook %s: %v", strings.Join(args, " "), err)
	}
	return out
}
