package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/logbookhq/logbook/adapters/docker"
	"github.com/logbookhq/logbook/adapters/docker/dockertest"
	"github.com/logbookhq/logbook/adapters/natsbus"
	"github.com/logbookhq/logbook/adapters/natsbus/natstest"
	"github.com/logbookhq/logbook/internal/samplebundle"
	"github.com/logbookhq/logbook/internal/testenv"
)

// executorProc is a running `logbook executor`.
type executorProc struct {
	id     string
	cmd    *exec.Cmd
	logs   *syncBuffer
	exited chan error
	done   chan struct{} // closed once the process has exited
}

// natsEnv is what serve needs to use nats as its bus.
func natsEnv(nats *natstest.Server) []string {
	return []string{"LOGBOOK_BUS_URL=" + nats.URL, "LOGBOOK_BUS_USER=" + natstest.ServerUser, "LOGBOOK_BUS_PASSWORD=" + nats.PasswordOf(natstest.ServerUser)}
}

func startExecutor(t *testing.T, nats *natstest.Server, id string, groups []string, env ...string) *executorProc {
	t.Helper()
	e := &executorProc{id: id, logs: &syncBuffer{}, exited: make(chan error, 1), done: make(chan struct{})}
	e.cmd = exec.Command(binary, "executor")
	base := []string{"LOGBOOK_LOG_FORMAT=json", "LOGBOOK_BUS_URL=" + nats.URL, "LOGBOOK_BUS_USER=" + id, "LOGBOOK_BUS_PASSWORD=" + nats.PasswordOf(id),
		"LOGBOOK_EXECUTOR_ID=" + id, "LOGBOOK_EXECUTOR_GROUPS=" + strings.Join(groups, ","), "LOGBOOK_HEARTBEAT_INTERVAL=500ms",
		"LOGBOOK_DATA_DIR=" + filepath.Join(t.TempDir(), "no-data")}
	e.cmd.Env = append(os.Environ(), append(base, env...)...)
	e.cmd.Stdout, e.cmd.Stderr = e.logs, e.logs
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { e.exited <- e.cmd.Wait(); close(e.done) }()
	t.Cleanup(func() {
		stopAtCleanup(e.cmd, e.done)
		if t.Failed() {
			t.Logf("executor %s logs:\n%s", id, e.logs)
		}
	})
	return e
}

func (e *executorProc) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := e.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-e.exited:
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("executor %s did not stop within 60s of %v", e.id, sig)
		return nil
	}
}

func TestAnExecutorProcessRunsTheServersCommandsOverNATS(t *testing.T) {
	requireDocker(t)
	nats := natstest.Start(t, natstest.Executor{ID: "exec-a", Groups: []string{"default"}})
	env := []string{"LOGBOOK_DATA_DIR=" + filepath.Join(t.TempDir(), "data")}
	s := startServer(t, append(append(env, natsEnv(nats)...), "LOGBOOK_RUNTIME=docker", "LOGBOOK_QUEUE_TIMEOUT=2s")...)
	s.waitReady(t)
	token := s.token(t)
	startExecutor(t, nats, "exec-a", []string{"default"})

	if out, err := cli(t, s, token, env, "say", "toolbox:echo hello over nats"); err != nil || out != "hello over nats\n" {
		t.Fatalf("say = %q, %v\nserver:\n%s", out, err, s.logs)
	}
	events := storedEvents(t, env)
	var runStream string
	for _, e := range events {
		if e.Type == "RunClaimed" {
			runStream = e.Stream
			if !strings.Contains(string(e.Data), `"executor":"exec-a"`) {
				t.Fatalf("RunClaimed %s", e.Data)
			}
		}
	}
	if runStream == "" {
		t.Fatal("no run was claimed")
	}
	if got := strings.Join(typesOf(events, runStream), " "); !strings.HasPrefix(got, "RunRequested RunClaimed RunStarting ContainerCreated ContainerStarted OutputChunk ContainerStopped RunSucceeded") {
		t.Fatalf("%s: %s", runStream, got)
	}
	// The run's last events (its output, the container's stop, the
	// terminal event) left the executor in one message: the events stream
	// holds fewer messages than the executor recorded events, even if the
	// container's removal went out after the log was read.
	fromExecutor := len(typesOf(events, runStream)) - 3 // not RunRequested, RunClaimed, RunStarting
	if published := eventsPublished(t, nats); published >= uint64(fromExecutor) {
		t.Fatalf("the events stream holds %d messages for %d events of the executor: a run's last events did not go together", published, fromExecutor)
	}

	// A relay group nobody serves: the run fails after the queue timeout,
	// naming the group.
	if out, err := cli(t, s, token, env, "bundle", "assign", "toolbox", "nowhere"); err != nil || !strings.Contains(out, "relay group nowhere") {
		t.Fatalf("bundle assign: %v %s", err, out)
	}
	out, _ := cli(t, s, token, env, "say", "toolbox:echo hello")
	if !strings.Contains(out, `relay group "nowhere"`) || !strings.Contains(out, "LOGBOOK_QUEUE_TIMEOUT") {
		t.Fatalf("a run for a group nobody serves replied %q", out)
	}
	if out, err := cli(t, s, token, env, "bundle", "unassign", "toolbox"); err != nil || !strings.Contains(out, "left relay group nowhere") {
		t.Fatalf("bundle unassign: %v %s", err, out)
	}
	if out, err := cli(t, s, token, env, "say", "toolbox:echo back home"); err != nil || out != "back home\n" {
		t.Fatalf("say after unassign = %q, %v", out, err)
	}
	if out, err := cli(t, s, token, env, "audit", "verify"); err != nil || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
}

