package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/transparency"
	"github.com/logbookhq/logbook/domain/auditlog"
	"github.com/logbookhq/logbook/internal/testenv"
)

// On the embedded default the server makes its signing key at first start
// (mode 0600), keeps the tree, signs checkpoints, has a witness cosign
// them and writes them, cosigned, to the checkpoint file.
func TestServeSignsCheckpointsAndHasThemWitnessed(t *testing.T) {
	dir := t.TempDir()
	witnessKeyFile := filepath.Join(t.TempDir(), "witness.key")
	if _, err := transparency.EnsureKeyFile(witnessKeyFile, "witness-serve"); err != nil {
		t.Fatal(err)
	}
	witnessKey, err := transparency.ReadKeyFile(witnessKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	witnessVerifier, err := witnessKey.CosignatureVerifier()
	if err != nil {
		t.Fatal(err)
	}
	// The witness can only know the log once the server has made its key:
	// until then it answers 503 and the publisher retries.
	var handler atomic.Pointer[http.Handler]
	witness := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if h := handler.Load(); h != nil {
			(*h).ServeHTTP(rw, r)
			return
		}
		http.Error(rw, "starting", http.StatusServiceUnavailable)
	}))
	defer witness.Close()
	published := filepath.Join(dir, "published", "checkpoint.txt")
	t.Setenv("LOGBOOK_SIGNING_KEY_FILE", "")
	t.Setenv("LOGBOOK_CHECKPOINT_EVERY", "1")
	t.Setenv("LOGBOOK_CHECKPOINT_FILE", published)
	t.Setenv("LOGBOOK_WITNESSES", witness.URL+" "+witnessVerifier)
	cfg := config{DataDir: dir, HTTPAddr: freeAddr(t), LogLevel: "warn", LogFormat: "json", Runtime: "process"}
	stop := startServe(t, cfg)

	keyFile := filepath.Join(dir, defaultSigningKeyFile)
	testenv.Eventually(t, "the server makes its signing key", func() bool {
		_, err := os.Stat(keyFile)
		return err == nil
	})
	if info, err := os.Stat(keyFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("the signing key's mode: %v, %v; want 0600", info.Mode(), err)
	}
	logKey, err := transparency.ReadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(logKey.Verifier, "logbook/") {
		t.Fatalf("the key made at first start is named %q, want logbook/<store identity>", logKey.Verifier)
	}
	cosigner, err := witnessKey.Cosigner()
	if err != nil {
		t.Fatal(err)
	}
	state, err := transparency.OpenStateFile(filepath.Join(t.TempDir(), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := transparency.NewWitness(cosigner, []string{logKey.Verifier}, state, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = w
	handler.Store(&h)

	policy, err := auditlog.NewPolicy(logKey.Verifier, []string{witnessVerifier}, 1)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "a cosigned checkpoint in the published file", func() bool {
		raw, err := os.ReadFile(published)
		if err != nil {
			return false
		}
		o, err := auditlog.OpenCheckpoint(raw, policy)
		return err == nil && o.Size > 0
	})
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v after a clean stop", err)
	}
}
