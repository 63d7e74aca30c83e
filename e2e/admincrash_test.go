package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/logbookhq/logbook/internal/testenv"
)

// kill -9 while administration commands are being decided and run, then
// start again: every command recorded ends with the right reply, and no
// change is made twice.
func TestKillingTheServerDuringAdministrationAppliesEachChangeOnce(t *testing.T) {
	for name, storeEnv := range stores(t) {
		t.Run(name, func(t *testing.T) {
			env := append(storeEnv(t), "LOGBOOK_RUNTIME=process")
			s := startServer(t, env...)
			s.waitReady(t)
			token := s.token(t)

			const n = 24
			done := make(chan bool, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := cli(t, s, token, env, "say", fmt.Sprintf("group create crash-%d", i))
					done <- err == nil
				}()
			}
			// Kill once a third of the commands have answered: the others are
			// on their way, some recorded, some not.
			answered := 0
			for range n {
				if <-done {
					answered++
				}
				if answered == n/3 {
					break
				}
			}
			if answered < n/3 {
				t.Fatalf("only %d commands were answered", answered)
			}
			if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-s.exited
			wg.Wait()

			s = startServer(t, env...)
			s.waitReady(t)
			testenv.Eventually(t, "every recorded command to be answered", func() bool {
				open := 0
				for _, r := range crashRequests(t, storedEvents(t, env)) {
					if !r.replied {
						open++
					}
				}
				return open == 0
			})
			events := storedEvents(t, env)
			created := map[string]int{}
			for _, e := range events {
				if e.Type == "GroupCreated" && strings.HasPrefix(e.Stream, "group-crash-") {
					created[strings.TrimPrefix(e.Stream, "group-")]++
				}
			}
			requests := crashRequests(t, events)
			if len(requests) == 0 {
				t.Fatal("no command was recorded before the kill")
			}
			for _, r := range requests {
				if created[r.group] != 1 {
					t.Fatalf("%s was created %d times, want once", r.group, created[r.group])
				}
				if want := "Created group " + r.group + ".\n"; r.output != want {
					t.Fatalf("request %s for %s printed %q, want %q", r.id, r.group, r.output, want)
				}
			}
			verify := exec.Command(binary, "audit", "verify")
			verify.Env = append(os.Environ(), env...)
			if out, err := verify.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "ok: ") {
				t.Fatalf("audit verify: %v\n%s", err, out)
			}
			t.Logf("%d of %d commands were recorded before the kill", len(requests), n)
		})
	}
}

type crashRequest struct {
	id, group, output string
	replied           bool
}

// crashRequests finds the recorded `group create crash-N` requests, whether
// each was replied to, and what its run printed.
func crashRequests(t *testing.T, events []envelope) []crashRequest {
	t.Helper()
	byID := map[string]*crashRequest{}
	var order []string
	for _, e := range events {
		id, isRequest := strings.CutPrefix(e.Stream, "request-")
		switch {
		case isRequest && e.Type == "RequestReceived":
			var rec struct {
				Text string `json:"text"`
			}
			if err := json.Unmarshal(e.Data, &rec); err != nil {
				t.Fatal(err)
			}
			if group, ok := strings.CutPrefix(rec.Text, "group create "); ok && strings.HasPrefix(group, "crash-") {
				byID[id] = &crashRequest{id: id, group: group}
				order = append(order, id)
			}
		case isRequest && e.Type == "ReplyPosted":
			if r := byID[id]; r != nil {
				r.replied = true
			}
		case e.Type == "OutputChunk":
			runID, _ := strings.CutPrefix(e.Stream, "run-")
			if r := byID[strings.TrimSuffix(runID, "-s0-i0")]; r != nil {
				var chunk struct {
					Bytes string `json:"bytes"`
				}
				if err := json.Unmarshal(e.Data, &chunk); err != nil {
					t.Fatal(err)
				}
				b, _ := base64.StdEncoding.DecodeString(chunk.Bytes)
				r.output += string(b)
			}
		}
	}
	out := make([]crashRequest, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out
}