// eventsPublished is how many messages executors have published on the
// run events stream.
func eventsPublished(t *testing.T, srv *natstest.Server) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := natsgo.Connect(srv.URL, natsgo.UserInfo(natstest.ServerUser, srv.PasswordOf(natstest.ServerUser)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, natsbus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// sayAll sends each text as its own request, inflight at a time, through
// POST /v1/requests?wait=1, and returns each reply's text ("error: ..."
// when there was none).
func sayAll(t *testing.T, s *server, token string, texts []string, inflight int) []string {
	t.Helper()
	replies := make([]string, len(texts))
	client := &http.Client{Timeout: 3 * time.Minute}
	next := make(chan int)
	var wg sync.WaitGroup
	for range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				body, _ := json.Marshal(map[string]string{"text": texts[i]})
				req, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+"/v1/requests?wait=1", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					replies[i] = "error: " + err.Error()
					continue
				}
				var answer struct {
					Reply *struct {
						Text   string `json:"text"`
						Failed bool   `json:"failed"`
					} `json:"reply"`
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case json.Unmarshal(raw, &answer) != nil || answer.Reply == nil:
					replies[i] = fmt.Sprintf("error: %d %s", resp.StatusCode, raw)
				case answer.Reply.Failed:
					replies[i] = "failed: " + answer.Reply.Text
				default:
					replies[i] = answer.Reply.Text
				}
			}
		}()
	}
	for i := range texts {
		next <- i
	}
	close(next)
	wg.Wait()
	return replies
}

// installModes installs the sample bundle again as "quick" (warm) and
// "single" (single-use), beside toolbox (fresh).
func installModes(t *testing.T, s *server, token string, env []string) {
	t.Helper()
	for name, mode := range map[string]string{"quick": "warm", "single": "single-use"} {
		config := strings.Replace(string(samplebundle.Config), "name: toolbox", "name: "+name, 1)
		config = strings.Replace(config, "mode: fresh", "mode: "+mode, 1)
		config = strings.ReplaceAll(config, "toolbox:shout", name+":shout")
		out, err := cli(t, s, token, env, "say", "bundle install --base64="+base64.StdEncoding.EncodeToString([]byte(config)))
		if err != nil || !strings.Contains(out, "Installed") {
			t.Fatalf("install %s: %v\n%s", name, err, out)
		}
	}
}

// runsClaimedBy maps each run stream to the executor whose RunClaimed is
// its last, and counts the event ids (each must be stored once).
func runsClaimedBy(t *testing.T, events []envelope) map[string]string {
	t.Helper()
	claimed := map[string]string{}
	for _, e := range events {
		if e.Type != "RunClaimed" {
			continue
		}
		var c struct {
			Executor string `json:"executor"`
		}
		if err := json.Unmarshal(e.Data, &c); err != nil {
			t.Fatal(err)
		}
		claimed[e.Stream] = c.Executor
	}
	return claimed
}

