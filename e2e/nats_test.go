package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/natsbus/natstest"
)

// executorProc is a running `logbook executor`.
type executorProc struct {
	id     string
	cmd    *exec.Cmd
	logs   *syncBuffer
	exited chan error
}

// natsEnv is what serve needs to use nats as its bus.
func natsEnv(nats *natstest.Server) []string {
	return []string{"LOGBOOK_BUS_URL=" + nats.URL, "LOGBOOK_BUS_USER=" + natstest.ServerUser, "LOGBOOK_BUS_PASSWORD=" + nats.PasswordOf(natstest.ServerUser)}
}

func startExecutor(t *testing.T, nats *natstest.Server, id string, groups []string, env ...string) *executorProc {
	t.Helper()
	e := &executorProc{id: id, logs: &syncBuffer{}, exited: make(chan error, 1)}
	e.cmd = exec.Command(binary, "executor")
	base := []string{"LOGBOOK_LOG_FORMAT=json", "LOGBOOK_BUS_URL=" + nats.URL, "LOGBOOK_BUS_USER=" + id, "LOGBOOK_BUS_PASSWORD=" + nats.PasswordOf(id),
		"LOGBOOK_EXECUTOR_ID=" + id, "LOGBOOK_EXECUTOR_GROUPS=" + strings.Join(groups, ","), "LOGBOOK_HEARTBEAT_INTERVAL=500ms",
		"LOGBOOK_DATA_DIR=" + filepath.Join(t.TempDir(), "no-data")}
	e.cmd.Env = append(os.Environ(), append(base, env...)...)
	e.cmd.Stdout, e.cmd.Stderr = e.logs, e.logs
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { e.exited <- e.cmd.Wait() }()
	t.Cleanup(func() {
		_ = e.cmd.Process.Kill()
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
	s := startServer(t, append(append(env, natsEnv(nats)...), "LOGBOOK_RUNTIME=docker")...)
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
	if got := strings.Join(typesOf(events, runStream), " "); !strings.HasPrefix(got, "RunRequested RunClaimed ContainerCreated ContainerStarted OutputChunk ContainerStopped RunSucceeded") {
		t.Fatalf("%s: %s", runStream, got)
	}
	if out, err := cli(t, s, token, env, "audit", "verify"); err != nil || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
}
