package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/adapters/transparency"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/eventstore/storetest"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/projections/merkletree"
)

// seedRequest writes a request with one run among other events into a
// fresh data dir, with a signing key, and has the tree built and a
// checkpoint signed as the server would. It returns the key's verifier.
func seedRequest(t *testing.T) (dir, verifier string) {
	t.Helper()
	dir = t.TempDir()
	t.Setenv("LOGBOOK_DATA_DIR", dir)
	t.Setenv("LOGBOOK_DATABASE_URL", "")
	keyFile := filepath.Join(dir, "audit.key")
	t.Setenv("LOGBOOK_SIGNING_KEY_FILE", keyFile)
	out, _, err := runCLIOutput(t, "audit", "key", "--new", keyFile, "--origin", "logbook.test/cli")
	if err != nil {
		t.Fatal(err)
	}
	verifier = strings.TrimSpace(out)
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(dir, "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := func(p domain.Payload) domain.NewEvent { return domain.MustEncode(p, domain.Metadata{Actor: "alice"}) }
	appendTo := func(stream string, events ...domain.NewEvent) {
		if _, err := s.Append(ctx, stream, eventstore.Any, events...); err != nil {
			t.Fatal(err)
		}
	}
	appendTo("seed-0", ev(storetest.Event{N: 1}))
	appendTo(dispatch.Stream("r1"), ev(storetest.Event{N: 2, Note: "received"}), ev(dispatch.StageStarted{RunID: "run1"}))
	appendTo(run.Stream("run1"), ev(storetest.Event{N: 3, Note: "argv echo hi"}), ev(storetest.Event{N: 4, Note: "output hi"}))
	appendTo(dispatch.Stream("r1"), ev(storetest.Event{N: 5, Note: "reply"}))
	for i := range 20 {
		appendTo(fmt.Sprintf("seed-%d", i%3), ev(storetest.Event{N: 10 + i}))
	}
	key, err := transparency.ReadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	sign, err := key.Signer()
	if err != nil {
		t.Fatal(err)
	}
	m := merkletree.New(merkletree.Config{Events: s, Tree: s, Signer: sign})
	if _, err := m.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	return dir, verifier
}

func TestAuditProveWritesABundleThatVerifiesOffline(t *testing.T) {
	dir, verifier := seedRequest(t)
	if out, _, err := runCLIOutput(t, "audit", "key"); err != nil || strings.TrimSpace(out) != verifier {
		t.Fatalf("audit key printed %q (%v), want %q", out, err, verifier)
	}
	bundle := filepath.Join(dir, "r1.json")
	if _, stderr, err := runCLIOutput(t, "audit", "prove", "r1", "-o", bundle); err != nil || !strings.Contains(stderr, "5 events of request r1") {
		t.Fatalf("audit prove: %v, %s", err, stderr)
	}
	// Offline: no database at all.
	t.Setenv("LOGBOOK_DATA_DIR", t.TempDir())
	out, _, err := runCLIOutput(t, "audit", "verify", "--evidence", bundle, "--key", verifier)
	if err != nil || !strings.Contains(out, "ok: every event is in the tree") || !strings.Contains(out, "r1") {
		t.Fatalf("audit verify --evidence: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(raw), `output hi`, `output ho`, 1)
	if err := os.WriteFile(bundle, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLIOutput(t, "audit", "verify", "--evidence", bundle, "--key", verifier)
	if ee, ok := err.(*exitError); !ok || ee.code != 1 || !strings.Contains(ee.msg, "run-run1 version 1") {
		t.Fatalf("a changed bundle: %v, want exit 1 naming run-run1 version 1", err)
	}
	other, _, err := runCLIOutput(t, "audit", "key", "--new", filepath.Join(dir, "other.key"), "--origin", "logbook.test/cli")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bundle, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLIOutput(t, "audit", "verify", "--evidence", bundle, "--key", strings.TrimSpace(other))
	if ee, ok := err.(*exitError); !ok || ee.code != 1 || !strings.Contains(ee.msg, "log key") {
		t.Fatalf("a wrong key: %v, want exit 1 naming the log key", err)
	}
}

// An attacker rewrites the log from position 10 with recomputed hashes,
// deletes the stored checkpoints and rebuilds the tree: the database is
// consistent with itself, and only a checkpoint kept outside it catches
// the rewrite.
func TestAuditVerifyAgainstACheckpointFileCatchesARewrite(t *testing.T) {
	dir, verifier := seedRequest(t)
	cpFile := filepath.Join(dir, "kept-elsewhere.txt")
	out, _, err := runCLIOutput(t, "audit", "checkpoint")
	if err != nil || !strings.HasPrefix(out, "logbook.test/cli\n26\n") {
		t.Fatalf("audit checkpoint: %v\n%s", err, out)
	}
	if err := os.WriteFile(cpFile, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _, err := runCLIOutput(t, "audit", "verify", "--checkpoint", cpFile, "--key", verifier); err != nil || !strings.Contains(out, "2 of 2 checkpoints consistent") {
		t.Fatalf("audit verify before the attack: %v\n%s", err, out)
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "logbook.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP TRIGGER events_no_update", "DROP TRIGGER audit_checkpoints_no_delete", "DELETE FROM audit_checkpoints"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err := sqlite.Open(context.Background(), filepath.Join(dir, "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	events, err := s.ReadAll(context.Background(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	prev := eventstore.GenesisHash
	for _, e := range events {
		if e.Position >= 10 {
			e.Data = fmt.Appendf(nil, `{"n":%d,"note":"forged"}`, e.Position)
			e.PrevHash = prev
			e.Hash = eventstore.ChainHash(prev, e)
			if _, err := s.DB().Exec("UPDATE events SET data = ?1, prev_hash = ?2, hash = ?3 WHERE position = ?4", e.Data, e.PrevHash, e.Hash, e.Position); err != nil {
				t.Fatal(err)
			}
		}
		prev = e.Hash
	}
	s.Close()
	if _, _, err := runCLIOutput(t, "audit", "rebuild-tree"); err != nil {
		t.Fatal(err)
	}
	if out, _, err := runCLIOutput(t, "audit", "verify"); err != nil {
		t.Fatalf("without the kept checkpoint the rewritten database checks out against itself, as expected; got %v\n%s", err, out)
	}
	out, _, err = runCLIOutput(t, "audit", "verify", "--checkpoint", cpFile, "--key", verifier)
	if ee, ok := err.(*exitError); !ok || ee.code != 1 {
		t.Fatalf("audit verify --checkpoint after the rewrite: %v, want exit 1\n%s", err, out)
	}
	if !strings.Contains(out, "contradicts the checkpoint of size 26 from "+cpFile) || !strings.Contains(out, "rewritten") {
		t.Fatalf("audit verify --checkpoint printed:\n%s\nwant it to name the checkpoint file and the rewrite", out)
	}
}

// Deleting the newest events leaves an intact chain; the stored checkpoint
// that covered them names the truncation.
func TestAuditVerifyNamesATruncation(t *testing.T) {
	dir, _ := seedRequest(t)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "logbook.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP TRIGGER events_no_delete", "DELETE FROM events WHERE position > 20"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	out, _, err := runCLIOutput(t, "audit", "verify")
	if ee, ok := err.(*exitError); !ok || ee.code != 1 {
		t.Fatalf("audit verify after a truncation: %v, want exit 1\n%s", err, out)
	}
	if !strings.HasPrefix(out, "ok: 20 events checked") || !strings.Contains(out, "contradicts the stored checkpoint of size 26 signed at") || !strings.Contains(out, "truncated") {
		t.Fatalf("audit verify printed:\n%s\nwant the chain intact and the checkpoint of size 26 naming the truncation", out)
	}
}
