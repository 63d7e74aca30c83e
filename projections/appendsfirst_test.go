package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/logbookhq/logbook/projections"
	"github.com/logbookhq/logbook/projections/projectionstest"
)

// gatedView applies its batch, then says so and waits to be let go, still
// inside the views' transaction.
type gatedView struct {
	projections.Projection
	entered, release chan struct{}
}

func gated(p projections.Projection) *gatedView {
	return &gatedView{Projection: p, entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (v *gatedView) Apply(ctx context.Context, tx *projections.Tx, batch projections.Batch) error {
	if err := v.Projection.Apply(ctx, tx, batch); err != nil {
		return err
	}
	select {
	case v.entered <- struct{}{}:
	default:
	}
	select {
	case <-v.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Given two views applying a batch (on SQLite in one transaction on the
// views file's connection), when an append comes while the first is in
// its work, then the append is committed before that view is let go: it
// waits for no view. (When the views shared SQLite's one write
// connection, it waited for one view, never for the whole batch.)
func TestAnAppendWaitsForOneViewNotForTheWholeBatch(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		src := open(t)
		w := projectionstest.NewWorkload(3, 4)
		if err := projectionstest.AppendAll(ctx, src, w.Setup()); err != nil {
			t.Fatal(err)
		}
		if err := projectionstest.AppendAll(ctx, src, w.Request()); err != nil {
			t.Fatal(err)
		}
		views := []*gatedView{gated(projections.NewHistory()), gated(projections.NewSearch())}
		runner, err := projections.NewRunner(src, projections.Config{}, views[0], views[1])
		if err != nil {
			t.Fatal(err)
		}
		caughtUp := make(chan error, 1)
		go func() {
			_, err := runner.CatchUp(ctx, nil)
			caughtUp <- err
		}()
		var first *gatedView
		select {
		case <-views[0].entered:
			first = views[0]
		case <-views[1].entered:
			first = views[1]
		case err := <-caughtUp:
			t.Fatalf("caught up (%v) before a view applied its batch", err)
		}

		// One append, one commit.
		next := w.Request()
		appended := make(chan error, 1)
		go func() { appended <- projectionstest.AppendAll(ctx, src, next[:1]) }()
		// The views write through a pool of their own (on SQLite, a file
		// of their own): the append commits while the first view is still
		// at work, before it is let go.
		select {
		case err := <-appended:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the append waited for the view it found at work")
		}
		close(first.release)
		for _, v := range views {
			if v != first {
				close(v.release)
			}
		}
		if err := <-caughtUp; err != nil {
			t.Fatal(err)
		}
		if err := projectionstest.AppendAll(ctx, src, next[1:]); err != nil {
			t.Fatal(err)
		}
		// The views go on from where they committed, to the head.
		if _, err := runner.CatchUp(ctx, nil); err != nil {
			t.Fatal(err)
		}
		requireAtHead(t, ctx, src, runner)
	})
}
