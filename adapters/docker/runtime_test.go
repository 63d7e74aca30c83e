package docker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
func (s *captureSink) ContainerStarted(string, bool) { s.started = true }
func (s *captureSink) Stdout() io.Writer             { return lockedWriter{&s.mu, &s.stdout} }
func (s *captureSink) Stderr() io.Writer             { return lockedWriter{&s.mu, &s.stderr} }

func newRuntime(t *testing.T, eng docker.Engine) *docker.Runtime {
	t.Helper()
	rt, err := docker.NewRuntimeWithConfig(docker.Config{Engine: eng, Logger: zerolog.New(zerolog.NewTestWriter(t))})
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
		{"init", hc.Init != nil && *hc.Init},
		{"memory limit without swap", hc.Memory == testLimits.MemoryBytes && hc.MemorySwap == hc.Memory},
		{"cpu limit", hc.NanoCPUs == testLimits.NanoCPUs},
		{"pids limit", hc.PidsLimit != nil && *hc.PidsLimit == testLimits.Pids},
		{"no auto-remove", !hc.AutoRemove},
		{"run id label", info.Config.Labels[docker.LabelRunID] == id && info.Config.Labels[docker.LabelRequestID] == "req-1"},
		{"name from the run id", info.Name == "/"+docker.ContainerName(id)},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("container is not hardened: %s", c.name)
		}
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

// TestDockerHostileCommandsAreContained runs each hostile command through
// the executor, checks its terminal event, and then checks the executor
// still runs an ordinary command.
func TestDockerHostileCommandsAreContained(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	rt := newRuntime(t, cli)
	e, store := executortest.NewExecutor(t, rt, executor.Config{Concurrency: 4, KillGrace: time.Second})
	tests := []struct {
		name   string
		argv   []string
		limits run.Limits
		want   string // terminal event type
		check  func(t *testing.T, stopped run.ContainerStopped, stdout, stderr []byte, truncated bool, terminal any)
	}{
		{
			name: "a fork bomb hits the pids limit and is stopped at its timeout",
			argv: []string{"sh", "-c", `b() { b | b & }; b; sleep 30`}, limits: run.Limits{TimeoutMS: 2000, Pids: 32}, want: "RunTimedOut",
		},
		{
			name: "a memory bomb is killed for running out of memory",
			argv: []string{"sh", "-c", `x=$(head -c 200000000 /dev/zero | tr '\0' a); echo survived`}, limits: run.Limits{MemoryBytes: 32 << 20}, want: "RunFailed",
			check: func(t *testing.T, stopped run.ContainerStopped, stdout, _ []byte, _ bool, terminal any) {
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
			check: func(t *testing.T, _ run.ContainerStopped, stdout, _ []byte, truncated bool, _ any) {
				if !truncated || len(stdout) != 64<<10 || !bytes.HasPrefix(stdout, []byte("y\ny\n")) {
					t.Errorf("kept %d bytes (truncated %v), want exactly the 64 KiB cap", len(stdout), truncated)
				}
			},
		},
		{
			name: "a command that never exits is terminated at its timeout",
			argv: []string{"sleep", "1000"}, limits: run.Limits{TimeoutMS: 1000}, want: "RunTimedOut",
			check: func(t *testing.T, stopped run.ContainerStopped, _, _ []byte, _ bool, _ any) {
				if stopped.Signal != "SIGTERM" {
					t.Errorf("stopped = %+v, want ended by SIGTERM", stopped)
				}
			},
		},
		{
			name: "a command ignoring SIGTERM is killed after the grace",
			argv: []string{"sh", "-c", `trap '' TERM; while :; do sleep 1; done`}, limits: run.Limits{TimeoutMS: 1000}, want: "RunTimedOut",
			check: func(t *testing.T, stopped run.ContainerStopped, _, _ []byte, _ bool, _ any) {
				if stopped.Signal != "SIGKILL" {
					t.Errorf("stopped = %+v, want ended by SIGKILL", stopped)
				}
			},
		},
		{
			name: "the network cannot be reached",
			argv: []string{"sh", "-c", `ls /sys/class/net; wget -T 2 -q -O - http://1.1.1.1/ || exit 9`}, want: "RunFailed",
			check: func(t *testing.T, stopped run.ContainerStopped, stdout, _ []byte, _ bool, _ any) {
				if stopped.ExitCode != 9 || string(stdout) != "lo\n" {
					t.Errorf("exit %d, stdout %q: want only loopback and a failed fetch", stopped.ExitCode, stdout)
				}
			},
		},
		{
			name: "the root filesystem cannot be written",
			argv: []string{"touch", "/bin/evil"}, want: "RunFailed",
			check: func(t *testing.T, _ run.ContainerStopped, _, stderr []byte, _ bool, _ any) {
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
			if terminal.EventType() != tt.want {
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
			if tt.check != nil {
				tt.check(t, stopped, executortest.Output(events, run.Stdout), executortest.Output(events, run.Stderr), truncated, terminal)
			}
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
