package dispatch

import (
	"bytes"
	"testing"

	"github.com/google/uuid"
)

// A derived id is stable, differs by purpose and number, and keeps its
// trigger's first bytes, so that a request's events, derived one from
// another, sit together in the log's index of ids.
func TestDerivedIDsAreStableAndKeepTheirTriggersPrefix(t *testing.T) {
	t.Parallel()
	root := uuid.NewSHA1(uuid.NameSpaceURL, []byte("request-1"))
	decision := DerivedID(root, "decision", 0)
	if again := DerivedID(root, "decision", 0); again != decision {
		t.Fatalf("derived twice: %s, then %s", decision, again)
	}
	seen := map[uuid.UUID]string{}
	for _, c := range []struct {
		trigger uuid.UUID
		purpose string
		n       int
	}{
		{root, "decision", 0}, {root, "decision", 1}, {root, "reply", 0}, {root, "received", 0},
		{decision, "builtin", 0}, {decision, "builtin", 1}, {DerivedID(decision, "builtin", 1), "decision", 0},
	} {
		id := DerivedID(c.trigger, c.purpose, c.n)
		name := c.purpose + "/" + string(rune('0'+c.n)) + " of " + c.trigger.String()
		if other, taken := seen[id]; taken {
			t.Fatalf("%s and %s derive the same id %s", name, other, id)
		}
		seen[id] = name
		if !bytes.Equal(id[:derivedPrefixBytes], root[:derivedPrefixBytes]) {
			t.Errorf("%s = %s does not start as the request's first id %s", name, id, root)
		}
		if id.Version() != 5 || id.Variant() != uuid.RFC4122 {
			t.Errorf("%s = %s is version %d, variant %s; want a version-5 RFC 4122 UUID", name, id, id.Version(), id.Variant())
		}
	}
	// Two requests' ids keep their own prefixes.
	other := DerivedID(uuid.NewSHA1(uuid.NameSpaceURL, []byte("request-2")), "decision", 0)
	if bytes.Equal(other[:derivedPrefixBytes], decision[:derivedPrefixBytes]) {
		t.Fatalf("two requests' decisions share a prefix: %s and %s", other, decision)
	}
}
