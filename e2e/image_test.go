package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/logbookhq/logbook/adapters/docker/dockertest"
	"github.com/logbookhq/logbook/internal/testenv"
)

// Logbook's own image (make image) starts as an unprivileged user on its
// embedded default, answers requests, and its HEALTHCHECK finds it healthy.
func TestTheImageServesAsAnUnprivilegedUserAndReportsHealthy(t *testing.T) {
	requireDocker(t)
	ctx := context.Background()
	eng := dockertest.Engine(t)
	tag := logbookImage(t)

	inspect, err := eng.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	if inspect.Config.User != "65532:65532" {
		t.Errorf("the image runs as %q, want 65532:65532", inspect.Config.User)
	}
	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if copies := strings.Count(string(dockerfile), "\nCOPY "); len(inspect.RootFS.Layers) != copies {
		t.Errorf("the image has %d layers; FROM scratch it should have one per COPY, %d", len(inspect.RootFS.Layers), copies)
	}

	created, err := eng.ContainerCreate(ctx,
		&container.Config{Image: tag, ExposedPorts: nat.PortSet{"8080/tcp": {}}, Env: []string{"LOGBOOK_RUNTIME=process"}},
		&container.HostConfig{PortBindings: nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1", HostPort: "0"}}}, AutoRemove: false},
		nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if logs, err := eng.ContainerLogs(context.Background(), created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true}); err == nil {
				var buf bytes.Buffer
				io.Copy(&buf, logs)
				t.Logf("container logs:\n%s", buf.String())
			}
		}
		eng.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true})
	})
	if err := eng.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	running, err := eng.ContainerInspect(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	binding := running.NetworkSettings.Ports["8080/tcp"]
	if len(binding) == 0 {
		t.Fatalf("port 8080 is not published: %v", running.NetworkSettings.Ports)
	}
	url := "http://127.0.0.1:" + binding[0].HostPort
	testenv.Eventually(t, "the containerized server to be ready", func() bool {
		code, _ := get(t, url+"/readyz")
		return code == http.StatusOK
	})

	// The admin token is in its first start's output.
	var token string
	testenv.Eventually(t, "the admin token in the container's output", func() bool {
		logs, err := eng.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true})
		if err != nil {
			return false
		}
		var buf bytes.Buffer
		io.Copy(&buf, logs)
		if m := tokenLine.FindStringSubmatch(buf.String()); m != nil {
			token = m[1]
		}
		return token != ""
	})
	body, _ := json.Marshal(map[string]string{"text": "echo from the image"})
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/requests?wait=1", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), "from the image") {
		t.Fatalf("echo: %s %s", resp.Status, raw)
	}

	top, err := eng.ContainerTop(ctx, created.ID, []string{"-o", "pid,uid,comm"})
	if err != nil {
		t.Fatal(err)
	}
	uid := slices.Index(top.Titles, "UID")
	if uid < 0 || len(top.Processes) == 0 {
		t.Fatalf("docker top: %v %v", top.Titles, top.Processes)
	}
	for _, p := range top.Processes {
		if p[uid] != "65532" {
			t.Errorf("a process in the container runs as uid %s: %v", p[uid], p)
		}
	}
	testenv.EventuallyWithin(t, 60*time.Second, "Docker's HEALTHCHECK (logbook health) to find the container healthy", func() bool {
		c, err := eng.ContainerInspect(ctx, created.ID)
		return err == nil && c.State.Health != nil && c.State.Health.Status == "healthy"
	})
}
