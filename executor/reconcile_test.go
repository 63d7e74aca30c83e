package executor_test

import (
	"context"
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/executor/executortest"
)

type fakeLeftovers struct {
	left      []executor.Leftover
	discarded []string
}

func (f *fakeLeftovers) Leftovers(context.Context) ([]executor.Leftover, error) { return f.left, nil }
func (f *fakeLeftovers) Discard(_ context.Context, l executor.Leftover) error {
	f.discarded = append(f.discarded, l.ContainerID)
	return nil
}

func TestReconcileSettlesWhatAPreviousExecutorLeft(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := executortest.NewMemStore()
	seed := func(runID string, ps ...domain.Payload) {
		for i, p := range ps {
			if _, err := store.Append(ctx, run.Stream(runID), eventstore.Exact(int64(i)-1), domain.MustEncode(p, domain.Metadata{})); err != nil {
				t.Fatal(err)
			}
		}
	}
	seed("running", requested(), run.ContainerCreated{ContainerID: "c1"}, run.ContainerStarted{ContainerID: "c1"})
	seed("finished", requested(), run.ContainerCreated{ContainerID: "c2"}, run.ContainerStarted{}, run.ContainerStopped{}, run.RunSucceeded{})
	rt := &fakeLeftovers{left: []executor.Leftover{
		{RunID: "running", ContainerID: "c1", State: "running"},
		{RunID: "finished", ContainerID: "c2", State: "exited"},
		{RunID: "stranger", ContainerID: "c3", State: "exited"},
		{ContainerID: "pool1", State: "running"},
	}}
	rep, err := executor.Reconcile(ctx, executor.ReconcileConfig{
		Runtime: rt, Store: store, Publisher: executortest.AppendingPublisher{Appender: executor.NewAppender(store)},
		Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Lost, []string{"running"}) || rep.Removed != 4 || rep.Unmatched != 1 {
		t.Fatalf("report = %+v", rep)
	}
	if !slices.Equal(rt.discarded, []string{"c1", "c2", "c3", "pool1"}) {
		t.Fatalf("discarded %v, want every leftover", rt.discarded)
	}
	tests := []struct{ stream, want string }{
		{"running", "RunRequested ContainerCreated ContainerStarted RunLost ContainerRemoved"},
		{"finished", "RunRequested ContainerCreated ContainerStarted ContainerStopped RunSucceeded ContainerRemoved"},
	}
	for _, tt := range tests {
		if got := executortest.Types(store.Payloads(run.Stream(tt.stream))); got != tt.want {
			t.Errorf("%s: %s\nwant %s", tt.stream, got, tt.want)
		}
	}
}

// A container an older Logbook labelled with the shared owner may be any
// server's: only those whose run is in this store are settled.
func TestReconcileSettlesUnclaimedLeftoversOnlyWhenTheStoreKnowsTheirRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := executortest.NewMemStore()
	for i, p := range []domain.Payload{requested(), run.ContainerCreated{ContainerID: "c1"}, run.ContainerStarted{ContainerID: "c1"}} {
		if _, err := store.Append(ctx, run.Stream("ours"), eventstore.Exact(int64(i)-1), domain.MustEncode(p, domain.Metadata{})); err != nil {
			t.Fatal(err)
		}
	}
	rt := &fakeLeftovers{left: []executor.Leftover{
		{RunID: "ours", ContainerID: "c1", State: "running", Unclaimed: true},
		{RunID: "theirs", ContainerID: "c2", State: "running", Unclaimed: true},
		{ContainerID: "their-pool", State: "running", Unclaimed: true},
	}}
	rep, err := executor.Reconcile(ctx, executor.ReconcileConfig{
		Runtime: rt, Store: store, Publisher: executortest.AppendingPublisher{Appender: executor.NewAppender(store)},
		Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Lost, []string{"ours"}) || rep.Removed != 1 || rep.Foreign != 2 || rep.Unmatched != 0 {
		t.Fatalf("report = %+v, want our run lost and two foreign containers", rep)
	}
	if !slices.Equal(rt.discarded, []string{"c1"}) {
		t.Fatalf("discarded %v, want only the container of our run", rt.discarded)
	}
	if got := executortest.Types(store.Payloads(run.Stream("ours"))); got != "RunRequested ContainerCreated ContainerStarted RunLost ContainerRemoved" {
		t.Fatalf("our run: %s", got)
	}
}
