package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/docker/dockertest"
	"github.com/logbookhq/logbook/internal/testenv"
)

// stores gives each test the environment of a fresh store of each kind.
func stores(t *testing.T) map[string]func(t *testing.T) []string {
	return map[string]func(t *testing.T) []string{
		"sqlite":   func(t *testing.T) []string { return []string{"LOGBOOK_DATA_DIR=" + filepath.Join(t.TempDir(), "data")} },
		"postgres": func(t *testing.T) []string { return []string{"LOGBOOK_DATABASE_URL=" + testenv.PostgresSchema(t)} },
	}
}

func requireDocker(t *testing.T) {
	t.Helper()
	cli, err := dockertest.Connect(context.Background())
	if err != nil {
		testenv.Missing(t, "Docker", err.Error())
	}
	cli.Close()
}

var tokenLine = regexp.MustCompile(`admin token: (lbk_[A-Za-z0-9_-]+)`)

func (s *server) token(t *testing.T) string {
	t.Helper()
	m := tokenLine.FindStringSubmatch(s.logs.String())
	if m == nil {
		t.Fatalf("the first start printed no admin token line:\n%s", s.logs)
	}
	return m[1]
}

// cli runs the logbook binary against the server and the store.
func cli(t *testing.T, s *server, token string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), append([]string{"LOGBOOK_URL=http://" + s.addr, "LOGBOOK_TOKEN=" + token}, env...)...)
	out, err := cmd.Output()
	return string(out), err
}

type envelope struct {
	Position int64           `json:"position"`
	Stream   string          `json:"stream"`
	Type     string          `json:"type"`
	Data     json.RawMessage `json:"data"`
}

// storedEvents reads the whole log through `logbook events tail`.
func storedEvents(t *testing.T, env []string) []envelope {
	t.Helper()
	cmd := exec.Command(binary, "events", "tail", "--from", "1", "--no-follow", "--json")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("events tail: %v", err)
	}
	var events []envelope
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var e envelope
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("events tail printed %q: %v", line, err)
		}
		events = append(events, e)
	}
	return events
}

func typesOf(events []envelope, stream string) []string {
	var types []string
	for _, e := range events {
		if e.Stream == stream {
			types = append(types, e.Type)
		}
	}
	return types
}

func TestARequestRunsInAContainerAndTheWholeChainIsRecorded(t *testing.T) {
	requireDocker(t)
	for name, storeEnv := range stores(t) {
		t.Run(name, func(t *testing.T) {
			env := storeEnv(t)
			s := startServer(t, append(env, "LOGBOOK_RUNTIME=docker")...)
			s.waitReady(t)
			token := s.token(t)

			if out, err := cli(t, s, token, env, "say", "echo hello"); err != nil || out != "hello\n" {
				t.Fatalf("say 'echo hello' = %q, %v", out, err)
			}
			out, err := cli(t, s, token, env, "say", "--json", "!toolbox:echo hello world | toolbox:wc")
			if err != nil {
				t.Fatalf("say: %v\n%s", err, out)
			}
			var answer struct {
				RequestID string `json:"request_id"`
				Reply     struct {
					Text   string `json:"text"`
					Failed bool   `json:"failed"`
				} `json:"reply"`
			}
			if err := json.Unmarshal([]byte(out), &answer); err != nil || answer.Reply.Failed || !strings.Contains(answer.Reply.Text, `"words": 2`) {
				t.Fatalf("the container pipeline replied %s (%v)", out, err)
			}

			// The store holds every step, request and runs.
			deadline := time.Now().Add(20 * time.Second)
			var events []envelope
			for {
				events = storedEvents(t, env)
				if slices.Contains(typesOf(events, "request-"+answer.RequestID), "ReplyPosted") &&
					slices.Contains(typesOf(events, "run-"+answer.RequestID+"-s1-i0"), "ContainerRemoved") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the chain of request %s did not complete", answer.RequestID)
				}
				time.Sleep(100 * time.Millisecond)
			}
			request := strings.Join(typesOf(events, "request-"+answer.RequestID), " ")
			if want := "RequestReceived IdentityResolved PipelineParsed PermissionChecked PermissionChecked StageStarted StageStarted RequestCompleted ReplyPosted"; request != want {
				t.Fatalf("request stream: %s\nwant:           %s", request, want)
			}
			for stage := range 2 {
				runStream := "run-" + answer.RequestID + "-s" + string(rune('0'+stage)) + "-i0"
				got := strings.Join(typesOf(events, runStream), " ")
				if want := "RunRequested ContainerCreated ContainerStarted OutputChunk ContainerStopped RunSucceeded ContainerRemoved"; got != want {
					t.Fatalf("%s: %s\nwant: %s", runStream, got, want)
				}
			}
			if out, err := cli(t, s, token, env, "audit", "verify"); err != nil || !strings.HasPrefix(out, "ok: ") {
				t.Fatalf("audit verify: %v\n%s", err, out)
			}
		})
	}
}