// Three executors in two relay groups run every command of each mode
// through NATS, each run on an executor of its bundle's group, every reply
// right, and the log verifies.
func TestThreeExecutorsInTwoGroupsRunEveryModeOverNATS(t *testing.T) {
	requireDocker(t)
	// 200 of each mode, as the issue asks: about 80 s on the 2-core
	// machine when it is quiet (fresh and single-use runs go at about 5
	// a second); LOGBOOK_TEST_NATS_RUNS=N runs fewer while iterating.
	perMode := 200
	if v := os.Getenv("LOGBOOK_TEST_NATS_RUNS"); v != "" {
		perMode, _ = strconv.Atoi(v)
	}
	nats := natstest.Start(t,
		natstest.Executor{ID: "exec-a", Groups: []string{"default"}},
		natstest.Executor{ID: "exec-b", Groups: []string{"default", "prod"}},
		natstest.Executor{ID: "exec-c", Groups: []string{"prod"}})
	env := []string{"LOGBOOK_DATA_DIR=" + filepath.Join(t.TempDir(), "data")}
	s := startServer(t, append(append(env, natsEnv(nats)...), "LOGBOOK_RUNTIME=docker", "LOGBOOK_LOG_LEVEL=warn")...)
	s.waitReady(t)
	token := s.token(t)
	startExecutor(t, nats, "exec-a", []string{"default"}, "LOGBOOK_LOG_LEVEL=warn")
	startExecutor(t, nats, "exec-b", []string{"default", "prod"}, "LOGBOOK_LOG_LEVEL=warn")
	startExecutor(t, nats, "exec-c", []string{"prod"}, "LOGBOOK_LOG_LEVEL=warn")
	installModes(t, s, token, env)
	for _, name := range []string{"quick", "single"} {
		if out, err := cli(t, s, token, env, "bundle", "assign", name, "prod"); err != nil || !strings.Contains(out, "relay group prod") {
			t.Fatalf("bundle assign %s prod: %v %s", name, err, out)
		}
	}
	testenv.Eventually(t, "three live executors", func() bool {
		out, err := cli(t, s, token, env, "executors", "--json")
		return err == nil && strings.Count(out, `"host"`) == 3
	})

	var texts, want []string
	for _, bundle := range []string{"toolbox", "quick", "single"} {
		for i := range perMode {
			marker := fmt.Sprintf("%s-%d", bundle, i)
			texts = append(texts, bundle+":echo "+marker)
			want = append(want, marker)
		}
	}
	var replies []string
	for m := range 3 {
		start := time.Now()
		replies = append(replies, sayAll(t, s, token, texts[m*perMode:(m+1)*perMode], 12)...)
		t.Logf("%s: %d commands through NATS in %s", strings.Fields(texts[m*perMode])[0], perMode, time.Since(start))
	}
	for i, r := range replies {
		if strings.TrimSpace(r) != want[i] {
			t.Errorf("%q replied %q", texts[i], r)
		}
	}

	events := storedEvents(t, env)
	claimed := runsClaimedBy(t, events)
	groupOf := map[string][]string{"exec-a": {"default"}, "exec-b": {"default", "prod"}, "exec-c": {"prod"}}
	byExecutor := map[string]int{}
	runsOf := map[string]string{}
	for _, e := range events {
		if e.Type == "RunRequested" {
			var r struct {
				Mode  string `json:"mode"`
				Group string `json:"group"`
			}
			_ = json.Unmarshal(e.Data, &r)
			if r.Mode != "builtin" {
				runsOf[e.Stream] = cmp.Or(r.Group, "default")
			}
		}
	}
	for stream, group := range runsOf {
		ex := claimed[stream]
		if !slices.Contains(groupOf[ex], group) {
			t.Errorf("%s of group %s ran on %q", stream, group, ex)
		}
		byExecutor[ex]++
	}
	t.Logf("runs per executor: %v", byExecutor)
	if len(runsOf) < 3*perMode {
		t.Fatalf("%d container runs recorded, want %d", len(runsOf), 3*perMode)
	}
	if out, err := cli(t, s, token, env, "audit", "verify"); err != nil || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
}

