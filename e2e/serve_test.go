package e2e

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/logbookhq/logbook/internal/testenv"
)

// server is a running `logbook serve`.
type server struct {
	cmd    *exec.Cmd
	addr   string
	logs   *syncBuffer
	exited chan error
	done   chan struct{} // closed once the process has exited
}

// syncBuffer is a bytes.Buffer the server's output goroutine writes while
// the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startServer(t *testing.T, env ...string) *server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &server{addr: addr, logs: &syncBuffer{}, exited: make(chan error, 1), done: make(chan struct{})}
	s.cmd = exec.Command(binary, "serve")
	// A data directory of the test's own unless the test names one: the
	// default ./data would put the server's files (a secret key) in the
	// source tree.
	base := []string{"LOGBOOK_HTTP_ADDR=" + addr, "LOGBOOK_LOG_FORMAT=json", "LOGBOOK_DATA_DIR=" + filepath.Join(t.TempDir(), "data")}
	s.cmd.Env = append(os.Environ(), append(base, env...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		stopAtCleanup(s.cmd, s.done)
		if t.Failed() {
			t.Logf("server logs:\n%s", s.logs)
		}
	})
	return s
}

// stopAtCleanup stops a process the test left running the way an operator
// would, with SIGTERM, so it removes the containers it holds (a warm pool,
// spare single-use containers); a kill would leave them running on the
// Docker host after the test. It kills what has not stopped within 30 s.
func stopAtCleanup(cmd *exec.Cmd, done <-chan struct{}) {
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Process.Signal(syscall.SIGCONT) // a test may have paused it
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func (s *server) waitReady(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, "the server to be ready", func() bool {
		resp, err := http.Get("http://" + s.addr + "/readyz")
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func (s *server) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		return err
	case <-time.After(15 * time.Second):
		t.Fatalf("the server did not stop within 15s of %v", sig)
		return nil
	}
}

func TestServeStopsCleanlyOnSIGTERMAndSIGINT(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			dataDir := t.TempDir()
			s := startServer(t, "LOGBOOK_DATA_DIR="+dataDir)
			s.waitReady(t)
			if err := s.stop(t, sig); err != nil {
				t.Fatalf("exit after %v: %v", sig, err)
			}
			if !strings.Contains(s.logs.String(), `"message":"stopped"`) {
				t.Fatalf("the logs do not say the server stopped:\n%s", s.logs)
			}
			if _, err := os.Stat(filepath.Join(dataDir, "logbook.db")); err != nil {
				t.Fatalf("no SQLite file under LOGBOOK_DATA_DIR: %v", err)
			}
		})
	}
}

func TestServeOnPostgres(t *testing.T) {
	url := testenv.PostgresSchema(t)
	s := startServer(t, "LOGBOOK_DATABASE_URL="+url)
	s.waitReady(t)
	if !strings.Contains(s.logs.String(), `"store":"postgres `) || strings.Contains(s.logs.String(), "password") {
		t.Fatalf("the logs do not name the postgres store:\n%s", s.logs)
	}
	if err := s.stop(t, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "audit", "verify")
	cmd.Env = append(os.Environ(), "LOGBOOK_DATABASE_URL="+url)
	out, err := cmd.CombinedOutput()
	// The first start recorded the bootstrap admin and the sample bundle.
	if err != nil || !strings.HasPrefix(string(out), "ok: ") || strings.HasPrefix(string(out), "ok: 0 ") {
		t.Fatalf("audit verify on the Postgres store after the first start: %v\n%s", err, out)
	}
}
