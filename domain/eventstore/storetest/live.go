package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// feedReader is the views' lean read, where a store has it.
type feedReader interface {
	ReadFeed(ctx context.Context, from, to int64, types []string) ([]domain.RecordedEvent, error)
}

// A follower's reads (eventstore.ReadLive, and ReadFeed where the store
// has it) return exactly what is stored, whatever a store keeps in memory
// of its own appends, and also when another process appended between
// them or after them (after, once the store's change signal said so).
func testLiveReads(t *testing.T, h Harness) {
	s := h.New(t)
	other := h.Another(t, s)
	ctx := ctxFor(t)
	mustAppend(t, s, "live-1", eventstore.NoStream, newEvents(3, "first")...)
	mustAppendMulti(t, s,
		eventstore.StreamAppend{Stream: "live-2", Expected: eventstore.NoStream, Events: newEvents(2, "multi")},
		eventstore.StreamAppend{Stream: "live-1", Expected: eventstore.Exact(2), Events: newEvents(1, "multi")})
	repeated := newEvents(2, "repeated")
	mustAppend(t, s, "live-3", eventstore.NoStream, repeated...)
	if res := mustAppend(t, s, "live-3", eventstore.NoStream, repeated...); !res.Duplicate {
		t.Fatalf("the repeat = %+v, want a duplicate", res)
	}
	if _, err := s.Append(ctx, "live-1", eventstore.Exact(0), newEvents(1, "stale")...); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("a stale append: err = %v, want a conflict", err)
	}
	mustAppend(t, other, "live-4", eventstore.NoStream, newEvents(2, "between")...)
	mustAppend(t, s, "live-1", eventstore.Any, newEvents(2, "after the other")...)
	mustAppend(t, other, "live-4", eventstore.Any, newEvents(3, "last")...)

	stored, err := s.ReadAll(ctx, 1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 15 {
		t.Fatalf("%d events stored, want 15", len(stored))
	}
	// Another process's appends after this store's last commit reach its
	// followers once the store has seen them: its change signal says when.
	for {
		changed := s.Changed()
		short := int64(0) // a position from which a follower reads less than is stored
		for from := int64(1); from <= int64(len(stored)) && short == 0; from++ {
			live, err := eventstore.ReadLive(ctx, s, from, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(live)) != int64(len(stored))-from+1 {
				short = from
			}
		}
		if short == 0 {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("a follower of the first store reading from position %d still misses the other process's last appends", short)
		}
	}
	for from := int64(0); from <= 17; from++ {
		for _, limit := range []int{1, 2, 5, 1000} {
			got, err := eventstore.ReadLive(ctx, s, from, limit)
			if err != nil {
				t.Fatal(err)
			}
			want, err := s.ReadAll(ctx, from, limit)
			if err != nil {
				t.Fatal(err)
			}
			if err := sameEvents(got, want, false); err != nil {
				t.Fatalf("ReadLive(%d, %d): %v", from, limit, err)
			}
		}
	}

	feed, ok := s.(feedReader)
	if !ok {
		return
	}
	// A store opened now keeps nothing in memory: its feed is the database's.
	fresh, ok := h.Another(t, s).(feedReader)
	if !ok {
		t.Fatal("a second store of the same adapter has no ReadFeed")
	}
	for _, types := range [][]string{nil, {Event{}.EventType()}, {"NoSuchType"}} {
		for from := int64(1); from <= 15; from++ {
			for to := from - 1; to <= 16; to++ {
				got, err := feed.ReadFeed(ctx, from, to, types)
				if err != nil {
					t.Fatal(err)
				}
				want, err := fresh.ReadFeed(ctx, from, to, types)
				if err != nil {
					t.Fatal(err)
				}
				if err := sameEvents(got, want, true); err != nil {
					t.Fatalf("ReadFeed(%d, %d, %v): %v", from, to, types, err)
				}
			}
		}
	}
}

// sameEvents compares two reads field by field; lean is a ReadFeed's,
// whose id, metadata and hashes are left zero.
func sameEvents(got, want []domain.RecordedEvent, lean bool) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d events, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		same := g.Position == w.Position && g.Stream == w.Stream && g.Version == w.Version && g.Type == w.Type &&
			bytes.Equal(g.Data, w.Data) && g.RecordedAt.Equal(w.RecordedAt) && g.ID == w.ID &&
			bytes.Equal(g.RawMetadata, w.RawMetadata) && bytes.Equal(g.PrevHash, w.PrevHash) && bytes.Equal(g.Hash, w.Hash)
		if lean {
			same = same && len(g.RawMetadata) == 0 && len(g.Hash) == 0
		}
		if !same {
			return fmt.Errorf("event %d is %+v, want %+v", i, g, w)
		}
	}
	return nil
}
