package httpapi

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
)

// countingStore counts head queries.
type countingStore struct {
	eventstore.Store
	heads atomic.Int64
}

func (s *countingStore) Head(ctx context.Context) (int64, []byte, error) {
	s.heads.Add(1)
	return s.Store.Head(ctx)
}

func TestTheHeadIsQueriedAgainOnlyAfterAnAppend(t *testing.T) {
	ctx := context.Background()
	inner, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	store := &countingStore{Store: inner}
	appendOne := func() {
		if _, err := inner.Append(ctx, run.Stream("r1"), eventstore.Any, domain.MustEncode(run.RunLost{}, domain.Metadata{})); err != nil {
			t.Fatal(err)
		}
	}
	var cache headCache
	// Given one event, read twice with nothing appended between.
	appendOne()
	for range 3 {
		if pos, err := cache.head(ctx, store); err != nil || pos != 1 {
			t.Fatalf("head = %d, %v; want 1", pos, err)
		}
	}
	// Then the store was asked once.
	if n := store.heads.Load(); n != 1 {
		t.Fatalf("%d head queries for three reads with no append between, want 1", n)
	}
	// When another event is appended, the next read sees it.
	appendOne()
	if pos, err := cache.head(ctx, store); err != nil || pos != 2 {
		t.Fatalf("head after an append = %d, %v; want 2", pos, err)
	}
	if n := store.heads.Load(); n != 2 {
		t.Fatalf("%d head queries, want 2", n)
	}
}
