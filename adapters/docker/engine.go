// Package docker is the Runtime that runs commands in hardened containers
// through the Docker Engine API (never the docker CLI). Fresh mode creates a
// container per run; warm mode forks each run inside a pooled container
// running Logbook's agent; single-use mode forks one run in an agent's
// container started ahead of it, and removes the container after. Every container gets: no network, all
// capabilities dropped, no-new-privileges, a read-only root with a tmpfs
// /tmp, pids, memory (no swap) and CPU limits, an init process, and labels
// carrying the run id. Commands run as the run's unprivileged user.
package docker

import (
	"context"
	"io"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Engine is the subset of the Docker client Logbook uses, so tests and
// readers see exactly what the runtime asks of the daemon.
type Engine interface {
	Ping(ctx context.Context) (types.Ping, error)
	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (image.InspectResponse, error)
	ImagePull(ctx context.Context, ref string, opts image.PullOptions) (io.ReadCloser, error)
	ImageBuild(ctx context.Context, buildContext io.Reader, opts build.ImageBuildOptions) (build.ImageBuildResponse, error)
	ImageRemove(ctx context.Context, ref string, opts image.RemoveOptions) ([]image.DeleteResponse, error)
	ContainerCreate(ctx context.Context, cfg *container.Config, host *container.HostConfig, net *network.NetworkingConfig, platform *ocispec.Platform, name string) (container.CreateResponse, error)
	ContainerAttach(ctx context.Context, id string, opts container.AttachOptions) (types.HijackedResponse, error)
	ContainerWait(ctx context.Context, id string, cond container.WaitCondition) (<-chan container.WaitResponse, <-chan error)
	ContainerStart(ctx context.Context, id string, opts container.StartOptions) error
	ContainerKill(ctx context.Context, id, signal string) error
	ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error)
	ContainerRemove(ctx context.Context, id string, opts container.RemoveOptions) error
	ContainerList(ctx context.Context, opts container.ListOptions) ([]container.Summary, error)
	ContainerLogs(ctx context.Context, id string, opts container.LogsOptions) (io.ReadCloser, error)
	CopyFromContainer(ctx context.Context, id, srcPath string) (io.ReadCloser, container.PathStat, error)
	CopyToContainer(ctx context.Context, id, dstPath string, content io.Reader, opts container.CopyToContainerOptions) error
	VolumeCreate(ctx context.Context, opts volume.CreateOptions) (volume.Volume, error)
	VolumeList(ctx context.Context, opts volume.ListOptions) (volume.ListResponse, error)
	VolumeRemove(ctx context.Context, id string, force bool) error
	ImagePush(ctx context.Context, ref string, opts image.PushOptions) (io.ReadCloser, error)
	ImageTag(ctx context.Context, source, target string) error
}

var _ Engine = (*client.Client)(nil)

// NewClient connects to the daemon named by the environment (DOCKER_HOST,
// or the local socket) and negotiates the API version, so an older daemon
// (Debian's docker.io 20.10 speaks 1.41) is spoken to in its own version.
func NewClient() (*client.Client, error) {
	return client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
}

// Labels on every container Logbook creates.
const (
	LabelManaged   = "org.logbook.managed" // "true"
	LabelOwner     = "org.logbook.owner"   // Config.Owner
	LabelRunID     = "org.logbook.run_id"
	LabelRequestID = "org.logbook.request_id"
	LabelPool      = "org.logbook.pool" // warm and single-use pool containers: the image
	// LabelSingleUse marks a single-use pool container ("true").
	LabelSingleUse = "org.logbook.single_use"
)

// ContainerName is the name of a fresh run's container, and of a
// single-use container once a run takes it. Deriving it from the run id
// makes a redelivered request collide ("already exists") instead of
// running the command twice.
func ContainerName(runID string) string { return containerNamePrefix + runID }

const containerNamePrefix = "logbook-run-"
