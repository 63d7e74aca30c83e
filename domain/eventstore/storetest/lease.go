package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
)

func runLeases(t *testing.T, h Harness) {
	t.Run("elects one lease holder and moves the term on each change of hands", func(t *testing.T) { t.Parallel(); testLeaseTerms(t, h) })
	t.Run("takes over an expired lease by the database's clock", func(t *testing.T) { t.Parallel(); testLeaseExpiry(t, h) })
	t.Run("refuses an append fenced by a lease that changed hands", func(t *testing.T) { t.Parallel(); testFencedAppend(t, h) })
	t.Run("fences only the stale appends of a group commit", func(t *testing.T) { t.Parallel(); testFencedInGroup(t, h) })
	t.Run("fences across processes", func(t *testing.T) { t.Parallel(); testFencedAcrossProcesses(t, h) })
}

func leasesOf(t *testing.T, s eventstore.Store) eventstore.Leases {
	t.Helper()
	l, ok := s.(eventstore.Leases)
	if !ok {
		t.Fatalf("%T does not implement eventstore.Leases", s)
	}
	return l
}

func mustAcquire(t *testing.T, l eventstore.Leases, name, holder string, ttl time.Duration) eventstore.Lease {
	t.Helper()
	lease, ok, err := l.AcquireLease(ctxFor(t), name, holder, ttl)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("%s could not acquire %s: held by %s at term %d", holder, name, lease.Holder, lease.Term)
	}
	return lease
}

func testLeaseTerms(t *testing.T, h Harness) {
	s := h.New(t)
	leases := leasesOf(t, s)
	ctx := ctxFor(t)
	if _, found, err := leases.CurrentLease(ctx, "dispatcher"); err != nil || found {
		t.Fatalf("a lease never taken: found %v, %v", found, err)
	}
	a := mustAcquire(t, leases, "dispatcher", "a", time.Minute)
	if a.Term != 1 || a.Holder != "a" || time.Until(a.Expires) < 30*time.Second {
		t.Fatalf("first lease = %+v, want a's, term 1, about a minute", a)
	}
	again := mustAcquire(t, leases, "dispatcher", "a", time.Minute)
	if again.Term != 1 {
		t.Errorf("the holder acquiring again moved the term to %d", again.Term)
	}
	theirs, ok, err := leases.AcquireLease(ctx, "dispatcher", "b", time.Minute)
	if err != nil || ok || theirs.Holder != "a" || theirs.Term != 1 {
		t.Fatalf("b acquiring a held lease: %+v, %v, %v; want a's lease, not acquired", theirs, ok, err)
	}
	if other := mustAcquire(t, leases, "views", "b", time.Minute); other.Term != 1 {
		t.Errorf("another name's first term is %d", other.Term)
	}
	if err := leases.ReleaseLease(ctx, a); err != nil {
		t.Fatal(err)
	}
	b := mustAcquire(t, leases, "dispatcher", "b", time.Minute)
	if b.Term != 2 {
		t.Errorf("b's term after a released = %d, want 2", b.Term)
	}
	if _, err := leases.RenewLease(ctx, a, time.Minute); !errors.Is(err, eventstore.ErrLeaseLost) {
		t.Errorf("a renewing after b took over: %v, want ErrLeaseLost", err)
	}
	if err := leases.ReleaseLease(ctx, a); err != nil {
		t.Errorf("releasing a lost lease: %v", err)
	}
	if cur, _, _ := leases.CurrentLease(ctx, "dispatcher"); cur.Holder != "b" || cur.Term != 2 {
		t.Errorf("a's late release changed b's lease: %+v", cur)
	}
	if _, _, err := leases.AcquireLease(ctx, "", "a", time.Minute); err == nil {
		t.Error("a lease with no name was acquired")
	}
	if _, _, err := leases.AcquireLease(ctx, "x", "", time.Minute); err == nil {
		t.Error("a lease with no holder was acquired")
	}
}