// ownedContainers counts the containers whose owner label is owner.
func ownedContainers(t *testing.T, owner string) int {
	t.Helper()
	eng := dockertest.Engine(t)
	list, err := eng.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", docker.LabelOwner+"="+owner))})
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

// busFast are the settings that make loss quick to see in a test.
var busFast = []string{"LOGBOOK_EXECUTOR_LOST_AFTER=3s", "LOGBOOK_BUS_ACK_WAIT=3s", "LOGBOOK_HEARTBEAT_INTERVAL=500ms"}

// kill -9 of an executor mid-run: the runs it had started are RunLost and
// say so, the others complete on the other executor, nothing is recorded
// twice, the log verifies; started again, the executor removes its
// leftover containers.
func TestKillingAnExecutorMidRunLosesOnlyItsStartedRuns(t *testing.T) {
	requireDocker(t)
	nats := natstest.Start(t, natstest.Executor{ID: "exec-a", Groups: []string{"default"}}, natstest.Executor{ID: "exec-b", Groups: []string{"default"}})
	env := []string{"LOGBOOK_DATA_DIR=" + filepath.Join(t.TempDir(), "data")}
	s := startServer(t, append(append(append(env, natsEnv(nats)...), busFast...), "LOGBOOK_RUNTIME=docker", "LOGBOOK_LOG_LEVEL=warn")...)
	s.waitReady(t)
	token := s.token(t)
	execA := startExecutor(t, nats, "exec-a", []string{"default"}, append(busFast, "LOGBOOK_EXECUTOR_SLOTS=3")...)
	startExecutor(t, nats, "exec-b", []string{"default"}, append(busFast, "LOGBOOK_EXECUTOR_SLOTS=3")...)
	testenv.Eventually(t, "two live executors", func() bool {
		out, err := cli(t, s, token, env, "executors", "--json")
		return err == nil && strings.Count(out, `"host"`) == 2
	})

	// Twelve runs of 4s, six at once: each executor holds three.
	var texts []string
	for i := range 12 {
		texts = append(texts, fmt.Sprintf("toolbox:sleep 4 | toolbox:echo done-%d", i))
	}
	done := make(chan []string, 1)
	go func() { done <- sayAll(t, s, token, texts, 6) }()
	testenv.Eventually(t, "exec-a to have started runs", func() bool {
		for stream, ex := range runsClaimedBy(t, storedEvents(t, env)) {
			if ex == "exec-a" && slices.Contains(typesOf(storedEvents(t, env), stream), "ContainerStarted") {
				return true
			}
		}
		return false
	})
	if err := execA.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-execA.exited
	replies := <-done

	events := storedEvents(t, env)
	claimed := runsClaimedBy(t, events)
	lost, completed := 0, 0
	for stream, ex := range claimed {
		types := typesOf(events, stream)
		if n := countOf(types, "ContainerStarted"); n > 1 {
			t.Errorf("%s started %d times: %v", stream, n, types)
		}
		terminals := countOf(types, "RunSucceeded") + countOf(types, "RunFailed") + countOf(types, "RunLost") + countOf(types, "RunCancelled") + countOf(types, "RunTimedOut")
		if terminals != 1 {
			t.Errorf("%s has %d terminal events: %v", stream, terminals, types)
		}
		switch {
		case slices.Contains(types, "RunLost"):
			lost++
			if ex != "exec-a" {
				t.Errorf("%s, run by %s, was lost", stream, ex)
			}
		case slices.Contains(types, "RunSucceeded"):
			completed++
		}
	}
	if lost == 0 {
		t.Fatalf("no run was recorded lost; claims: %v", claimed)
	}
	lostReplies := 0
	for i, r := range replies {
		switch {
		case strings.TrimSpace(r) == fmt.Sprintf("done-%d", i):
		case strings.Contains(r, "lost"):
			lostReplies++
		default:
			t.Errorf("%q replied %q", texts[i], r)
		}
	}
	if lostReplies != lost {
		t.Errorf("%d replies say lost, %d runs were lost", lostReplies, lost)
	}
	t.Logf("%d runs lost with exec-a, %d completed", lost, completed)
	replyPosted := map[string]int{}
	for _, e := range events {
		if strings.HasPrefix(e.Stream, "request-") && e.Type == "ReplyPosted" {
			replyPosted[e.Stream]++
		}
	}
	for stream, n := range replyPosted {
		if n != 1 {
			t.Errorf("%s has %d replies", stream, n)
		}
	}
	if out, err := cli(t, s, token, env, "audit", "verify"); err != nil || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}

	// exec-a's containers outlived it; started again, it removes them.
	if n := ownedContainers(t, "logbook-executor-exec-a"); n == 0 {
		t.Log("exec-a's containers had ended and been removed already")
	}
	startExecutor(t, nats, "exec-a", []string{"default"}, busFast...)
	testenv.Eventually(t, "exec-a's leftover containers to be removed", func() bool { return ownedContainers(t, "logbook-executor-exec-a") == 0 })
}

