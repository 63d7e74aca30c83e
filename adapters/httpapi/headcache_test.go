package httpapi

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/logbookhq/logbook/domain/eventstore"
)

// headStore is the part of a store the head cache uses: a head that an
// append moves, a change signal that an append closes, and a count of the
// head queries.
type headStore struct {
	eventstore.Store
	mu      sync.Mutex
	pos     int64
	changed chan struct{}
	heads   int
}

func newHeadStore() *headStore { return &headStore{changed: make(chan struct{})} }

func (s *headStore) Head(context.Context) (int64, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.heads++
	return s.pos, nil, nil
}

func (s *headStore) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *headStore) appendOne() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pos++
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *headStore) queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heads
}

func TestTheHeadIsQueriedAgainOnlyAfterAnAppendOrOnceItIsASecondOld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		store := newHeadStore()
		var cache headCache
		// Given one event, read three times with nothing appended between.
		store.appendOne()
		for range 3 {
			if pos, err := cache.head(ctx, store); err != nil || pos != 1 {
				t.Fatalf("head = %d, %v; want 1", pos, err)
			}
		}
		// Then the store was asked once.
		if n := store.queries(); n != 1 {
			t.Fatalf("%d head queries for three reads with no append between, want 1", n)
		}
		// When another event is appended, the next read sees it.
		store.appendOne()
		if pos, err := cache.head(ctx, store); err != nil || pos != 2 {
			t.Fatalf("head after an append = %d, %v; want 2", pos, err)
		}
		if n := store.queries(); n != 2 {
			t.Fatalf("%d head queries, want 2", n)
		}
		// A head read a second ago is read again, in case a change went
		// unsignalled (another process, where the database cannot tell).
		time.Sleep(maxHeadAge)
		if _, err := cache.head(ctx, store); err != nil {
			t.Fatal(err)
		}
		if n := store.queries(); n != 3 {
			t.Fatalf("%d head queries after the cached head aged %v, want 3", n, maxHeadAge)
		}
	})
}
