package postgres_test

import (
	"context"
	"testing"
	"time"
)

// A takeover that waited for the lease's row (a paused leader's append
// holds it FOR SHARE until its session ends) gets a whole lease from the
// moment it has the row, not one reckoned from before the wait and over on
// arrival, which the paused leader, once resumed, would take back at once.
func TestALeaseTakenOverAfterWaitingForItsRowLastsItsTTLFromThen(t *testing.T) {
	ctx := context.Background()
	store := openTemp(t)
	const ttl = 2 * time.Second

	// Given a lease whose holder's append holds its row, and has expired
	if _, ok, err := store.AcquireLease(ctx, "leader", "paused", time.Millisecond); err != nil || !ok {
		t.Fatalf("first acquire: ok %v, %v", ok, err)
	}
	appending, err := store.WriteDB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer appending.Rollback() //nolint:errcheck // committed below
	var holder string
	if err := appending.QueryRowContext(ctx, "SELECT holder FROM leases WHERE name = 'leader' FOR SHARE").Scan(&holder); err != nil {
		t.Fatal(err)
	}

	// When another server campaigns, and gets the row only once a TTL
	// and more has passed
	type acquired struct {
		ok  bool
		err error
		at  time.Time
	}
	done := make(chan acquired, 1)
	go func() {
		_, ok, err := store.AcquireLease(ctx, "leader", "next", ttl)
		done <- acquired{ok, err, time.Now()}
	}()
	select {
	case a := <-done:
		t.Fatalf("the takeover did not wait for the row held FOR SHARE: %+v", a)
	case <-time.After(ttl + time.Second):
	}
	if err := appending.Commit(); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got.err != nil || !got.ok {
		t.Fatalf("takeover: ok %v, %v", got.ok, got.err)
	}

	// Then its lease still holds: the resumed holder's campaign right
	// after it is refused
	lease, ok, err := store.AcquireLease(ctx, "leader", "paused", ttl)
	if err != nil {
		t.Fatal(err)
	}
	if ok || lease.Holder != "next" {
		t.Fatalf("the resumed holder took the lease back %v after the takeover: %+v", time.Since(got.at), lease)
	}
	if left := time.Until(lease.Expires); left < ttl/2 {
		t.Fatalf("the takeover's lease has %v left, want about %v", left, ttl)
	}
}
