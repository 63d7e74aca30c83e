package main

import (
	"os"
	"testing"
	"time"
)

// The CPU time of a process is read from /proc/<pid>/stat: this process's
// grows as it works.
func TestProcessCPUIsReadFromProc(t *testing.T) {
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Work until the reading moves (however busy the machine is).
	deadline := time.Now().Add(30 * time.Second)
	for x := 0; ; x++ {
		_ = x * x
		if x%1_000_000 != 0 {
			continue
		}
		after, err := processCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after-before >= 50*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s of spinning read as %v of CPU", after-before)
		}
	}
	if _, err := processCPU(0); err == nil {
		t.Fatal("pid 0 read as a process")
	}
}

func TestFindProcessFindsThisOne(t *testing.T) {
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	if pid := findProcess(string(comm[:len(comm)-1])); pid == 0 {
		t.Fatalf("no process named %q", comm)
	}
	if pid := findProcess("no-such-process-name"); pid != 0 {
		t.Fatalf("found pid %d for a name nothing has", pid)
	}
}
