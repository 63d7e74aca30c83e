package merkletree_test

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/logbookhq/logbook/adapters/postgres"
	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/auditlog"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/eventstore/storetest"
	"github.com/logbookhq/logbook/internal/testenv"
	"github.com/logbookhq/logbook/projections/merkletree"
)

// backends opens a fresh store of each kind; Postgres skips (or fails
// under LOGBOOK_REQUIRE_SERVICES) without a server.
func backends(t *testing.T) map[string]func(t *testing.T) *sqlstore.Store {
	return map[string]func(t *testing.T) *sqlstore.Store{
		"sqlite": func(t *testing.T) *sqlstore.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s.Store
		},
		"postgres": func(t *testing.T) *sqlstore.Store {
			s, err := postgres.Open(context.Background(), testenv.PostgresSchema(t), sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s.Store
		},
	}
}

func appendEvents(t *testing.T, s eventstore.Store, stream string, n int) {
	t.Helper()
	events := make([]domain.NewEvent, n)
	for i := range events {
		events[i] = domain.MustEncode(storetest.Event{N: i, Note: stream}, domain.Metadata{Actor: "tester"})
	}
	if _, err := s.Append(context.Background(), stream, eventstore.Any, events...); err != nil {
		t.Fatal(err)
	}
}

func allPacks(t *testing.T, s *sqlstore.Store, size int64) map[int64][]byte {
	t.Helper()
	leaves := make([]int64, size)
	for i := range leaves {
		leaves[i] = int64(i)
	}
	packs, err := s.TreePacks(context.Background(), leaves)
	if err != nil {
		t.Fatal(err)
	}
	return packs
}

func signer(t testing.TB) (note.Signer, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(crand.Reader, "logbook.test/tree")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}

// The tree built as the log grew, by a maintainer stopped and started
// again on the way, equals the tree rebuilt from the events.
func TestTheRebuiltTreeEqualsTheIncrementalOne(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			rng := rand.New(rand.NewPCG(1, 2))
			for round := range 4 {
				ctx, cancel := context.WithCancel(context.Background())
				m := merkletree.New(merkletree.Config{Events: s, Tree: s, BatchSize: 37})
				var wg sync.WaitGroup
				wg.Go(func() {
					if err := m.Run(ctx); err != nil {
						t.Error(err)
					}
				})
				for i := range 10 + rng.IntN(20) {
					appendEvents(t, s, fmt.Sprintf("s-%d", i%5), 1+rng.IntN(60))
				}
				head, _, _ := s.Head(context.Background())
				testenv.Eventually(t, fmt.Sprintf("round %d: the tree reaches the head %d", round, head), func() bool {
					size, err := s.TreeSize(context.Background())
					return err == nil && size == head
				})
				cancel()
				wg.Wait()
			}
			head, _, err := s.Head(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			incremental := allPacks(t, s, head)
			root, err := tlog.TreeHash(head, auditlog.HashReader(context.Background(), s))
			if err != nil {
				t.Fatal(err)
			}
			size, err := merkletree.New(merkletree.Config{Events: s, Tree: s}).Rebuild(context.Background(), nil)
			if err != nil || size != head {
				t.Fatalf("rebuild: %d leaves, %v; want %d", size, err, head)
			}
			rebuilt := allPacks(t, s, head)
			if len(rebuilt) != int(head) || len(incremental) != int(head) {
				t.Fatalf("%d incremental and %d rebuilt packs, want %d", len(incremental), len(rebuilt), head)
			}
			for leaf, pack := range incremental {
				if !slices.Equal(pack, rebuilt[leaf]) {
					t.Fatalf("leaf %d: incremental %x, rebuilt %x", leaf, pack, rebuilt[leaf])
				}
			}
			again, err := tlog.TreeHash(head, auditlog.HashReader(context.Background(), s))
			if err != nil || again != root {
				t.Fatalf("root after the rebuild %v, before %v (%v)", again, root, err)
			}
		})
	}
}

