// Command logbook-agent runs inside a warm or single-use container. The
// docker runtime mounts it read-only (bound from its path, or from a volume
// it filled) and talks to it over the
// container's attached stdio with agentproto frames. For each request it forks the command as the
// request's unprivileged user, in a fresh work dir under /tmp, with the
// request's env and stdin; streams stdout and stderr back; enforces the
// timeout (SIGTERM to the command's process group, then SIGKILL); ends every
// process the run started and reports the exit; then removes what the run
// left and reports whether the container is as it was (isolation.go). It
// refuses to run a command as root, its own user. With --one-run
// (agentproto.OneRunArg, in a single-use container) it serves one request and ends after its exit:
// the container is removed, so there is nothing to clean up. With
// --prime=PATH (agentproto.PrimeArg) it reads PATH before it says it is
// ready (prime.go). It is built
// static (CGO_ENABLED=0) so it runs in any image, even FROM scratch.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/logbookhq/logbook/adapters/docker/agentproto"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// The main goroutine keeps the main thread to itself. The clean-up takes a
// run's user on a thread of its own (asUserOnAThread), which the Go
// runtime must be able to end afterwards; it cannot end the main thread,
// which would stay with the run's user, and the kernel checks that
// thread's credentials when someone signals the agent or opens its /proc
// entries: the next run could then signal the agent.
func init() { runtime.LockOSThread() }

func main() {
	args, err := parseArgs(os.Args[1:])
	if err == nil {
		prime(args.prime)
		var iso *containerIsolation
		if iso, err = newContainerIsolation(); err == nil {
			err = serve(os.Stdin, os.Stdout, os.TempDir(), iso, args.oneRun)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "logbook-agent:", err)
		os.Exit(1)
	}
}

// isolation is what the agent does around each command that only makes
// sense inside its warm container. Unit tests run on the host and use one
// that touches only what the test made.
type isolation interface {
	// prepare makes cmd run as uid:gid in workDir.
	prepare(cmd *exec.Cmd, uid, gid int64, workDir string) error
	// endAll ends every process of the run: the command's process group
	// and whatever left it. It fails when one is still there.
	endAll(pgid int) error
	// cleanUp removes everything the run left, workDir included, and fails
	// unless the container is as it was before the run.
	cleanUp(uid, gid int64, workDir string) error
}

type frame struct {
	typ  byte
	body []byte
}

// serve answers requests until the host closes stdin, or, oneRun, until
// it has answered one: a single-use container is removed after its run,
// so the agent neither cleans up nor takes another request.
func serve(in io.Reader, out io.Writer, workRoot string, iso isolation, oneRun bool) error {
	w := agentproto.NewWriter(out)
	frames := make(chan frame, 16)
	readErr := make(chan error, 1)
	go func() {
		r := agentproto.NewReader(in)
		for {
			typ, body, err := r.Next()
			if err != nil {
				if err != io.EOF {
					readErr <- err
				}
				close(frames)
				return
			}
			frames <- frame{typ, body}
		}
	}()
	if err := w.Write(agentproto.Ready, nil); err != nil {
		return err
	}
	for {
		f, ok := <-frames
		if !ok {
			select {
			case err := <-readErr:
				return err
			default:
				return nil // the host is done with this container
			}
		}
		if f.typ == agentproto.Kill {
			continue // a kill that raced the command's exit
		}
		if f.typ != agentproto.Request {
			return fmt.Errorf("expected a request frame, got %q", f.typ)
		}
		var req agentproto.RequestBody
		if err := json.Unmarshal(f.body, &req); err != nil || len(req.Argv) == 0 {
			return fmt.Errorf("bad request frame: %v", err)
		}
		stdin, ok := <-frames
		if !ok || stdin.typ != agentproto.Stdin {
			return errors.New("a request must be followed by its stdin frame")
		}
		run := invoke(req, stdin.body, frames, w, workRoot, iso)
		if err := w.WriteJSON(agentproto.Exit, run.exit); err != nil {
			return err
		}
		if oneRun {
			return nil
		}
		if err := w.WriteJSON(agentproto.Clean, cleanUp(iso, req, run)); err != nil {
			return err
		}
		if run.hostGone {
			return nil
		}
	}
}

// invocation is how one request went.
type invocation struct {
	exit     agentproto.ExitBody
	workDir  string // "" when the command was refused before it had one
	ended    error  // a process of the run that could not be ended
	hostGone bool   // stdin closed meanwhile
}

