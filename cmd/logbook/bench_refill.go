package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/adapters/docker"
	"github.com/logbookhq/logbook/adapters/docker/dockertest"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/executor"
)

func init() { registerBench(newBenchRefillCmd) }

// benchRefillResult is how fast the single-use pool started containers
// with a number of starts at once.
type benchRefillResult struct {
	Starts       int     `json:"starts"`
	Containers   int     `json:"containers"`
	Seconds      float64 `json:"seconds"`
	PerSec       float64 `json:"containers_per_s"`
	RunP50MS     float64 `json:"run_p50_ms"`
	DockerdCPUMS float64 `json:"dockerd_cpu_ms_per_container,omitempty"`
	LoadAvg      string  `json:"loadavg"`
}

func newBenchRefillCmd() *cobra.Command {
	var (
		n         int
		startsArg string
		image     string
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "refill",
		Short: "How many single-use containers per second the pool starts, with 1, 2, 4, ... starts at once",
		Long: `For each --starts value in turn, build a Docker runtime whose single-use pool
starts that many containers at once, and send it --n runs of "true" together:
each run takes a container of its own, so every run but the first waits for
one, and the pool starts them as fast as it can. Reports containers started
per second (runs done over the elapsed time), the runs' p50 latency while
they queue, and dockerd's CPU time per container when it can be read. The
image is built from /bin/busybox (Debian busybox-static) unless --image is
given; logbook-agent is $LOGBOOK_AGENT_PATH, next to logbook, or built from
a checkout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var starts []int
			for _, s := range strings.Split(startsArg, ",") {
				v, err := strconv.Atoi(strings.TrimSpace(s))
				if err != nil || v < 1 {
					return exitWith(2, "--starts: %q is not a number of starts at least 1", s)
				}
				starts = append(starts, v)
			}
			if n < 1 {
				return exitWith(2, "--n must be at least 1")
			}
			results, err := benchRefill(cmd.Context(), cmd.ErrOrStderr(), n, starts, image)
			if err != nil {
				return exitWith(1, "bench refill: %v", err)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), results)
			}
			t := newTable(cmd.OutOrStdout(), "starts at once", "containers", "seconds", "containers/s", "run p50 ms (queued)", "dockerd CPU ms/container", "load")
			for _, r := range results {
				t.Row(r.Starts, r.Containers, fmt.Sprintf("%.2f", r.Seconds), fmt.Sprintf("%.1f", r.PerSec), fmt.Sprintf("%.0f", r.RunP50MS), fmt.Sprintf("%.1f", r.DockerdCPUMS), r.LoadAvg)
			}
			return t.Flush()
		},
	}
	cmd.Flags().IntVar(&n, "n", 60, "runs (and so containers) per measurement")
	cmd.Flags().StringVar(&startsArg, "starts", "1,2,4,8", "starts at once to measure, in order")
	cmd.Flags().StringVar(&image, "image", "", "image holding true (default: build one from /bin/busybox)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON list of results")
	return cmd
}

func benchRefill(ctx context.Context, progress io.Writer, n int, starts []int, image string) ([]benchRefillResult, error) {
	cli, err := dockertest.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	if image == "" {
		if image, err = dockertest.BuildBusyboxImage(ctx, cli, dockertest.BusyboxPath); err != nil {
			return nil, fmt.Errorf("building the busybox image (apt-get install busybox-static, or pass --image): %w", err)
		}
	}
	agent, err := docker.FindAgent()
	if err != nil {
		dir, mkErr := os.MkdirTemp("", "logbook-bench-agent-")
		if mkErr != nil {
			return nil, mkErr
		}
		defer os.RemoveAll(dir)
		if agent, err = dockertest.BuildAgent(ctx, dir); err != nil {
			return nil, fmt.Errorf("no logbook-agent: %w", err)
		}
	}
	dockerd := findProcess("dockerd")
	var results []benchRefillResult
	for _, s := range starts {
		// MaxSpare 1: the burst's waiting runs drive the starts, and no
		// spares are started after it.
		rt, err := docker.NewRuntimeWithConfig(docker.Config{Engine: cli, Owner: "logbook-bench-refill", Logger: zerolog.Nop(),
			Warm: docker.WarmConfig{AgentPath: agent}, SingleUse: docker.SingleUseConfig{Starts: s, MaxSpare: 1}})
		if err != nil {
			return nil, err
		}
		res := benchRefillResult{Starts: s, Containers: n, LoadAvg: loadAverage()}
		cpuBefore, cpuErr := processCPU(dockerd)
		latencies := make([]time.Duration, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range n {
			wg.Go(func() {
				began := time.Now()
				spec := executor.Spec{RunID: "bench" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20], Image: image, Argv: []string{"true"},
					Limits: executor.DefaultLimits, User: &run.DefaultUser, Mode: run.ModeSingleUse, KillGrace: time.Second}
				out, err := rt.Run(ctx, spec, refillSink{})
				if err == nil && out.ExitCode != 0 {
					err = fmt.Errorf("true exited %d", out.ExitCode)
				}
				latencies[i], errs[i] = time.Since(began), err
				if out.Release != nil {
					_ = out.Release(context.WithoutCancel(ctx))
				}
			})
		}
		wg.Wait()
		res.Seconds = time.Since(start).Seconds()
		cpuAfter, cpuErr2 := processCPU(dockerd)
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		closeErr := rt.Close(closeCtx)
		cancel()
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
		if closeErr != nil {
			return nil, closeErr
		}
		res.PerSec = float64(n) / res.Seconds
		slices.Sort(latencies)
		res.RunP50MS = float64(percentile(latencies, 0.5).Microseconds()) / 1000
		if cpuErr == nil && cpuErr2 == nil {
			res.DockerdCPUMS = float64((cpuAfter - cpuBefore).Milliseconds()) / float64(n)
		}
		fmt.Fprintf(progress, "bench refill: %d at once: %.1f containers/s\n", s, res.PerSec)
		results = append(results, res)
	}
	return results, nil
}

// refillSink drops a run's output.
type refillSink struct{}

func (refillSink) ContainerCreated(string, string)     {}
func (refillSink) ContainerTaken(string, string) error { return nil }
func (refillSink) ContainerStarted(string, bool)       {}
func (refillSink) Stdout() io.Writer                   { return io.Discard }
func (refillSink) Stderr() io.Writer                   { return io.Discard }
