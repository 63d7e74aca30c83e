package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logbookhq/logbook/internal/testenv"
)

// The roles this test binary plays when run again by
// TestABenchChildIsStoppedWhenTheBenchIsKilled.
const (
	benchParentRole = "LOGBOOK_TEST_BENCH_PARENT" // starts a child as the benchmark does
	benchChildRole  = "LOGBOOK_TEST_BENCH_CHILD"  // the child: notes it is ready, then notes SIGTERM
)

// The child's state file holds one line for each thing it saw, in order.
const (
	childReady   = "ready"
	childStopped = "stopped by SIGTERM"
)

func TestMain(m *testing.M) {
	if state := os.Getenv(benchChildRole); state != "" {
		terms := make(chan os.Signal, 1)
		signal.Notify(terms, syscall.SIGTERM)
		noteChildState(state, childReady)
		<-terms
		noteChildState(state, childStopped)
		os.Exit(0)
	}
	if state := os.Getenv(benchParentRole); state != "" {
		child := exec.Command(os.Args[0])
		child.Env = append(os.Environ(), benchChildRole+"="+state, benchParentRole+"=")
		child.Stdout, child.Stderr = os.Stdout, os.Stderr
		stopWithBench(child)
		if err := child.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: starting the child:", err)
			os.Exit(3)
		}
		// Until killed. Waiting on the child, rather than blocking on
		// nothing, keeps the runtime from ending a process with no
		// goroutine left to run as deadlocked; and a child that ends on
		// its own is said.
		err := child.Wait()
		fmt.Fprintln(os.Stderr, "bench: the child ended before the bench was killed:", err)
		os.Exit(4)
	}
	os.Exit(m.Run())
}

// noteChildState appends a line to the child's state file.
func noteChildState(path, line string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		os.Exit(5)
	}
	_, _ = f.WriteString(line + "\n")
	_ = f.Close()
}

func TestABenchChildIsStoppedWhenTheBenchIsKilled(t *testing.T) {
	// Given a benchmark process that started a child (the server, the
	// executor, nats-server)
	dir := t.TempDir()
	state := filepath.Join(dir, "child")
	output, err := os.Create(filepath.Join(dir, "output"))
	if err != nil {
		t.Fatal(err)
	}
	bench := exec.Command(os.Args[0])
	bench.Env = append(os.Environ(), benchParentRole+"="+state)
	bench.Stdout, bench.Stderr = output, output // the child's too: a file, so nothing waits on a pipe
	if err := bench.Start(); err != nil {
		t.Fatal(err)
	}
	benchEnded := make(chan error, 1)
	go func() { benchEnded <- bench.Wait() }()
	childSaw := func() []string {
		b, _ := os.ReadFile(state)
		return strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' })
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(output.Name())
			t.Logf("the child saw %q; the bench and child printed:\n%s", childSaw(), b)
		}
	})
	testenv.EventuallyWithin(t, 30*time.Second, "the child to start", func() bool {
		select {
		case err := <-benchEnded:
			t.Fatalf("the bench ended before it was killed: %v", err)
		default:
		}
		return len(childSaw()) > 0
	})
	if saw := childSaw(); len(saw) != 1 || saw[0] != childReady {
		t.Fatalf("before the bench was killed, the child saw %q, want only %q", saw, childReady)
	}

	// When the benchmark is killed outright
	if err := bench.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-benchEnded

	// Then its child is told to stop, so it can remove what it made
	testenv.EventuallyWithin(t, 30*time.Second, "the child to get SIGTERM", func() bool {
		return slices.Equal(childSaw(), []string{childReady, childStopped})
	})
}
