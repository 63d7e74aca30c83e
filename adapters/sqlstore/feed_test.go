package sqlstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/adapters/postgres"
	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/internal/testenv"
)

type feedStore interface {
	eventstore.Store
	ReadFeed(ctx context.Context, from, to int64, types []string) ([]domain.RecordedEvent, error)
}

func feedStores(t *testing.T, test func(t *testing.T, s feedStore)) {
	t.Run("on SQLite", func(t *testing.T) {
		t.Parallel()
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "feed.db"), sqlstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		test(t, s)
	})
	t.Run("on Postgres", func(t *testing.T) {
		t.Parallel()
		s, err := postgres.Open(context.Background(), testenv.PostgresSchema(t), sqlstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		test(t, s)
	})
}

// Given events of three types in two streams, when the feed is read over a
// range of positions for some types, then exactly those events come back,
// in order, with position, stream, version, type, data and time as
// ReadAll has them, and nothing of the id, metadata or hashes.
func TestReadFeedReturnsTheEventsOfTheTypesAskedForInARange(t *testing.T) {
	t.Parallel()
	feedStores(t, func(t *testing.T, s feedStore) {
		ctx := context.Background()
		for i := range 3 {
			for _, stream := range []string{"test-a", "test-b"} {
				events := []domain.NewEvent{
					{ID: uuid.New(), Type: "Alpha", Data: json.RawMessage(fmt.Sprintf(`{"n":%d,"s":%q}`, i, stream)), Metadata: domain.Metadata{Actor: "x"}},
					{ID: uuid.New(), Type: "Beta", Data: json.RawMessage(`{}`)},
					{ID: uuid.New(), Type: "Gamma", Data: json.RawMessage(`[1]`)},
				}
				if _, err := s.Append(ctx, stream, eventstore.Any, events...); err != nil {
					t.Fatal(err)
				}
			}
		}
		all, err := s.ReadAll(ctx, 1, 100)
		if err != nil || len(all) != 18 {
			t.Fatalf("ReadAll = %d events, %v", len(all), err)
		}

		got, err := s.ReadFeed(ctx, 4, 15, []string{"Alpha", "Gamma"})
		if err != nil {
			t.Fatal(err)
		}
		var want []domain.RecordedEvent
		for _, e := range all[3:15] {
			if e.Type == "Alpha" || e.Type == "Gamma" {
				want = append(want, e)
			}
		}
		if len(got) != len(want) || len(want) != 8 {
			t.Fatalf("ReadFeed(4, 15, Alpha Gamma) = %d events, want %d", len(got), len(want))
		}
		for i, e := range got {
			w := want[i]
			if e.Position != w.Position || e.Stream != w.Stream || e.Version != w.Version || e.Type != w.Type ||
				string(e.Data) != string(w.Data) || !e.RecordedAt.Equal(w.RecordedAt) || e.RecordedAt.IsZero() {
				t.Fatalf("event %d = %+v, want %+v", i, e, w)
			}
			if e.ID != uuid.Nil || e.RawMetadata != nil || e.Hash != nil || e.PrevHash != nil {
				t.Fatalf("event %d carries what the feed does not read: %+v", i, e)
			}
		}

		every, err := s.ReadFeed(ctx, -5, 100, nil)
		if err != nil || len(every) != 18 || every[0].Position != 1 || every[17].Position != 18 {
			t.Fatalf("ReadFeed(-5, 100, every type) = %d events, %v", len(every), err)
		}
		if none, err := s.ReadFeed(ctx, 9, 8, nil); err != nil || len(none) != 0 {
			t.Fatalf("ReadFeed(9, 8) = %d events, %v; want none", len(none), err)
		}
		if _, err := s.ReadFeed(ctx, 1, 2_000_000, nil); err == nil {
			t.Fatal("ReadFeed over two million positions succeeded; want an error naming the limit")
		}
	})
}
