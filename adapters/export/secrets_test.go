package export_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/export"
	"github.com/logbookhq/logbook/adapters/secretvault"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/domain/bundleconfig"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/runbus"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/executor/executortest"
	"github.com/logbookhq/logbook/internal/testenv"
)

const secretValue = "AKIA-export-secret-value-7Q2"

// leakingRuntime is a command that prints its secret every way it can:
// plain, in base64, split across writes, and on stderr.
type leakingRuntime struct{}

func (leakingRuntime) Run(_ context.Context, spec executor.Spec, sink executor.Sink) (executor.Outcome, error) {
	sink.ContainerCreated("c-"+spec.RunID, "sha256:abc")
	sink.ContainerStarted("c-"+spec.RunID, false)
	_, _ = sink.Stdout().Write([]byte("token=" + secretValue + "\n"))
	_, _ = sink.Stdout().Write([]byte("b64=" + base64.StdEncoding.EncodeToString([]byte(secretValue)) + "\nsplit=" + secretValue[:9]))
	_, _ = sink.Stdout().Write([]byte(secretValue[9:] + "\n"))
	_, _ = sink.Stderr().Write([]byte("error: " + secretValue + "\n"))
	return executor.Outcome{Started: true, ContainerID: "c-" + spec.RunID, Release: func(context.Context) error { return nil }}, nil
}

// syslogCatcher is a bare TCP listener that keeps every byte a syslog
// exporter writes to it.
type syslogCatcher struct {
	mu   sync.Mutex
	data bytes.Buffer
	addr string
}

func catchSyslog(t *testing.T) *syslogCatcher {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	c := &syslogCatcher{addr: l.Addr().String()}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := conn.Read(buf)
					c.mu.Lock()
					c.data.Write(buf[:n])
					c.mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return c
}

func (c *syslogCatcher) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.data.Bytes()...)
}

