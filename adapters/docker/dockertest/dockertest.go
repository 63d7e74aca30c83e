// Package dockertest gives tests and benchmarks a Docker daemon and a small
// image to run, with no registry: the image is built through the Engine API
// from Debian's static busybox (`apt-get install busybox-static`), FROM
// scratch, and cached under a tag derived from its content.
package dockertest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/logbookhq/logbook/adapters/docker"
	"github.com/logbookhq/logbook/internal/testenv"
)

// BusyboxPath is where Debian's busybox-static installs its binary.
const BusyboxPath = "/bin/busybox"

// Applets are the busybox commands linked into the test image.
var Applets = []string{"sh", "echo", "cat", "sleep", "yes", "head", "dd", "wget", "nc", "touch", "printf", "true", "false", "ls", "wc", "env", "id", "ping", "seq", "tr", "mkdir", "rm", "chmod", "setsid", "kill"}

// Connect returns a client of the local daemon, version-negotiated, or
// errors when no daemon answers within a few seconds.
func Connect(ctx context.Context) (*client.Client, error) {
	cli, err := docker.NewClient()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("no Docker daemon answers: %w", err)
	}
	cli.NegotiateAPIVersion(ctx)
	return cli, nil
}

// Engine connects to the daemon for a test, skipping it (or failing, under
// LOGBOOK_REQUIRE_SERVICES=1) when none answers.
func Engine(t testing.TB) *client.Client {
	t.Helper()
	cli, err := Connect(context.Background())
	if err != nil {
		testenv.Missing(t, "Docker", err.Error())
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Image builds (or reuses) the busybox test image for a test and returns its
// tag, skipping when busybox or the daemon is missing.
func Image(t testing.TB, eng docker.Engine) string {
	t.Helper()
	if _, err := os.Stat(BusyboxPath); err != nil {
		testenv.Missing(t, "busybox", fmt.Sprintf("Docker tests build their image from %s (apt-get install busybox-static): %v", BusyboxPath, err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tag, err := BuildBusyboxImage(ctx, eng, BusyboxPath)
	if err != nil {
		t.Fatalf("building the busybox test image: %v", err)
	}
	return tag
}

var buildMu sync.Mutex

// BuildBusyboxImage builds a FROM scratch image holding busybox and its
// Applets, tagged logbook-test/busybox:<content hash>, unless that tag
// already exists. It returns the tag.
func BuildBusyboxImage(ctx context.Context, eng docker.Engine, busyboxPath string) (string, error) {
	return buildBusyboxImage(ctx, eng, busyboxPath, nil)
}

// buildBusyboxImage builds the busybox image with extra executables in /bin.
func buildBusyboxImage(ctx context.Context, eng docker.Engine, busyboxPath string, extra map[string][]byte) (string, error) {
	// Concurrent builds of one tag would leave an untagged image behind.
	buildMu.Lock()
	defer buildMu.Unlock()
	bin, err := os.ReadFile(busyboxPath)
	if err != nil {
		return "", err
	}
	sum := sha256.New()
	sum.Write(bin)
	sum.Write([]byte(strings.Join(Applets, ",")))
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		sum.Write([]byte("\x00" + name + "\x00"))
		sum.Write(extra[name])
	}
	tag := "logbook-test/busybox:" + hex.EncodeToString(sum.Sum(nil))[:16]
	_, err = docker.BuildScratchImage(ctx, eng, docker.ScratchImage{Tag: tag, Binary: "busybox", Data: bin, Links: Applets, Cmd: []string{"/bin/sh"}, Extra: extra})
	return tag, err
}

// ImageWithSysVIPC builds (or reuses) the busybox test image with
// /bin/sysvipc (package sysvipc), which makes SysV IPC objects: busybox has
// no applet that does.
func ImageWithSysVIPC(t testing.TB, eng docker.Engine) string {
	t.Helper()
	if _, err := os.Stat(BusyboxPath); err != nil {
		testenv.Missing(t, "busybox", fmt.Sprintf("Docker tests build their image from %s (apt-get install busybox-static): %v", BusyboxPath, err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tool, err := buildStatic(ctx, t.TempDir(), "github.com/logbookhq/logbook/adapters/docker/dockertest/sysvipc")
	if err == nil {
		var data []byte
		if data, err = os.ReadFile(tool); err == nil {
			var tag string
			if tag, err = buildBusyboxImage(ctx, eng, BusyboxPath, map[string][]byte{"sysvipc": data}); err == nil {
				return tag
			}
		}
	}
	t.Fatalf("building the busybox test image with sysvipc: %v", err)
	return ""
}

// BuildAgent builds logbook-agent, static, into dir and returns its path.
// It must run inside the Logbook module (tests and `logbook bench` from a
// checkout).
func BuildAgent(ctx context.Context, dir string) (string, error) {
	return buildStatic(ctx, dir, "github.com/logbookhq/logbook/cmd/logbook-agent")
}

// buildStatic builds a command of the Logbook module, static, into dir and
// returns its path.
func buildStatic(ctx context.Context, dir, pkg string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v: %s", pkg, err, msg)
	}
	return out, nil
}

// Agent builds logbook-agent for a test into its temp dir.
func Agent(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	path, err := BuildAgent(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return path
}
