package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/docker"
	"github.com/logbookhq/logbook/adapters/docker/dockertest"
	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/executor/executortest"
)

type discardSink struct{}

func (discardSink) ContainerCreated(string, string)     {}
func (discardSink) ContainerTaken(string, string) error { return nil }
func (discardSink) ContainerStarted(string, bool)       {}
func (discardSink) Stdout() io.Writer                   { return io.Discard }
func (discardSink) Stderr() io.Writer                   { return io.Discard }

func openTestSQLite(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Two servers with their own stores share one Docker daemon. When the
// second starts, its reconcile must leave the first one's running command
// alone; it used to remove every container labelled "logbook" whose run
// was not in its own store. The first server, restarted, still settles its
// own container.
func TestServersOfTwoStoresOnOneDockerHostReconcileOnlyTheirOwnContainers(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	ctx := context.Background()
	log := zerolog.New(zerolog.NewTestWriter(t))
	storeA, storeB := openTestSQLite(t), openTestSQLite(t)
	rtA, err := storeDockerRuntime(ctx, cli, storeA, docker.WarmConfig{}, log)
	if err != nil {
		t.Fatal(err)
	}
	rtB, err := storeDockerRuntime(ctx, cli, storeB, docker.WarmConfig{}, log)
	if err != nil {
		t.Fatal(err)
	}

	// Server A runs a command.
	id := strings.ReplaceAll(uuid.NewString(), "-", "")
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan executor.Outcome, 1)
	go func() {
		out, _ := rtA.Run(runCtx, executor.Spec{RunID: id, RequestID: "a", Image: img, Argv: []string{"sleep", "60"}, Limits: executor.DefaultLimits, KillGrace: time.Second}, discardSink{})
		ran <- out
	}()
	t.Cleanup(func() {
		stop()
		if out := <-ran; out.Release != nil {
			_ = out.Release(ctx)
		}
		_ = cli.ContainerRemove(ctx, docker.ContainerName(id), container.RemoveOptions{Force: true})
	})
	running := func() bool {
		info, err := cli.ContainerInspect(ctx, docker.ContainerName(id))
		return err == nil && info.State != nil && info.State.Running
	}
	for deadline := time.Now().Add(30 * time.Second); !running(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("server A's command never ran")
		}
	}

	reconcile := func(rt *docker.Runtime, store *sqlite.Store) executor.ReconcileReport {
		t.Helper()
		rep, err := executor.Reconcile(ctx, executor.ReconcileConfig{
			Runtime: rt, Store: store, Publisher: executortest.AppendingPublisher{Appender: executor.NewAppender(store)}, Logger: log,
		})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	// Server B starts.
	if rep := reconcile(rtB, storeB); rep.Removed != 0 || !running() {
		t.Fatalf("server B's reconcile (%+v) stopped server A's running command", rep)
	}
	// Server A restarts: its store does not know the run, so it removes it.
	if rep := reconcile(rtA, storeA); rep.Removed != 1 || rep.Unmatched != 1 || running() {
		t.Fatalf("server A's reconcile (%+v) did not settle its own container", rep)
	}
}
