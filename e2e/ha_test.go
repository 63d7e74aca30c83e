package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/logbookhq/logbook/adapters/docker/dockertest"
	"github.com/logbookhq/logbook/adapters/slack"
	"github.com/logbookhq/logbook/adapters/slack/slacktest"
	"github.com/logbookhq/logbook/internal/testenv"
)

// Several servers on one PostgreSQL, as deploy/compose.yaml runs them: the
// servers are containers from Logbook's own image on a Docker network of
// the test's, and PostgreSQL is the host's, reached through a forwarder on
// the network's gateway (the test's own network is the only target besides
// loopback). Requests come over the API and Slack's Events API to both
// servers; a client whose server goes away asks the other with the same
// message id, as Slack retries a delivery.
//
// First the leader is killed (docker kill) mid-load, then every server is
// restarted in turn (docker restart: SIGTERM). After each: every request
// is answered once with its own reply, each recorded once, each Slack reply
// posted once, `audit verify` passes; at the end the views equal their
// rebuild.
func TestServersOnOnePostgresFailOverAndRestartInTurnUnderLoad(t *testing.T) {
	requireDocker(t)
	c := startCluster(t, 2)

	t.Run("the leader killed", func(t *testing.T) {
		l := c.load(t, 4)
		l.waitAnswered(t, 30, "requests answered before the kill")
		leader := c.leader(t)
		killed := time.Now()
		if err := c.eng.ContainerKill(context.Background(), leader.id, "KILL"); err != nil {
			t.Fatal(err)
		}
		testenv.EventuallyWithin(t, 60*time.Second, "another server to lead", func() bool {
			for _, r := range c.replicas {
				if r != leader && c.ready(r).Leader {
					return true
				}
			}
			return false
		})
		t.Logf("another server said it led %v after the leader was killed", time.Since(killed).Round(10*time.Millisecond))
		for _, r := range c.replicas {
			if at, ok := electedAfter(c.logs(r), killed); ok {
				t.Logf("%s was elected %v after the kill (its log)", r.name, at.Round(time.Millisecond))
			}
		}
		l.waitAnswered(t, 30, "requests answered after the takeover")
		c.start(t, leader) // it comes back as a follower
		l.waitAnswered(t, 20, "requests answered with the killed server back")
		l.finish()
		c.check(t, l)
	})

	t.Run("every server restarted in turn", func(t *testing.T) {
		l := c.load(t, 4)
		l.waitAnswered(t, 20, "requests answered before the restarts")
		for _, r := range c.replicas {
			timeout := 30
			if err := c.eng.ContainerRestart(context.Background(), r.id, container.StopOptions{Timeout: &timeout}); err != nil {
				t.Fatal(err)
			}
			c.waitReady(t, r)
			l.waitAnswered(t, 20, "requests answered after restarting "+r.name)
		}
		l.finish()
		c.check(t, l)
	})

	// The views the leaders kept equal their rebuild from the log.
	waitViewsAtHead(t, c.hostEnv)
	for _, r := range c.replicas {
		timeout := 30
		if err := c.eng.ContainerStop(context.Background(), r.id, container.StopOptions{Timeout: &timeout}); err != nil {
			t.Fatal(err)
		}
	}
	rebuild := exec.Command(binary, "projections", "rebuild", "--compare")
	rebuild.Env = append(os.Environ(), c.hostEnv...)
	if out, err := rebuild.CombinedOutput(); err != nil {
		t.Fatalf("the views differ from their rebuild: %v\n%s", err, out)
	}
}

// cluster is the servers, their network and what they share.
type cluster struct {
	eng      *client.Client
	network  string
	image    string
	env      []string // the containers'
	hostEnv  []string // the CLI's on the host: the same database on loopback
	replicas []*replica
	slack    *slacktest.Server
	token    string
}

type replica struct {
	name string
	id   string
	addr atomic.Value // string: host:port on the network (a restart may change it)
}

const haSigningSecret = "ha-signing-secret"