// cleanUp removes what the run left and says whether the container is as
// it was before the run.
func cleanUp(iso isolation, req agentproto.RequestBody, run invocation) agentproto.CleanBody {
	if run.workDir == "" {
		return agentproto.CleanBody{OK: true} // nothing ran
	}
	if err := errors.Join(run.ended, iso.cleanUp(req.UID, req.GID, run.workDir)); err != nil {
		return agentproto.CleanBody{Problem: err.Error()}
	}
	return agentproto.CleanBody{OK: true}
}

func startError(format string, args ...any) agentproto.ExitBody {
	return agentproto.ExitBody{ExitCode: 127, StartError: fmt.Sprintf(format, args...)}
}

// invoke runs one command.
func invoke(req agentproto.RequestBody, stdin []byte, frames <-chan frame, w *agentproto.Writer, workRoot string, iso isolation) (run invocation) {
	// A command with the agent's uid could signal or trace the agent, and
	// through it reach the runs after its own.
	if req.UID <= 0 || req.GID < 0 {
		run.exit = startError("refusing to run a command as uid %d gid %d in a warm container: its agent runs as uid 0, so a command must run as another user, or fresh", req.UID, req.GID)
		return run
	}
	dir, err := os.MkdirTemp(workRoot, "run-")
	if err != nil {
		run.exit = startError("cannot make a work dir: %v", err)
		return run
	}
	run.workDir = dir

	cmd := exec.Command(req.Argv[0], req.Argv[1:]...)
	cmd.Dir = dir
	cmd.Env = commandEnv(req.Env, dir)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := iso.prepare(cmd, req.UID, req.GID, dir); err != nil {
		run.exit = startError("%v", err)
		return run
	}
	outR, outW, err1 := os.Pipe()
	errR, errW, err2 := os.Pipe()
	if err := errors.Join(err1, err2); err != nil {
		run.exit = startError("%v", err)
		return run
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	started := time.Now()
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		run.exit = startError("%v", err)
		return run
	}
	_ = w.Write(agentproto.Started, nil)
	pgid := cmd.Process.Pid

	var pumps sync.WaitGroup
	pump := func(r *os.File, typ byte) {
		defer pumps.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				_ = w.Write(typ, buf[:n])
			}
			if err != nil {
				return
			}
		}
	}
	pumps.Add(2)
	go pump(outR, agentproto.Stdout)
	go pump(errR, agentproto.Stderr)

	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var timeout <-chan time.Time
	if req.TimeoutMS > 0 {
		t := time.NewTimer(time.Duration(req.TimeoutMS) * time.Millisecond)
		defer t.Stop()
		timeout = t.C
	}
	grace := time.Duration(req.KillGraceMS) * time.Millisecond
wait:
	for {
		select {
		case <-waited:
			break wait
		case <-timeout:
			run.exit.TimedOut = true
			stopGroup(pgid, grace, waited)
			break wait
		case f, ok := <-frames:
			if !ok {
				run.hostGone = true
			} else if f.typ != agentproto.Kill {
				continue
			}
			run.exit.Stopped = true
			stopGroup(pgid, grace, waited)
			break wait
		}
	}
	run.exit.DurationUS = time.Since(started).Microseconds()
	// Whatever the command left running goes with it, in its group or
	// not, as it would with a fresh container: the output pipes close and
	// the next request starts clean.
	run.ended = iso.endAll(pgid)
	pumpsDone := make(chan struct{})
	go func() { pumps.Wait(); close(pumpsDone) }()
	select {
	case <-pumpsDone:
	case <-time.After(time.Second): // a process that could not be ended holds a pipe
		outR.Close()
		errR.Close()
		<-pumpsDone
	}
	outR.Close()
	errR.Close()
	if ps := cmd.ProcessState; ps != nil {
		run.exit.ExitCode = ps.ExitCode()
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			run.exit.Signal = unix.SignalName(ws.Signal())
			run.exit.ExitCode = 128 + int(ws.Signal())
		}
	}
	return run
}

func stopGroup(pgid int, grace time.Duration, waited <-chan error) {
	_ = unix.Kill(-pgid, unix.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-waited:
	case <-t.C:
		_ = unix.Kill(-pgid, unix.SIGKILL)
		<-waited
	}
}

func commandEnv(env []string, dir string) []string {
	out := append([]string(nil), env...)
	has := func(name string) bool {
		for _, kv := range out {
			if strings.HasPrefix(kv, name+"=") {
				return true
			}
		}
		return false
	}
	if !has("PATH") {
		out = append(out, "PATH="+defaultPath)
	}
	if !has("HOME") {
		out = append(out, "HOME="+dir)
	}
	return out
}
