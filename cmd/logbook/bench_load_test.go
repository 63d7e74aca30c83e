package main

import (
	"os"
	"strings"
	"syscall"
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

// The machine's CPU times come from /proc/stat's first line: busy is all
// but idle and I/O wait, and a line that is not the cpu line is refused.
func TestMachineCPUIsReadFromProcStat(t *testing.T) {
	got, err := parseProcStatCPU("cpu  400 100 300 1000 200 0 50 150 70 0")
	if err != nil {
		t.Fatal(err)
	}
	if want := (machineTimes{busy: 10 * time.Second, all: 22 * time.Second}); got != want {
		t.Fatalf("parsed %+v, want %+v", got, want)
	}
	for _, bad := range []string{"cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3", "cpu 1 2 x 4 5 6 7 8", "cpu 1 -2 3 4 5 6 7 8", "cpu 1 2 3 99999999999999 5 6 7 8"} {
		if _, err := parseProcStatCPU(bad); err == nil {
			t.Errorf("%q read as the cpu line", bad)
		}
	}
	before, err := machineCPU()
	if err != nil {
		t.Fatal(err)
	}
	after, err := machineCPU()
	if err != nil {
		t.Fatal(err)
	}
	if after.busy < before.busy || after.all < before.all || after.busy > after.all {
		t.Fatalf("read %+v then %+v", before, after)
	}
}

// Whatever /proc/stat holds, reading it never panics, and what it reads is
// never busier than all, nor negative.
func FuzzParseProcStatCPU(f *testing.F) {
	f.Add("cpu  400 100 300 1000 200 0 50 150 70 0")
	f.Add("cpu 1 2 3")
	f.Add("intr 1 2 3 4 5 6 7 8 9")
	f.Fuzz(func(t *testing.T, line string) {
		got, err := parseProcStatCPU(line)
		if err != nil {
			return
		}
		if got.busy < 0 || got.busy > got.all {
			t.Fatalf("%q read as %+v: busier than all", line, got)
		}
	})
}

// The CPU time is read to well under a clock tick (10 ms): a few
// milliseconds of work read as what getrusage, which the kernel keeps in
// nanoseconds, says they were.
func TestProcessCPUIsReadFinerThanAClockTick(t *testing.T) {
	usage := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	readBefore, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	usedBefore := usage()
	for x := 0; usage()-usedBefore < 3*time.Millisecond; x++ {
		_ = x * x
	}
	readAfter, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	used, read := usage()-usedBefore, readAfter-readBefore
	if diff := read - used; diff < -2*time.Millisecond || diff > 2*time.Millisecond {
		t.Fatalf("%v of work read as %v of CPU", used, read)
	}
}

// The store's commits and successful appends are read from the server's
// metrics: every commit, and appends that succeeded only.
func TestStoreCountsAreReadFromTheServersMetrics(t *testing.T) {
	metrics := `# HELP logbook_store_commit_seconds Time to commit a group.
# TYPE logbook_store_commit_seconds histogram
logbook_store_commit_seconds_bucket{le="0.001"} 3
logbook_store_commit_seconds_bucket{le="+Inf"} 7
logbook_store_commit_seconds_sum 0.02
logbook_store_commit_seconds_count 7
# HELP logbook_store_append_seconds Time to append.
# TYPE logbook_store_append_seconds histogram
logbook_store_append_seconds_bucket{result="error",le="+Inf"} 2
logbook_store_append_seconds_sum{result="error"} 0.01
logbook_store_append_seconds_count{result="error"} 2
logbook_store_append_seconds_bucket{result="ok",le="+Inf"} 11
logbook_store_append_seconds_sum{result="ok"} 0.05
logbook_store_append_seconds_count{result="ok"} 11
`
	got, err := parseStoreCounts(strings.NewReader(metrics))
	if err != nil {
		t.Fatal(err)
	}
	if got != (storeCounts{commits: 7, appends: 11}) {
		t.Errorf("read %+v, want 7 commits and 11 appends", got)
	}
	if _, err := parseStoreCounts(strings.NewReader("go_goroutines 3\n")); err == nil {
		t.Error("metrics without the store's counts read as counts")
	}
}
