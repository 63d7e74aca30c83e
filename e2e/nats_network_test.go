package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/logbookhq/logbook/adapters/docker"
	"github.com/logbookhq/logbook/adapters/docker/dockertest"
	"github.com/logbookhq/logbook/adapters/natsbus/natstest"
	"github.com/logbookhq/logbook/internal/testenv"
)

// containerExecutor is a `logbook executor` running as a container of
// Logbook's own image on a Docker network.
type containerExecutor struct {
	id, container string
}

// netExecutors is what a test needs to run executors as containers: the
// image, the test's own network, and nats-server reachable from it.
type netExecutors struct {
	t       *testing.T
	eng     *client.Client
	image   string
	network string
	nats    *natstest.Server
	socket  string // the Docker daemon's socket on this host
	gid     uint32 // the socket's group, which the executor joins
}

// givenExecutorNetwork builds Logbook's image, makes a Docker network of
// the test's own and starts nats-server where that network reaches it.
//
// nats-server runs on this host, listening on the network's gateway (an
// address of this host on the bridge the test made), rather than in a
// container: Debian's nats-server is linked against libc and does not run
// in a FROM-scratch image, and building a static one would cost every CI
// run a module download and a build. The gateway is the only address it
// listens on, so nothing outside this machine and the test's network
// reaches it.
func givenExecutorNetwork(t *testing.T, executors ...natstest.Executor) *netExecutors {
	t.Helper()
	requireDocker(t)
	ctx := context.Background()
	eng := dockertest.Engine(t)
	socket, ok := strings.CutPrefix(eng.DaemonHost(), "unix://")
	if !ok {
		testenv.Missing(t, "a local Docker daemon", "the executors' containers mount the daemon's socket, and "+eng.DaemonHost()+" is not a unix socket")
	}
	info, err := os.Stat(socket)
	if err != nil {
		testenv.Missing(t, "a local Docker daemon", err.Error())
	}
	n := &netExecutors{t: t, eng: eng, socket: socket, gid: info.Sys().(*syscall.Stat_t).Gid,
		image: logbookImage(t), network: fmt.Sprintf("logbook-e2e-executors-%d", os.Getpid())}

	created, err := eng.NetworkCreate(ctx, n.network, network.CreateOptions{Driver: "bridge"})
	if err != nil {
		t.Fatalf("docker network create: %v", err)
	}
	t.Cleanup(func() { eng.NetworkRemove(context.Background(), created.ID) })
	inspected, err := eng.NetworkInspect(ctx, created.ID, network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(inspected.IPAM.Config) == 0 || inspected.IPAM.Config[0].Gateway == "" {
		t.Fatalf("network %s has no gateway: %+v", n.network, inspected.IPAM)
	}
	gateway := inspected.IPAM.Config[0].Gateway
	probe, err := net.Listen("tcp", net.JoinHostPort(gateway, "0"))
	if err != nil {
		testenv.Missing(t, "a local Docker daemon", fmt.Sprintf("the gateway %s of the test's network is not an address of this host: %v", gateway, err))
	}
	probe.Close()
	n.nats = natstest.StartOn(t, gateway, executors...)
	return n
}

// start runs executor id as a container on the network, with the Docker
// socket, so the bundle containers it starts are siblings on this host.
func (n *netExecutors) start(id string, groups []string, env ...string) *containerExecutor {
	n.t.Helper()
	ctx := context.Background()
	base := []string{"LOGBOOK_BUS_URL=" + n.nats.URL, "LOGBOOK_BUS_USER=" + id, "LOGBOOK_BUS_PASSWORD=" + n.nats.PasswordOf(id),
		"LOGBOOK_EXECUTOR_ID=" + id, "LOGBOOK_EXECUTOR_GROUPS=" + strings.Join(groups, ","), "LOGBOOK_RUNTIME=docker"}
	name := fmt.Sprintf("logbook-e2e-%s-%d", id, os.Getpid())
	created, err := n.eng.ContainerCreate(ctx,
		&container.Config{Image: n.image, Cmd: []string{"executor"}, Env: append(base, env...), Hostname: id},
		&container.HostConfig{NetworkMode: container.NetworkMode(n.network), Binds: []string{n.socket + ":/var/run/docker.sock"},
			GroupAdd: []string{fmt.Sprint(n.gid)}},
		nil, nil, name)
	if err != nil {
		n.t.Fatalf("create executor %s: %v", id, err)
	}
	n.t.Cleanup(func() {
		bg := context.Background()
		if n.t.Failed() {
			n.t.Logf("executor %s logs:\n%s", id, n.logs(created.ID))
		}
		n.eng.ContainerRemove(bg, created.ID, container.RemoveOptions{Force: true})
		// The bundle containers it started outlive it; they are the
		// test's to remove.
		list, _ := n.eng.ContainerList(bg, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", docker.LabelOwner+"=logbook-executor-"+id))})
		for _, c := range list {
			n.eng.ContainerRemove(bg, c.ID, container.RemoveOptions{Force: true})
		}
		// So does the volume it put logbook-agent in.
		volumes, _ := n.eng.VolumeList(bg, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("label", docker.LabelOwner+"=logbook-executor-"+id))})
		for _, v := range volumes.Volumes {
			n.eng.VolumeRemove(bg, v.Name, true)
		}
	})
	if err := n.eng.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		n.t.Fatalf("start executor %s: %v", id, err)
	}
	return &containerExecutor{id: id, container: created.ID}
}

