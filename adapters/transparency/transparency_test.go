package transparency_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/adapters/transparency"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/auditlog"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/eventstore/storetest"
	"github.com/logbookhq/logbook/internal/testenv"
	"github.com/logbookhq/logbook/projections/merkletree"
)

// logUnderTest is a store with its maintainer and signing key.
type logUnderTest struct {
	store *sqlstore.Store
	m     *merkletree.Maintainer
	key   transparency.Key
}

func newLog(t *testing.T, name string) *logUnderTest {
	t.Helper()
	dir := t.TempDir()
	s, err := sqlite.Open(context.Background(), filepath.Join(dir, "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	keyFile := filepath.Join(dir, "signing.key")
	if created, err := transparency.EnsureKeyFile(keyFile, name); err != nil || !created {
		t.Fatalf("EnsureKeyFile: %v, %v", created, err)
	}
	if info, err := os.Stat(keyFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("the key file's mode: %v, %v; want 0600", info.Mode(), err)
	}
	key, err := transparency.ReadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	sign, err := key.Signer()
	if err != nil {
		t.Fatal(err)
	}
	return &logUnderTest{store: s.Store, key: key, m: merkletree.New(merkletree.Config{Events: s, Tree: s, Signer: sign, Every: 1 << 40})}
}

// grow appends n events and signs a checkpoint of the tree.
func (l *logUnderTest) grow(t *testing.T, n int) auditlog.StoredCheckpoint {
	t.Helper()
	events := make([]domain.NewEvent, n)
	for i := range events {
		events[i] = domain.MustEncode(storetest.Event{N: i}, domain.Metadata{Actor: "tester"})
	}
	if _, err := l.store.Append(context.Background(), "s-1", eventstore.Any, events...); err != nil {
		t.Fatal(err)
	}
	if _, err := l.m.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, err := l.m.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (l *logUnderTest) prove(c auditlog.StoredCheckpoint) func(int64) (tlog.TreeProof, error) {
	return func(old int64) (tlog.TreeProof, error) {
		return tlog.ProveTree(c.Size, old, auditlog.HashReader(context.Background(), l.store))
	}
}

// witnessUnderTest is a witness server on a loopback port.
type witnessUnderTest struct {
	url, stateFile, verifier string
	server                   *httptest.Server
}

func startWitness(t *testing.T, dir string, logs ...string) *witnessUnderTest {
	t.Helper()
	keyFile := filepath.Join(dir, "witness.key")
	if _, err := transparency.EnsureKeyFile(keyFile, "witness-a"); err != nil {
		t.Fatal(err)
	}
	key, err := transparency.ReadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cosigner, err := key.Cosigner()
	if err != nil {
		t.Fatal(err)
	}
	stateFile := filepath.Join(dir, "state.json")
	state, err := transparency.OpenStateFile(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	w, err := transparency.NewWitness(cosigner, logs, state, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	server := httptest.NewServer(w)
	t.Cleanup(server.Close)
	v, err := key.CosignatureVerifier()
	if err != nil {
		t.Fatal(err)
	}
	return &witnessUnderTest{url: server.URL, stateFile: stateFile, verifier: v, server: server}
}

func postRaw(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url+"/add-checkpoint", "text/plain", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer)
}

func TestAWitnessCosignsAGrowingLogAndKeepsItsStateAcrossARestart(t *testing.T) {
	l := newLog(t, "logbook.test/witnessed")
	dir := t.TempDir()
	w := startWitness(t, dir, l.key.Verifier)
	dest, err := transparency.NewWitnessDestination(w.url, w.verifier, nil)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := auditlog.NewPolicy(l.key.Verifier, []string{w.verifier}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{5, 1, 30} {
		c := l.grow(t, n)
		sigs, err := dest.Publish(context.Background(), c, l.prove(c))
		if err != nil {
			t.Fatalf("publishing size %d: %v", c.Size, err)
		}
		c.Cosignatures = sigs
		if o, err := auditlog.OpenCheckpoint(c.Cosigned(), policy); err != nil || len(o.Cosigners) != 1 {
			t.Fatalf("the cosigned checkpoint of size %d: %+v, %v", c.Size, o, err)
		}
	}
	// A restarted witness on the same state, and a new destination that
	// does not know what the witness holds: the 409 names the size, the
	// destination proves from it.
	w.server.Close()
	w2 := startWitness(t, dir, l.key.Verifier)
	fresh, err := transparency.NewWitnessDestination(w2.url, w2.verifier, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := l.grow(t, 4)
	if _, err := fresh.Publish(context.Background(), c, l.prove(c)); err != nil {
		t.Fatalf("publishing after a restart: %v", err)
	}
	state, err := os.ReadFile(w2.stateFile)
	if err != nil || !strings.Contains(string(state), `"size": 40`) {
		t.Fatalf("the witness's state: %s, %v; want size 40", state, err)
	}
}

func TestAWitnessRefusesAForkAWrongKeyAndWrongSizeProofsOverHTTP(t *testing.T) {
	l := newLog(t, "logbook.test/witnessed")
	w := startWitness(t, t.TempDir(), l.key.Verifier)
	dest, err := transparency.NewWitnessDestination(w.url, w.verifier, nil)
	if err != nil {
		t.Fatal(err)
	}
	c10 := l.grow(t, 10)
	if _, err := dest.Publish(context.Background(), c10, l.prove(c10)); err != nil {
		t.Fatal(err)
	}
	c25 := l.grow(t, 15)
	proof, err := tlog.ProveTree(25, 10, auditlog.HashReader(context.Background(), l.store))
	if err != nil {
		t.Fatal(err)
	}
	// Wrong-size proofs: one hash short, one too many.
	for _, p := range []tlog.TreeProof{proof[:len(proof)-1], append(append(tlog.TreeProof{}, proof...), proof[0])} {
		status, answer := postRaw(t, w.url, auditlog.FormatAddCheckpoint(auditlog.AddCheckpoint{OldSize: 10, Proof: p, Checkpoint: c25.Note}))
		if status != http.StatusUnprocessableEntity {
			t.Fatalf("a proof of %d hashes (want %d): %d %s, want 422", len(p), len(proof), status, answer)
		}
	}
	// A fork: another log under the same name and key, whose first ten
	// events differ, offered from the size the witness holds.
	fork := newLog(t, "logbook.test/witnessed")
	fork.key = l.key
	sign, _ := l.key.Signer()
	fork.m = merkletree.New(merkletree.Config{Events: fork.store, Tree: fork.store, Signer: sign, Every: 1 << 40})
	fork.grow(t, 3)
	forked := fork.grow(t, 22)
	forkProof, err := tlog.ProveTree(25, 10, auditlog.HashReader(context.Background(), fork.store))
	if err != nil {
		t.Fatal(err)
	}
	status, answer := postRaw(t, w.url, auditlog.FormatAddCheckpoint(auditlog.AddCheckpoint{OldSize: 10, Proof: forkProof, Checkpoint: forked.Note}))
	if status != http.StatusUnprocessableEntity {
		t.Fatalf("a forked checkpoint: %d %s, want 422", status, answer)
	}
	// A stale old size: 409 with the size held, as text/x.tlog.size.
	resp, err := http.Post(w.url+"/add-checkpoint", "text/plain", strings.NewReader(string(auditlog.FormatAddCheckpoint(auditlog.AddCheckpoint{OldSize: 0, Checkpoint: c25.Note}))))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || resp.Header.Get("Content-Type") != "text/x.tlog.size" || string(body) != "10\n" {
		t.Fatalf("a stale old size: %d %q %q, want 409 text/x.tlog.size 10", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	// A checkpoint signed by another key under the log's name: 403. An
	// unknown log: 404.
	impostor := newLog(t, "logbook.test/witnessed")
	forged := impostor.grow(t, 3)
	if status, answer := postRaw(t, w.url, auditlog.FormatAddCheckpoint(auditlog.AddCheckpoint{OldSize: 10, Checkpoint: forged.Note})); status != http.StatusForbidden {
		t.Fatalf("another key: %d %s, want 403", status, answer)
	}
	stranger := newLog(t, "logbook.test/stranger")
	other := stranger.grow(t, 3)
	if status, answer := postRaw(t, w.url, auditlog.FormatAddCheckpoint(auditlog.AddCheckpoint{OldSize: 0, Checkpoint: other.Note})); status != http.StatusNotFound {
		t.Fatalf("an unknown log: %d %s, want 404", status, answer)
	}
	if status, _ := postRaw(t, w.url, []byte("old ten\n\n")); status != http.StatusBadRequest {
		t.Fatalf("a malformed request: %d, want 400", status)
	}
	// Through all that, the witness kept what it had cosigned.
	if _, err := dest.Publish(context.Background(), c25, l.prove(c25)); err != nil {
		t.Fatalf("the honest checkpoint after the refusals: %v", err)
	}
	// And the destination refuses to go on against a witness that holds
	// a fork of this log (it learns the size from the 409).
	impostorDest, err := transparency.NewWitnessDestination(w.url, w.verifier, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := impostorDest.Publish(context.Background(), forked, fork.prove(forked)); err == nil {
		t.Fatal("the forked log's checkpoint was cosigned")
	}
}

func TestThePublisherStoresCosignaturesAndWritesTheFile(t *testing.T) {
	l := newLog(t, "logbook.test/published")
	w := startWitness(t, t.TempDir(), l.key.Verifier)
	dest, err := transparency.NewWitnessDestination(w.url, w.verifier, nil)
	if err != nil {
		t.Fatal(err)
	}
	received := make(chan string, 4)
	endpoint := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		received <- string(body)
	}))
	defer endpoint.Close()
	file := filepath.Join(t.TempDir(), "published", "checkpoint.txt")
	p := merkletree.NewPublisher(l.store, dest, transparency.FileDestination{Path: file}, transparency.HTTPDestination{URL: endpoint.URL})
	c := l.grow(t, 7)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	got := <-received
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	policy, err := auditlog.NewPolicy(l.key.Verifier, []string{w.verifier}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if o, err := auditlog.OpenCheckpoint([]byte(got), policy); err != nil || o.Size != c.Size {
		t.Fatalf("the endpoint got %q: %v", got, err)
	}
	written, err := os.ReadFile(file)
	if err != nil || string(written) != got {
		t.Fatalf("the file holds %q (%v), the endpoint got %q", written, err, got)
	}
	stored, err := l.store.Checkpoints(context.Background(), 1)
	if err != nil || len(stored) != 1 || len(stored[0].Cosignatures) != 1 {
		t.Fatalf("stored: %+v, %v", stored, err)
	}
}

// A witness down when a checkpoint is signed cosigns it when it is back;
// the file, written at once without the cosignature, is written again
// with it.
func TestAFileGetsTheCheckpointAgainOnceALateWitnessCosignsIt(t *testing.T) {
	l := newLog(t, "logbook.test/late")
	dir := t.TempDir()
	real := startWitness(t, dir, l.key.Verifier)
	var up atomic.Bool
	front := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(rw, "down", http.StatusServiceUnavailable)
			return
		}
		real.server.Config.Handler.ServeHTTP(rw, r)
	}))
	defer front.Close()
	dest, err := transparency.NewWitnessDestination(front.URL, real.verifier, nil)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "checkpoint.txt")
	p := merkletree.NewPublisher(l.store, dest, transparency.FileDestination{Path: file})
	c := l.grow(t, 9)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	testenv.Eventually(t, "the file holds the checkpoint, uncosigned", func() bool {
		raw, err := os.ReadFile(file)
		return err == nil && string(raw) == string(c.Note)
	})
	up.Store(true)
	policy, err := auditlog.NewPolicy(l.key.Verifier, []string{real.verifier}, 1)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the file holds the checkpoint cosigned", func() bool {
		raw, err := os.ReadFile(file)
		if err != nil {
			return false
		}
		_, err = auditlog.OpenCheckpoint(raw, policy)
		return err == nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
