package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/executor"
)

// Config configures the docker runtime. Zero fields take the defaults named.
type Config struct {
	Engine Engine // required
	// PullMissing pulls an image that is not on the host; off by default,
	// so a missing image fails the run with a clear reason.
	PullMissing bool
	// ImageCheckTTL is how long a successful image check is trusted (30s).
	ImageCheckTTL time.Duration
	// TmpfsBytes sizes each container's writable /tmp (64 MiB).
	TmpfsBytes int64
	// Owner labels every container this runtime creates, and Leftovers
	// lists only the containers of this owner. Required, and unique to one
	// store (cmd/logbook uses "logbook-" and the store's identity), so
	// servers of different stores sharing a Docker host never settle each
	// other's runs.
	Owner string
	// LegacyOwner is the owner label of containers made before owners were
	// per store ("logbook"), which cannot tell whose they are: Leftovers
	// lists them as unclaimed, for Reconcile to settle only the runs its
	// store knows. Empty: they are ignored.
	LegacyOwner string
	// Warm configures warm mode; its AgentPath is required to use it, and
	// single-use mode.
	Warm WarmConfig
	// SingleUse configures single-use mode.
	SingleUse SingleUseConfig
	Logger    zerolog.Logger
}

// Validate reports missing required fields.
func (c Config) Validate() error {
	var errs []error
	if c.Engine == nil {
		errs = append(errs, errors.New("docker runtime config: Engine is required"))
	}
	if c.Owner == "" {
		errs = append(errs, errors.New("docker runtime config: Owner is required, one per store, so runtimes sharing a Docker host settle only their own containers"))
	}
	if c.Owner != "" && c.Owner == c.LegacyOwner {
		errs = append(errs, fmt.Errorf("docker runtime config: Owner and LegacyOwner are both %q", c.Owner))
	}
	return errors.Join(errs...)
}

// Runtime runs commands in containers. Safe for concurrent use.
type Runtime struct {
	cfg Config

	mu     sync.Mutex
	images map[string]imageCheck

	warm   *warmPools
	single *singleUsePools

	// agentMu guards agentVolume: the volume holding logbook-agent, once
	// filled (AgentVolume).
	agentMu     sync.Mutex
	agentVolume string
}

type imageCheck struct {
	digest string
	at     time.Time
}

var _ executor.Runtime = (*Runtime)(nil)

// NewRuntimeWithConfig builds a docker runtime.
func NewRuntimeWithConfig(cfg Config) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ImageCheckTTL <= 0 {
		cfg.ImageCheckTTL = 30 * time.Second
	}
	if cfg.TmpfsBytes <= 0 {
		cfg.TmpfsBytes = 64 << 20
	}
	r := &Runtime{cfg: cfg, images: map[string]imageCheck{}}
	r.warm = newWarmPools(r, cfg.Warm)
	r.single = newSingleUsePools(r, cfg.SingleUse)
	return r, nil
}

// Close stops the warm and single-use pools and removes their containers,
// and the volume holding the agent (AgentVolume).
func (r *Runtime) Close(ctx context.Context) error {
	err := errors.Join(r.warm.close(ctx), r.single.close(ctx))
	r.agentMu.Lock()
	defer r.agentMu.Unlock()
	if r.agentVolume != "" && err == nil {
		// The pools' containers are gone, so nothing uses it.
		if rmErr := r.cfg.Engine.VolumeRemove(ctx, r.agentVolume, false); rmErr != nil && !cerrdefs.IsNotFound(rmErr) {
			err = fmt.Errorf("remove the agent's volume %s: %w", r.agentVolume, rmErr)
		}
		r.agentVolume = ""
	}
	return err
}

// Run implements executor.Runtime: fresh mode unless spec.Mode is warm or
// single-use.
func (r *Runtime) Run(ctx context.Context, spec executor.Spec, sink executor.Sink) (executor.Outcome, error) {
	if len(spec.Argv) == 0 {
		return executor.Outcome{}, executor.Errorf(executor.ErrInvalidSpec, nil, "run %s has no argv", spec.RunID)
	}
	digest, err := r.checkImage(ctx, spec.Image)
	if err != nil {
		return executor.Outcome{}, err
	}
	switch spec.Mode {
	case run.ModeWarm:
		return r.warm.run(ctx, spec, sink)
	case run.ModeSingleUse:
		return r.single.run(ctx, spec, digest, sink)
	}
	return r.runFresh(ctx, spec, digest, sink)
}

