package export_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/export"
	"github.com/logbookhq/logbook/internal/testenv"
)

const hmacKey = "0123456789abcdef-the-webhook-key"

func writeKeyFile(t testing.TB, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hook.key")
	if err := os.WriteFile(path, []byte(hmacKey+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// receiver is a webhook endpoint that checks each batch's signature and
// keeps its records.
type receiver struct {
	t        *testing.T
	key      []byte
	mu       sync.Mutex
	records  []export.Record
	requests int
	// failFirst answers the first requests 503.
	failFirst int
	// onBatch, when set, runs before the answer.
	onBatch func(records []export.Record)
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.requests++
	n := rc.requests
	rc.mu.Unlock()
	if n <= rc.failFirst {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	if err := export.VerifySignature(rc.key, r.Header.Get(export.HeaderTimestamp), r.Header.Get(export.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		rc.t.Errorf("request %d: %v", n, err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		rc.t.Errorf("Content-Type %q", ct)
	}
	records := parseLines(rc.t, body)
	if want := fmt.Sprintf("%d-%d", records[0].Position, records[len(records)-1].Position); r.Header.Get(export.HeaderPositions) != want {
		rc.t.Errorf("%s = %q, want %q", export.HeaderPositions, r.Header.Get(export.HeaderPositions), want)
	}
	if rc.onBatch != nil {
		rc.onBatch(records)
	}
	rc.mu.Lock()
	rc.records = append(rc.records, records...)
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) got() []export.Record {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]export.Record(nil), rc.records...)
}

// freeAddr is a loopback address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// The webhook is down (connection refused), then answers 503 a few times,
// then takes every batch: each is signed, and the receiver ends with every
// position, chained.
func TestWebhookRetriesThroughRefusedConnectionsAnd5xx(t *testing.T) {
	t.Parallel()
	store := openSQLite(t)
	cursors := export.CursorsOf(store)
	appendEvents(t, store, 120)
	addr := freeAddr(t)
	cfg := export.Config{Name: "hook", Kind: export.KindWebhook, URL: "http://user:pa55word@" + addr + "/ingest?token=t0ken", SecretFile: writeKeyFile(t, 0o600), Batch: 25, Timeout: 5 * time.Second}
	start(t, cfg, export.Options{Store: store, Cursors: cursors})

	testenv.Eventually(t, "a refused connection in the status", func() bool {
		return strings.Contains(status(t, store, cursors, cfg).LastError, "connection refused")
	})
	st := status(t, store, cursors, cfg)
	for _, secret := range []string{"pa55word", "t0ken", hmacKey} {
		if strings.Contains(st.LastError, secret) || strings.Contains(st.Target, secret) {
			t.Fatalf("the status shows %q: %+v", secret, st)
		}
	}

	rc := &receiver{t: t, key: []byte(hmacKey), failFirst: 3}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(rc)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)

	testenv.Eventually(t, "every position at the webhook", func() bool { return hasThrough(rc.got(), 120) })
	checkStream(t, rc.got(), 120)
	testenv.Eventually(t, "the cursor at the head", func() bool { return status(t, store, cursors, cfg).Position == 120 })
	if st := status(t, store, cursors, cfg); st.LastError != "" {
		t.Fatalf("status after delivery: %+v", st)
	}
	appendEvents(t, store, 3)
	testenv.Eventually(t, "the next three", func() bool { return hasThrough(rc.got(), 123) })
	checkStream(t, rc.got(), 123)
}

func TestVerifySignatureRefusesAChangedBodyAnOldTimestampAndAnotherKey(t *testing.T) {
	t.Parallel()
	key, body, now := []byte(hmacKey), []byte(`{"position":1}`+"\n"), time.Unix(1_800_000_000, 0)
	ts := fmt.Sprint(now.Unix())
	sig := export.Sign(key, ts, body)
	if err := export.VerifySignature(key, ts, sig, body, now, time.Minute); err != nil {
		t.Fatalf("a good signature: %v", err)
	}
	for _, tc := range []struct {
		name     string
		key      []byte
		ts       string
		body     []byte
		now      time.Time
		contains string
	}{
		{"a changed body", key, ts, []byte(`{"position":2}` + "\n"), now, "does not match"},
		{"another key", []byte("another-key-of-sixteen"), ts, body, now, "does not match"},
		{"a replay ten minutes on", key, ts, body, now.Add(10 * time.Minute), "away from now"},
		{"a timestamp that is not one", key, "yesterday", body, now, "not unix seconds"},
	} {
		if err := export.VerifySignature(tc.key, tc.ts, sig, tc.body, tc.now, time.Minute); err == nil || !strings.Contains(err.Error(), tc.contains) {
			t.Errorf("%s: error = %v, want one saying %q", tc.name, err, tc.contains)
		}
	}
}

// A key file others may read is refused, and the error says how to fix
// it, without the key.
func TestWebhookRefusesAKeyFileOthersMayRead(t *testing.T) {
	t.Parallel()
	store := openSQLite(t)
	cursors := export.CursorsOf(store)
	cfg := export.Config{Name: "loose", Kind: export.KindWebhook, URL: "http://" + freeAddr(t) + "/", SecretFile: writeKeyFile(t, 0o644), Batch: 10, Timeout: time.Second}
	start(t, cfg, export.Options{Store: store, Cursors: cursors})
	testenv.Eventually(t, "the refusal in the status", func() bool { return strings.Contains(status(t, store, cursors, cfg).LastError, "chmod 600") })
	if st := status(t, store, cursors, cfg); strings.Contains(st.LastError, hmacKey) {
		t.Fatalf("the status shows the key: %s", st.LastError)
	}
}

// A redirect is not followed: the batch would go somewhere it was not
// configured to. It is a failure, retried, that names the status.
func TestWebhookDoesNotFollowARedirect(t *testing.T) {
	t.Parallel()
	store := openSQLite(t)
	cursors := export.CursorsOf(store)
	appendEvents(t, store, 3)
	elsewhere := &receiver{t: t, key: []byte(hmacKey)}
	target := httptest.NewServer(elsewhere)
	t.Cleanup(target.Close)
	redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	t.Cleanup(redirect.Close)
	cfg := export.Config{Name: "moved", Kind: export.KindWebhook, URL: redirect.URL, SecretFile: writeKeyFile(t, 0o600), Batch: 10, Timeout: time.Second}
	start(t, cfg, export.Options{Store: store, Cursors: cursors})
	testenv.Eventually(t, "the redirect in the status", func() bool {
		return strings.Contains(status(t, store, cursors, cfg).LastError, "answered 307 Temporary Redirect")
	})
	if st := status(t, store, cursors, cfg); st.Position != 0 || len(elsewhere.got()) != 0 {
		t.Fatalf("after a redirect: cursor %d, %d records elsewhere", st.Position, len(elsewhere.got()))
	}
}
