package docker_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/docker"
	"github.com/logbookhq/logbook/adapters/docker/dockertest"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/runbus"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/executor/executortest"
)

func newWarmRuntime(t *testing.T, cli *client.Client, warm docker.WarmConfig) *docker.Runtime {
	t.Helper()
	rt, err := docker.NewRuntimeWithConfig(docker.Config{Engine: cli, Warm: warm, Owner: runID(t), Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := rt.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return rt
}

// poolContainers counts the warm containers of one runtime, waiting a
// little for retired ones to be removed.
func poolContainers(t *testing.T, cli *client.Client, owner string, atMost int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", docker.LabelOwner+"="+owner), filters.Arg("label", docker.LabelPool))})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) <= atMost || time.Now().After(deadline) {
			return len(list)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func warmStarted(ps []domain.Payload) run.ContainerStarted {
	for _, p := range ps {
		if s, ok := p.(run.ContainerStarted); ok {
			return s
		}
	}
	return run.ContainerStarted{}
}

func TestDockerWarmPoolForksEachRunCleanlyAndRecycles(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	owner := runID(t)
	rt, err := docker.NewRuntimeWithConfig(docker.Config{Engine: cli, Owner: owner, Logger: zerolog.New(zerolog.NewTestWriter(t)),
		Warm: docker.WarmConfig{AgentPath: dockertest.Agent(t), PoolSize: 1, MaxInvocations: 3}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(context.Background()) }) // when the test fails before its own Close
	e, store := executortest.NewExecutor(t, rt, executor.Config{KillGrace: 500 * time.Millisecond})
	limits := run.Limits{TimeoutMS: 1000}.Or(testLimits)
	if err := rt.Prewarm(context.Background(), img, limits.Or(executor.DefaultLimits)); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name       string
		argv       []string
		env        map[string]string
		input      string
		want       string
		wantStdout string
		sameAsPrev bool
	}{
		{name: "stdin, env and the Cog variables reach the command", argv: []string{"sh", "-c", `read x; echo "$x $TOKEN $COG_COMMAND"; touch mine`}, env: map[string]string{"TOKEN": "t0k"}, input: `{"a":1}` + "\n", want: "RunSucceeded", wantStdout: "{\"a\":1} t0k hello\n"},
		{name: "the next run starts in an empty work dir", argv: []string{"sh", "-c", "ls -A | wc -l"}, want: "RunSucceeded", wantStdout: "0\n", sameAsPrev: true},
		{name: "a command ignoring SIGTERM is killed at its timeout", argv: []string{"sh", "-c", "trap '' TERM; while :; do sleep 1; done"}, want: "RunTimedOut", sameAsPrev: true},
		{name: "a container that ran a killed command is replaced", argv: []string{"echo", "fresh container"}, want: "RunSucceeded", wantStdout: "fresh container\n"},
		{name: "a missing executable fails the run", argv: []string{"/no/such/program"}, want: "RunFailed", sameAsPrev: true},
		{name: "after MaxInvocations the container is recycled", argv: []string{"echo", "third"}, want: "RunSucceeded", wantStdout: "third\n", sameAsPrev: true},
		{name: "and the next run gets a new one", argv: []string{"echo", "recycled"}, want: "RunSucceeded", wantStdout: "recycled\n"},
	}
	prev := ""
	for _, s := range steps {
		id := runID(t)
		req := runbus.RunRequest{RunID: id, Env: s.env, Request: run.RunRequested{
			RequestID: "warm", Command: "hello", Image: img, Argv: s.argv, Mode: run.ModeWarm, User: &run.DefaultUser, Limits: limits, Input: []byte(s.input),
		}}
		for name := range s.env {
			req.Request.EnvNames = append(req.Request.EnvNames, name)
		}
		if err := e.Execute(req); err != nil {
			t.Fatal(err)
		}
		events := store.Payloads(run.Stream(id))
		terminal := executortest.Terminal(t, events)
		if terminal.EventType() != s.want {
			t.Fatalf("%s: terminal %+v, want %s", s.name, terminal, s.want)
		}
		if got := string(executortest.Output(events, run.Stdout)); got != s.wantStdout {
			t.Fatalf("%s: stdout %q, want %q", s.name, got, s.wantStdout)
		}
		if strings.Contains(executortest.Types(events), "ContainerCreated") {
			t.Fatalf("%s: a warm run created a container: %s", s.name, executortest.Types(events))
		}
		started := warmStarted(events)
		if s.want != "RunFailed" {
			if !started.Warm || started.ContainerID == "" {
				t.Fatalf("%s: ContainerStarted = %+v, want warm with its container", s.name, started)
			}
			if (started.ContainerID == prev) != s.sameAsPrev {
				t.Fatalf("%s: container %s after %s, want same=%v", s.name, started.ContainerID[:12], prev, s.sameAsPrev)
			}
			prev = started.ContainerID
		}
	}
	if n := poolContainers(t, cli, owner, 1); n != 1 {
		t.Fatalf("%d pool containers with a pool size of 1", n)
	}
	info, err := cli.ContainerInspect(context.Background(), prev)
	if err != nil {
		t.Fatal(err)
	}
	added := make([]string, len(info.HostConfig.CapAdd))
	for i, c := range info.HostConfig.CapAdd {
		added[i] = strings.TrimPrefix(c, "CAP_") // the daemon names them either way
	}
	slices.Sort(added)
	if hc := info.HostConfig; info.Config.User != "0:0" || strings.Join(hc.CapDrop, ",") != "ALL" || strings.Join(added, ",") != "KILL,SETGID,SETUID" || hc.IpcMode != "private" {
		t.Fatalf("warm container: user %q, caps -%v +%v, ipc %q; want the agent root with only SETUID, SETGID and KILL, and private IPC", info.Config.User, hc.CapDrop, hc.CapAdd, hc.IpcMode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := poolContainers(t, cli, owner, 0); n != 0 {
		t.Fatalf("%d pool containers left after Close", n)
	}
}

func TestDockerWarmRunIsStoppedOnCancel(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	rt := newWarmRuntime(t, cli, docker.WarmConfig{AgentPath: dockertest.Agent(t), PoolSize: 1})
	e, store := executortest.NewExecutor(t, rt, executor.Config{KillGrace: 500 * time.Millisecond})
	id := runID(t)
	done := make(chan error, 1)
	go func() {
		done <- e.Execute(runbus.RunRequest{RunID: id, Request: run.RunRequested{RequestID: "c", Image: img, Argv: []string{"sleep", "60"}, Mode: run.ModeWarm, User: &run.DefaultUser, Limits: testLimits}})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(executortest.Types(store.Payloads(run.Stream(id))), "ContainerStarted") {
		if time.Now().After(deadline) {
			t.Fatal("the warm run never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.Cancel(runbus.CancelRequest{RunID: id, Actor: "alice"})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, ok := executortest.Terminal(t, store.Payloads(run.Stream(id))).(run.RunCancelled); !ok {
		t.Fatalf("events %s, want RunCancelled", executortest.Types(store.Payloads(run.Stream(id))))
	}
}

// TestDockerAgentHostileCommandsAreContained checks, in warm and in
// single-use containers (both run commands through the agent), what each
// hostile command could not do, never which event of several contained
// endings the scheduler picked, and that the pool still answers
// afterwards.
func TestDockerAgentHostileCommandsAreContained(t *testing.T) {
	t.Parallel()
	for _, mode := range []run.Mode{run.ModeWarm, run.ModeSingleUse} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			hostileCommandsAreContained(t, mode)
		})
	}
}

func hostileCommandsAreContained(t *testing.T, mode run.Mode) {
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	rt := newWarmRuntime(t, cli, docker.WarmConfig{AgentPath: dockertest.Agent(t), PoolSize: 2})
	e, store := executortest.NewExecutor(t, rt, executor.Config{KillGrace: 500 * time.Millisecond})
	tests := []struct {
		name   string
		argv   []string
		limits run.Limits
		check  func(t *testing.T, stopped run.ContainerStopped, stdout, stderr []byte, terminal domain.Payload)
	}{
		{"a fork bomb is held to the pids limit and stopped", []string{"sh", "-c", forkBomb}, run.Limits{TimeoutMS: 4000, Pids: 32},
			func(t *testing.T, stopped run.ContainerStopped, stdout, stderr []byte, terminal domain.Payload) {
				checkForkBombContained(t, 32, stopped, stdout, stderr, terminal)
			}},
		// dd fills a 64 MiB buffer at once: over the limit within
		// milliseconds, whatever the machine's load (a shell reading
		// 200 MB from a pipe took over the run's 10 s on a busy machine).
		{"a memory bomb is killed", []string{"sh", "-c", `exec dd if=/dev/zero of=/dev/null bs=64M count=1`}, run.Limits{MemoryBytes: 32 << 20},
			func(t *testing.T, stopped run.ContainerStopped, _, _ []byte, terminal domain.Payload) {
				if _, ok := terminal.(run.RunFailed); !ok || stopped.Signal != "SIGKILL" {
					t.Errorf("terminal %+v, stopped %+v: want the bomb killed", terminal, stopped)
				}
			}},
		{"the root filesystem cannot be written", []string{"touch", "/bin/evil"}, run.Limits{},
			func(t *testing.T, _ run.ContainerStopped, _, stderr []byte, terminal domain.Payload) {
				if _, ok := terminal.(run.RunFailed); !ok || !bytes.Contains(stderr, []byte("Read-only file system")) {
					t.Errorf("terminal %+v, stderr %q: want a read-only file system error", terminal, stderr)
				}
			}},
		{"the agent cannot be replaced", []string{"sh", "-c", "echo x > /.logbook/agent"}, run.Limits{},
			func(t *testing.T, _ run.ContainerStopped, _, stderr []byte, terminal domain.Payload) {
				if _, ok := terminal.(run.RunFailed); !ok || !bytes.Contains(stderr, []byte("Read-only file system")) {
					t.Errorf("terminal %+v, stderr %q: want a read-only file system error", terminal, stderr)
				}
			}},
		{"the agent and init can be neither signalled nor read", []string{"sh", "-c", `kill -9 $PPID 1 2>/dev/null || echo "kill: refused"; cat /proc/$PPID/environ 2>/dev/null || echo "environ: refused"; echo "uid=$(id -u)"`}, run.Limits{},
			func(t *testing.T, _ run.ContainerStopped, stdout, _ []byte, terminal domain.Payload) {
				if _, ok := terminal.(run.RunSucceeded); !ok || string(stdout) != "kill: refused\nenviron: refused\nuid=65534\n" {
					t.Errorf("terminal %+v, stdout %q: want both refused, as nobody", terminal, stdout)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := runID(t)
			if err := e.Execute(runbus.RunRequest{RunID: id, Request: run.RunRequested{RequestID: "h", Image: img, Argv: tt.argv, Mode: mode, User: &run.DefaultUser, Limits: tt.limits.Or(testLimits)}}); err != nil {
				t.Fatal(err)
			}
			events := store.Payloads(run.Stream(id))
			var stopped run.ContainerStopped
			for _, p := range events {
				if p, ok := p.(run.ContainerStopped); ok {
					stopped = p
				}
			}
			tt.check(t, stopped, executortest.Output(events, run.Stdout), executortest.Output(events, run.Stderr), executortest.Terminal(t, events))
		})
	}
	id := runID(t)
	if err := e.Execute(runbus.RunRequest{RunID: id, Request: run.RunRequested{RequestID: "h", Image: img, Argv: []string{"echo", "ok"}, Mode: mode, User: &run.DefaultUser, Limits: testLimits}}); err != nil {
		t.Fatal(err)
	}
	if got := string(executortest.Output(store.Payloads(run.Stream(id)), run.Stdout)); got != "ok\n" {
		t.Fatalf("after the hostile commands the pool answers %q", got)
	}
}

func TestDockerWarmAndSingleUseWithoutAUsableAgentFailTheRunClearly(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	ownerOnly := filepath.Join(t.TempDir(), "logbook-agent")
	if err := os.WriteFile(ownerOnly, []byte("#!"), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		agent string
		want  string
	}{
		{"no agent", "", "LOGBOOK_AGENT_PATH"},
		{"an agent only its owner may run: the clean-up runs as the run's user", ownerOnly, "executable by every user (chmod 755)"},
	}
	for _, tt := range tests {
		for _, mode := range []run.Mode{run.ModeWarm, run.ModeSingleUse} {
			t.Run(string(mode)+", "+tt.name, func(t *testing.T) {
				t.Parallel()
				e, store := executortest.NewExecutor(t, newWarmRuntime(t, cli, docker.WarmConfig{AgentPath: tt.agent}), executor.Config{})
				id := runID(t)
				if err := e.Execute(runbus.RunRequest{RunID: id, Request: run.RunRequested{RequestID: "n", Image: img, Argv: []string{"true"}, Mode: mode, User: &run.DefaultUser}}); err != nil {
					t.Fatal(err)
				}
				failed, ok := executortest.Terminal(t, store.Payloads(run.Stream(id))).(run.RunFailed)
				if !ok || !strings.Contains(failed.Reason, tt.want) {
					t.Fatalf("terminal = %+v, want RunFailed saying %q", failed, tt.want)
				}
			})
		}
	}
}

// leaveEverything is a run that tries to leave something for the next run
// in its warm container: files in /tmp, in its work dir, in /dev/shm, a
// POSIX message queue, a directory it locked, SysV IPC objects, processes
// in and out of its process group, and variables in its environment.
const leaveEverything = `echo secret-from-run-1 > /tmp/left
echo here > left-in-workdir
echo shared > /dev/shm/left
touch /dev/mqueue/left
mkdir -p /tmp/locked/inner && touch /tmp/locked/inner/f && chmod 000 /tmp/locked/inner /tmp/locked
sysvipc >/dev/null
setsid sleep 1001 &
sleep 1002 &
(sh -c 'sleep 1003' &)
export LEFT=1
# Ends once the three sleeps run, so the next run would find them.
until [ "$n" = 3 ]; do
  n=0
  for p in /proc/[0-9]*; do case "$(tr '\0' ' ' < $p/cmdline)" in "sleep 100"*) n=$((n+1));; esac; done
done
echo "pwd=$PWD"`

// lookAround reports what a run finds of the runs before it.
const lookAround = `echo "pwd=$PWD"
echo "workdir=$(ls -A)"
echo "tmp=$(ls -A /tmp)"
echo "shm=$(ls -A /dev/shm)"
echo "mqueue=$(ls -A /dev/mqueue)"
echo "secret=${SECRET-unset} left=${LEFT-unset}"
echo "ipc=$(cat /proc/sysvipc/shm /proc/sysvipc/sem /proc/sysvipc/msg | wc -l)"
cat /tmp/left 2>/dev/null
for p in /proc/[0-9]*; do echo "process $(tr '\0' ' ' < $p/cmdline)"; done`

// A warm container serves whoever asks next: after each run it must be as
// it was before, with nothing the run left visible to the next one.
func TestDockerWarmRunLeavesNothingForTheNext(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.ImageWithSysVIPC(t, cli)
	rt := newWarmRuntime(t, cli, docker.WarmConfig{AgentPath: dockertest.Agent(t), PoolSize: 1})
	e, store := executortest.NewExecutor(t, rt, executor.Config{KillGrace: 500 * time.Millisecond})
	warmRun := func(argv []string, env map[string]string) (string, string) {
		t.Helper()
		id := runID(t)
		req := runbus.RunRequest{RunID: id, Env: env, Request: run.RunRequested{RequestID: "leave", Image: img, Argv: argv, Mode: run.ModeWarm, User: &run.DefaultUser, Limits: testLimits}}
		for name := range env {
			req.Request.EnvNames = append(req.Request.EnvNames, name)
		}
		if err := e.Execute(req); err != nil {
			t.Fatal(err)
		}
		events := store.Payloads(run.Stream(id))
		if _, ok := executortest.Terminal(t, events).(run.RunSucceeded); !ok {
			t.Fatalf("%s: %s, stderr %q", argv[len(argv)-1][:20], executortest.Types(events), executortest.Output(events, run.Stderr))
		}
		return string(executortest.Output(events, run.Stdout)), warmStarted(events).ContainerID
	}

	first, container := warmRun([]string{"sh", "-c", leaveEverything}, map[string]string{"SECRET": "run-1-secret"})
	report, again := warmRun([]string{"sh", "-c", lookAround}, nil)
	if again != container {
		t.Fatalf("the second run went to container %.12s, not %.12s: the first was not reused", again, container)
	}
	lines := strings.Split(strings.TrimSpace(report), "\n")
	field := func(name string) string {
		for _, l := range lines {
			if v, ok := strings.CutPrefix(l, name+"="); ok {
				return v
			}
		}
		t.Fatalf("no %s= in %q", name, report)
		return ""
	}
	pwd := field("pwd")
	checks := []struct {
		what string
		ok   bool
	}{
		{"a new working directory", "pwd="+pwd+"\n" != first && strings.HasPrefix(pwd, "/tmp/run-")},
		{"an empty work dir", field("workdir") == ""},
		{"nothing in /tmp but its own work dir", "/tmp/"+field("tmp") == pwd},
		{"nothing in /dev/shm", field("shm") == ""},
		{"no message queue", field("mqueue") == ""},
		{"none of the first run's environment", field("secret") == "unset left=unset"},
		{"no SysV IPC object (only the three headers)", field("ipc") == "3"},
		{"not the first run's file", !strings.Contains(report, "secret-from-run-1")},
		{"none of the first run's processes", !strings.Contains(report, "sleep 100")},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("the second run did not find %s:\n%s", c.what, report)
		}
	}
}

// The agent of a warm container runs as root; a command never does.
func TestDockerWarmCommandsNeverRunAsRoot(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	e, store := executortest.NewExecutor(t, newWarmRuntime(t, cli, docker.WarmConfig{AgentPath: dockertest.Agent(t), PoolSize: 1}), executor.Config{})
	tests := []struct {
		name string
		user *run.User
		want string
	}{
		{"uid 0 must run fresh", &run.User{UID: 0, GID: 0}, "a warm command cannot run as uid 0 (root), the user of the warm container's agent: it must run fresh"},
		{"a run recorded before runs named their user would run as root", nil, "this run names no user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := runID(t)
			if err := e.Execute(runbus.RunRequest{RunID: id, Request: run.RunRequested{RequestID: "r", Image: img, Argv: []string{"id"}, Mode: run.ModeWarm, User: tt.user, Limits: testLimits}}); err != nil {
				t.Fatal(err)
			}
			events := store.Payloads(run.Stream(id))
			if failed, ok := executortest.Terminal(t, events).(run.RunFailed); !ok || !strings.Contains(failed.Reason, tt.want) || strings.Contains(executortest.Types(events), "ContainerStarted") {
				t.Fatalf("events %s, terminal %+v: want RunFailed before anything ran, saying %q", executortest.Types(events), executortest.Terminal(t, events), tt.want)
			}
		})
	}
}

// Given a warm pool prewarmed with one container and room for three, when
// three runs arrive at once, the pool grows in the background until all
// three run at the same time, each in a container of its own.
func TestDockerWarmPoolGrowsWhileRunsWait(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	rt := newWarmRuntime(t, cli, docker.WarmConfig{AgentPath: dockertest.Agent(t), PoolSize: 3, Prewarm: 1})
	if err := rt.Prewarm(ctx, img, testLimits); err != nil {
		t.Fatal(err)
	}
	if got := rt.WarmStatus(); len(got) != 1 || got[0].Live != 1 {
		t.Fatalf("after Prewarm: %+v, want one container", got)
	}
	e, _ := executortest.NewExecutor(t, rt, executor.Config{Concurrency: 3})
	limits := testLimits
	limits.TimeoutMS = 120_000
	ids := []string{runID(t) + "-a", runID(t) + "-b", runID(t) + "-c"}
	done := make(chan error, len(ids))
	for _, id := range ids {
		go func() {
			done <- e.Execute(runbus.RunRequest{RunID: id, Request: run.RunRequested{RequestID: "g", Image: img, Argv: []string{"sleep", "600"}, Mode: run.ModeWarm, User: &run.DefaultUser, Limits: limits}})
		}()
	}
	busy := func() bool {
		st := rt.WarmStatus()
		return len(st) == 1 && st[0].Live == 3 && st[0].Idle == 0
	}
	for deadline := time.Now().Add(90 * time.Second); !busy(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the pool never ran three at once: %+v", rt.WarmStatus())
		}
	}
	for _, id := range ids {
		e.Cancel(runbus.CancelRequest{RunID: id, Actor: "test"})
	}
	for range ids {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// With AgentVolume (a runtime in a container, whose path to the agent the
// Docker host has not), warm and single-use containers get the agent from
// a volume the runtime filled through the Engine API, mounted read-only,
// and run commands as with the bind mount; Close removes the volume.
func TestDockerWarmAndSingleUseRunTheAgentFromAVolume(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	owner := runID(t)
	rt, err := docker.NewRuntimeWithConfig(docker.Config{Engine: cli, Owner: owner, Logger: zerolog.New(zerolog.NewTestWriter(t)),
		Warm: docker.WarmConfig{AgentPath: dockertest.Agent(t), AgentMount: docker.AgentVolume, PoolSize: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(context.Background()) })
	e, store := executortest.NewExecutor(t, rt, executor.Config{})
	agentVolumes := func() []string {
		list, err := cli.VolumeList(context.Background(), volume.ListOptions{Filters: filters.NewArgs(filters.Arg("label", docker.LabelOwner+"="+owner), filters.Arg("label", docker.LabelAgent))})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, v := range list.Volumes {
			names = append(names, v.Name)
		}
		return names
	}
	for _, mode := range []run.Mode{run.ModeWarm, run.ModeSingleUse, run.ModeWarm} {
		id := runID(t)
		if err := e.Execute(runbus.RunRequest{RunID: id, Request: run.RunRequested{RequestID: "v", Image: img, Argv: []string{"echo", "from " + string(mode)},
			Mode: mode, User: &run.DefaultUser, Limits: testLimits}}); err != nil {
			t.Fatal(err)
		}
		events := store.Payloads(run.Stream(id))
		if _, ok := executortest.Terminal(t, events).(run.RunSucceeded); !ok {
			t.Fatalf("%s run: %s, want RunSucceeded", mode, executortest.Types(events))
		}
		if got := string(executortest.Output(events, run.Stdout)); got != "from "+string(mode)+"\n" {
			t.Fatalf("%s run: stdout %q", mode, got)
		}
	}
	volumes := agentVolumes()
	if len(volumes) != 1 {
		t.Fatalf("agent volumes of the runtime: %v, want one", volumes)
	}
	list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", docker.LabelOwner+"="+owner), filters.Arg("label", docker.LabelPool))})
	if err != nil || len(list) == 0 {
		t.Fatalf("no pool container of the runtime: %v", err)
	}
	inspected := 0
	for _, c := range list {
		info, err := cli.ContainerInspect(context.Background(), c.ID)
		if cerrdefs.IsNotFound(err) {
			continue // a used single-use container, removed since the list
		}
		if err != nil {
			t.Fatal(err)
		}
		inspected++
		if len(info.Mounts) != 1 || info.Mounts[0].Type != mount.TypeVolume || info.Mounts[0].Name != volumes[0] || info.Mounts[0].RW || info.Mounts[0].Destination != "/.logbook" {
			t.Fatalf("pool container %s mounts %+v, want only volume %s read-only at /.logbook", c.ID[:12], info.Mounts, volumes[0])
		}
		if !info.HostConfig.ReadonlyRootfs || !slices.Contains(info.HostConfig.SecurityOpt, "no-new-privileges") {
			t.Fatalf("pool container %s: read-only root %v, security %v", c.ID[:12], info.HostConfig.ReadonlyRootfs, info.HostConfig.SecurityOpt)
		}
	}
	if inspected == 0 { // the warm container stays until Close
		t.Fatalf("no pool container of the runtime left to inspect among %d listed", len(list))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if left := agentVolumes(); len(left) != 0 {
		t.Fatalf("agent volumes left after Close: %v", left)
	}
}
