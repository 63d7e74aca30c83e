package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/export"
	"github.com/logbookhq/logbook/adapters/export/rsyslogtest"
	"github.com/logbookhq/logbook/internal/testenv"
)

// signedBatches is a webhook receiver that refuses a batch whose signature
// does not verify and keeps the records of the others.
type signedBatches struct {
	t       *testing.T
	key     []byte
	mu      sync.Mutex
	records []export.Record
}

func (s *signedBatches) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		// The sender died mid-request (the test kills it): a cut body is
		// no batch, and the sender sends it again once it restarts.
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := export.VerifySignature(s.key, r.Header.Get(export.HeaderTimestamp), r.Header.Get(export.HeaderSignature), body, time.Now(), time.Minute); err != nil {
		s.t.Errorf("a batch that does not verify: %v", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var got []export.Record
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var rec export.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			s.t.Errorf("line %q: %v", sc.Text(), err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got = append(got, rec)
	}
	s.mu.Lock()
	s.records = append(s.records, got...)
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *signedBatches) got() []export.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]export.Record(nil), s.records...)
}

// exportStatus is `logbook export status --json` on the store env names.
func exportStatus(t *testing.T, env []string) map[string]export.Status {
	t.Helper()
	cmd := exec.Command(binary, "export", "status", "--json")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("export status: %v", err)
	}
	var statuses []export.Status
	if err := json.Unmarshal(out, &statuses); err != nil {
		t.Fatalf("export status --json = %s: %v", out, err)
	}
	byName := map[string]export.Status{}
	for _, s := range statuses {
		byName[s.Destination] = s
	}
	return byName
}

// `logbook serve` streams its log to rsyslogd and to a signed webhook,
// through a kill -9 of the server with requests in flight and a restart of
// rsyslogd: each receiver ends with every position of the log, chained,
// and `export status` shows both caught up.
func TestServeExportsEveryEventAcrossAKill(t *testing.T) {
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			rs := rsyslogtest.Start(t, nil)
			key := "an-e2e-webhook-key-0123456789"
			keyFile := filepath.Join(t.TempDir(), "hook.key")
			if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
				t.Fatal(err)
			}
			hook := &signedBatches{t: t, key: []byte(key)}
			srv := httptest.NewServer(hook)
			t.Cleanup(srv.Close)
			env := append(store(t), "LOGBOOK_RUNTIME=process",
				"LOGBOOK_EXPORT=siem,hook",
				"LOGBOOK_EXPORT_SIEM_TYPE=syslog", "LOGBOOK_EXPORT_SIEM_ADDR="+rs.Addr, "LOGBOOK_EXPORT_SIEM_FACILITY=audit",
				"LOGBOOK_EXPORT_HOOK_TYPE=webhook", "LOGBOOK_EXPORT_HOOK_URL="+srv.URL+"/logbook", "LOGBOOK_EXPORT_HOOK_SECRET_FILE="+keyFile, "LOGBOOK_EXPORT_HOOK_BATCH=7")

			s := startServer(t, env...)
			s.waitReady(t)
			token := s.token(t)
			// Requests in flight while the server is killed.
			var wg sync.WaitGroup
			for i := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := range 5 {
						_, _ = cli(t, s, token, env, "say", fmt.Sprintf("echo %d-%d", i, j))
					}
				}()
			}
			time.Sleep(300 * time.Millisecond)
			if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-s.exited
			wg.Wait()

			rs.Restart()
			s = startServer(t, env...)
			s.waitReady(t)
			for i := range 3 {
				if _, err := cli(t, s, token, env, "say", fmt.Sprintf("echo after %d", i)); err != nil {
					t.Fatalf("say after the restart: %v", err)
				}
			}
			var head int64
			testenv.EventuallyWithin(t, 60*time.Second, "both destinations at the head", func() bool {
				st := exportStatus(t, env)
				head = st["siem"].Head
				return head > 0 && st["siem"].Position == head && st["hook"].Position == head
			})
			for name, records := range map[string][]export.Record{"rsyslogd": rs.Received(), "the webhook": hook.got()} {
				ordered, err := export.CheckContinuous(records, 1)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if int64(len(ordered)) < head {
					t.Fatalf("%s holds positions 1 to %d, the head is %d", name, len(ordered), head)
				}
				for _, r := range ordered {
					if r.DataOmitted {
						continue
					}
					if err := r.Verify(); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
				}
			}
			if err := s.stop(t, syscall.SIGTERM); err != nil {
				t.Fatalf("serve after SIGTERM: %v", err)
			}
		})
	}
}
