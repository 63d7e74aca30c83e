package projections_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/eventstore/storetest"
	"github.com/logbookhq/logbook/projections"
)

// rangesRead is a store that notes the positions each read of the feed
// covers.
type rangesRead struct {
	*sqlite.Store
	mu     sync.Mutex
	ranges []string
}

func (r *rangesRead) ReadFeed(ctx context.Context, from, to int64, types []string) ([]domain.RecordedEvent, error) {
	r.mu.Lock()
	r.ranges = append(r.ranges, fmt.Sprintf("%d-%d", from, to))
	r.mu.Unlock()
	return r.Store.ReadFeed(ctx, from, to, types)
}

// Views far behind the head catch up in long steps; near the head they go
// in short ones, since each step holds SQLite's one write connection while
// appends wait.
func TestViewsNearTheHeadApplyTheLogInShortSteps(t *testing.T) {
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	for i := range 250 {
		if _, err := store.Append(ctx, fmt.Sprintf("test-%d", i), eventstore.NoStream, domain.MustEncode(storetest.Event{N: i}, domain.Metadata{})); err != nil {
			t.Fatal(err)
		}
	}
	src := &rangesRead{Store: store}
	runner, err := projections.NewRunner(src, projections.Config{BatchSize: 100, LiveBatchSize: 10}, projections.NewHistory())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runner.CatchUp(ctx, nil); err != nil {
		t.Fatal(err)
	}
	want := "[1-100 101-200 201-210 211-220 221-230 231-240 241-250]"
	if got := fmt.Sprint(src.ranges); got != want {
		t.Fatalf("the runner read %s, want %s", got, want)
	}
}