func (n *netExecutors) logs(containerID string) string {
	logs, err := n.eng.ContainerLogs(context.Background(), containerID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return err.Error()
	}
	defer logs.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, logs); err != nil {
		return err.Error()
	}
	return stdout.String() + stderr.String()
}

// Executors as containers on a Docker network, one cut off with `docker
// network disconnect` mid-run: the runs it had started are RunLost and
// their replies say so, the others complete on the other executor,
// nothing is recorded twice, and the log verifies. Connected again, the
// cut-off executor rejoins, is told which of the runs it still holds were
// recorded lost, stops them and removes their containers (their commands
// would sleep on for minutes), and says so in its log.
func TestAnExecutorContainerCutOffByANetworkDisconnectLosesOnlyWhatItBegan(t *testing.T) {
	n := givenExecutorNetwork(t, natstest.Executor{ID: "net-a", Groups: []string{"default"}}, natstest.Executor{ID: "net-b", Groups: []string{"default"}})
	env := []string{"LOGBOOK_DATA_DIR=" + filepath.Join(t.TempDir(), "data")}
	s := startServer(t, append(append(append(env, natsEnv(n.nats)...), busFast...), "LOGBOOK_RUNTIME=docker", "LOGBOOK_LOG_LEVEL=warn")...)
	s.waitReady(t)
	token := s.token(t)
	execEnv := append(slices.Clone(busFast), "LOGBOOK_EXECUTOR_SLOTS=2")
	liveExecutors := func(want int) func() bool {
		return func() bool {
			out, err := cli(t, s, token, env, "executors", "--json")
			return err == nil && strings.Count(out, `"host"`) == want
		}
	}

	// net-a alone takes two runs that would sleep five minutes.
	a := n.start("net-a", []string{"default"}, execEnv...)
	testenv.EventuallyWithin(t, 90*time.Second, "net-a (a container) to join", liveExecutors(1))
	long := []string{"toolbox:sleep 300 | toolbox:echo long-0", "toolbox:sleep 300 | toolbox:echo long-1"}
	longDone := make(chan []string, 1)
	go func() { longDone <- sayAll(t, s, token, long, len(long)) }()
	startedOnA := func() []string {
		events := storedEvents(t, env)
		var started []string
		for stream, ex := range runsClaimedBy(t, events) {
			if ex == "net-a" && slices.Contains(typesOf(events, stream), "ContainerStarted") {
				started = append(started, stream)
			}
		}
		return started
	}
	testenv.EventuallyWithin(t, 90*time.Second, "net-a to have started both long runs", func() bool { return len(startedOnA()) == 2 })

	// net-b joins, and short runs go on while net-a is cut off.
	n.start("net-b", []string{"default"}, execEnv...)
	testenv.EventuallyWithin(t, 90*time.Second, "net-b (a container) to join", liveExecutors(2))
	var short []string
	for i := range 6 {
		short = append(short, fmt.Sprintf("toolbox:echo short-%d", i))
	}
	shortDone := make(chan []string, 1)
	go func() { shortDone <- sayAll(t, s, token, short, 3) }()
	ctx := context.Background()
	if err := n.eng.NetworkDisconnect(ctx, n.network, a.container, true); err != nil {
		t.Fatalf("docker network disconnect: %v", err)
	}
	testenv.Eventually(t, "net-a's started runs to be lost", func() bool {
		events := storedEvents(t, env)
		return countOf(typesOfAll(events), "RunLost") == 2
	})
	longReplies := <-longDone
	for i, r := range longReplies {
		if !strings.Contains(r, "lost") {
			t.Errorf("%q, cut off mid-run, replied %q", long[i], r)
		}
	}
	shortReplies := <-shortDone
	for i, r := range shortReplies {
		if strings.TrimSpace(r) != fmt.Sprintf("short-%d", i) {
			t.Errorf("%q replied %q", short[i], r)
		}
	}

	// Connected again, net-a rejoins and stops what the server recorded
	// lost: its containers are gone long before their sleep would end.
	if owned := ownedContainers(t, "logbook-executor-net-a"); owned == 0 {
		t.Fatal("net-a's containers were gone before it was connected again")
	}
	if err := n.eng.NetworkConnect(ctx, n.network, a.container, nil); err != nil {
		t.Fatalf("docker network connect: %v", err)
	}
	testenv.EventuallyWithin(t, 90*time.Second, "net-a to rejoin", liveExecutors(2))
	testenv.EventuallyWithin(t, 90*time.Second, "net-a to remove the containers of its lost runs", func() bool {
		return ownedContainers(t, "logbook-executor-net-a") == 0
	})
	if logs := n.logs(a.container); strings.Count(logs, "recorded the run lost while executor net-a was cut off") < 2 {
		t.Errorf("net-a's log does not say it stopped both lost runs:\n%s", logs)
	}

	events := storedEvents(t, env)
	claimed := runsClaimedBy(t, events)
	for stream, ex := range claimed {
		types := typesOf(events, stream)
		terminals := countOf(types, "RunSucceeded") + countOf(types, "RunFailed") + countOf(types, "RunLost") + countOf(types, "RunCancelled") + countOf(types, "RunTimedOut")
		if countOf(types, "RunStarting") > 1 || countOf(types, "ContainerStarted") > 1 || terminals != 1 {
			t.Errorf("%s: %v", stream, types)
		}
		if slices.Contains(types, "RunLost") != (ex == "net-a") {
			t.Errorf("%s, claimed by %s: %v", stream, ex, types)
		}
	}
	replyPosted := map[string]int{}
	for _, e := range events {
		if strings.HasPrefix(e.Stream, "request-") && e.Type == "ReplyPosted" {
			replyPosted[e.Stream]++
		}
	}
	if len(replyPosted) != len(long)+len(short) {
		t.Errorf("%d requests have replies, want %d", len(replyPosted), len(long)+len(short))
	}
	for stream, n := range replyPosted {
		if n != 1 {
			t.Errorf("%s has %d replies", stream, n)
		}
	}
	if out, err := cli(t, s, token, env, "audit", "verify"); err != nil || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
}

