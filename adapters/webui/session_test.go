package webui

import (
	"fmt"
	"testing"
	"time"
)

// The console's waits for replies end with the session's interest in
// them: a command that leaves the scrollback, a reply taken, a session
// that ends, expires or is evicted.
func TestASessionEndsTheWaitsForRepliesItNoLongerNeeds(t *testing.T) {
	t.Parallel()
	clock := now
	ss := newSessions(func() time.Time { return clock }, time.Hour, 24*time.Hour)
	stopped := map[string]bool{}
	remember := func(s *session, id string) {
		s.remember(consoleEntry{RequestID: id}, pendingReply{stop: func() { stopped[id] = true }})
	}

	s := ss.start("token")
	for i := range maxScrollback + 2 {
		remember(s, fmt.Sprintf("r%d", i))
	}
	if !stopped["r0"] || !stopped["r1"] || stopped["r2"] {
		t.Fatalf("after %d commands the waits stopped are %v; want the two that left the scrollback", maxScrollback+2, stopped)
	}
	s.forgetReply("r2")
	if !stopped["r2"] {
		t.Fatal("a reply taken did not stop its wait")
	}
	ss.end(s.id)
	if !stopped[fmt.Sprintf("r%d", maxScrollback+1)] {
		t.Fatal("logging out did not stop the session's waits")
	}

	expiring := ss.start("token")
	remember(expiring, "late")
	clock = clock.Add(2 * time.Hour)
	if _, ok := ss.get(expiring.id); ok || !stopped["late"] {
		t.Fatalf("an idle session expired: %v, its wait stopped: %v", !ok, stopped["late"])
	}
}
