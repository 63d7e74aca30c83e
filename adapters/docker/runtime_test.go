package docker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/docker"
	"github.com/logbookhq/logbook/adapters/docker/dockertest"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/runbus"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/executor/executortest"
)

type captureSink struct {
	mu             sync.Mutex
	stdout, stderr bytes.Buffer
	created        string
	started        bool
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (s *captureSink) ContainerCreated(id, _ string) { s.created = id }
func (s *captureSink) ContainerTaken(id, _ string) error {
	s.created = id
	return nil
}
func (s *captureSink) ContainerStarted(string, bool) { s.started = true }
func (s *captureSink) Stdout() io.Writer             { return lockedWriter{&s.mu, &s.stdout} }
func (s *captureSink) Stderr() io.Writer             { return lockedWriter{&s.mu, &s.stderr} }

func newRuntime(t *testing.T, eng docker.Engine) *docker.Runtime {
	t.Helper()
	rt, err := docker.NewRuntimeWithConfig(docker.Config{Engine: eng, Owner: "logbook-test-" + runID(t), Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func runID(t *testing.T) string { return "t" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20] }

var testLimits = run.Limits{TimeoutMS: 10_000, MemoryBytes: 64 << 20, NanoCPUs: 500_000_000, Pids: 64, OutputBytes: 1 << 20}

// leftovers lists containers labelled with runID.
func leftovers(t *testing.T, cli *client.Client, runID string) int {
	t.Helper()
	list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", docker.LabelRunID+"="+runID))})
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

func TestDockerFreshContainerIsHardenedAndLabelled(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	rt := newRuntime(t, cli)
	id := runID(t)
	sink := &captureSink{}
	out, err := rt.Run(context.Background(), executor.Spec{
		RunID: id, RequestID: "req-1", Image: img, Limits: testLimits, KillGrace: time.Second,
		Argv:  []string{"sh", "-c", `read x; echo "in=$x"; printf 'e\377' >&2; ls /sys/class/net; exit 3`},
		Stdin: []byte("hello\n"),
	}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if sink.created == "" || !sink.started || out.ContainerID != sink.created {
		t.Fatalf("sink saw created=%q started=%v, outcome container %q", sink.created, sink.started, out.ContainerID)
	}
	if got := sink.stdout.String(); got != "in=hello\nlo\n" {
		t.Errorf("stdout = %q, want stdin echoed and only the loopback interface", got)
	}
	if got := sink.stderr.String(); got != "e\xff" {
		t.Errorf("stderr = %q, want the exact bytes", got)
	}
	if out.ExitCode != 3 || out.TimedOut || out.OOMKilled {
		t.Errorf("outcome = %+v, want exit 3", out)
	}
	info, err := cli.ContainerInspect(context.Background(), out.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	checkHardened(t, info, testLimits)
	if info.Config.Labels[docker.LabelRunID] != id || info.Config.Labels[docker.LabelRequestID] != "req-1" {
		t.Errorf("labels %v, want the run and request ids", info.Config.Labels)
	}
	if !strings.HasPrefix(info.Config.Labels[docker.LabelOwner], "logbook-test-") || info.Name != "/"+docker.ContainerName(id) {
		t.Errorf("owner label %q and name %q, want the runtime's owner and the run's name", info.Config.Labels[docker.LabelOwner], info.Name)
	}
	if _, err := rt.Run(context.Background(), executor.Spec{RunID: id, Image: img, Argv: []string{"true"}, Limits: testLimits}, &captureSink{}); !errors.Is(err, executor.ErrAlreadyExists) {
		t.Errorf("a second run with the same id: error = %v, want ErrAlreadyExists", err)
	}
	if err := out.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := leftovers(t, cli, id); n != 0 {
		t.Fatalf("%d containers left after release", n)
	}
}

// checkHardened checks what every container Logbook runs a command in
// gets, fresh, warm or single-use.
func checkHardened(t *testing.T, info container.InspectResponse, limits run.Limits) {
	t.Helper()
	hc := info.HostConfig
	checks := []struct {
		name string
		ok   bool
	}{
		{"network none", hc.NetworkMode == "none"},
		{"all capabilities dropped", len(hc.CapDrop) == 1 && hc.CapDrop[0] == "ALL"},
		{"no-new-privileges", len(hc.SecurityOpt) == 1 && hc.SecurityOpt[0] == "no-new-privileges"},
		{"read-only root", hc.ReadonlyRootfs},
		{"tmpfs /tmp", strings.Contains(hc.Tmpfs["/tmp"], "size=")},
		{"private IPC", hc.IpcMode == "private"},
		{"init", hc.Init != nil && *hc.Init},
		{"memory limit without swap", hc.Memory == limits.MemoryBytes && hc.MemorySwap == hc.Memory},
		{"cpu limit", hc.NanoCPUs == limits.NanoCPUs},
		{"pids limit", hc.PidsLimit != nil && *hc.PidsLimit == limits.Pids},
		{"no auto-remove", !hc.AutoRemove},
		{"no log copy", hc.LogConfig.Type == "none"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("container %.12s is not hardened: %s", info.ID, c.name)
		}
	}
}

// A command runs as the user its run records, with a writable /tmp; a run
// recorded before runs named their user runs as the image's, as it did.
func TestDockerFreshCommandRunsAsTheRunsUser(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	rt := newRuntime(t, cli)
	tests := []struct {
		name string
		user *run.User
		want string
	}{
		{"the default, nobody", &run.DefaultUser, "65534:65534 wrote\n"},
		{"a bundle's uid and gid", &run.User{UID: 1000, GID: 100}, "1000:100 wrote\n"},
		{"no user recorded: the image's", nil, "0:0 wrote\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sink := &captureSink{}
			out, err := rt.Run(context.Background(), executor.Spec{
				RunID: runID(t), Image: img, Limits: testLimits, KillGrace: time.Second, User: tt.user,
				Argv: []string{"sh", "-c", `echo "$(id -u):$(id -g)" $(echo x > /tmp/x && cat /tmp/x >/dev/null && echo wrote)`},
			}, sink)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = out.Release(context.Background()) })
			if got := sink.stdout.String(); got != tt.want || out.ExitCode != 0 {
				t.Fatalf("stdout %q (stderr %q, exit %d), want %q", got, sink.stderr.String(), out.ExitCode, tt.want)
			}
		})
	}
}

func TestDockerMissingImageFailsTheRunWithAReason(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	e, store := executortest.NewExecutor(t, newRuntime(t, cli), executor.Config{})
	req := runbus.RunRequest{RunID: runID(t), Request: run.RunRequested{RequestID: "r", Image: "logbook-test/no-such-image:1", Argv: []string{"true"}}}
	if err := e.Execute(req); err != nil {
		t.Fatal(err)
	}
	failed, ok := executortest.Terminal(t, store.Payloads(run.Stream(req.RunID))).(run.RunFailed)
	if !ok || !strings.Contains(failed.Reason, "logbook-test/no-such-image:1 is not on this Docker host") {
		t.Fatalf("terminal = %+v, want RunFailed naming the missing image", failed)
	}
}

// forkBomb forks until the pids limit stops it, then reports what its
// cgroup saw: the limit, and the most pids it held at once (pids.peak,
// where the kernel has it). The shell forks once, to start the bomb, while
// nothing else runs; the report uses only builtins, so it needs no fork.
// The final sleep does, so the run ends either at its timeout or at once
// with exit code 2 when the shell cannot fork sleep: which of the two is
// up to the scheduler.
const forkBomb = `c=/sys/fs/cgroup/pids; [ -e $c/pids.max ] || c=/sys/fs/cgroup
b() { b | b & }; b &
until read e < $c/pids.events && [ "$e" != "max 0" ]; do :; done
read limit < $c/pids.max; read peak < $c/pids.peak || peak=unknown
echo "limit=$limit peak=$peak"
sleep 30`

// checkForkBombContained checks that the bomb met its pids limit and never
// held more pids than it: whether it then timed out or exited 2 is not
// asserted, since that depends on scheduling.
func checkForkBombContained(t *testing.T, limit int64, stopped run.ContainerStopped, stdout, stderr []byte, terminal domain.Payload) {
	t.Helper()
	var gotLimit int64
	var peak string
	if _, err := fmt.Sscanf(string(stdout), "limit=%d peak=%s", &gotLimit, &peak); err != nil || gotLimit != limit {
		t.Errorf("stdout = %q, want the cgroup's pids limit %d and its peak", stdout, limit)
	}
	if n, err := strconv.ParseInt(peak, 10, 64); peak != "unknown" && (err != nil || n > limit) {
		t.Errorf("the container held %s pids at its peak, over the limit %d", peak, limit)
	}
	if !bytes.Contains(stderr, []byte("can't fork")) {
		t.Errorf("stderr = %q, want the bomb's failed forks", stderr)
	}
	switch terminal := terminal.(type) {
	case run.RunTimedOut:
	case run.RunFailed:
		if stopped.ExitCode != 2 {
			t.Errorf("the bomb failed with %+v, %+v; want exit code 2 (sleep could not be forked)", terminal, stopped)
		}
	default:
		t.Errorf("terminal = %+v, want RunTimedOut, or RunFailed when sleep could not be forked", terminal)
	}
}

// TestDockerHostileCommandsAreContained runs each hostile command through
// the executor and checks it was contained: how it ended, what it could
// not do, and that its container is gone. Then it checks the executor
// still runs an ordinary command. No assertion depends on how the runs are
// scheduled: the grace between SIGTERM and SIGKILL is long enough for a
// command that does not ignore SIGTERM to end on a busy machine. The
// commands name no user, so they run as the image's, root: the container
// must hold even then.
func TestDockerHostileCommandsAreContained(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	rt := newRuntime(t, cli)
	e, store := executortest.NewExecutor(t, rt, executor.Config{Concurrency: 4, KillGrace: 3 * time.Second})
	tests := []struct {
		name   string
		argv   []string
		limits run.Limits
		want   string // terminal event type; "" when check decides
		check  func(t *testing.T, stopped run.ContainerStopped, stdout, stderr []byte, truncated bool, terminal domain.Payload)
	}{
		{
			name: "a fork bomb is held to the pids limit and stopped",
			argv: []string{"sh", "-c", forkBomb}, limits: run.Limits{TimeoutMS: 4000, Pids: 32},
			check: func(t *testing.T, stopped run.ContainerStopped, stdout, stderr []byte, _ bool, terminal domain.Payload) {
				checkForkBombContained(t, 32, stopped, stdout, stderr, terminal)
			},
		},
		{
			name: "a memory bomb is killed for running out of memory",
			argv: []string{"sh", "-c", `x=$(head -c 200000000 /dev/zero | tr '\0' a); echo survived`}, limits: run.Limits{MemoryBytes: 32 << 20}, want: "RunFailed",
			check: func(t *testing.T, stopped run.ContainerStopped, stdout, _ []byte, _ bool, terminal domain.Payload) {
				if !stopped.OOMKilled || bytes.Contains(stdout, []byte("survived")) {
					t.Errorf("stopped = %+v, stdout %q: want an OOM kill", stopped, stdout)
				}
				if !strings.Contains(terminal.(run.RunFailed).Reason, "out of memory") {
					t.Errorf("reason = %q", terminal.(run.RunFailed).Reason)
				}
			},
		},
		{
			name: "endless output is capped and the command stopped at its timeout",
			argv: []string{"yes"}, limits: run.Limits{TimeoutMS: 1500, OutputBytes: 64 << 10}, want: "RunTimedOut",
			check: func(t *testing.T, _ run.ContainerStopped, stdout, _ []byte, truncated bool, _ domain.Payload) {
				if !truncated || len(stdout) != 64<<10 || !bytes.HasPrefix(stdout, []byte("y\ny\n")) {
					t.Errorf("kept %d bytes (truncated %v), want exactly the 64 KiB cap", len(stdout), truncated)
				}
			},
		},
		{
			name: "a command that never exits is terminated at its timeout",
			argv: []string{"sleep", "1000"}, limits: run.Limits{TimeoutMS: 1000}, want: "RunTimedOut",
			check: func(t *testing.T, stopped run.ContainerStopped, _, _ []byte, _ bool, _ domain.Payload) {
				if stopped.Signal != "SIGTERM" {
					t.Errorf("stopped = %+v, want ended by SIGTERM", stopped)
				}
			},
		},
		{
			name: "a command ignoring SIGTERM is killed after the grace",
			argv: []string{"sh", "-c", `trap '' TERM; while :; do sleep 1; done`}, limits: run.Limits{TimeoutMS: 1000}, want: "RunTimedOut",
			check: func(t *testing.T, stopped run.ContainerStopped, _, _ []byte, _ bool, _ domain.Payload) {
				if stopped.Signal != "SIGKILL" {
					t.Errorf("stopped = %+v, want ended by SIGKILL", stopped)
				}
			},
		},
		{
			name: "the network cannot be reached",
			argv: []string{"sh", "-c", `ls /sys/class/net; wget -T 2 -q -O - http://1.1.1.1/ || exit 9`}, want: "RunFailed",
			check: func(t *testing.T, stopped run.ContainerStopped, stdout, _ []byte, _ bool, _ domain.Payload) {
				if stopped.ExitCode != 9 || string(stdout) != "lo\n" {
					t.Errorf("exit %d, stdout %q: want only loopback and a failed fetch", stopped.ExitCode, stdout)
				}
			},
		},
		{
			name: "the root filesystem cannot be written",
			argv: []string{"touch", "/bin/evil"}, want: "RunFailed",
			check: func(t *testing.T, _ run.ContainerStopped, _, stderr []byte, _ bool, _ domain.Payload) {
				if !bytes.Contains(stderr, []byte("Read-only file system")) {
					t.Errorf("stderr = %q, want a read-only file system error", stderr)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := runID(t)
			req := runbus.RunRequest{RunID: id, Request: run.RunRequested{RequestID: "hostile", Image: img, Argv: tt.argv, Limits: tt.limits.Or(testLimits)}}
			start := time.Now()
			if err := e.Execute(req); err != nil {
				t.Fatal(err)
			}
			events := store.Payloads(run.Stream(id))
			terminal := executortest.Terminal(t, events)
			if tt.want != "" && terminal.EventType() != tt.want {
				t.Fatalf("terminal = %+v after %v, want %s (events %s)", terminal, time.Since(start), tt.want, executortest.Types(events))
			}
			var stopped run.ContainerStopped
			truncated := false
			for _, p := range events {
				switch p := p.(type) {
				case run.ContainerStopped:
					stopped = p
				case run.OutputTruncated:
					truncated = true
				}
			}
			tt.check(t, stopped, executortest.Output(events, run.Stdout), executortest.Output(events, run.Stderr), truncated, terminal)
			waitRemoved(t, cli, store, id)
		})
	}
	t.Cleanup(func() {
		// After all of that, the executor still runs an ordinary command.
		id := runID(t)
		if err := e.Execute(runbus.RunRequest{RunID: id, Request: run.RunRequested{RequestID: "after", Image: img, Argv: []string{"echo", "still fine"}, Limits: testLimits}}); err != nil {
			t.Error(err)
			return
		}
		events := store.Payloads(run.Stream(id))
		if _, ok := executortest.Terminal(t, events).(run.RunSucceeded); !ok || string(executortest.Output(events, run.Stdout)) != "still fine\n" {
			t.Errorf("after the hostile commands: %s, stdout %q", executortest.Types(events), executortest.Output(events, run.Stdout))
		}
		waitRemoved(t, cli, store, id)
	})
}

func waitRemoved(t *testing.T, cli *client.Client, store *executortest.MemStore, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ps := store.Payloads(run.Stream(id))
		if ps[len(ps)-1].EventType() == "ContainerRemoved" {
			if n := leftovers(t, cli, id); n != 0 {
				t.Errorf("ContainerRemoved recorded but %d containers remain", n)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("run %s: no ContainerRemoved after 30s: %s", id, executortest.Types(store.Payloads(run.Stream(id))))
}

// A fast command prints before ContainerStart returns; none of it may be lost
// or recorded before the start.
func TestDockerFastCommandsLoseNoOutput(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	e, store := executortest.NewExecutor(t, newRuntime(t, cli), executor.Config{Concurrency: 4})
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := runID(t)
			if err := e.Execute(runbus.RunRequest{RunID: id, Request: run.RunRequested{RequestID: "fast", Image: img, Argv: []string{"echo", fmt.Sprint("hi ", i)}, Limits: testLimits}}); err != nil {
				t.Error(err)
				return
			}
			events := store.Payloads(run.Stream(id))
			if got := string(executortest.Output(events, run.Stdout)); got != fmt.Sprintf("hi %d\n", i) {
				t.Errorf("run %d: stdout %q, events %s", i, got, executortest.Types(events))
			}
		}()
	}
	wg.Wait()
}

func TestDockerReconcileRecordsALeftoverRunLostAndRemovesIt(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	owner := runID(t)
	rt, err := docker.NewRuntimeWithConfig(docker.Config{Engine: cli, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	// A previous executor started a run and died: its container runs on.
	id := runID(t)
	sink := &captureSink{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		_, _ = rt.Run(ctx, executor.Spec{RunID: id, RequestID: "old", Image: img, Argv: []string{"sleep", "60"}, Limits: testLimits, KillGrace: time.Second}, sink)
	}()
	t.Cleanup(func() {
		_ = cli.ContainerRemove(context.Background(), docker.ContainerName(id), container.RemoveOptions{Force: true})
	})
	var list []executor.Leftover
	for deadline := time.Now().Add(30 * time.Second); len(list) == 0 || list[0].State != "running"; {
		if time.Now().After(deadline) {
			t.Fatalf("the run's container never ran: %+v", list)
		}
		time.Sleep(10 * time.Millisecond)
		list, _ = rt.Leftovers(context.Background())
	}
	store := executortest.NewMemStore()
	if len(list) != 1 || list[0].RunID != id || list[0].RequestID != "old" {
		t.Fatalf("leftovers = %+v, want the one run", list)
	}
	for i, p := range []domain.Payload{run.RunRequested{RequestID: "old", Image: img, Argv: []string{"sleep"}}, run.ContainerCreated{ContainerID: list[0].ContainerID}, run.ContainerStarted{ContainerID: list[0].ContainerID}} {
		if _, err := store.Append(context.Background(), run.Stream(id), eventstore.Exact(int64(i)-1), domain.MustEncode(p, domain.Metadata{})); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := executor.Reconcile(context.Background(), executor.ReconcileConfig{
		Runtime: rt, Store: store, Publisher: executortest.AppendingPublisher{Appender: executor.NewAppender(store)},
	})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); leftovers(t, cli, id) != 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if len(rep.Lost) != 1 || leftovers(t, cli, id) != 0 {
		t.Fatalf("report %+v, %d containers left", rep, leftovers(t, cli, id))
	}
	if got := executortest.Types(store.Payloads(run.Stream(id))); got != "RunRequested ContainerCreated ContainerStarted RunLost ContainerRemoved" {
		t.Fatalf("events %s", got)
	}
	cancel()
	<-ran
}

// startLeftover starts a long run on rt, as a process that then died would
// leave it, and returns its id once the container runs.
func startLeftover(t *testing.T, cli *client.Client, rt *docker.Runtime, img string) string {
	t.Helper()
	id := runID(t)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		_, _ = rt.Run(ctx, executor.Spec{RunID: id, RequestID: "old", Image: img, Argv: []string{"sleep", "60"}, Limits: testLimits, KillGrace: time.Second}, &captureSink{})
	}()
	t.Cleanup(func() {
		cancel()
		<-ran
		_ = cli.ContainerRemove(context.Background(), docker.ContainerName(id), container.RemoveOptions{Force: true})
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		if info, err := cli.ContainerInspect(context.Background(), docker.ContainerName(id)); err == nil && info.State != nil && info.State.Running {
			return id
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s never ran", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An older Logbook labelled every container with one shared owner. After an
// upgrade, reconcile settles such a container when its run is in this
// store, and leaves it alone otherwise: it may be another server's.
func TestDockerReconcileSettlesAnOlderLogbooksContainerOnlyWhenItsRunIsKnown(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	legacy := "legacy-" + runID(t)
	older, err := docker.NewRuntimeWithConfig(docker.Config{Engine: cli, Owner: legacy})
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := startLeftover(t, cli, older, img), startLeftover(t, cli, older, img)
	store := executortest.NewMemStore()
	if _, err := store.Append(context.Background(), run.Stream(ours), eventstore.NoStream, domain.MustEncode(run.RunRequested{RequestID: "old", Image: img, Argv: []string{"sleep"}}, domain.Metadata{})); err != nil {
		t.Fatal(err)
	}
	upgraded, err := docker.NewRuntimeWithConfig(docker.Config{Engine: cli, Owner: "logbook-" + runID(t), LegacyOwner: legacy})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := executor.Reconcile(context.Background(), executor.ReconcileConfig{
		Runtime: upgraded, Store: store, Publisher: executortest.AppendingPublisher{Appender: executor.NewAppender(store)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Lost) != 1 || rep.Lost[0] != ours || rep.Foreign != 1 || leftovers(t, cli, ours) != 0 {
		t.Fatalf("report %+v, %d containers of our run left: want our run lost and its container removed", rep, leftovers(t, cli, ours))
	}
	if info, err := cli.ContainerInspect(context.Background(), docker.ContainerName(theirs)); err != nil || !info.State.Running {
		t.Fatalf("the container of a run this store does not know was stopped or removed (%v)", err)
	}
}
