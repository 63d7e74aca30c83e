package main

import (
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/logbookhq/logbook/internal/testenv"
)

// The roles this test binary plays when run again by
// TestABenchChildIsStoppedWhenTheBenchIsKilled.
const (
	benchParentRole = "LOGBOOK_TEST_BENCH_PARENT" // starts a child as the benchmark does
	benchChildRole  = "LOGBOOK_TEST_BENCH_CHILD"  // the child: says ready, then notes SIGTERM
)

func TestMain(m *testing.M) {
	if state := os.Getenv(benchChildRole); state != "" {
		terms := make(chan os.Signal, 1)
		signal.Notify(terms, syscall.SIGTERM)
		_ = os.WriteFile(state, []byte("ready"), 0o600)
		<-terms
		_ = os.WriteFile(state, []byte("stopped by SIGTERM"), 0o600)
		os.Exit(0)
	}
	if state := os.Getenv(benchParentRole); state != "" {
		child := exec.Command(os.Args[0])
		child.Env = append(os.Environ(), benchChildRole+"="+state, benchParentRole+"=")
		stopWithBench(child)
		if err := child.Start(); err != nil {
			os.Exit(3)
		}
		select {} // until killed
	}
	os.Exit(m.Run())
}

func TestABenchChildIsStoppedWhenTheBenchIsKilled(t *testing.T) {
	// Given a benchmark process that started a child (the server, the
	// executor, nats-server)
	state := filepath.Join(t.TempDir(), "child")
	bench := exec.Command(os.Args[0])
	bench.Env = append(os.Environ(), benchParentRole+"="+state)
	if err := bench.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.EventuallyWithin(t, 30*time.Second, "the child to start", func() bool {
		b, _ := os.ReadFile(state)
		return string(b) == "ready"
	})

	// When the benchmark is killed outright
	if err := bench.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = bench.Wait()

	// Then its child is told to stop, so it can remove what it made
	testenv.EventuallyWithin(t, 30*time.Second, "the child to get SIGTERM", func() bool {
		b, _ := os.ReadFile(state)
		return string(b) == "stopped by SIGTERM"
	})
}
