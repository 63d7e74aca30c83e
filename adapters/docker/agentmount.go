package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"

	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/executor"
)

// How warm and single-use containers get logbook-agent (WarmConfig.AgentMount).
const (
	// AgentBind bind-mounts WarmConfig.AgentPath: the path must be the
	// Docker host's, so Logbook runs on that host, outside a container.
	AgentBind = "bind"
	// AgentVolume copies the agent, through the Engine API, into a Docker
	// volume of this runtime's own, and mounts the volume: it works
	// wherever the runtime runs, in a container with the host's Docker
	// socket, or against a remote daemon.
	AgentVolume = "volume"
)

// LabelAgent marks the volume holding logbook-agent: the agent's sha256.
const LabelAgent = "org.logbook.agent"

// agentDir is where the agent's volume is mounted: agentTarget is in it.
const agentDir = "/.logbook"

// DefaultAgentMount chooses AgentBind when the daemon runs on this very
// host: it is reached on a local socket (daemonHost, as the client names
// it) and calls itself by this host's name (daemonName, from its info).
// Anything else, a Logbook in a container (its own host name) or a remote
// daemon, gets AgentVolume: its path to the agent is not the daemon
// host's. A container given the host's name (--uts=host) sets
// LOGBOOK_AGENT_MOUNT=volume itself.
func DefaultAgentMount(daemonHost, daemonName string) string {
	host, err := os.Hostname()
	if err != nil || daemonName == "" || daemonName != host || (daemonHost != "" && !strings.HasPrefix(daemonHost, "unix://")) {
		return AgentVolume
	}
	return AgentBind
}

// agentMount is the mount that puts logbook-agent at agentTarget in a warm
// or single-use container, read-only. With AgentVolume the volume is made
// and filled once per runtime, before the first such container; image is
// the one that container is for (it is on the host: the fill's helper
// container is made from it, and never started).
func (r *Runtime) agentMount(ctx context.Context, image string, mode run.Mode) (mount.Mount, error) {
	agentPath := r.cfg.Warm.AgentPath
	if agentPath == "" {
		return mount.Mount{}, executor.Errorf(executor.ErrInvalidSpec, nil, "%s mode needs logbook-agent: set LOGBOOK_AGENT_PATH or install it next to logbook", mode)
	}
	if r.cfg.Warm.AgentMount != AgentVolume {
		if fi, err := os.Stat(agentPath); err != nil || fi.Mode()&0o001 == 0 {
			return mount.Mount{}, executor.Errorf(executor.ErrInvalidSpec, err, "%s mode needs %s executable by every user (chmod 755): the agent cleans up after each run as the run's user", mode, agentPath)
		}
		return mount.Mount{Type: mount.TypeBind, Source: agentPath, Target: agentTarget, ReadOnly: true}, nil
	}
	r.agentMu.Lock()
	defer r.agentMu.Unlock()
	if r.agentVolume == "" {
		name, err := r.fillAgentVolume(ctx, image)
		if err != nil {
			return mount.Mount{}, executor.Errorf(executor.ErrUnavailable, err, "%s mode: cannot put logbook-agent into a Docker volume", mode)
		}
		r.agentVolume = name
	}
	// Read-only: the one volume serves every bundle's containers, and no
	// run may change the agent another bundle's container executes.
	return mount.Mount{Type: mount.TypeVolume, Source: r.agentVolume, Target: agentDir, ReadOnly: true,
		VolumeOptions: &mount.VolumeOptions{NoCopy: true}}, nil
}

var volumeNameUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_.-]`)

// fillAgentVolume makes this runtime's agent volume (named by its owner and
// the agent's digest, so no other runtime writes to it) and copies the
// agent in through a helper container that is created and removed, never
// started. It is filled again at each process's first use: a fill an
// earlier process left half done is overwritten. Volumes of this owner
// holding another agent are removed when no container uses them. A volume
// rather than an image FROM scratch holding the agent: mounting an image
// into another container needs Docker 28; this works on any daemon.
func (r *Runtime) fillAgentVolume(ctx context.Context, image string) (string, error) {
	agent, err := os.ReadFile(r.cfg.Warm.AgentPath)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(agent)
	digest := hex.EncodeToString(sum[:])
	name := "logbook-agent-" + volumeNameUnsafe.ReplaceAllString(r.cfg.Owner, "-") + "-" + digest[:12]
	eng := r.cfg.Engine
	labels := map[string]string{LabelManaged: "true", LabelOwner: r.cfg.Owner, LabelAgent: digest}
	if _, err := eng.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: labels}); err != nil {
		return "", fmt.Errorf("create volume %s: %w", name, err)
	}
	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	if err := tw.WriteHeader(&tar.Header{Name: "agent", Mode: 0o755, Size: int64(len(agent)), Typeflag: tar.TypeReg}); err != nil {
		return "", err
	}
	if _, err := tw.Write(agent); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	// Labelled as this owner's, so a reconcile removes a helper a crash
	// left behind.
	helper, err := eng.ContainerCreate(ctx,
		&container.Config{Image: image, Entrypoint: []string{agentTarget}, Labels: map[string]string{LabelManaged: "true", LabelOwner: r.cfg.Owner}},
		&container.HostConfig{NetworkMode: "none", Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: name, Target: agentDir}}},
		nil, nil, "logbook-agent-fill-"+hex.EncodeToString(suffix))
	if err != nil {
		return "", fmt.Errorf("create the helper container that fills volume %s: %w", name, err)
	}
	defer func() {
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = eng.ContainerRemove(rmCtx, helper.ID, container.RemoveOptions{Force: true})
	}()
	if err := eng.CopyToContainer(ctx, helper.ID, agentDir, &archive, container.CopyToContainerOptions{}); err != nil {
		return "", fmt.Errorf("copy logbook-agent into volume %s: %w", name, err)
	}
	r.removeStaleAgentVolumes(ctx, name)
	r.cfg.Logger.Info().Str("volume", name).Str("agent_sha256", digest).Msg("logbook-agent is in a Docker volume for warm and single-use containers")
	return name, nil
}

// removeStaleAgentVolumes removes this owner's agent volumes other than
// keep: they hold an earlier agent. One a container still uses stays.
func (r *Runtime) removeStaleAgentVolumes(ctx context.Context, keep string) {
	list, err := r.cfg.Engine.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", LabelOwner+"="+r.cfg.Owner), filters.Arg("label", LabelAgent))})
	if err != nil {
		return
	}
	for _, v := range list.Volumes {
		if v.Name == keep {
			continue
		}
		if err := r.cfg.Engine.VolumeRemove(ctx, v.Name, false); err != nil && !cerrdefs.IsNotFound(err) {
			r.cfg.Logger.Debug().Err(err).Str("volume", v.Name).Msg("an earlier agent's volume is still in use; left")
		}
	}
}
