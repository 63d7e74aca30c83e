// Package natstest runs Debian's nats-server for tests: JetStream on, a
// free loopback port, its own store directory, and authorization with one
// user for the server and one per executor, each executor confined to its
// own subjects (natsbus.ExecutorPermissions). Tests that use it skip when
// nats-server is missing and fail under LOGBOOK_REQUIRE_SERVICES=1.
package natstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/logbookhq/logbook/adapters/natsbus"
	"github.com/logbookhq/logbook/internal/testenv"
)

// ServerUser is the user the Logbook server connects as; it may do
// anything.
const ServerUser = "logbook"

// Executor is an executor's NATS user.
type Executor struct {
	ID     string
	Groups []string
	// NKey makes the user an nkey instead of a password: Start writes
	// its seed to SeedFile (mode 0600).
	NKey bool
}

// Server is one nats-server process.
type Server struct {
	t        testing.TB
	URL      string
	Port     int
	host     string
	Password string // every user's password is Password + "-" + user
	dir      string
	conf     string
	bin      string

	mu  sync.Mutex
	cmd *exec.Cmd
	// seeds holds the seed file of each executor made an nkey user.
	seeds map[string]string
}

// SeedFile is the nkey seed file of an executor started with NKey.
func (s *Server) SeedFile(id string) string { return s.seeds[id] }

// PasswordOf is the password of user.
func (s *Server) PasswordOf(user string) string { return s.Password + "-" + user }

// Start runs nats-server on a loopback port with a user for the server and
// one per executor.
func Start(t testing.TB, executors ...Executor) *Server {
	t.Helper()
	return StartOn(t, "127.0.0.1", executors...)
}

// StartOn is Start listening on host, an address of this machine: a
// loopback one, or the gateway of a Docker network the test made, so
// executors in containers on that network reach it.
func StartOn(t testing.TB, host string, executors ...Executor) *Server {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nats-server", "/usr/bin/nats-server"} {
			if _, statErr := os.Stat(p); statErr == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		testenv.Missing(t, "nats-server", "the binary is not installed (apt-get install nats-server)")
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	s := &Server{t: t, Port: port, host: host, seeds: map[string]string{}, URL: "nats://" + net.JoinHostPort(host, strconv.Itoa(port)), Password: "pw" + strconv.Itoa(port), dir: dir, bin: bin,
		conf: filepath.Join(dir, "nats.conf")}
	if err := os.WriteFile(s.conf, []byte(s.config(executors)), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func quote(subjects []string) string {
	q := make([]string, len(subjects))
	for i, s := range subjects {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func (s *Server) config(executors []Executor) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %q\nserver_name: logbook-test\n", net.JoinHostPort(s.host, strconv.Itoa(s.Port)))
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n  max_memory_store: 64MB\n  max_file_store: 1GB\n}\n", filepath.Join(s.dir, "js"))
	b.WriteString("authorization {\n  users: [\n")
	fmt.Fprintf(&b, "    {user: %q, password: %q}\n", ServerUser, s.PasswordOf(ServerUser))
	for _, e := range executors {
		pub, sub := natsbus.ExecutorPermissions(e.ID, e.Groups)
		who := fmt.Sprintf("user: %q, password: %q", e.ID, s.PasswordOf(e.ID))
		if e.NKey {
			who = "nkey: " + strconv.Quote(s.newNKey(e.ID))
		}
		fmt.Fprintf(&b, "    {%s, permissions: {publish: {allow: %s}, subscribe: {allow: %s}}}\n", who, quote(pub), quote(sub))
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}

// newNKey makes a user nkey for id, writes its seed to a file and returns
// its public key.
func (s *Server) newNKey(id string) string {
	s.t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		s.t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		s.t.Fatal(err)
	}
	public, err := kp.PublicKey()
	if err != nil {
		s.t.Fatal(err)
	}
	file := filepath.Join(s.dir, id+".nk")
	if err := os.WriteFile(file, seed, 0o600); err != nil {
		s.t.Fatal(err)
	}
	s.seeds[id] = file
	return public
}

func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command(s.bin, "-c", s.conf)
	if testing.Verbose() {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server: %v", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(s.host, strconv.Itoa(s.Port)), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("nats-server did not listen on %d within 15s", s.Port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the server (SIGTERM, then SIGKILL).
func (s *Server) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Restart stops the server and starts it again on the same port and store.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}