func startCluster(t *testing.T, servers int) *cluster {
	t.Helper()
	ctx := context.Background()
	c := &cluster{eng: dockertest.Engine(t), image: logbookImage(t)}
	name := fmt.Sprintf("logbook-ha-%d", os.Getpid())
	created, err := c.eng.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Internal: true})
	if err != nil {
		t.Fatal(err)
	}
	c.network = name
	t.Cleanup(func() { c.eng.NetworkRemove(context.Background(), created.ID) })
	inspect, err := c.eng.NetworkInspect(ctx, created.ID, network.InspectOptions{})
	if err != nil || len(inspect.IPAM.Config) == 0 || inspect.IPAM.Config[0].Gateway == "" {
		t.Fatalf("the network's gateway: %+v, %v", inspect.IPAM, err)
	}
	gateway := inspect.IPAM.Config[0].Gateway

	dbURL := testenv.PostgresSchema(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	pgOnNetwork := forward(t, gateway, u.Host)
	u.Host = pgOnNetwork
	c.hostEnv = []string{"LOGBOOK_DATABASE_URL=" + dbURL}

	c.slack = slacktest.New([]slacktest.Channel{{ID: "C0OPS", Name: "ops", Member: true}}, []slacktest.User{{ID: "U0ALICE", Name: "alice"}})
	t.Cleanup(c.slack.Close)
	slackOnNetwork := forward(t, gateway, strings.TrimPrefix(c.slack.URL, "http://"))

	c.env = []string{
		"LOGBOOK_DATABASE_URL=" + u.String(),
		"LOGBOOK_HTTP_ADDR=0.0.0.0:8080",
		"LOGBOOK_RUNTIME=process",
		"LOGBOOK_LOG_FORMAT=json",
		"LOGBOOK_SLACK_BOT_TOKEN=xoxb-ha",
		"LOGBOOK_SLACK_SIGNING_SECRET=" + haSigningSecret,
		"LOGBOOK_SLACK_API_URL=http://" + slackOnNetwork + "/api/",
	}
	for i := range servers {
		r := &replica{name: fmt.Sprintf("%s-%c", name, 'a'+i)}
		made, err := c.eng.ContainerCreate(ctx, &container.Config{Image: c.image, Env: c.env},
			&container.HostConfig{NetworkMode: container.NetworkMode(name)}, nil, nil, r.name)
		if err != nil {
			t.Fatal(err)
		}
		r.id = made.ID
		c.replicas = append(c.replicas, r)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("logs of %s:\n%s", r.name, c.logs(r))
			}
			c.eng.ContainerRemove(context.Background(), r.id, container.RemoveOptions{Force: true})
		})
		c.start(t, r)
	}
	testenv.EventuallyWithin(t, 60*time.Second, "the admin token in a server's log", func() bool {
		for _, r := range c.replicas {
			if m := tokenLine.FindStringSubmatch(c.logs(r)); m != nil {
				c.token = m[1]
				return true
			}
		}
		return false
	})
	c.cli(t, "user", "create", "alice", "--email", "alice@example.com")
	c.cli(t, "user", "link", "alice", "slack", "U0ALICE")
	return c
}

// builtImage is the tag of the image logbookImage built ("" before);
// TestMain removes it when the tests end.
var builtImage struct {
	once sync.Once
	tag  string
	err  error
}

// logbookImage builds Logbook's image (scripts/image.sh) from the binaries
// under test, once per test binary.
func logbookImage(t *testing.T) string {
	t.Helper()
	builtImage.once.Do(func() {
		tag := fmt.Sprintf("logbook-e2e:%d", os.Getpid())
		build := exec.Command("bash", "../scripts/image.sh", tag)
		build.Env = append(os.Environ(), "BIN="+filepath.Dir(binary))
		if out, err := build.CombinedOutput(); err != nil {
			builtImage.err = fmt.Errorf("scripts/image.sh: %v\n%s", err, out)
			return
		}
		builtImage.tag = tag
	})
	if builtImage.err != nil {
		t.Fatal(builtImage.err)
	}
	return builtImage.tag
}

// removeBuiltImage removes the image logbookImage built, if any.
func removeBuiltImage() {
	if builtImage.tag == "" {
		return
	}
	cli, err := dockertest.Connect(context.Background())
	if err != nil {
		return
	}
	defer cli.Close()
	cli.ImageRemove(context.Background(), builtImage.tag, image.RemoveOptions{Force: true, PruneChildren: true})
}

