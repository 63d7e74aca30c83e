package dockertest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"

	"github.com/logbookhq/logbook/adapters/docker"
	"github.com/logbookhq/logbook/internal/testenv"
)

// Registry is a Docker registry (Debian's docker-registry, distribution)
// a test started on a loopback port, with htpasswd logins.
type Registry struct {
	Host     string // 127.0.0.1:PORT
	User     string
	Password string
	// ConfigDir holds a Docker config.json with the login, for
	// LOGBOOK_REGISTRY_CONFIG or DOCKER_CONFIG.
	ConfigDir string
}

// Paths of Debian's packages docker-registry and apache2-utils.
const (
	RegistryPath = "/usr/bin/docker-registry"
	HtpasswdPath = "/usr/bin/htpasswd"
)

// StartRegistry starts a registry for the test, stopped when it ends; it
// skips (or fails under LOGBOOK_REQUIRE_SERVICES=1) when the packages are
// missing.
func StartRegistry(t testing.TB) Registry {
	t.Helper()
	for _, p := range []struct{ path, pkg string }{{RegistryPath, "docker-registry"}, {HtpasswdPath, "apache2-utils"}} {
		if _, err := os.Stat(p.path); err != nil {
			testenv.Missing(t, "a Docker registry", fmt.Sprintf("%s is missing (apt-get install %s)", p.path, p.pkg))
		}
	}
	dir := t.TempDir()
	reg := Registry{User: "logbook", Password: "p@ss w0rd:" + filepath.Base(dir)}
	out, err := exec.Command(HtpasswdPath, "-Bbn", reg.User, reg.Password).Output()
	if err != nil {
		t.Fatalf("htpasswd: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), out, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg.Host = l.Addr().String()
	l.Close()
	config := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
auth:
  htpasswd:
    realm: logbook-test
    path: %s
`, filepath.Join(dir, "data"), reg.Host, filepath.Join(dir, "htpasswd"))
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(RegistryPath, "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("start docker-registry: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	testenv.EventuallyWithin(t, 10*time.Second, "docker-registry answering 401 at /v2/", func() bool {
		resp, err := http.Get("http://" + reg.Host + "/v2/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusUnauthorized
	})
	reg.ConfigDir = filepath.Join(dir, "docker")
	if err := os.MkdirAll(reg.ConfigDir, 0o700); err != nil {
		t.Fatal(err)
	}
	auth := base64.StdEncoding.EncodeToString([]byte(reg.User + ":" + reg.Password))
	file, _ := json.Marshal(map[string]any{"auths": map[string]any{reg.Host: map[string]string{"auth": auth}}})
	if err := os.WriteFile(filepath.Join(reg.ConfigDir, "config.json"), file, 0o600); err != nil {
		t.Fatal(err)
	}
	return reg
}

// Push pushes a local image to the registry with the test's login.
func (r Registry) Push(ctx context.Context, eng docker.Engine, ref string) error {
	auth, err := registry.EncodeAuthConfig(registry.AuthConfig{Username: r.User, Password: r.Password, ServerAddress: r.Host})
	if err != nil {
		return err
	}
	rc, err := eng.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: auth})
	if err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	for {
		var m struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		if m.Error != "" {
			return fmt.Errorf("push %s: %s", ref, m.Error)
		}
	}
}

// Leaky builds the leaky test command, static, for a test.
func Leaky(t testing.TB) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	path, err := buildStatic(ctx, t.TempDir(), "github.com/logbookhq/logbook/adapters/docker/dockertest/leaky")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// PushBundleImage builds a FROM scratch image of the leaky command with
// config at /bundle/config.yaml (unless config is nil) and marker at
// /marker, tags it ref and pushes it.
func (r Registry) PushBundleImage(t testing.TB, eng docker.Engine, leaky []byte, ref string, config []byte, marker string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	files := map[string][]byte{"/marker": []byte(marker + "\n")}
	if config != nil {
		files[docker.BundleConfigPath] = config
	}
	if _, err := docker.BuildScratchImage(ctx, eng, docker.ScratchImage{Tag: ref, Binary: "leaky", Data: leaky, Files: files}); err != nil {
		t.Fatalf("build %s: %v", ref, err)
	}
	if err := r.Push(ctx, eng, ref); err != nil {
		t.Fatal(err)
	}
}
