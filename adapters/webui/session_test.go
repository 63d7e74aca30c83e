package webui

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/logbookhq/logbook/internal/testenv"
)

// The console's waits for replies end with the session's interest in
// them: a command that leaves the scrollback, a reply taken, a session
// that ends or expires, and a wait whose context ends.
func TestASessionEndsTheWaitsForRepliesItNoLongerNeeds(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := now
	ss := newSessions(NewMemorySessions(), func() time.Time { return clock }, time.Hour, 24*time.Hour)
	stopped := map[string]bool{}
	remember := func(s *session, id string) {
		ss.waits.add(s.id, id, context.Background(), nil, func() { stopped[id] = true })
		if err := ss.remember(ctx, s, ConsoleCommand{RequestID: id}); err != nil {
			t.Fatal(err)
		}
	}

	s, err := ss.start(ctx, "u-1", "token")
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxScrollback + 2 {
		remember(s, fmt.Sprintf("r%d", i))
	}
	if !stopped["r0"] || !stopped["r1"] || stopped["r2"] {
		t.Fatalf("after %d commands the waits stopped are %v; want the two that left the scrollback", maxScrollback+2, stopped)
	}
	ss.waits.forget(s.id, "r2")
	if !stopped["r2"] {
		t.Fatal("a reply taken did not stop its wait")
	}
	if err := ss.end(ctx, s.id); err != nil {
		t.Fatal(err)
	}
	if !stopped[fmt.Sprintf("r%d", maxScrollback+1)] {
		t.Fatal("logging out did not stop the session's waits")
	}

	expiring, err := ss.start(ctx, "u-1", "token")
	if err != nil {
		t.Fatal(err)
	}
	remember(expiring, "late")
	clock = clock.Add(2 * time.Hour)
	if _, ok, err := ss.get(ctx, expiring.id); err != nil || ok || !stopped["late"] {
		t.Fatalf("an idle session expired: %v (%v), its wait stopped: %v", !ok, err, stopped["late"])
	}
	if n := ss.waits.waiting(); n != 0 {
		t.Fatalf("%d waits are held after every session ended", n)
	}

	// A session that ended on another server leaves its waits here until
	// their contexts end.
	elsewhere, err := ss.start(ctx, "u-1", "token")
	if err != nil {
		t.Fatal(err)
	}
	wait, timeUp := context.WithCancel(context.Background())
	ss.waits.add(elsewhere.id, "r-elsewhere", wait, nil, timeUp)
	timeUp()
	testenv.Eventually(t, "a wait whose context ended to leave", func() bool { return ss.waits.waiting() == 0 })
}

// A page view writes the session's last use only when it is a minute old.
func TestASessionIsTouchedAtMostOnceAMinute(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := now
	store := NewMemorySessions()
	ss := newSessions(store, func() time.Time { return clock }, time.Hour, 24*time.Hour)
	s, err := ss.start(ctx, "u-1", "token")
	if err != nil {
		t.Fatal(err)
	}
	seen := func() time.Time {
		stored, _, _ := store.Load(ctx, s.id)
		return stored.Seen
	}
	clock = clock.Add(59 * time.Second)
	if _, ok, err := ss.get(ctx, s.id); !ok || err != nil {
		t.Fatalf("the session was refused: %v", err)
	}
	if !seen().Equal(now) {
		t.Fatalf("a view 59 s after the login wrote the last use: %v", seen())
	}
	clock = clock.Add(time.Second)
	if _, ok, err := ss.get(ctx, s.id); !ok || err != nil {
		t.Fatalf("the session was refused: %v", err)
	}
	if !seen().Equal(clock) {
		t.Fatalf("a view a minute after the login left the last use at %v, want %v", seen(), clock)
	}
}