// kill -9 the server while a command runs in each mode; after a restart each run ends
// terminal (lost), the request fails with a reply, and the chain verifies.
func TestKillingTheServerMidRunLeavesNothingHanging(t *testing.T) {
	requireDocker(t)
	for name, storeEnv := range stores(t) {
		t.Run(name, func(t *testing.T) {
			env := storeEnv(t)
			s := startServer(t, append(env, "LOGBOOK_RUNTIME=docker")...)
			s.waitReady(t)
			token := s.token(t)
			installModes(t, s, token, env)
			// One run in each mode: a fresh container and a single-use one
			// are named after their run, a warm container is not.
			for _, bundle := range []string{"toolbox", "quick", "single"} {
				go cli(t, s, token, env, "say", bundle+":sleep 25") //nolint:errcheck // the server dies under it
			}

			deadline := time.Now().Add(30 * time.Second)
			var runStreams []string
			for len(runStreams) < 3 {
				runStreams = runStreams[:0]
				for _, e := range storedEvents(t, env) {
					if e.Type == "ContainerStarted" {
						runStreams = append(runStreams, e.Stream)
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("only %d of the three sleeps started", len(runStreams))
				}
				time.Sleep(100 * time.Millisecond)
			}
			_ = s.cmd.Process.Kill()
			<-s.exited

			restarted := startServer(t, append(env, "LOGBOOK_RUNTIME=docker")...)
			restarted.waitReady(t)
			for _, runStream := range runStreams {
				requestStream := "request-" + strings.TrimSuffix(strings.TrimPrefix(runStream, "run-"), "-s0-i0")
				deadline = time.Now().Add(30 * time.Second)
				for {
					events := storedEvents(t, env)
					run, request := typesOf(events, runStream), typesOf(events, requestStream)
					if slices.Contains(run, "RunLost") && slices.Contains(request, "RequestFailed") && slices.Contains(request, "ReplyPosted") {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("after the restart: run %v, request %v; want RunLost, RequestFailed and ReplyPosted", run, request)
					}
					time.Sleep(200 * time.Millisecond)
				}
			}
			if out, err := cli(t, restarted, token, env, "audit", "verify"); err != nil || !strings.HasPrefix(out, "ok: ") {
				t.Fatalf("audit verify after kill -9: %v\n%s", err, out)
			}
		})
	}
}

// `logbook bench load` starts its own server and reports each kind with
// the fields the benchmark notes read.
func TestBenchLoadReportsEachKind(t *testing.T) {
	requireDocker(t)
	out, err := exec.Command(binary, "bench", "load", "--n", "20", "--inflight", "4", "--kinds", "builtin,warm,single", "--json").Output()
	if err != nil {
		t.Fatalf("bench load: %v\n%s", err, out)
	}
	var results []struct {
		Kind     string   `json:"kind"`
		Inflight int      `json:"inflight"`
		PerS     float64  `json:"per_s"`
		P50Ms    float64  `json:"p50_ms"`
		P99Ms    float64  `json:"p99_ms"`
		Errors   *int     `json:"errors"`
		Wrong    int      `json:"wrong"`
		CPU      *float64 `json:"server_cpu_ms_per_req"`
		Requests int      `json:"requests"`
		Commits  float64  `json:"commits_per_req"`
		Appends  float64  `json:"appends_per_req"`
	}
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("bench load --json printed %s: %v", out, err)
	}
	if len(results) != 3 || results[0].Kind != "builtin" || results[1].Kind != "warm" || results[2].Kind != "single" {
		t.Fatalf("results = %+v, want builtin, warm, then single-use", results)
	}
	for _, r := range results {
		if r.Requests != 20 || r.Inflight != 4 || r.PerS <= 0 || r.P50Ms <= 0 || r.P99Ms < r.P50Ms || r.Errors == nil || *r.Errors != 0 || r.Wrong != 0 || r.CPU == nil || *r.CPU <= 0 {
			t.Errorf("%s: %+v", r.Kind, r)
		}
		// Every request appends and commits something.
		if r.Commits <= 0 || r.Appends <= 0 {
			t.Errorf("%s: %.2f commits and %.2f appends a request", r.Kind, r.Commits, r.Appends)
		}
	}
}
