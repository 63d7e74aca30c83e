// Command logbook-agent runs inside a warm container. The docker runtime
// bind-mounts it read-only and talks to it over the container's attached
// stdio with agentproto frames: for each request it forks the command in a
// fresh work dir under /tmp with the request's env and stdin, streams stdout
// and stderr back, enforces the timeout (SIGTERM to the command's process
// group, then SIGKILL), removes the work dir and reports the exit. It is
// built static (CGO_ENABLED=0) so it runs in any image, even FROM scratch.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/logbookhq/logbook/adapters/docker/agentproto"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func main() {
	if err := serve(os.Stdin, os.Stdout, os.TempDir()); err != nil {
		fmt.Fprintln(os.Stderr, "logbook-agent:", err)
		os.Exit(1)
	}
}

type frame struct {
	typ  byte
	body []byte
}

// serve answers requests until the host closes stdin.
func serve(in io.Reader, out io.Writer, workRoot string) error {
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
		exit, hostGone := invoke(req, stdin.body, frames, w, workRoot)
		if err := w.WriteJSON(agentproto.Exit, exit); err != nil {
			return err
		}
		if hostGone {
			return nil
		}
	}
}

// invoke runs one command. hostGone reports that stdin closed meanwhile.
func invoke(req agentproto.RequestBody, stdin []byte, frames <-chan frame, w *agentproto.Writer, workRoot string) (exit agentproto.ExitBody, hostGone bool) {
	dir, err := os.MkdirTemp(workRoot, "run-")
	if err != nil {
		return agentproto.ExitBody{ExitCode: 127, StartError: "cannot make a work dir: " + err.Error()}, false
	}
	defer os.RemoveAll(dir)

	cmd := exec.Command(req.Argv[0], req.Argv[1:]...)
	cmd.Dir = dir
	cmd.Env = commandEnv(req.Env, dir)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	outR, outW, err1 := os.Pipe()
	errR, errW, err2 := os.Pipe()
	if err := errors.Join(err1, err2); err != nil {
		return agentproto.ExitBody{ExitCode: 127, StartError: err.Error()}, false
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	started := time.Now()
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return agentproto.ExitBody{ExitCode: 127, StartError: err.Error()}, false
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
			exit.TimedOut = true
			stopGroup(pgid, grace, waited)
			break wait
		case f, ok := <-frames:
			if !ok {
				hostGone = true
			} else if f.typ != agentproto.Kill {
				continue
			}
			exit.Stopped = true
			stopGroup(pgid, grace, waited)
			break wait
		}
	}
	exit.DurationUS = time.Since(started).Microseconds()
	// Whatever the command left running goes with it, so the next request
	// starts clean and the output pipes close.
	_ = unix.Kill(-pgid, unix.SIGKILL)
	pumpsDone := make(chan struct{})
	go func() { pumps.Wait(); close(pumpsDone) }()
	select {
	case <-pumpsDone:
	case <-time.After(time.Second): // a process that left the group holds a pipe
		outR.Close()
		errR.Close()
		<-pumpsDone
	}
	outR.Close()
	errR.Close()
	if ps := cmd.ProcessState; ps != nil {
		exit.ExitCode = ps.ExitCode()
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			exit.Signal = unix.SignalName(ws.Signal())
			exit.ExitCode = 128 + int(ws.Signal())
		}
	}
	return exit, hostGone
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
