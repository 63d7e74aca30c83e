package process_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/process"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/executor"
)

type captureSink struct {
	mu             sync.Mutex
	stdout, stderr bytes.Buffer
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

func (s *captureSink) ContainerCreated(string, string)     {}
func (s *captureSink) ContainerTaken(string, string) error { return nil }
func (s *captureSink) ContainerStarted(string, bool)       { s.started = true }
func (s *captureSink) Stdout() io.Writer                   { return lockedWriter{&s.mu, &s.stdout} }
func (s *captureSink) Stderr() io.Writer                   { return lockedWriter{&s.mu, &s.stderr} }

func spec(id string, timeout time.Duration, argv ...string) executor.Spec {
	return executor.Spec{RunID: id, Argv: argv, Limits: run.Limits{TimeoutMS: timeout.Milliseconds()}, KillGrace: 200 * time.Millisecond}
}

func TestProcessRuntimeRunsCommandsOnTheHost(t *testing.T) {
	t.Parallel()
	rt := process.New(process.Config{WorkRoot: t.TempDir(), Logger: zerolog.New(zerolog.NewTestWriter(t))})
	tests := []struct {
		name       string
		spec       executor.Spec
		cancel     bool
		wantStdout string
		wantStderr string
		wantCode   int
		wantSignal string
		timedOut   bool
		stopped    bool
	}{
		{name: "output is captured per stream", spec: spec("a", 5*time.Second, "sh", "-c", "printf 'out\\377'; printf err >&2"), wantStdout: "out\xff", wantStderr: "err"},
		{name: "the exit code is kept", spec: spec("b", 5*time.Second, "sh", "-c", "exit 7"), wantCode: 7},
		{name: "stdin and env reach the command", spec: func() executor.Spec {
			s := spec("c", 5*time.Second, "sh", "-c", `read line; echo "$line $COG_ARGV_0"`)
			s.Stdin, s.Env = []byte("{\"x\":1}\n"), []string{"COG_ARGV_0=prod"}
			return s
		}(), wantStdout: "{\"x\":1} prod\n"},
		{name: "each run starts in an empty work dir", spec: spec("d", 5*time.Second, "sh", "-c", `ls -A | wc -l`), wantStdout: "0\n"},
		{name: "a command past its timeout is terminated", spec: spec("e", 100*time.Millisecond, "sleep", "10"), timedOut: true, wantSignal: "SIGTERM", wantCode: 143},
		{name: "a command ignoring SIGTERM is killed after the grace", spec: spec("f", 100*time.Millisecond, "sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"), timedOut: true, wantSignal: "SIGKILL", wantCode: 137},
		{name: "a cancelled run is stopped", spec: spec("g", 5*time.Second, "sleep", "10"), cancel: true, stopped: true, wantSignal: "SIGTERM", wantCode: 143},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				time.AfterFunc(100*time.Millisecond, cancel)
			}
			sink := &captureSink{}
			out, err := rt.Run(ctx, tt.spec, sink)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = out.Release(context.Background()) }()
			if !sink.started || !out.Started {
				t.Error("the start was not reported")
			}
			if sink.stdout.String() != tt.wantStdout || sink.stderr.String() != tt.wantStderr {
				t.Errorf("stdout %q stderr %q, want %q and %q", sink.stdout.String(), sink.stderr.String(), tt.wantStdout, tt.wantStderr)
			}
			if out.ExitCode != tt.wantCode || out.Signal != tt.wantSignal || out.TimedOut != tt.timedOut || out.Stopped != tt.stopped {
				t.Errorf("outcome %+v, want code %d signal %q timedOut %v stopped %v", out, tt.wantCode, tt.wantSignal, tt.timedOut, tt.stopped)
			}
		})
	}
}

func TestProcessRuntimeRefusesARunIDTwice(t *testing.T) {
	t.Parallel()
	rt := process.New(process.Config{WorkRoot: t.TempDir()})
	out, err := rt.Run(context.Background(), spec("once", time.Second, "true"), &captureSink{})
	if err != nil {
		t.Fatal(err)
	}
	_ = out.Release(context.Background())
	if _, err := rt.Run(context.Background(), spec("once", time.Second, "true"), &captureSink{}); !errors.Is(err, executor.ErrAlreadyExists) {
		t.Fatalf("second run: error = %v, want ErrAlreadyExists", err)
	}
}

func TestProcessRuntimeFailsClearlyOnAMissingExecutable(t *testing.T) {
	t.Parallel()
	rt := process.New(process.Config{WorkRoot: t.TempDir()})
	_, err := rt.Run(context.Background(), spec("m", time.Second, "/no/such/cmd"), &captureSink{})
	if !errors.Is(err, executor.ErrInvalidSpec) || !strings.Contains(err.Error(), "/no/such/cmd") {
		t.Fatalf("error = %v, want ErrInvalidSpec naming the executable", err)
	}
}

func TestProcessRuntimeReleaseRemovesTheWorkDir(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	rt := process.New(process.Config{WorkRoot: root})
	out, err := rt.Run(context.Background(), spec("w", time.Second, "sh", "-c", "echo x > file"), &captureSink{})
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("work root still holds %d entries", len(entries))
	}
}
