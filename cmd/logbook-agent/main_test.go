package main

import (
	"encoding/json"
	"io"
	"os"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/docker/agentproto"
)

type agentSession struct {
	t  *testing.T
	w  *agentproto.Writer
	r  *agentproto.Reader
	in io.Closer
}

func startAgent(t *testing.T) (*agentSession, string) {
	t.Helper()
	root := t.TempDir()
	hostR, agentW := io.Pipe()
	agentR, hostW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- serve(agentR, agentW, root); agentW.Close() }()
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

// call runs one request and collects its output and exit.
func (s *agentSession) call(req agentproto.RequestBody, stdin string, afterStart func()) (stdout, stderr string, exit agentproto.ExitBody) {
	s.t.Helper()
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
			return stdout, stderr, exit
		}
	}
}

func TestAgentForksEachRequestCleanly(t *testing.T) {
	s, root := startAgent(t)
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
	s, _ := startAgent(t)
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
