package docker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
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
			RequestID: "warm", Command: "hello", Image: img, Argv: s.argv, Mode: run.ModeWarm, Limits: limits, Input: []byte(s.input),
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
		done <- e.Execute(runbus.RunRequest{RunID: id, Request: run.RunRequested{RequestID: "c", Image: img, Argv: []string{"sleep", "60"}, Mode: run.ModeWarm, Limits: testLimits}})
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

func TestDockerWarmHostileCommandsAreContained(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	rt := newWarmRuntime(t, cli, docker.WarmConfig{AgentPath: dockertest.Agent(t), PoolSize: 2})
	e, store := executortest.NewExecutor(t, rt, executor.Config{KillGrace: 500 * time.Millisecond})
	tests := []struct {
		name   string
		argv   []string
		limits run.Limits
		want   string
	}{
		{"a fork bomb is stopped at its timeout", []string{"sh", "-c", `b() { b | b & }; b; sleep 30`}, run.Limits{TimeoutMS: 2000, Pids: 32}, "RunTimedOut"},
		{"a memory bomb is killed", []string{"sh", "-c", `x=$(head -c 200000000 /dev/zero | tr '\0' a); echo survived`}, run.Limits{MemoryBytes: 32 << 20}, "RunFailed"},
		{"the root filesystem cannot be written", []string{"touch", "/bin/evil"}, run.Limits{}, "RunFailed"},
		{"the agent cannot be replaced", []string{"sh", "-c", "echo x > /.logbook/agent"}, run.Limits{}, "RunFailed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := runID(t)
			if err := e.Execute(runbus.RunRequest{RunID: id, Request: run.RunRequested{RequestID: "h", Image: img, Argv: tt.argv, Mode: run.ModeWarm, Limits: tt.limits.Or(testLimits)}}); err != nil {
				t.Fatal(err)
			}
			events := store.Payloads(run.Stream(id))
			if got := executortest.Terminal(t, events); got.EventType() != tt.want {
				t.Fatalf("terminal %+v, want %s", got, tt.want)
			}
			if tt.want == "RunFailed" && strings.Contains(string(executortest.Output(events, run.Stdout)), "survived") {
				t.Fatal("the memory bomb survived")
			}
		})
	}
	id := runID(t)
	if err := e.Execute(runbus.RunRequest{RunID: id, Request: run.RunRequested{RequestID: "h", Image: img, Argv: []string{"echo", "ok"}, Mode: run.ModeWarm, Limits: testLimits}}); err != nil {
		t.Fatal(err)
	}
	if got := string(executortest.Output(store.Payloads(run.Stream(id)), run.Stdout)); got != "ok\n" {
		t.Fatalf("after the hostile commands the pool answers %q", got)
	}
}

func TestDockerWarmWithoutAnAgentFailsTheRunClearly(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	e, store := executortest.NewExecutor(t, newWarmRuntime(t, cli, docker.WarmConfig{}), executor.Config{})
	id := runID(t)
	if err := e.Execute(runbus.RunRequest{RunID: id, Request: run.RunRequested{RequestID: "n", Image: img, Argv: []string{"true"}, Mode: run.ModeWarm}}); err != nil {
		t.Fatal(err)
	}
	failed, ok := executortest.Terminal(t, store.Payloads(run.Stream(id))).(run.RunFailed)
	if !ok || !strings.Contains(failed.Reason, "LOGBOOK_AGENT_PATH") {
		t.Fatalf("terminal = %+v, want RunFailed saying how to provide the agent", failed)
	}
}