// forward listens on the network's gateway and forwards each connection
// to target on loopback, until the test ends; it returns its address.
func forward(t *testing.T, gateway, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(gateway, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer out.Close()
				go func() { io.Copy(out, in); out.(*net.TCPConn).CloseWrite() }()
				io.Copy(in, out)
			}()
		}
	}()
	return ln.Addr().String()
}

// start starts r's container and waits until it is ready.
func (c *cluster) start(t *testing.T, r *replica) {
	t.Helper()
	if err := c.eng.ContainerStart(context.Background(), r.id, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	c.waitReady(t, r)
}

// waitReady waits until r's /readyz answers 200, learning its address.
func (c *cluster) waitReady(t *testing.T, r *replica) {
	t.Helper()
	testenv.EventuallyWithin(t, 90*time.Second, r.name+" ready", func() bool {
		inspect, err := c.eng.ContainerInspect(context.Background(), r.id)
		if err != nil || inspect.NetworkSettings == nil || inspect.NetworkSettings.Networks[c.network] == nil {
			return false
		}
		ip := inspect.NetworkSettings.Networks[c.network].IPAddress
		if ip == "" {
			return false
		}
		r.addr.Store(net.JoinHostPort(ip, "8080"))
		return c.ready(r).Ready
	})
}

type readiness struct {
	Ready  bool `json:"ready"`
	Leader bool `json:"leader"`
}

// ready asks r's /readyz; a server that does not answer is not ready.
func (c *cluster) ready(r *replica) readiness {
	var answer readiness
	addr, _ := r.addr.Load().(string)
	if addr == "" {
		return answer
	}
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://" + addr + "/readyz")
	if err != nil {
		return answer
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&answer)
	return answer
}

// leader is the server that says it leads.
func (c *cluster) leader(t *testing.T) *replica {
	t.Helper()
	var found *replica
	testenv.EventuallyWithin(t, 30*time.Second, "a server leading", func() bool {
		for _, r := range c.replicas {
			if c.ready(r).Leader {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

func (c *cluster) logs(r *replica) string {
	rc, err := c.eng.ContainerLogs(context.Background(), r.id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return err.Error()
	}
	defer rc.Close()
	var buf bytes.Buffer
	io.Copy(&buf, rc)
	return buf.String()
}

// cli runs the CLI on the host against a ready server and the database.
func (c *cluster) cli(t *testing.T, args ...string) string {
	t.Helper()
	for _, r := range c.replicas {
		if !c.ready(r).Ready {
			continue
		}
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), append([]string{"LOGBOOK_URL=http://" + r.addr.Load().(string), "LOGBOOK_TOKEN=" + c.token}, c.hostEnv...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("logbook %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Fatal("no server is ready for the CLI")
	return ""
}

// haLoad sends requests to every server, over the API and over Slack's
// Events API, each to the next server in turn; when a server does not
// answer, the same request goes to the next one (the same message id, or
// the same Slack event as a retried delivery) until one answers.
type haLoad struct {
	c        *cluster
	stop     chan struct{}
	wg       sync.WaitGroup
	answered atomic.Int64

	mu      sync.Mutex
	replies map[string]string // api message id → its reply ("" until answered)
	slackTS map[string]bool   // Slack message ts → accepted by a server
}

var haLoads atomic.Int64

func (c *cluster) load(t *testing.T, clients int) *haLoad {
	l := &haLoad{c: c, stop: make(chan struct{}), replies: map[string]string{}, slackTS: map[string]bool{}}
	number := haLoads.Add(1)
	for client := range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; !l.stopped(); i++ {
				id := fmt.Sprintf("ha%d-%d-%d", number, client, i)
				l.mu.Lock()
				l.replies[id] = ""
				l.mu.Unlock()
				reply := l.ask(client+i, id)
				l.mu.Lock()
				l.replies[id] = reply
				l.mu.Unlock()
				if reply != "" {
					l.answered.Add(1)
				}
			}
		}()
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for i := 0; !l.stopped(); i++ {
			ts := fmt.Sprintf("17%02d%06d.%06d", number, i, i)
			l.mu.Lock()
			l.slackTS[ts] = false
			l.mu.Unlock()
			accepted := l.deliver(i, fmt.Sprintf("Ev%d%06d", number, i), ts)
			l.mu.Lock()
			l.slackTS[ts] = accepted
			l.mu.Unlock()
			select {
			case <-l.stop:
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return l
}

func (l *haLoad) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// ask sends one api request, starting at server first, and returns its
// reply text ("" if no server answered it within 2 minutes).
func (l *haLoad) ask(first int, id string) string {
	body, _ := json.Marshal(map[string]string{"text": "echo marker-" + id, "message_id": id})
	client := &http.Client{Timeout: 60 * time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	for attempt := first; time.Now().Before(deadline); attempt++ {
		r := l.c.replicas[attempt%len(l.c.replicas)]
		addr, _ := r.addr.Load().(string)
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/requests?wait=1", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+l.c.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		var answer struct {
			Reply *struct {
				Text string `json:"text"`
			} `json:"reply"`
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && json.Unmarshal(raw, &answer) == nil && answer.Reply != nil {
			return answer.Reply.Text
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ""
}

// deliver sends one Slack message event, starting at server first, as
// Slack does: again (marked a retry) to another server until one accepts
// it. It says whether one did.
func (l *haLoad) deliver(first int, eventID, ts string) bool {
	event, _ := json.Marshal(map[string]any{
		"type": "event_callback", "team_id": "T0LOGBOOK", "api_app_id": "A0LOGBOOK", "event_id": eventID, "event_time": time.Now().Unix(),
		"event": map[string]any{"type": "message", "channel": "C0OPS", "channel_type": "channel", "user": "U0ALICE", "text": "!echo slack-" + ts, "ts": ts},
	})
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		r := l.c.replicas[(first+attempt)%len(l.c.replicas)]
		addr, _ := r.addr.Load().(string)
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/slack/events", bytes.NewReader(event))
		req.Header.Set("Content-Type", "application/json")
		if attempt > 0 {
			req.Header.Set("X-Slack-Retry-Num", fmt.Sprint(attempt))
			req.Header.Set("X-Slack-Retry-Reason", "http_error")
		}
		slack.SignRequest(req, haSigningSecret, event, time.Now())
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// waitAnswered waits until n more api requests than now were answered.
func (l *haLoad) waitAnswered(t *testing.T, n int64, what string) {
	t.Helper()
	target := l.answered.Load() + n
	testenv.EventuallyWithin(t, 2*time.Minute, what, func() bool { return l.answered.Load() >= target })
}

func (l *haLoad) finish() {
	close(l.stop)
	l.wg.Wait()
}

// check proves that nothing of l was lost or done twice: every api
// request answered with its own reply, every Slack message accepted and
// its reply posted once, each request recorded once with one reply, and
// the log verifies.
func (c *cluster) check(t *testing.T, l *haLoad) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, reply := range l.replies {
		if !strings.Contains(reply, "marker-"+id) {
			t.Errorf("api request %s was answered %q, not with its own reply", id, reply)
		}
	}
	want := map[string]bool{}
	for ts, accepted := range l.slackTS {
		if !accepted {
			t.Errorf("no server accepted the Slack message %s", ts)
		}
		want["slack-"+ts] = true
	}
	// Replies to one room are posted in order, and every message was
	// answered once the last one's reply is there.
	testenv.EventuallyWithin(t, 2*time.Minute, "a reply to every Slack message", func() bool {
		got := 0
		for _, m := range c.slack.Messages() {
			if want[m.Text] {
				got++
			}
		}
		return got >= len(want)
	})
	posted := map[string]int{}
	for _, m := range c.slack.Messages() {
		if want[m.Text] {
			posted[m.Text]++
		}
	}
	for text, n := range posted {
		if n != 1 {
			t.Errorf("Slack got the reply %q %d times, want once", text, n)
		}
	}

	var events []envelope
	testenv.EventuallyWithin(t, 2*time.Minute, "every recorded request answered", func() bool {
		events = storedEvents(t, c.hostEnv)
		return len(unansweredRequests(events)) == 0
	})
	counts := map[string]map[string]int{}
	for _, e := range events {
		if e.Type == "RequestReceived" || e.Type == "ReplyPosted" {
			if counts[e.Stream] == nil {
				counts[e.Stream] = map[string]int{}
			}
			counts[e.Stream][e.Type]++
		}
	}
	for stream, n := range counts {
		if n["RequestReceived"] != 1 || n["ReplyPosted"] != 1 {
			t.Errorf("%s recorded %d RequestReceived and %d ReplyPosted, want one each", stream, n["RequestReceived"], n["ReplyPosted"])
		}
	}
	verify := exec.Command(binary, "audit", "verify")
	verify.Env = append(os.Environ(), c.hostEnv...)
	if out, err := verify.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "ok: ") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
	t.Logf("%d api requests and %d Slack messages, each answered once; %d requests in the log", len(l.replies), len(l.slackTS), len(counts))
}

// A leader paused (SIGSTOP) loses its lease to the other server; resumed
// (SIGCONT), it finds the lease taken, stops its duties without recording
// anything (its appends are fenced by its old term), and follows. Requests
// sent to the follower all along are each answered once.
func TestALeaderPausedAndResumedStepsDownToFollow(t *testing.T) {
	env := []string{"LOGBOOK_DATABASE_URL=" + testenv.PostgresSchema(t), "LOGBOOK_RUNTIME=process"}
	first := startServer(t, env...)
	first.waitReady(t)
	admin := first.token(t)
	second := startServer(t, env...)
	second.waitReady(t)
	if !readyzOf(first).Leader || readyzOf(second).Leader {
		t.Fatalf("the first server should lead and the second follow: %+v, %+v", readyzOf(first), readyzOf(second))
	}

	l := startLoad(t, second.addr, admin, 4)
	l.waitAnswered(t, 10, "requests answered through the follower")
	if err := first.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	testenv.EventuallyWithin(t, 60*time.Second, "the second server to lead", func() bool { return readyzOf(second).Leader })
	t.Logf("the second server led %v after the leader was paused", time.Since(paused).Round(10*time.Millisecond))
	l.waitAnswered(t, 10, "requests answered by the new leader")
	if err := first.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	testenv.EventuallyWithin(t, 60*time.Second, "the resumed server to step down and follow", func() bool {
		r := readyzOf(first)
		return r.Ready && !r.Leader
	})
	l.waitAnswered(t, 10, "requests answered after the resume")
	l.finish()
	if !strings.Contains(first.logs.String(), "stepped down") {
		t.Errorf("the resumed server's log does not say it stepped down")
	}

	events := storedEvents(t, env)
	counts := map[string]map[string]int{}
	for _, e := range events {
		if e.Type == "RequestReceived" || e.Type == "ReplyPosted" || e.Type == "RequestCompleted" {
			if counts[e.Stream] == nil {
				counts[e.Stream] = map[string]int{}
			}
			counts[e.Stream][e.Type]++
		}
	}
	for stream, n := range counts {
		if n["RequestReceived"] != 1 || n["ReplyPosted"] > 1 || n["RequestCompleted"] > 1 {
			t.Errorf("%s recorded %v, want each once", stream, n)
		}
	}
	l.mu.Lock()
	for id, outcome := range l.outcomes {
		if outcome == "200" && !strings.Contains(l.replies[id], "marker-"+id) {
			t.Errorf("%s was answered %q, not its own reply", id, l.replies[id])
		}
	}
	l.mu.Unlock()
	testenv.EventuallyWithin(t, 60*time.Second, "every recorded request answered", func() bool {
		return len(unansweredRequests(storedEvents(t, env))) == 0
	})
	verify := exec.Command(binary, "audit", "verify")
	verify.Env = append(os.Environ(), env...)
	if out, err := verify.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "ok: ") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
}

func readyzOf(s *server) readiness {
	var answer readiness
	resp, err := http.Get("http://" + s.addr + "/readyz")
	if err != nil {
		return answer
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&answer)
	return answer
}

// electedAfter finds in a server's JSON log the first election after t,
// and says how long after t it was.
func electedAfter(logs string, t time.Time) (time.Duration, bool) {
	for _, line := range strings.Split(logs, "\n") {
		var entry struct {
			Message string `json:"message"`
			Time    string `json:"time"`
		}
		// Docker's log stream puts a frame header before each line.
		if i := strings.IndexByte(line, '{'); i > 0 {
			line = line[i:]
		}
		if json.Unmarshal([]byte(line), &entry) != nil || entry.Message != "elected: leading" {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, entry.Time)
		if err == nil && at.After(t) {
			return at.Sub(t), true
		}
	}
	return 0, false
}
