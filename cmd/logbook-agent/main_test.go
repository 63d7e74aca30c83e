package main

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/logbookhq/logbook/adapters/docker/agentproto"
)

// hostIsolation stands in for the container's on the host, where the unit
// tests run: commands run as the test's own user, ending the run ends the
// command's process group, and cleaning up removes the work dir.
type hostIsolation struct {
	problem error // what cleaning up reports
}

func (hostIsolation) prepare(*exec.Cmd, int64, int64, string) error { return nil }
func (hostIsolation) endAll(pgid int) error {
	if err := unix.Kill(-pgid, unix.SIGKILL); err != nil && err != unix.ESRCH {
		return err
	}
	return nil
}
func (h hostIsolation) cleanUp(_, _ int64, workDir string) error {
	return errors.Join(os.RemoveAll(workDir), h.problem)
}

type agentSession struct {
	t  *testing.T
	w  *agentproto.Writer
	r  *agentproto.Reader
	in io.Closer
	// asRoot sends uid 0 as given instead of the test user.
	asRoot bool
}

// user is the unprivileged user requests name; hostIsolation ignores it.
const testUID = 65534

func startAgent(t *testing.T, iso isolation) (*agentSession, string) {
	t.Helper()
	root := t.TempDir()
	hostR, agentW := io.Pipe()
	agentR, hostW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- serve(agentR, agentW, root, iso); agentW.Close() }()
	s := &agentSession{t: t, w: agentproto.NewWriter(hostW), r: agentproto.NewReader(hostR), in: hostW}
	if typ, _, err := s.r.Next(); err != nil || typ != agentproto.Ready {
		t.Fatalf("first frame %q %v, want Ready", typ, err)
	}
	t.Cleanup(func() {
		hostW.Close()
		if err := <-done; err != nil {
			t.Errorf("agent ended with %v", err)
		}
	})
	return s, root
}

// call runs one request and collects its output and exit; the Clean
// frame that must follow is checked to say the container is clean.
func (s *agentSession) call(req agentproto.RequestBody, stdin string, afterStart func()) (stdout, stderr string, exit agentproto.ExitBody) {
	s.t.Helper()
	stdout, stderr, exit, clean := s.callClean(req, stdin, afterStart)
	if !clean.OK {
		s.t.Fatalf("after %v: %+v, want the container clean", req.Argv, clean)
	}
	return stdout, stderr, exit
}

// callClean runs one request and collects its output, its exit and the
// report on the clean-up after it.
func (s *agentSession) callClean(req agentproto.RequestBody, stdin string, afterStart func()) (stdout, stderr string, exit agentproto.ExitBody, clean agentproto.CleanBody) {
	s.t.Helper()
	if req.UID == 0 && req.GID == 0 && !s.asRoot {
		req.UID, req.GID = testUID, testUID
	}
	_ = s.w.WriteJSON(agentproto.Request, req)
	_ = s.w.Write(agentproto.Stdin, []byte(stdin))
	for {
		typ, body, err := s.r.Next()
		if err != nil {
			s.t.Fatal(err)
		}
		switch typ {
		case agentproto.Started:
			if afterStart != nil {
				afterStart()
			}
		case agentproto.Stdout:
			stdout += string(body)
		case agentproto.Stderr:
			stderr += string(body)
		case agentproto.Exit:
			if err := json.Unmarshal(body, &exit); err != nil {
				s.t.Fatal(err)
			}
			typ, body, err := s.r.Next()
			if err != nil || typ != agentproto.Clean {
				s.t.Fatalf("after the exit: frame %q %v, want Clean", typ, err)
			}
			if err := json.Unmarshal(body, &clean); err != nil {
				s.t.Fatal(err)
			}
			return stdout, stderr, exit, clean
		}
	}
}

func TestAgentForksEachRequestCleanly(t *testing.T) {
	s, root := startAgent(t, hostIsolation{})
	out, errOut, exit := s.call(agentproto.RequestBody{Argv: []string{"sh", "-c", `read x; echo "$x $GREETING"; echo oops >&2; touch left-behind; exit 4`}, Env: []string{"GREETING=hi"}}, "in\n", nil)
	if out != "in hi\n" || errOut != "oops\n" || exit.ExitCode != 4 {
		t.Fatalf("got %q %q %+v", out, errOut, exit)
	}
	out, _, _ = s.call(agentproto.RequestBody{Argv: []string{"sh", "-c", "ls -A | wc -l"}}, "", nil)
	if out != "0\n" {
		t.Fatalf("the second request's work dir holds %q entries, want 0", out)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("work dirs left behind: %d", len(entries))
	}
	_, _, exit = s.call(agentproto.RequestBody{Argv: []string{"/no/such/program"}}, "", nil)
	if exit.StartError == "" || exit.ExitCode != 127 {
		t.Fatalf("exit = %+v, want a start error", exit)
	}
}

func TestAgentStopsCommandsAtTheirTimeoutOrOnKill(t *testing.T) {
	s, _ := startAgent(t, hostIsolation{})
	_, _, exit := s.call(agentproto.RequestBody{Argv: []string{"sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"}, TimeoutMS: 100, KillGraceMS: 100}, "", nil)
	if !exit.TimedOut || exit.Signal != "SIGKILL" || exit.ExitCode != 137 {
		t.Fatalf("exit = %+v, want timed out and killed", exit)
	}
	_, _, exit = s.call(agentproto.RequestBody{Argv: []string{"sleep", "10"}, TimeoutMS: 10_000, KillGraceMS: 100}, "", func() {
		time.AfterFunc(50*time.Millisecond, func() { _ = s.w.Write(agentproto.Kill, nil) })
	})
	if !exit.Stopped || exit.Signal != "SIGTERM" {
		t.Fatalf("exit = %+v, want stopped by SIGTERM", exit)
	}
}

// A warm command never runs as root, the agent's user: the request is
// refused before anything runs, and the container stays clean.
func TestAgentRefusesToRunACommandAsRoot(t *testing.T) {
	s, root := startAgent(t, hostIsolation{})
	s.asRoot = true
	_, _, exit, clean := s.callClean(agentproto.RequestBody{Argv: []string{"touch", "ran"}}, "", nil)
	if !strings.Contains(exit.StartError, "refusing to run a command as uid 0") || !clean.OK {
		t.Fatalf("exit %+v, clean %+v: want the command refused", exit, clean)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("a refused request left %d entries", len(entries))
	}
}

// What the clean-up finds left is reported after the exit, so the host can
// retire the container.
func TestAgentReportsARunItCouldNotCleanUpAfter(t *testing.T) {
	s, _ := startAgent(t, hostIsolation{problem: errors.New("/tmp holds left")})
	_, _, exit, clean := s.callClean(agentproto.RequestBody{Argv: []string{"true"}}, "", nil)
	if exit.ExitCode != 0 || clean.OK || clean.Problem != "/tmp holds left" {
		t.Fatalf("exit %+v, clean %+v: want the problem reported", exit, clean)
	}
}