// fakeClock is the maintainer's clock in tests: time moves when the test
// says, and a timer fires when time reaches it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), ch: ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if !tm.at.After(c.now) {
			tm.ch <- c.now
			continue
		}
		kept = append(kept, tm)
	}
	c.timers = kept
}

// A checkpoint is signed once the tree grew by Every events, or once
// Interval passed since the last and the tree grew at all.
func TestCheckpointsComeEveryNEventsOrTSeconds(t *testing.T) {
	s := backends(t)["sqlite"](t)
	clock := &fakeClock{now: time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)}
	sign, vkey := signer(t)
	signed := make(chan auditlog.StoredCheckpoint, 16)
	m := merkletree.New(merkletree.Config{Events: s, Tree: s, Signer: sign, Every: 10, Interval: time.Minute,
		Now: clock.Now, After: clock.After, Signed: func(c auditlog.StoredCheckpoint) { signed <- c }})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := m.Run(ctx); err != nil {
			t.Error(err)
		}
	})
	defer wg.Wait()
	defer cancel()
	next := func(what string) auditlog.StoredCheckpoint {
		t.Helper()
		select {
		case c := <-signed:
			return c
		case <-time.After(20 * time.Second):
			t.Fatalf("no checkpoint signed: %s", what)
		}
		return auditlog.StoredCheckpoint{}
	}
	appendEvents(t, s, "s-1", 12)
	if c := next("after 12 events with Every 10"); c.Size != 12 {
		t.Fatalf("first checkpoint of size %d, want 12", c.Size)
	}
	appendEvents(t, s, "s-1", 3)
	// Not due yet: 3 events, no time passed. The tree reaching 15 proves
	// the maintainer saw them; no checkpoint may have come with it.
	testenv.Eventually(t, "the tree takes in the 3 events", func() bool {
		size, _ := s.TreeSize(context.Background())
		return size == 15
	})
	select {
	case c := <-signed:
		t.Fatalf("a checkpoint of size %d came before it was due", c.Size)
	default:
	}
	clock.Advance(time.Minute)
	c := next("a minute after the last, with 3 new events")
	if c.Size != 15 {
		t.Fatalf("interval checkpoint of size %d, want 15", c.Size)
	}
	policy, err := auditlog.NewPolicy(vkey, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	o, err := auditlog.OpenCheckpoint(c.Note, policy)
	if err != nil || o.Size != 15 || !c.CreatedAt.Equal(clock.Now()) {
		t.Fatalf("the checkpoint opens as %+v, %v; signed at %v", o, err, c.CreatedAt)
	}
	stored, err := s.Checkpoints(context.Background(), 0)
	if err != nil || len(stored) != 2 || stored[0].Size != 15 || stored[1].Size != 12 {
		t.Fatalf("stored checkpoints: %+v, %v", stored, err)
	}
}

