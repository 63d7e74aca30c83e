package httpapi

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/internal/testenv"
)

// gatedStore counts chain walks (reads from position 1) and holds each
// read until the gate opens.
type gatedStore struct {
	eventstore.Store
	walks atomic.Int64
	gate  chan struct{}
}

func (s *gatedStore) ReadAll(ctx context.Context, from int64, limit int) ([]domain.RecordedEvent, error) {
	if from == 1 {
		s.walks.Add(1)
	}
	<-s.gate
	return s.Store.ReadAll(ctx, from, limit)
}

func TestConcurrentVerificationsShareOneWalk(t *testing.T) {
	ctx := context.Background()
	inner, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	for range 3 {
		if _, err := inner.Append(ctx, run.Stream("r1"), eventstore.Any, domain.MustEncode(run.RunLost{}, domain.Metadata{})); err != nil {
			t.Fatal(err)
		}
	}
	store := &gatedStore{Store: inner, gate: make(chan struct{})}
	var v verifier

	// Given five callers asking while the first walk is held up.
	var wg sync.WaitGroup
	reports := make([]AuditReport, 5)
	for i := range reports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := v.verify(ctx, store, 1)
			if err != nil {
				t.Error(err)
			}
			reports[i] = r
		}()
	}
	testenv.Eventually(t, "the condition", func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.current != nil && v.current.callers == 5
	})
	// When the walk goes on.
	close(store.gate)
	wg.Wait()

	// Then the store was walked once, and every answer is the whole chain.
	if n := store.walks.Load(); n != 1 {
		t.Fatalf("%d walks for five concurrent callers, want 1", n)
	}
	shared := 0
	for _, r := range reports {
		if !r.OK || r.Checked != 3 || r.HeadPosition != 3 || len(r.HeadHash) != 64 {
			t.Fatalf("report %+v, want ok over 3 events with the head hash", r)
		}
		if r.Shared {
			shared++
		}
	}
	if shared != 4 {
		t.Fatalf("%d of 5 answers were shared, want 4 (all but the first caller's)", shared)
	}

	// And a caller that goes away does not stop the walk others wait on.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := v.verify(cancelled, inner, 1); err == nil {
		t.Fatal("a cancelled caller got an answer")
	}
	if r, err := v.verify(ctx, inner, 1); err != nil || !r.OK {
		t.Fatalf("after a cancelled caller: %+v %v", r, err)
	}
}

// alteredStore serves the log with one event's data changed, or one event
// left out, as a database edited behind the store's back would.
type alteredStore struct {
	eventstore.Store
	altered, deleted int64
}

func (s alteredStore) ReadAll(ctx context.Context, from int64, limit int) ([]domain.RecordedEvent, error) {
	events, err := s.Store.ReadAll(ctx, from, limit)
	out := events[:0:0]
	for _, e := range events {
		switch e.Position {
		case s.deleted:
			continue
		case s.altered:
			e.Data = []byte(`{"reason":"rewritten"}`)
		}
		out = append(out, e)
	}
	return out, err
}

func TestAWalkFromAPositionFindsChangesFromThereOn(t *testing.T) {
	ctx := context.Background()
	inner, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	for range 6 {
		if _, err := inner.Append(ctx, run.Stream("r1"), eventstore.Any, domain.MustEncode(run.RunLost{}, domain.Metadata{})); err != nil {
			t.Fatal(err)
		}
	}
	whole, err := eventstore.Verify(ctx, inner, nil)
	if err != nil || !whole.OK {
		t.Fatal(whole, err)
	}
	for _, c := range []struct {
		name              string
		store             eventstore.Store
		from              int64
		ok                bool
		checked, firstBad int64
	}{
		{"an intact log from 3", inner, 3, true, 4, 0},
		{"an intact log from its last event", inner, 6, true, 1, 0},
		{"event 4 altered, walked from 2", alteredStore{Store: inner, altered: 4}, 2, false, 2, 4},
		{"event 4 altered, walked from 5", alteredStore{Store: inner, altered: 4}, 5, true, 2, 0},
		{"event 4 deleted, walked from 3", alteredStore{Store: inner, deleted: 4}, 3, false, 1, 4},
		{"the anchor deleted", alteredStore{Store: inner, deleted: 2}, 3, false, 0, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := verifyFrom(ctx, c.store, c.from)
			if err != nil {
				t.Fatal(err)
			}
			if r.OK != c.ok || r.Checked != c.checked || r.FirstBad != c.firstBad {
				t.Fatalf("report %+v, want ok %v, checked %d, first bad %d", r, c.ok, c.checked, c.firstBad)
			}
			if r.OK && (r.Head != 6 || r.HeadHash != whole.HeadHash) {
				t.Fatalf("head %d %s, the whole walk's %d %s", r.Head, r.HeadHash, whole.Head, whole.HeadHash)
			}
			if !r.OK && r.Problem == "" {
				t.Fatal("a break without a reason")
			}
		})
	}
}