// checkImage makes sure the image is on the host (pulling it if so
// configured) and returns its digest.
func (r *Runtime) checkImage(ctx context.Context, ref string) (string, error) {
	if ref == "" {
		return "", executor.Errorf(executor.ErrInvalidSpec, nil, "the run names no image")
	}
	r.mu.Lock()
	c, ok := r.images[ref]
	r.mu.Unlock()
	if ok && time.Since(c.at) < r.cfg.ImageCheckTTL {
		return c.digest, nil
	}
	info, err := r.cfg.Engine.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) && r.cfg.PullMissing {
		if err = r.pull(ctx, ref); err == nil {
			info, err = r.cfg.Engine.ImageInspect(ctx, ref)
		}
	}
	switch {
	case cerrdefs.IsNotFound(err) && r.cfg.PullMissing:
		return "", executor.Errorf(executor.ErrImageMissing, err, "image %s is not on this Docker host and could not be pulled", ref)
	case cerrdefs.IsNotFound(err):
		return "", executor.Errorf(executor.ErrImageMissing, nil, "image %s is not on this Docker host (pulling is off): build or pull it, then retry", ref)
	case err != nil:
		return "", executor.Errorf(executor.ErrUnavailable, err, "cannot inspect image %s", ref)
	}
	digest := info.ID
	if len(info.RepoDigests) > 0 {
		digest = info.RepoDigests[0]
	}
	r.mu.Lock()
	r.images[ref] = imageCheck{digest: digest, at: time.Now()}
	r.mu.Unlock()
	return digest, nil
}

func (r *Runtime) pull(ctx context.Context, ref string) error {
	rc, err := r.cfg.Engine.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc) // the pull finishes when its progress stream ends
	return err
}

// hardened is the container configuration every run gets, fresh, warm or
// single-use.
func (r *Runtime) hardened(img string, entrypoint, env []string, labels map[string]string, limits run.Limits) (*container.Config, *container.HostConfig) {
	pids := limits.Pids
	cfg := &container.Config{
		Image:           img,
		Entrypoint:      entrypoint,
		Env:             env,
		Labels:          labels,
		WorkingDir:      "/tmp",
		AttachStdin:     true,
		AttachStdout:    true,
		AttachStderr:    true,
		OpenStdin:       true,
		StdinOnce:       true,
		NetworkDisabled: true,
		StopSignal:      "SIGTERM",
	}
	init := true
	host := &container.HostConfig{
		NetworkMode:    "none",
		IpcMode:        "private", // SysV IPC objects and POSIX queues of its own
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		ReadonlyRootfs: true,
		// Sticky and writable by all: commands run as unprivileged users.
		Tmpfs: map[string]string{"/tmp": "rw,nosuid,nodev,mode=1777,size=" + strconv.FormatInt(r.cfg.TmpfsBytes, 10)},
		Init:  &init,
		// Output is captured through attach; the daemon keeps no log copy.
		LogConfig: container.LogConfig{Type: "none"},
		Resources: container.Resources{
			Memory:     limits.MemoryBytes,
			MemorySwap: limits.MemoryBytes, // equal to Memory: no swap
			NanoCPUs:   limits.NanoCPUs,
			PidsLimit:  &pids,
		},
	}
	return cfg, host
}

func (r *Runtime) runLabels(spec executor.Spec) map[string]string {
	return map[string]string{LabelManaged: "true", LabelOwner: r.cfg.Owner, LabelRunID: spec.RunID, LabelRequestID: spec.RequestID}
}