func countOf(list []string, v string) int {
	n := 0
	for _, x := range list {
		if x == v {
			n++
		}
	}
	return n
}

// A restart of nats-server mid-load: every command still gets its right
// reply, no run starts twice or ends twice, no request gets two replies,
// and the log verifies.
func TestARestartOfNATSMidLoadLosesAndDuplicatesNothing(t *testing.T) {
	requireDocker(t)
	nats := natstest.Start(t, natstest.Executor{ID: "exec-a", Groups: []string{"default"}}, natstest.Executor{ID: "exec-b", Groups: []string{"default"}})
	env := []string{"LOGBOOK_DATA_DIR=" + filepath.Join(t.TempDir(), "data")}
	s := startServer(t, append(append(env, natsEnv(nats)...), "LOGBOOK_RUNTIME=docker", "LOGBOOK_LOG_LEVEL=warn", "LOGBOOK_BUS_ACK_WAIT=5s")...)
	s.waitReady(t)
	token := s.token(t)
	for _, id := range []string{"exec-a", "exec-b"} {
		startExecutor(t, nats, id, []string{"default"}, "LOGBOOK_BUS_ACK_WAIT=5s", "LOGBOOK_LOG_LEVEL=warn")
	}
	installModes(t, s, token, env)
	testenv.Eventually(t, "two live executors", func() bool {
		out, err := cli(t, s, token, env, "executors", "--json")
		return err == nil && strings.Count(out, `"host"`) == 2
	})

	var texts []string
	for i := range 80 {
		texts = append(texts, fmt.Sprintf("quick:sleep 0.2 | quick:echo warm-%d", i))
	}
	done := make(chan []string, 1)
	go func() { done <- sayAll(t, s, token, texts, 6) }()
	testenv.Eventually(t, "some runs to end", func() bool {
		return strings.Count(strings.Join(typesOfAll(storedEvents(t, env)), " "), "RunSucceeded") >= 20
	})
	select {
	case <-done:
		t.Fatal("the load ended before nats-server restarted")
	default:
	}
	nats.Restart()
	replies := <-done
	for i, r := range replies {
		if strings.TrimSpace(r) != fmt.Sprintf("warm-%d", i) {
			t.Errorf("%q replied %q", texts[i], r)
		}
	}
	events := storedEvents(t, env)
	perStream := map[string][]string{}
	for _, e := range events {
		perStream[e.Stream] = append(perStream[e.Stream], e.Type)
	}
	for stream, types := range perStream {
		if strings.HasPrefix(stream, "run-") {
			terminals := countOf(types, "RunSucceeded") + countOf(types, "RunFailed") + countOf(types, "RunLost") + countOf(types, "RunCancelled") + countOf(types, "RunTimedOut")
			if countOf(types, "ContainerStarted") > 1 || terminals != 1 {
				t.Errorf("%s: %v", stream, types)
			}
		}
		if strings.HasPrefix(stream, "request-") && countOf(types, "ReplyPosted") != 1 {
			t.Errorf("%s: %v", stream, types)
		}
	}
	if out, err := cli(t, s, token, env, "audit", "verify"); err != nil || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
}

func typesOfAll(events []envelope) []string {
	types := make([]string, len(events))
	for i, e := range events {
		types[i] = e.Type
	}
	return types
}