// A secret set through the vault and printed by a run reaches no
// destination: the log holds it redacted (the executor's redactor), and
// the export sends what the log holds. The webhook's own key, read from
// the vault, is in no record, log line or status either.
func TestExportedRecordsHoldNoSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	store := openSQLite(t)
	keyFile := filepath.Join(dir, "secret.key")
	if _, err := secretvault.EnsureKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	vault, err := secretvault.Open(secretvault.Config{Read: store.DB(), Write: store.WriteDB(), Rebind: sqlstore.RebindQuestion, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	secrets := &dispatcher.Secrets{Store: store, Vault: vault}
	version, err := secrets.Set(ctx, "admin", "ops", bundleconfig.BaseLayer, "API_TOKEN", secretValue)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.Set(ctx, "admin", "export", bundleconfig.BaseLayer, "HOOK_KEY", hmacKey); err != nil {
		t.Fatal(err)
	}

	var logs safeBuffer
	exec, err := executor.NewExecutorWithConfig(executor.Config{Runtime: leakingRuntime{}, Store: store,
		Publisher: executortest.AppendingPublisher{Appender: executor.NewAppender(store)}, Logger: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exec.Shutdown(context.Background()) })
	err = exec.Execute(runbus.RunRequest{RunID: "leak1", Env: map[string]string{"API_TOKEN": secretValue}, Request: run.RunRequested{
		RequestID: "req-leak1", Bundle: "ops", Command: "leak", Image: "img", Argv: []string{"/bin/leak"},
		EnvNames: []string{"API_TOKEN"}, Secrets: []run.SecretRef{{Name: "API_TOKEN", Layer: "base", Version: version}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.Shutdown(ctx); err != nil { // the run's last events recorded
		t.Fatal(err)
	}

	cursors := export.CursorsOf(store)
	rc := &receiver{t: t, key: []byte(hmacKey)}
	hook := httptest.NewServer(rc)
	t.Cleanup(hook.Close)
	sys := catchSyslog(t)
	files := filepath.Join(dir, "export")
	opts := func() export.Options {
		return export.Options{Store: store, Cursors: cursors, Vault: vault, NewBackOff: fastRetries, Logger: zerolog.New(&logs)}
	}
	configs := []export.Config{
		{Name: "file", Kind: export.KindFile, Dir: files, RotateBytes: 1 << 20, Batch: 100},
		{Name: "hook", Kind: export.KindWebhook, URL: hook.URL, SecretBundle: "export", SecretKey: "HOOK_KEY", Batch: 100, Timeout: 5 * time.Second},
		{Name: "syslog", Kind: export.KindSyslog, Addr: sys.addr, Facility: 13, MaxMessage: 64 << 10, ResendWindow: time.Second, Batch: 100},
	}
	for _, c := range configs {
		x, err := export.New(c, opts())
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- x.Run(runCtx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	head, _, _ := store.Head(ctx)
	for _, c := range configs {
		testenv.Eventually(t, c.Name+" at the head", func() bool {
			cur, _, _ := cursors.Load(ctx, c.Name)
			return cur.Position == head
		})
	}

	fileBytes := bytes.Join(func() [][]byte {
		var all [][]byte
		for _, r := range readRecords(t, files) {
			all = append(all, r.MarshalLine())
		}
		return all
	}(), nil)
	var hookBytes []byte
	for _, r := range rc.got() {
		hookBytes = append(hookBytes, r.MarshalLine()...)
	}
	statuses, err := export.StatusOf(ctx, store, cursors, configs, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var statusText strings.Builder
	for _, s := range statuses {
		statusText.WriteString(s.LastError + s.Target)
	}
	outputs := map[string][]byte{"the JSONL files": fileBytes, "the webhook": hookBytes, "syslog": sys.bytes(), "the logs": logs.bytes(), "the status": []byte(statusText.String())}
	for where, data := range outputs {
		for _, leak := range []string{secretValue, base64.StdEncoding.EncodeToString([]byte(secretValue)), hmacKey} {
			if bytes.Contains(data, []byte(leak)) {
				t.Errorf("%s hold %q", where, leak)
			}
		}
	}
	// Output travels base64 in OutputChunk: look inside it too.
	for where, records := range map[string][]export.Record{"the JSONL files": readRecords(t, files), "the webhook": rc.got(), "syslog": syslogRecords(t, sys.bytes())} {
		var output []byte
		types := map[string]bool{}
		for _, r := range records {
			types[r.Type] = true
			if r.Type == "OutputChunk" {
				var chunk run.OutputChunk
				if err := json.Unmarshal(r.Data, &chunk); err != nil {
					t.Fatal(err)
				}
				output = append(output, chunk.Bytes...)
			}
		}
		if bytes.Contains(output, []byte(secretValue)) || !bytes.Contains(output, []byte("[redacted: API_TOKEN]")) || !types["SecretSet"] {
			t.Errorf("%s: output %q and types %v: want the run's output redacted and SecretSet", where, output, types)
		}
	}
	checkStream(t, rc.got(), head)
}

// syslogRecords takes apart octet-counted RFC 5424 frames into records.
func syslogRecords(t *testing.T, data []byte) []export.Record {
	t.Helper()
	var out []export.Record
	for len(data) > 0 {
		size, rest, ok := bytes.Cut(data, []byte(" "))
		n, err := strconv.Atoi(string(size))
		if !ok || err != nil || n > len(rest) {
			t.Fatalf("a frame that is not octet-counted: %q", data[:min(len(data), 80)])
		}
		msg := rest[:n]
		data = rest[n:]
		_, body, ok := bytes.Cut(msg, []byte("] \ufeff"))
		if !ok {
			t.Fatalf("message %q has no structured data and BOM", msg)
		}
		var r export.Record
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// safeBuffer is a bytes.Buffer several goroutines may write.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

var _ io.Writer = (*safeBuffer)(nil)
