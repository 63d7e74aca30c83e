package storetest

import (
	"context"
	"regexp"
	"testing"
)

// Identified is the capability of stores whose database carries an
// identity of its own (the SQL stores); the suite checks it only where a
// store has it.
type Identified interface {
	Identity(ctx context.Context) (string, error)
}

// identityPattern is what fits in a Docker label and a container name.
var identityPattern = regexp.MustCompile(`^[0-9a-f]{16,64}$`)

func testIdentity(t *testing.T, h Harness) {
	s := h.New(t)
	if _, ok := s.(Identified); !ok {
		t.Skip("the store has no identity")
	}
	identity := func(s any) string {
		t.Helper()
		id, err := s.(Identified).Identity(ctxFor(t))
		if err != nil {
			t.Fatal(err)
		}
		if !identityPattern.MatchString(id) {
			t.Fatalf("identity %q is not 16 to 64 lowercase hex digits", id)
		}
		return id
	}
	first := identity(s)
	// Reopened, as the next start of the server would.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if again := identity(h.Another(t, s)); again != first {
		t.Fatalf("the database's identity changed from %s to %s when it was opened again", first, again)
	}
	if other := identity(h.New(t)); other == first {
		t.Fatalf("two databases have the same identity %s", first)
	}
}