// An executor in a container, talking to the host's Docker daemon through
// its socket, runs warm and single-use bundles: its own path to
// logbook-agent is not the Docker host's, so it copies the agent into a
// volume through the Engine API, and its warm and single-use containers
// mount that volume read-only. Every reply is right.
func TestAnExecutorContainerRunsWarmAndSingleUseBundles(t *testing.T) {
	n := givenExecutorNetwork(t, natstest.Executor{ID: "net-w", Groups: []string{"default"}})
	env := []string{"LOGBOOK_DATA_DIR=" + filepath.Join(t.TempDir(), "data")}
	s := startServer(t, append(append(append(env, natsEnv(n.nats)...), busFast...), "LOGBOOK_RUNTIME=docker", "LOGBOOK_LOG_LEVEL=warn")...)
	s.waitReady(t)
	token := s.token(t)
	installModes(t, s, token, env)
	w := n.start("net-w", []string{"default"}, append(slices.Clone(busFast), "LOGBOOK_EXECUTOR_SLOTS=2")...)
	testenv.EventuallyWithin(t, 90*time.Second, "net-w (a container) to join", func() bool {
		out, err := cli(t, s, token, env, "executors", "--json")
		return err == nil && strings.Count(out, `"host"`) == 1
	})

	var texts, want []string
	for i := range 6 {
		texts, want = append(texts, fmt.Sprintf("quick:echo warm-%d", i)), append(want, fmt.Sprintf("warm-%d", i))
	}
	for i := range 3 {
		texts, want = append(texts, fmt.Sprintf("single:echo single-%d", i)), append(want, fmt.Sprintf("single-%d", i))
	}
	for i, r := range sayAll(t, s, token, texts, 2) {
		if strings.TrimSpace(r) != want[i] {
			t.Errorf("%q replied %q", texts[i], r)
		}
	}
	events := storedEvents(t, env)
	warmRuns := 0
	for _, e := range events {
		if e.Type == "ContainerStarted" && strings.Contains(string(e.Data), `"warm":true`) {
			warmRuns++
		}
	}
	if warmRuns != 6 {
		t.Errorf("%d runs started in a warm container, want 6", warmRuns)
	}

	// The warm containers still in the pool (and the single-use spares)
	// take the agent from a volume, read-only.
	pool, err := n.eng.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", docker.LabelOwner+"=logbook-executor-net-w"), filters.Arg("label", docker.LabelPool))})
	if err != nil || len(pool) == 0 {
		t.Fatalf("net-w has no pool container left: %v", err)
	}
	warmPool := 0
	for _, c := range pool {
		if c.Labels[docker.LabelSingleUse] == "true" {
			continue // a spare may be taken and removed meanwhile
		}
		warmPool++
		info, err := n.eng.ContainerInspect(context.Background(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(info.Mounts) != 1 || info.Mounts[0].Type != mount.TypeVolume || info.Mounts[0].RW || info.Mounts[0].Destination != "/.logbook" {
			t.Errorf("pool container %s mounts %+v, want one volume, read-only, at /.logbook", c.ID[:12], info.Mounts)
		}
	}
	if warmPool == 0 {
		t.Error("net-w has no warm container left in its pool")
	}
	if logs := n.logs(w.container); !strings.Contains(logs, "logbook-agent is in a Docker volume") {
		t.Errorf("net-w's log does not say where the agent is:\n%s", logs)
	}
	if out, err := cli(t, s, token, env, "audit", "verify"); err != nil || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
}
