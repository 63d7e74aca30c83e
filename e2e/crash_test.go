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