func (r *Runtime) runFresh(ctx context.Context, spec executor.Spec, digest string, sink executor.Sink) (executor.Outcome, error) {
	eng := r.cfg.Engine
	cfg, host := r.hardened(spec.Image, spec.Argv, spec.Env, r.runLabels(spec), spec.Limits)
	if spec.User != nil {
		cfg.User = spec.User.String()
	}
	created, err := eng.ContainerCreate(ctx, cfg, host, nil, nil, ContainerName(spec.RunID))
	switch {
	case cerrdefs.IsConflict(err):
		return executor.Outcome{}, executor.Errorf(executor.ErrAlreadyExists, err, "container %s already exists", ContainerName(spec.RunID))
	case err != nil:
		return executor.Outcome{}, executor.Errorf(executor.ErrUnavailable, err, "cannot create the container for run %s", spec.RunID)
	}
	id := created.ID
	release := func(ctx context.Context) error {
		err := eng.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	out := executor.Outcome{ContainerID: id, Release: release}
	sink.ContainerCreated(id, digest)

	// Attach and register the wait before starting, so neither the first
	// byte of output nor a fast exit can be missed.
	conn, err := eng.ContainerAttach(ctx, id, container.AttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return out, executor.Errorf(executor.ErrUnavailable, err, "cannot attach to container %s", id)
	}
	defer conn.Close()
	waitCtx, stopWaiting := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWaiting()
	waitC, waitErrC := eng.ContainerWait(waitCtx, id, container.WaitConditionNextExit)

	// A fast command prints before ContainerStart returns; its output waits
	// (in the attach stream) until the start is recorded.
	gate := make(chan struct{})
	openGate := sync.OnceFunc(func() { close(gate) })
	defer openGate()
	copied := make(chan error, 1)
	go func() {
		n, err := stdcopy.StdCopy(gatedWriter{gate, sink.Stdout()}, gatedWriter{gate, sink.Stderr()}, conn.Reader)
		r.cfg.Logger.Debug().Int64("bytes", n).AnErr("copy_err", err).Str("container_id", id).Msg("output stream ended")
		copied <- err
	}()

	started := time.Now()
	if err := eng.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return out, executor.Errorf(executor.ErrInvalidSpec, err, "cannot start %q in image %s", spec.Argv[0], spec.Image)
	}
	out.Started = true
	sink.ContainerStarted(id, false)
	openGate()
	go func() {
		if len(spec.Stdin) > 0 {
			_, _ = conn.Conn.Write(spec.Stdin)
		}
		_ = conn.CloseWrite()
	}()

	var timeout <-chan time.Time
	if d := spec.Limits.Timeout(); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	var exit container.WaitResponse
	select {
	case exit = <-waitC:
	case err := <-waitErrC:
		return out, executor.Errorf(executor.ErrUnavailable, err, "lost the wait on container %s", id)
	case <-timeout:
		out.TimedOut = true
		exit, err = r.stop(id, spec.KillGrace, waitC, waitErrC)
	case <-ctx.Done():
		out.Stopped = true
		exit, err = r.stop(id, spec.KillGrace, waitC, waitErrC)
	}
	if err != nil {
		return out, executor.Errorf(executor.ErrUnavailable, err, "lost the wait on container %s", id)
	}
	out.Duration = time.Since(started)

	// The attach stream ends when the container exits; a leftover holder of
	// the output (there is none once the container is gone) cannot hold us.
	select {
	case <-copied:
	case <-time.After(5 * time.Second):
		r.cfg.Logger.Warn().Str("container_id", id).Msg("output stream still open 5s after exit; closing it")
		conn.Close()
		<-copied
	}

	// Without the daemon's answer the wait's exit code stands.
	out.ExitCode = int(exit.StatusCode)
	out.Signal = exitSignal(out.ExitCode)
	_ = r.inspectExit(ctx, id, &out)
	return out, nil
}