func testLeaseExpiry(t *testing.T, h Harness) {
	s := h.New(t)
	leases := leasesOf(t, s)
	ctx := ctxFor(t)
	a := mustAcquire(t, leases, "dispatcher", "a", 300*time.Millisecond)
	// The database's clock decides: b keeps asking until it is told yes,
	// which proves a's lease expired without a renewal.
	deadline := time.Now().Add(10 * time.Second)
	var b eventstore.Lease
	for {
		lease, ok, err := leases.AcquireLease(ctx, "dispatcher", "b", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			b = lease
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b never took over a's lease of 300ms")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if b.Term != a.Term+1 {
		t.Errorf("term after the takeover = %d, want %d", b.Term, a.Term+1)
	}
	if _, err := leases.RenewLease(ctx, a, time.Minute); !errors.Is(err, eventstore.ErrLeaseLost) {
		t.Errorf("a renewing after its lease was taken: %v, want ErrLeaseLost", err)
	}
	// A lease that expired but that nobody took is renewed at its term.
	c := mustAcquire(t, leases, "views", "c", time.Millisecond)
	renewed, err := leases.RenewLease(ctx, c, time.Minute)
	if err != nil || renewed.Term != c.Term {
		t.Errorf("renewing an expired lease nobody took: %+v, %v", renewed, err)
	}
}

func testFencedAppend(t *testing.T, h Harness) {
	s := h.New(t)
	leases := leasesOf(t, s)
	ctx := ctxFor(t)
	a := mustAcquire(t, leases, "dispatcher", "a", time.Minute)
	asA := eventstore.WithFence(ctx, a)
	if _, err := s.Append(asA, "fenced-1", eventstore.NoStream, newEvents(1, "a at term 1")...); err != nil {
		t.Fatalf("an append under the current lease: %v", err)
	}
	if err := leases.ReleaseLease(ctx, a); err != nil {
		t.Fatal(err)
	}
	b := mustAcquire(t, leases, "dispatcher", "b", time.Minute)
	before := head(t, s)
	_, err := s.Append(asA, "fenced-1", eventstore.Any, newEvents(1, "a after b took over")...)
	var fenced *eventstore.FencedError
	if !errors.Is(err, eventstore.ErrFenced) || !errors.As(err, &fenced) || fenced.CurrentTerm != 2 || fenced.Term != 1 || fenced.CurrentHolder != "b" {
		t.Fatalf("a's append after b took over: %v, want a FencedError naming term 1, term 2 and b", err)
	}
	if _, err := s.AppendMulti(asA, eventstore.StreamAppend{Stream: "fenced-2", Expected: eventstore.NoStream, Events: newEvents(1, "multi")}); !errors.Is(err, eventstore.ErrFenced) {
		t.Errorf("a's AppendMulti after b took over: %v, want ErrFenced", err)
	}
	if after := head(t, s); after != before {
		t.Fatalf("fenced appends wrote: head %d -> %d", before, after)
	}
	if _, err := s.Append(eventstore.WithFence(ctx, b), "fenced-1", eventstore.Exact(0), newEvents(1, "b at term 2")...); err != nil {
		t.Errorf("b's append under the current lease: %v", err)
	}
	if _, err := s.Append(ctx, "unfenced-1", eventstore.NoStream, newEvents(1, "anyone")...); err != nil {
		t.Errorf("an unfenced append: %v", err)
	}
	unknown := eventstore.Lease{Name: "never-taken", Holder: "a", Term: 1}
	if _, err := s.Append(eventstore.WithFence(ctx, unknown), "x-1", eventstore.Any, newEvents(1, "")...); !errors.Is(err, eventstore.ErrFenced) {
		t.Errorf("an append fenced by a lease nobody holds: %v, want ErrFenced", err)
	}
}

func testFencedInGroup(t *testing.T, h Harness) {
	s := h.New(t)
	leases := leasesOf(t, s)
	ctx := ctxFor(t)
	stale := mustAcquire(t, leases, "dispatcher", "a", time.Minute)
	if err := leases.ReleaseLease(ctx, stale); err != nil {
		t.Fatal(err)
	}
	current := mustAcquire(t, leases, "dispatcher", "b", time.Minute)
	// Many appenders at once, so the writer groups them: the stale ones
	// fail alone.
	var (
		wg               sync.WaitGroup
		mu               sync.Mutex
		staleOK, freshOK int
		other            []error
	)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lease := current
			if i%2 == 0 {
				lease = stale
			}
			_, err := s.Append(eventstore.WithFence(ctx, lease), "group-1", eventstore.Any, newEvents(1, "")...)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && lease == current:
				freshOK++
			case err == nil:
				staleOK++
			case lease == stale && errors.Is(err, eventstore.ErrFenced):
			default:
				other = append(other, err)
			}
		}()
	}
	wg.Wait()
	if staleOK != 0 || freshOK != 20 || len(other) > 0 {
		t.Fatalf("stale appends written: %d, current ones: %d of 20, other errors: %v", staleOK, freshOK, other)
	}
	events, err := s.ReadStream(ctx, "group-1", 0, 100)
	if err != nil || len(events) != 20 {
		t.Fatalf("the stream holds %d events (%v), want the 20 current ones", len(events), err)
	}
}

func testFencedAcrossProcesses(t *testing.T, h Harness) {
	if h.Another == nil {
		t.Skip("the harness opens no second process")
	}
	first := h.New(t)
	second := h.Another(t, first)
	ctx := ctxFor(t)
	a := mustAcquire(t, leasesOf(t, first), "dispatcher", "process-1", time.Minute)
	if _, err := first.Append(eventstore.WithFence(ctx, a), "cross-1", eventstore.NoStream, newEvents(1, "")...); err != nil {
		t.Fatal(err)
	}
	if err := leasesOf(t, second).ReleaseLease(ctx, a); err != nil {
		t.Fatal(err)
	}
	b := mustAcquire(t, leasesOf(t, second), "dispatcher", "process-2", time.Minute)
	if _, err := second.Append(eventstore.WithFence(ctx, b), "cross-1", eventstore.Exact(0), domain.NewEvent{ID: domain.NewEventID(), Type: "StoreTestEvent", Data: []byte(`{"n":2}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Append(eventstore.WithFence(context.Background(), a), "cross-1", eventstore.Any, newEvents(1, "")...); !errors.Is(err, eventstore.ErrFenced) {
		t.Fatalf("process 1's append after process 2 took the lease: %v, want ErrFenced", err)
	}
	events, err := first.ReadStream(ctx, "cross-1", 0, 10)
	if err != nil || len(events) != 2 {
		t.Fatalf("the stream holds %d events (%v), want 2", len(events), err)
	}
}
