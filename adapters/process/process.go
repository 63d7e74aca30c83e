// Package process is a Runtime that runs commands as plain host processes
// with os/exec. It exists for development on machines without Docker and
// isolates NOTHING: a command can read and write whatever the executor's
// user can, and reach the network. It enforces only the timeout (SIGTERM to
// the process group, then SIGKILL) and, through the executor, the output cap.
package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/logbookhq/logbook/executor"
)

// Config configures the process runtime.
type Config struct {
	// WorkRoot holds each run's fresh work dir (os.TempDir()).
	WorkRoot string
	// PassEnv names host variables passed to every command (PATH).
	PassEnv []string
	Logger  zerolog.Logger
}

// Runtime runs commands on the host. Safe for concurrent use.
type Runtime struct {
	cfg Config

	mu   sync.Mutex
	seen map[string]bool // run ids started by this process
}

var _ executor.Runtime = (*Runtime)(nil)

// New returns a process runtime and warns, loudly, that it is unisolated.
func New(cfg Config) *Runtime {
	if cfg.WorkRoot == "" {
		cfg.WorkRoot = os.TempDir()
	}
	if cfg.PassEnv == nil {
		cfg.PassEnv = []string{"PATH"}
	}
	cfg.Logger.Warn().Msg("PROCESS RUNTIME: commands run as plain host processes, UNISOLATED (no container, no network or filesystem limits). Use it for development only.")
	return &Runtime{cfg: cfg, seen: map[string]bool{}}
}

// Run implements executor.Runtime.
func (r *Runtime) Run(ctx context.Context, spec executor.Spec, sink executor.Sink) (executor.Outcome, error) {
	log := zerolog.Ctx(ctx)
	if len(spec.Argv) == 0 {
		return executor.Outcome{}, executor.Errorf(executor.ErrInvalidSpec, nil, "run %s has no argv", spec.RunID)
	}
	r.mu.Lock()
	if r.seen[spec.RunID] {
		r.mu.Unlock()
		return executor.Outcome{}, executor.Errorf(executor.ErrAlreadyExists, nil, "run %s was already started by this process", spec.RunID)
	}
	r.seen[spec.RunID] = true
	r.mu.Unlock()

	dir, err := os.MkdirTemp(r.cfg.WorkRoot, "logbook-run-"+spec.RunID+"-")
	if err != nil {
		return executor.Outcome{}, executor.Errorf(executor.ErrUnavailable, err, "cannot make a work dir for run %s", spec.RunID)
	}
	release := func(context.Context) error { return os.RemoveAll(dir) }

	cmd := exec.Command(spec.Argv[0], spec.Argv[1:]...)
	cmd.Dir = dir
	cmd.Env = r.env(spec, dir)
	cmd.Stdin = bytes.NewReader(spec.Stdin)
	cmd.Stdout = sink.Stdout()
	cmd.Stderr = sink.Stderr()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Output pipes held open by a leftover background process must not keep
	// the run waiting once the command itself has exited.
	cmd.WaitDelay = time.Second

	log.Warn().Str("argv0", spec.Argv[0]).Msg("running UNISOLATED on the host (process runtime)")
	started := time.Now()
	if err := cmd.Start(); err != nil {
		_ = release(ctx)
		return executor.Outcome{}, executor.Errorf(executor.ErrInvalidSpec, err, "cannot start %q", spec.Argv[0])
	}
	sink.ContainerStarted("", false)
	pgid := cmd.Process.Pid

	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	out := executor.Outcome{Started: true, Release: release}
	var timeout <-chan time.Time
	if d := spec.Limits.Timeout(); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	var waitErr error
	select {
	case waitErr = <-waited:
	case <-timeout:
		out.TimedOut = true
		waitErr = stopGroup(pgid, spec.KillGrace, waited)
	case <-ctx.Done():
		out.Stopped = true
		waitErr = stopGroup(pgid, spec.KillGrace, waited)
	}
	out.Duration = time.Since(started)
	_ = unix.Kill(-pgid, unix.SIGKILL) // reap whatever the command left running

	var exitErr *exec.ExitError
	switch {
	case waitErr == nil:
	case errors.As(waitErr, &exitErr):
	case errors.Is(waitErr, exec.ErrWaitDelay):
	default:
		return out, executor.Errorf(executor.ErrUnavailable, waitErr, "waiting for run %s", spec.RunID)
	}
	if ps := cmd.ProcessState; ps != nil {
		out.ExitCode = ps.ExitCode()
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			out.Signal = unix.SignalName(ws.Signal())
			out.ExitCode = 128 + int(ws.Signal())
		}
	}
	return out, nil
}

func (r *Runtime) env(spec executor.Spec, dir string) []string {
	env := make([]string, 0, len(spec.Env)+len(r.cfg.PassEnv)+2)
	for _, name := range r.cfg.PassEnv {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	env = append(env, "HOME="+dir, "TMPDIR="+dir)
	return append(env, spec.Env...)
}

// stopGroup sends SIGTERM to the command's process group, then SIGKILL after
// grace, and returns the command's wait result.
func stopGroup(pgid int, grace time.Duration, waited <-chan error) error {
	_ = unix.Kill(-pgid, unix.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-waited:
		return err
	case <-t.C:
		_ = unix.Kill(-pgid, unix.SIGKILL)
		return <-waited
	}
}

// String names the runtime in logs and benchmarks.
func (r *Runtime) String() string {
	return fmt.Sprintf("process (unisolated, work dirs in %s)", r.cfg.WorkRoot)
}