// inspectExit completes out with how the container ended: its exit code,
// whether it was killed for memory, and its own measure of the run time.
// It fails, leaving out as it was, when the daemon cannot say.
func (r *Runtime) inspectExit(ctx context.Context, id string, out *executor.Outcome) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// The daemon learns of an OOM kill from an event of its own, which can
	// trail the exit by as long as the machine is busy; a SIGKILL nobody
	// sent is worth looking at again for a while.
	oomDeadline := time.Now().Add(oomEventWait)
	for {
		info, err := r.cfg.Engine.ContainerInspect(ctx, id)
		if err != nil {
			return err
		}
		if info.State == nil {
			return fmt.Errorf("container %s has no state", id)
		}
		out.OOMKilled = info.State.OOMKilled
		out.ExitCode = info.State.ExitCode
		if d, ok := stateDuration(info.State.StartedAt, info.State.FinishedAt); ok {
			out.Duration = d
		}
		unexplainedKill := out.ExitCode == 128+int(unix.SIGKILL) && !out.OOMKilled && !out.TimedOut && !out.Stopped
		if !unexplainedKill || time.Now().After(oomDeadline) {
			out.Signal = exitSignal(out.ExitCode)
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// oomEventWait is how long a run killed by a SIGKILL nobody sent waits for
// the daemon to say whether it was out of memory.
const oomEventWait = 3 * time.Second

// stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (r *Runtime) stop(id string, grace time.Duration, waitC <-chan container.WaitResponse, errC <-chan error) (container.WaitResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), grace+30*time.Second)
	defer cancel()
	log := r.cfg.Logger.With().Str("container_id", id).Logger()
	if err := r.cfg.Engine.ContainerKill(ctx, id, "SIGTERM"); err != nil {
		log.Warn().Err(err).Msg("SIGTERM not delivered")
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case exit := <-waitC:
		return exit, nil
	case err := <-errC:
		return container.WaitResponse{}, err
	case <-t.C:
		if err := r.cfg.Engine.ContainerKill(ctx, id, "SIGKILL"); err != nil {
			log.Warn().Err(err).Msg("SIGKILL not delivered")
		}
	}
	select {
	case exit := <-waitC:
		return exit, nil
	case err := <-errC:
		return container.WaitResponse{}, err
	case <-ctx.Done():
		return container.WaitResponse{}, fmt.Errorf("container %s did not exit after SIGKILL", id)
	}
}

// exitSignal names the signal behind a 128+n exit status, the convention of
// the container's init process.
func exitSignal(code int) string {
	if code > 128 && code <= 128+64 {
		if name := unix.SignalName(unix.Signal(code - 128)); name != "" {
			return name
		}
	}
	return ""
}

func stateDuration(startedAt, finishedAt string) (time.Duration, bool) {
	s, err1 := time.Parse(time.RFC3339Nano, startedAt)
	f, err2 := time.Parse(time.RFC3339Nano, finishedAt)
	if err1 != nil || err2 != nil || f.Before(s) {
		return 0, false
	}
	return f.Sub(s), true
}

// gatedWriter holds writes until its gate opens.
type gatedWriter struct {
	gate <-chan struct{}
	w    io.Writer
}

func (g gatedWriter) Write(p []byte) (int, error) {
	<-g.gate
	return g.w.Write(p)
}

var _ executor.LeftoverRuntime = (*Runtime)(nil)

// Leftovers lists the containers labelled with this runtime's owner: runs
// and warm and single-use pool containers a previous process left behind
// (a single-use container taken by a run of a build before 2026-12-07
// carries the run's name; a later one does not, and its run, whose stream
// names the container, is recorded lost when it is given again). Containers of
// the legacy owner come back Unclaimed. Call it before taking work
// (executor.Reconcile does).
func (r *Runtime) Leftovers(ctx context.Context) ([]executor.Leftover, error) {
	out, err := r.leftoversOf(ctx, r.cfg.Owner, false)
	if err != nil || r.cfg.LegacyOwner == "" {
		return out, err
	}
	legacy, err := r.leftoversOf(ctx, r.cfg.LegacyOwner, true)
	return append(out, legacy...), err
}

func (r *Runtime) leftoversOf(ctx context.Context, owner string, unclaimed bool) ([]executor.Leftover, error) {
	list, err := r.cfg.Engine.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", LabelManaged+"=true"), filters.Arg("label", LabelOwner+"="+owner))})
	if err != nil {
		return nil, executor.Errorf(executor.ErrUnavailable, err, "cannot list the containers of owner %s", owner)
	}
	out := make([]executor.Leftover, 0, len(list))
	for _, c := range list {
		l := executor.Leftover{RunID: c.Labels[LabelRunID], RequestID: c.Labels[LabelRequestID], ContainerID: c.ID, State: string(c.State), Unclaimed: unclaimed}
		if l.RunID == "" && c.Labels[LabelSingleUse] == "true" {
			// Started before its run was known: an older build renamed it
			// after the run.
			l.RunID = runOfName(c.Names)
		}
		if c.State == container.StateExited {
			if info, err := r.cfg.Engine.ContainerInspect(ctx, c.ID); err == nil && info.State != nil {
				l.ExitCode = info.State.ExitCode
			}
		}
		out = append(out, l)
	}
	return out, nil
}

// runOfName is the run a container named by ContainerName belongs to, or
// "". The daemon lists names with a leading slash.
func runOfName(names []string) string {
	for _, n := range names {
		if id, ok := strings.CutPrefix(strings.TrimPrefix(n, "/"), containerNamePrefix); ok {
			return id
		}
	}
	return ""
}

// Discard removes a leftover container, killing it if it runs.
func (r *Runtime) Discard(ctx context.Context, l executor.Leftover) error {
	err := r.cfg.Engine.ContainerRemove(ctx, l.ContainerID, container.RemoveOptions{Force: true})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return err
}
