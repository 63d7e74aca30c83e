package projections_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/projections"
)

// foldCounter is a view with in-memory state only, as the permissions'
// model is: it counts how often it folded each position, and opening it
// at a checkpoint forgets what it folded after it, as reloading its state
// from its tables would.
type foldCounter struct {
	name, eventType string
	mu              sync.Mutex
	folded          map[int64]int
}

func (f *foldCounter) Name() string     { return f.name }
func (f *foldCounter) Types() []string  { return []string{f.eventType} }
func (f *foldCounter) Tables() []string { return nil }
func (f *foldCounter) Committed(int64)  {}

func (f *foldCounter) Open(_ context.Context, _ projections.Env, checkpoint int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for position := range f.folded {
		if position > checkpoint {
			delete(f.folded, position)
		}
	}
	return nil
}

func (f *foldCounter) Apply(_ context.Context, _ *projections.Tx, batch projections.Batch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range batch.Events {
		f.folded[e.Position]++
	}
	return nil
}

// refusingView cannot fold the event at one position.
type refusingView struct {
	foldCounter
	refuse int64
}

func (v *refusingView) Apply(ctx context.Context, tx *projections.Tx, batch projections.Batch) error {
	for _, e := range batch.Events {
		if e.Position == v.refuse {
			return &projections.EventError{Position: e.Position, Type: e.Type, Err: errors.New("cannot fold this one")}
		}
	}
	return v.foldCounter.Apply(ctx, tx, batch)
}

// Given views applied together (on SQLite, in one transaction), and a view
// among them that cannot fold an event of the batch, when the runner
// catches up, then that view stops where it was, and every other view
// reaches the head having folded each of its events exactly once, in its
// tables and in its in-memory state.
func TestAViewThatStopsLeavesTheOthersFoldingEachEventOnce(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		src := open(t)
		ctx := context.Background()
		appendTo(t, src, access.UserStream("u1"), access.UserCreated{User: "u1", Username: "alice"}) // 1
		appendTo(t, src, run.Stream("r1"), run.RunRequested{RequestID: "q"})                         // 2
		appendTo(t, src, access.UserStream("u2"), access.UserCreated{User: "u2", Username: "bob"})   // 3
		appendTo(t, src, run.Stream("r2"), run.RunRequested{RequestID: "q2"})                        // 4
		before := &foldCounter{name: "test_before", eventType: "UserCreated", folded: map[int64]int{}}
		stopping := &refusingView{foldCounter: foldCounter{name: "test_stopping", eventType: "RunRequested", folded: map[int64]int{}}, refuse: 4}
		after := &foldCounter{name: "test_after", eventType: "UserCreated", folded: map[int64]int{}}
		r, err := projections.NewRunner(src, projections.Config{}, before, stopping, after)
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.CatchUp(ctx, nil)
		if !errors.Is(err, projections.ErrViewFailed) || !strings.Contains(err.Error(), "test_stopping") {
			t.Fatalf("catch-up = %v, want test_stopping stopped", err)
		}
		status, err := r.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range status {
			want := int64(4)
			if s.Name == "test_stopping" {
				want = 0 // a view that fails a batch applies none of it
			}
			if s.Checkpoint != want {
				t.Errorf("%s is at %d, want %d (%s)", s.Name, s.Checkpoint, want, s.Error)
			}
		}
		for _, v := range []*foldCounter{before, after} {
			v.mu.Lock()
			if len(v.folded) != 2 || v.folded[1] != 1 || v.folded[3] != 1 {
				t.Errorf("%s folded positions %v, want 1 and 3 once each", v.name, v.folded)
			}
			v.mu.Unlock()
		}
	})
}
