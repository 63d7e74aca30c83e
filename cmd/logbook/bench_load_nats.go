package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// benchNATS is the nats-server `bench load --bus nats` started.
type benchNATS struct {
	cmd *exec.Cmd
	url string
	dir string
}

// startBenchNATS runs nats-server with JetStream on a free loopback port,
// its store in a temporary directory, and no authorization (it listens on
// loopback only, for this benchmark's processes).
func startBenchNATS(ctx context.Context, bin string) (*benchNATS, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("--bus nats needs nats-server (--nats-server): %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "logbook-bench-nats-")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nats.conf")
	body := fmt.Sprintf("listen: 127.0.0.1:%d\njetstream {\n  store_dir: %q\n}\n", port, filepath.Join(dir, "js"))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return nil, err
	}
	n := &benchNATS{cmd: exec.Command(path, "-c", conf), url: "nats://127.0.0.1:" + strconv.Itoa(port), dir: dir}
	stopWithBench(n.cmd)
	if err := n.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start nats-server: %w", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			return n, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			n.stop()
			return nil, fmt.Errorf("nats-server did not listen on port %d within 15s", port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *benchNATS) stop() {
	stopProcess(n.cmd)
	os.RemoveAll(n.dir)
}

// startExecutor starts `logbook executor` for the server's NATS bus; its
// CPU (and nats-server's) is counted as the executor's.
func (s *loadServer) startExecutor(env []string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "executor")
	cmd.Env = append(os.Environ(), append([]string{"LOGBOOK_LOG_LEVEL=warn", "LOGBOOK_LOG_FORMAT=json", "LOGBOOK_EXECUTOR_ID=bench", "LOGBOOK_EXECUTOR_GROUPS=default"}, env...)...)
	cmd.Stdout, cmd.Stderr = io.Discard, s.logs
	stopWithBench(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the executor: %w", err)
	}
	s.others = append(s.others, cmd)
	s.measured = append(s.measured, cmd.Process.Pid)
	return nil
}

// othersCPU is the CPU time of the executor and nats-server so far.
func (s *loadServer) othersCPU() time.Duration {
	var total time.Duration
	for _, pid := range s.measured {
		if d, err := processCPU(pid); err == nil {
			total += d
		}
	}
	return total
}

// stopProcess sends SIGTERM and waits up to a minute, then kills.
func stopProcess(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// printBusRatios prints, per kind and round, NATS's requests a second as a
// ratio of the embedded bus's measured just before it, and the p50 NATS
// adds; with several rounds, their medians.
func printBusRatios(w io.Writer, results []loadResult) {
	type pair struct{ ratio, added float64 }
	byKind := map[string][]pair{}
	var kinds []string
	var last loadResult
	for _, r := range results {
		if r.Bus == "nats" && last.Bus == "embedded" && last.Kind == r.Kind && r.Skipped == "" && last.Skipped == "" && last.PerS > 0 {
			if _, seen := byKind[r.Kind]; !seen {
				kinds = append(kinds, r.Kind)
			}
			byKind[r.Kind] = append(byKind[r.Kind], pair{r.PerS / last.PerS, r.P50Ms - last.P50Ms})
		}
		last = r
	}
	t := newTable(w, "kind", "round", "nats/embedded req/s", "p50 added ms")
	for _, k := range kinds {
		pairs := byKind[k]
		for i, p := range pairs {
			t.Row(k, i+1, fmt.Sprintf("%.3f", p.ratio), fmt.Sprintf("%+.2f", p.added))
		}
		if len(pairs) > 1 {
			ratios, added := make([]float64, len(pairs)), make([]float64, len(pairs))
			for i, p := range pairs {
				ratios[i], added[i] = p.ratio, p.added
			}
			slices.Sort(ratios)
			slices.Sort(added)
			t.Row(k, "median", fmt.Sprintf("%.3f", ratios[len(ratios)/2]), fmt.Sprintf("%+.2f", added[len(added)/2]))
		}
	}
	_ = t.Flush()
}
