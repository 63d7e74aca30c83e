package main

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/internal/testenv"
)

// logbook witness serves add-checkpoint until its context ends, then
// shuts down cleanly; logbook witness key prints the key it made.
func TestTheWitnessCommandServesAndStopsCleanly(t *testing.T) {
	dir := t.TempDir()
	logKey, _, err := runCLIOutput(t, "audit", "key", "--new", filepath.Join(dir, "log.key"), "--origin", "logbook.test/w")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := witnessSettings{addr: addr, keyFile: filepath.Join(dir, "witness.key"), name: "witness-t", state: filepath.Join(dir, "state.json"), logs: []string{strings.TrimSpace(logKey)}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runWitness(ctx, s, zerolog.Nop()) }()
	var status int
	testenv.Eventually(t, "the witness answers", func() bool {
		resp, err := http.Post("http://"+addr+"/add-checkpoint", "text/plain", strings.NewReader("old 0\n\nlogbook.test/unknown\n1\nAAAA\n\n— x y\n"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		status = resp.StatusCode
		return true
	})
	if status != http.StatusNotFound {
		t.Fatalf("a checkpoint of a log the witness does not know: %d, want 404", status)
	}
	out, _, err := runCLIOutput(t, "witness", "key", "--key-file", s.keyFile)
	if err != nil || !strings.HasPrefix(out, "witness-t+") {
		t.Fatalf("witness key: %q, %v", out, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the witness stopped with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the witness did not stop")
	}
}
