package testenv

import (
	"testing"
	"time"
)

// DefaultWait bounds Eventually. It is long, because a loaded machine can
// be slow, and it is only ever reached by a test that fails.
const DefaultWait = 30 * time.Second

// Eventually checks ok every 10 ms until it holds, failing the test with
// what it waited for after DefaultWait. It waits for something to happen;
// to show that something did not, wait for a later event that proves it.
func Eventually(t testing.TB, what string, ok func() bool) {
	t.Helper()
	EventuallyWithin(t, DefaultWait, what, ok)
}

// EventuallyWithin is Eventually with its own bound.
func EventuallyWithin(t testing.TB, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
