package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/docker/docker/api/types/container"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/adapters/docker"
	"github.com/logbookhq/logbook/adapters/docker/dockertest"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/runbus"
	"github.com/logbookhq/logbook/executor"
)

func init() { registerBench(newBenchExecCmd) }

// benchExecResult is one path's latencies; the --json form is a list of them.
type benchExecResult struct {
	Name  string  `json:"name"`
	N     int     `json:"n"`
	MinMS float64 `json:"min_ms"`
	P50MS float64 `json:"p50_ms"`
	P90MS float64 `json:"p90_ms"`
	MaxMS float64 `json:"max_ms"`
	// On "fresh" only: capturing a command that prints --output-mb.
	CaptureMBPerS       float64 `json:"capture_mb_per_s,omitempty"`
	CaptureMemGrowthMiB float64 `json:"capture_mem_growth_mib,omitempty"`
	Skipped             string  `json:"skipped,omitempty"`
	samples             []time.Duration
}

func newBenchExecCmd() *cobra.Command {
	var n, outputMB int
	var asJSON bool
	var image string
	cmd := &cobra.Command{
		Use:   "exec",
		Short: "Time `echo hi` via docker run, the raw Engine API, fresh, warm and single-use Logbook runs, and a host fork/exec",
		Long: `Runs busybox "echo hi" N times on each path, side by side (round-robin, after a warm-up):
  docker_cli  docker run --rm through the docker CLI (the baseline)
  engine_api  the raw Engine API: create, wait, start, logs, remove
  fresh       a Logbook run in a fresh hardened container, RunRequested consumed to terminal event published
  warm        the same in warm mode (a pooled container running logbook-agent)
  single-use  the same in single-use mode (a container started ahead, used once, then removed)
  host        a host fork/exec, the floor
Then times capturing a command that prints --output-mb MB (fresh mode) and the executor's memory growth.
The image is built from /bin/busybox (Debian busybox-static) unless --image is given.
Warm and single-use modes need logbook-agent ($LOGBOOK_AGENT_PATH, next to logbook, or built from a checkout).
Exit codes: 0 measured, 1 no Docker daemon or no image to run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 {
				return exitWith(2, "--n must be at least 1")
			}
			results, err := benchExecRun(cmd.Context(), cmd.ErrOrStderr(), n, outputMB, image)
			if err != nil {
				return exitWith(1, "bench exec: %v", err)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), results)
			}
			return benchExecPrint(cmd.OutOrStdout(), results)
		},
	}
	cmd.Flags().IntVar(&n, "n", 50, "runs per path")
	cmd.Flags().IntVar(&outputMB, "output-mb", 100, "MB printed by the capture test (0 skips it)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON list of results")
	cmd.Flags().StringVar(&image, "image", "", "image holding echo and head (default: build one from /bin/busybox)")
	return cmd
}

func benchExecPrint(w io.Writer, results []benchExecResult) error {
	t := newTable(w, "PATH", "N", "MIN ms", "P50 ms", "P90 ms", "MAX ms")
	byName := map[string]benchExecResult{}
	for _, r := range results {
		byName[r.Name] = r
		if r.Skipped != "" {
			t.Row(r.Name, 0, "-", "-", "-", "skipped: "+r.Skipped)
			continue
		}
		t.Row(r.Name, r.N, benchExecMS(r.MinMS), benchExecMS(r.P50MS), benchExecMS(r.P90MS), benchExecMS(r.MaxMS))
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if f, e := byName["fresh"], byName["engine_api"]; f.Skipped == "" && e.P50MS > 0 {
		fmt.Fprintf(w, "fresh p50 / engine_api p50 = %.3f (goal <= 1.05)\n", f.P50MS/e.P50MS)
	}
	if wm := byName["warm"]; wm.Skipped == "" {
		fmt.Fprintf(w, "warm p50 = %.2f ms (goal <= 5 ms)\n", wm.P50MS)
	}
	if f := byName["fresh"]; f.CaptureMBPerS > 0 {
		fmt.Fprintf(w, "capture: %.0f MB/s (goal >= 50), executor memory growth %.1f MiB (goal < 64)\n", f.CaptureMBPerS, f.CaptureMemGrowthMiB)
	}
	return nil
}

func benchExecMS(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// benchExecCounter is the events topic of the benchmark: it counts and drops
// what the executor publishes, so the numbers are the executor's own.
type benchExecCounter struct{ events atomic.Int64 }

func (c *benchExecCounter) Publish(_ string, msgs ...*message.Message) error {
	c.events.Add(int64(len(msgs)))
	return nil
}
func (c *benchExecCounter) Close() error { return nil }

func benchExecRun(ctx context.Context, progress io.Writer, n, outputMB int, image string) ([]benchExecResult, error) {
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
	warm := docker.WarmConfig{PoolSize: 1, MaxInvocations: math.MaxInt32}
	warmSkip := ""
	if warm.AgentPath, err = docker.FindAgent(); err != nil {
		dir, mkErr := os.MkdirTemp("", "logbook-bench-agent-")
		if mkErr == nil {
			defer os.RemoveAll(dir)
			warm.AgentPath, err = dockertest.BuildAgent(ctx, dir)
		}
		if err != nil {
			warmSkip = "no logbook-agent: " + err.Error()
		}
	}
	rt, err := docker.NewRuntimeWithConfig(docker.Config{Engine: cli, Warm: warm, Owner: "logbook-bench"})
	if err != nil {
		return nil, err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = rt.Close(closeCtx)
	}()
	counter := &benchExecCounter{}
	ex, err := executor.NewExecutorWithConfig(executor.Config{
		Runtime: rt, Publisher: counter, Concurrency: 1, Logger: zerolog.Nop(),
		Defaults: run.Limits{OutputBytes: int64(outputMB+16) << 20},
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = ex.Shutdown(shutdownCtx)
	}()
	if warmSkip == "" {
		if err := rt.Prewarm(ctx, image, executor.DefaultLimits); err != nil {
			warmSkip = "prewarm failed: " + err.Error()
		}
	}

	echo := []string{"echo", "hi"}
	logbookRun := func(mode run.Mode) func() error {
		return func() error {
			id := "bench" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
			before := counter.events.Load()
			if err := ex.Execute(runbus.RunRequest{RunID: id, Request: run.RunRequested{RequestID: id, Image: image, Argv: echo, Mode: mode, User: &run.DefaultUser}}); err != nil {
				return err
			}
			if counter.events.Load()-before < 4 {
				return fmt.Errorf("run %s published too few events", id)
			}
			return nil
		}
	}
	_, dockerErr := exec.LookPath("docker")
	paths := []struct {
		name string
		skip string
		fn   func() error
	}{
		{"docker_cli", benchExecSkipIf(dockerErr), func() error {
			out, err := exec.CommandContext(ctx, "docker", "run", "--rm", "--network", "none", image, "echo", "hi").Output()
			if err == nil && string(out) != "hi\n" {
				err = fmt.Errorf("docker run printed %q", out)
			}
			return err
		}},
		{"engine_api", "", func() error { return benchExecEngineAPI(ctx, cli, image, echo) }},
		{"fresh", "", logbookRun(run.ModeFresh)},
		{"warm", warmSkip, logbookRun(run.ModeWarm)},
		{"single-use", warmSkip, logbookRun(run.ModeSingleUse)},
		{"host", "", func() error { return exec.CommandContext(ctx, "echo", "hi").Run() }},
	}
	results := make([]benchExecResult, len(paths))
	const warmup = 3
	for i := -warmup; i < n; i++ {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		for p, path := range paths {
			results[p].Name = path.name
			if path.skip != "" {
				results[p].Skipped = path.skip
				continue
			}
			start := time.Now()
			if err := path.fn(); err != nil {
				return nil, fmt.Errorf("%s: %w", path.name, err)
			}
			if i >= 0 {
				results[p].samples = append(results[p].samples, time.Since(start))
			}
		}
		if i >= 0 && (i+1)%10 == 0 {
			fmt.Fprintf(progress, "bench exec: %d/%d rounds\n", i+1, n)
		}
	}
	for i := range results {
		benchExecSummarize(&results[i])
	}
	if outputMB > 0 {
		mbps, growth, err := benchExecCapture(ex, counter, image, outputMB)
		if err != nil {
			return nil, fmt.Errorf("capture: %w", err)
		}
		for i := range results {
			if results[i].Name == "fresh" {
				results[i].CaptureMBPerS, results[i].CaptureMemGrowthMiB = mbps, growth
			}
		}
	}
	return results, nil
}

func benchExecSkipIf(err error) string {
	if err != nil {
		return err.Error()
	}
	return ""
}

// benchExecEngineAPI is the raw Engine API path: what any client must do to
// run a command and read its output.
func benchExecEngineAPI(ctx context.Context, eng docker.Engine, image string, argv []string) error {
	created, err := eng.ContainerCreate(ctx, &container.Config{Image: image, Cmd: argv}, &container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		return err
	}
	defer func() {
		_ = eng.ContainerRemove(context.WithoutCancel(ctx), created.ID, container.RemoveOptions{Force: true})
	}()
	waitC, errC := eng.ContainerWait(ctx, created.ID, container.WaitConditionNextExit)
	if err := eng.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return err
	}
	select {
	case <-waitC:
	case err := <-errC:
		return err
	}
	logs, err := eng.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return err
	}
	defer logs.Close()
	_, err = io.Copy(io.Discard, logs)
	return err
}

func benchExecSummarize(r *benchExecResult) {
	if len(r.samples) == 0 {
		return
	}
	slices.Sort(r.samples)
	ms := func(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/10) / 100 }
	r.N = len(r.samples)
	r.MinMS, r.P50MS, r.P90MS, r.MaxMS = ms(r.samples[0]), ms(percentile(r.samples, 0.5)), ms(percentile(r.samples, 0.9)), ms(r.samples[len(r.samples)-1])
}

// benchExecCapture runs a command printing outputMB MB in a fresh container
// and returns the capture rate and the growth of the process's peak RSS.
func benchExecCapture(ex *executor.Executor, counter *benchExecCounter, image string, outputMB int) (mbPerS, growthMiB float64, err error) {
	runtime.GC()
	before := benchExecProcStatus("VmRSS")
	bytes := int64(outputMB) * 1_000_000
	id := "benchcap" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
	start := time.Now()
	if err := ex.Execute(runbus.RunRequest{RunID: id, Request: run.RunRequested{
		RequestID: id, Image: image, Argv: []string{"head", "-c", strconv.FormatInt(bytes, 10), "/dev/zero"},
		Limits: run.Limits{TimeoutMS: 300_000}, User: &run.DefaultUser,
	}}); err != nil {
		return 0, 0, err
	}
	elapsed := time.Since(start)
	peak := benchExecProcStatus("VmHWM")
	if before < 0 || peak < 0 {
		return float64(bytes) / 1e6 / elapsed.Seconds(), 0, nil
	}
	return float64(bytes) / 1e6 / elapsed.Seconds(), float64(max(peak-before, 0)) / 1024, nil
}

// benchExecProcStatus reads a kB field of /proc/self/status (-1 if absent).
func benchExecProcStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}