// An executor with wrong credentials is refused and says so; one whose
// user may not take a group's runs never gets them.
func TestAnExecutorWithWrongCredentialsIsRefused(t *testing.T) {
	nats := natstest.Start(t, natstest.Executor{ID: "exec-a", Groups: []string{"default"}})
	e := startExecutor(t, nats, "exec-a", []string{"default"}, "LOGBOOK_BUS_PASSWORD=wrong", "LOGBOOK_RUNTIME=process")
	select {
	case err := <-e.exited:
		if code := exitCode(err); code != 3 || !strings.Contains(e.logs.String(), "NATS refused the connection") {
			t.Fatalf("exit %d (%v); logs:\n%s", code, err, e.logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("an executor with a wrong password still runs:\n%s", e.logs)
	}
}

// An executor cut off from NATS (its connection through a proxy that is
// cut, the process alive): the runs it had begun are RunLost once its
// heartbeats stop, the others run on the other executor; when the link
// comes back, what it publishes late about those runs is refused, nothing
// is recorded twice, and it rejoins. (The same with executors in
// containers and `docker network disconnect`: nats_network_test.go.)
func TestAnExecutorCutOffFromNATSLosesOnlyWhatItBegan(t *testing.T) {
	requireDocker(t)
	nats := natstest.Start(t, natstest.Executor{ID: "exec-a", Groups: []string{"default"}}, natstest.Executor{ID: "exec-b", Groups: []string{"default"}})
	link := testenv.NewProxy(t, strings.TrimPrefix(nats.URL, "nats://"), true)
	env := []string{"LOGBOOK_DATA_DIR=" + filepath.Join(t.TempDir(), "data")}
	s := startServer(t, append(append(append(env, natsEnv(nats)...), busFast...), "LOGBOOK_RUNTIME=docker", "LOGBOOK_LOG_LEVEL=warn")...)
	s.waitReady(t)
	token := s.token(t)
	startExecutor(t, nats, "exec-a", []string{"default"}, append(busFast, "LOGBOOK_EXECUTOR_SLOTS=3", "LOGBOOK_BUS_URL=nats://"+link.Addr())...)
	startExecutor(t, nats, "exec-b", []string{"default"}, append(busFast, "LOGBOOK_EXECUTOR_SLOTS=3")...)
	testenv.Eventually(t, "two live executors", func() bool {
		out, err := cli(t, s, token, env, "executors", "--json")
		return err == nil && strings.Count(out, `"host"`) == 2
	})

	var texts []string
	for i := range 12 {
		texts = append(texts, fmt.Sprintf("toolbox:sleep 3 | toolbox:echo cut-%d", i))
	}
	done := make(chan []string, 1)
	go func() { done <- sayAll(t, s, token, texts, 6) }()
	testenv.Eventually(t, "exec-a to have begun runs", func() bool {
		events := storedEvents(t, env)
		for stream, ex := range runsClaimedBy(t, events) {
			if ex == "exec-a" && slices.Contains(typesOf(events, stream), "ContainerStarted") {
				return true
			}
		}
		return false
	})
	link.Cut()
	testenv.Eventually(t, "exec-a's begun runs to be lost", func() bool {
		return strings.Contains(strings.Join(typesOfAll(storedEvents(t, env)), " "), "RunLost")
	})
	link.Restore()
	replies := <-done
	testenv.Eventually(t, "exec-a to rejoin", func() bool {
		out, err := cli(t, s, token, env, "executors", "--json")
		return err == nil && strings.Contains(out, `"id": "exec-a"`)
	})

	events := storedEvents(t, env)
	claimed := runsClaimedBy(t, events)
	lost := 0
	for stream, ex := range claimed {
		types := typesOf(events, stream)
		terminals := countOf(types, "RunSucceeded") + countOf(types, "RunFailed") + countOf(types, "RunLost") + countOf(types, "RunCancelled") + countOf(types, "RunTimedOut")
		if countOf(types, "RunStarting") > 1 || countOf(types, "ContainerStarted") > 1 || terminals != 1 {
			t.Errorf("%s: %v", stream, types)
		}
		if slices.Contains(types, "RunLost") {
			lost++
			if ex != "exec-a" {
				t.Errorf("%s, run by %s, was lost", stream, ex)
			}
		}
	}
	for i, r := range replies {
		if strings.TrimSpace(r) != fmt.Sprintf("cut-%d", i) && !strings.Contains(r, "lost") {
			t.Errorf("%q replied %q", texts[i], r)
		}
	}
	t.Logf("%d runs lost with exec-a cut off", lost)
	if out, err := cli(t, s, token, env, "audit", "verify"); err != nil || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
}
