package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logbookhq/logbook/internal/testenv"
)

// kill -9 in the middle of appends from 16 producers, repeatedly: every time,
// the log that remains verifies, and appends continue on top of it.
func TestKillDuringAppendsLeavesAConsistentLog(t *testing.T) {
	targets := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "crash.db") },
		"postgres": func(t *testing.T) string { return testenv.PostgresSchema(t) },
	}
	for name, target := range targets {
		t.Run(name, func(t *testing.T) {
			url := target(t)
			var lastChecked int
			for round := range 3 {
				bench := exec.Command(binary, "bench", "store", "--database", url, "--producers", "16", "--batch", "10", "--duration", "30s")
				if err := bench.Start(); err != nil {
					t.Fatal(err)
				}
				// Kill only once appends are flowing, at a different moment
				// each round.
				waitForGrowth(t, url, lastChecked)
				time.Sleep(time.Duration(100+round*150) * time.Millisecond)
				if err := bench.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				_ = bench.Wait()

				verify := exec.Command(binary, "audit", "verify", "--database", url)
				verify.Env = os.Environ()
				out, err := verify.CombinedOutput()
				if err != nil || !strings.HasPrefix(string(out), "ok: ") {
					t.Fatalf("round %d: audit verify after kill -9: %v\n%s", round, err, out)
				}
				var checked int
				if _, err := fmt.Sscanf(string(out), "ok: %d events checked", &checked); err != nil || checked <= lastChecked {
					t.Fatalf("round %d: the log did not grow before the kill (%d events, %d before): %s", round, checked, lastChecked, out)
				}
				lastChecked = checked
				t.Logf("round %d: %s", round, strings.TrimSpace(string(out)))
			}
		})
	}
}

// waitForGrowth waits until the log at url holds more than n events.
func waitForGrowth(t *testing.T, url string, n int) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("the log at %s to grow past %d events", url, n), func() bool {
		out, err := exec.Command(binary, "audit", "verify", "--json", "--database", url).Output()
		var report struct {
			Checked int `json:"checked"`
		}
		return err == nil && json.Unmarshal(out, &report) == nil && report.Checked > n
	})
}

// kill -9 of the server while clients keep requests in flight, at a
// different moment each round: each time, the log verifies, a restarted
// server brings every recorded request to its end with exactly one reply,
// and in the end the views equal their rebuild from the log.
func TestAKillUnderLoadLeavesEveryRequestAnsweredAndTheViewsTrue(t *testing.T) {
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			env := store(t)
			// A server that gets its data directory from env keeps it
			// across restarts (startServer's own is per start).
			env = append(env, "LOGBOOK_RUNTIME=process")
			s := startServer(t, env...)
			s.waitReady(t)
			admin := s.token(t)
			for round := range 3 {
				l := startLoad(t, s.addr, admin, 8)
				l.waitAnswered(t, 20, "requests answered before the kill")
				time.Sleep(time.Duration(round*70) * time.Millisecond) // a different moment of the requests each round
				if err := s.cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				<-s.exited
				l.finish()

				verify := exec.Command(binary, "audit", "verify")
				verify.Env = append(os.Environ(), env...)
				if out, err := verify.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "ok: ") {
					t.Fatalf("round %d: audit verify after kill -9: %v\n%s", round, err, out)
				}
				s = startServer(t, env...)
				s.waitReady(t)
				var events []envelope
				testenv.EventuallyWithin(t, 60*time.Second, "every recorded request answered after the restart", func() bool {
					events = storedEvents(t, env)
					return len(unansweredRequests(events)) == 0
				})
				replies := map[string]int{}
				for _, e := range events {
					if e.Type == "ReplyPosted" {
						replies[e.Stream]++
					}
				}
				for stream, n := range replies {
					if n != 1 {
						t.Errorf("round %d: %s has %d ReplyPosted, want 1", round, stream, n)
					}
				}
				l.mu.Lock()
				for id, outcome := range l.outcomes {
					if outcome == "200" && !strings.Contains(l.replies[id], "marker-"+id) {
						t.Errorf("round %d: %s was answered %q, not its own reply", round, id, l.replies[id])
					}
				}
				t.Logf("round %d: %d requests sent, %d answered before the kill, %d replies recorded", round, len(l.outcomes), l.answered.Load(), len(replies))
				l.mu.Unlock()
			}
			waitViewsAtHead(t, env)
			if err := s.stop(t, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			rebuild := exec.Command(binary, "projections", "rebuild", "--compare")
			rebuild.Env = append(os.Environ(), env...)
			out, err := rebuild.CombinedOutput()
			if err != nil {
				t.Fatalf("the views differ from their rebuild: %v\n%s", err, out)
			}
			t.Logf("projections rebuild --compare:\n%s", out)
			if name == "sqlite" {
				refoldDeletedViewsFile(t, env)
			}
		})
	}
}

// refoldDeletedViewsFile: the SQLite views file is disposable. Deleted
// while the server is stopped, it is made again at the next start and
// everything is folded from the log: the views equal, table by table,
// what they held before, and equal their rebuild; the log verifies.
func refoldDeletedViewsFile(t *testing.T, env []string) {
	t.Helper()
	before := viewDigests(t, env)
	dataDir := strings.TrimPrefix(env[0], "LOGBOOK_DATA_DIR=")
	views := filepath.Join(dataDir, "logbook.db-views")
	if err := os.Remove(views); err != nil {
		t.Fatalf("delete the views file: %v", err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(views + suffix); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	s := startServer(t, env...)
	s.waitReady(t)
	waitViewsAtHead(t, env)
	if err := s.stop(t, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	after := viewDigests(t, env)
	if len(before) == 0 || len(after) != len(before) {
		t.Fatalf("the views' tables: %d before the views file was deleted, %d after", len(before), len(after))
	}
	for table, digest := range before {
		if after[table] != digest {
			t.Errorf("%s folded again from the log differs from what it held: %s, was %s", table, after[table], digest)
		}
	}
	verify := exec.Command(binary, "audit", "verify")
	verify.Env = append(os.Environ(), env...)
	if out, err := verify.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "ok: ") {
		t.Fatalf("audit verify after the views file was folded again: %v\n%s", err, out)
	}
	t.Logf("the views file deleted and folded again: %d tables as they were", len(after))
}

// viewDigests rebuilds every view (`projections rebuild --compare`, which
// fails if a table differs from its rebuild) and returns each table's
// digest.
func viewDigests(t *testing.T, env []string) map[string]string {
	t.Helper()
	rebuild := exec.Command(binary, "projections", "rebuild", "--compare", "--json")
	rebuild.Env = append(os.Environ(), env...)
	out, err := rebuild.Output()
	if err != nil {
		t.Fatalf("the views differ from their rebuild: %v\n%s", err, out)
	}
	var tables []struct {
		Table  string `json:"table"`
		Digest string `json:"digest_after"`
	}
	if err := json.Unmarshal(out[strings.Index(string(out), "["):], &tables); err != nil {
		t.Fatalf("projections rebuild --compare --json: %v\n%s", err, out)
	}
	digests := map[string]string{}
	for _, table := range tables {
		digests[table.Table] = table.Digest
	}
	return digests
}