// rewriteFrom rewrites every event from position n on, with its hash and
// the ones after it recomputed, straight in SQL: what an attacker with
// database access does to fool the hash chain.
func rewriteFrom(t *testing.T, s *sqlstore.Store, n int64) {
	t.Helper()
	ctx := context.Background()
	unprotect := map[string][]string{
		"postgres": {"ALTER TABLE events DISABLE TRIGGER USER"},
		"sqlite":   {"DROP TRIGGER events_no_update", "DROP TRIGGER events_no_delete"},
	}[s.Dialect()]
	for _, q := range unprotect {
		if _, err := s.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	events, err := s.ReadAll(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	update := "UPDATE events SET data = $1, prev_hash = $2, hash = $3 WHERE position = $4"
	if s.Dialect() == "sqlite" {
		update = sqlstore.RebindQuestion(update)
	}
	prev := eventstore.GenesisHash
	for _, e := range events {
		if e.Position >= n {
			e.Data = fmt.Appendf(nil, `{"n":%d,"note":"forged"}`, e.Position)
			e.PrevHash = prev
			e.Hash = eventstore.ChainHash(prev, e)
			if _, err := s.DB().Exec(update, e.Data, e.PrevHash, e.Hash, e.Position); err != nil {
				t.Fatal(err)
			}
		}
		prev = e.Hash
	}
}

// verifyTree runs the chain and the tree check as audit verify does.
func verifyTree(t *testing.T, s *sqlstore.Store) (eventstore.VerifyReport, auditlog.TreeReport) {
	t.Helper()
	ctx := context.Background()
	stored, err := s.Checkpoints(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var (
		checks []auditlog.CheckpointCheck
		roots  []tlog.Hash
	)
	for _, c := range stored {
		at := c.CreatedAt
		checks = append(checks, auditlog.CheckpointCheck{Source: "stored", Size: c.Size, Root: c.Root.String(), SignedAt: &at})
		roots = append(roots, c.Root)
	}
	size, err := s.TreeSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check := auditlog.NewTreeCheck(size, checks, roots)
	chain, err := eventstore.VerifyEach(ctx, s, nil, check.Visit)
	if err != nil {
		t.Fatal(err)
	}
	return chain, check.Finish(ctx, s, chain.OK)
}

func TestARewriteFromNAndATruncationContradictTheEarlierCheckpoint(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			for _, attack := range []string{"rewrite", "truncate"} {
				t.Run(attack, func(t *testing.T) {
					s := open(t)
					sign, _ := signer(t)
					m := merkletree.New(merkletree.Config{Events: s, Tree: s, Signer: sign, Every: 1 << 40})
					appendEvents(t, s, "s-1", 20)
					if _, err := m.CatchUp(context.Background()); err != nil {
						t.Fatal(err)
					}
					if _, err := m.Checkpoint(context.Background()); err != nil {
						t.Fatal(err)
					}
					appendEvents(t, s, "s-2", 10)
					if _, err := m.CatchUp(context.Background()); err != nil {
						t.Fatal(err)
					}
					if _, err := m.Checkpoint(context.Background()); err != nil {
						t.Fatal(err)
					}
					if chain, tree := verifyTree(t, s); !chain.OK || !tree.OK || len(tree.Checkpoints) != 2 || !tree.Checkpoints[0].ConsistencyChecked {
						t.Fatalf("before the attack: chain %+v, tree %+v", chain, tree)
					}
					switch attack {
					case "rewrite":
						rewriteFrom(t, s, 15)
					case "truncate":
						if _, err := s.DB().Exec(map[string]string{"sqlite": "DROP TRIGGER events_no_delete", "postgres": "ALTER TABLE events DISABLE TRIGGER USER"}[name]); err != nil {
							t.Fatal(err)
						}
						if _, err := s.DB().Exec("DELETE FROM events WHERE position > 25"); err != nil {
							t.Fatal(err)
						}
					}
					chain, tree := verifyTree(t, s)
					if !chain.OK {
						t.Fatalf("the attack broke the chain (%s), which it was made not to", chain.Problem)
					}
					if tree.OK {
						t.Fatalf("the tree check passed after the %s", attack)
					}
					var problems []string
					for _, c := range tree.Checkpoints {
						if !c.OK {
							problems = append(problems, c.Name()+": "+c.Problem)
						}
					}
					want := map[string]string{
						"rewrite":  "checkpoint of size 20 signed at",
						"truncate": "checkpoint of size 30 signed at",
					}[attack]
					joined := strings.Join(problems, "\n")
					if !strings.Contains(joined, want) || !strings.Contains(joined, map[string]string{"rewrite": "rewritten", "truncate": "truncated"}[attack]) {
						t.Fatalf("problems:\n%s\nwant one naming the %s", joined, want)
					}
					t.Logf("audit verify would say:\n%s", joined)
				})
			}
		})
	}
}
