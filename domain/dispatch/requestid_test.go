package dispatch

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// Stored logs name their request streams by these ids: they never change.
func TestARequestWithoutASenderKeepsTheIdItWasStoredUnder(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   RequestReceived
		want string
	}{
		{RequestReceived{Adapter: "api", MessageID: "ci-build-7", ChatUser: "bob"}, "2d998e8d-92dd-5a53-98b3-d2e8a71e88bd"},
		{RequestReceived{Adapter: "slack", MessageID: "C1:1700000000.000100", ChatUser: "U1"}, "d6a05f24-b601-5514-9f2a-603cb8ff30ea"},
		{RequestReceived{Adapter: "api", MessageID: "ci-build-7", ChatUser: "bob", Sender: "bob"}, "8a4f266d-42cf-5381-8a76-d63d38708276"},
	} {
		if got := c.in.ID(); got != c.want {
			t.Errorf("%+v has id %s, want %s", c.in, got, c.want)
		}
		if got := Evolve(Request{}, c.in).ID(); got != c.want {
			t.Errorf("%+v folds to id %s, want %s", c.in, got, c.want)
		}
	}
}

func TestOneMessageIdNamesADifferentRequestForEachSender(t *testing.T) {
	t.Parallel()
	admin := RequestReceived{Adapter: "api", MessageID: "M", ChatUser: "admin", Sender: "admin"}
	bob := RequestReceived{Adapter: "api", MessageID: "M", ChatUser: "bob", Sender: "bob"}
	old := RequestReceived{Adapter: "api", MessageID: "M", ChatUser: "admin"}
	web := RequestReceived{Adapter: "web", MessageID: "M", ChatUser: "admin", Sender: "admin"}
	ids := map[string]string{}
	for name, in := range map[string]RequestReceived{"admin's": admin, "bob's": bob, "one stored before senders": old, "the admin's from the web": web} {
		if other, taken := ids[in.ID()]; taken {
			t.Errorf("%s and %s share the id %s", name, other, in.ID())
		}
		ids[in.ID()] = name
	}
	// A sender's name cannot shift into the message id and collide.
	if (RequestReceived{Adapter: "api", MessageID: "b\x00M", Sender: "a"}).ID() == (RequestReceived{Adapter: "api", MessageID: "M", Sender: "a\x00b"}).ID() {
		t.Error("the sender and the message id run together")
	}
}

func TestARedeliveryIsTheSameSenderAndAReusedIdIsNot(t *testing.T) {
	t.Parallel()
	first := RequestReceived{Adapter: "slack", MessageID: "C1:1", Room: "C1", ChatUser: "U1", Text: "echo hi"}
	again := first
	again.Text = "echo hi (edited)"
	if !first.SameSender(again) {
		t.Error("a redelivery of one message is not the same sender")
	}
	other := first
	other.ChatUser = "U2"
	if first.SameSender(other) {
		t.Error("another handle under the same message id is the same sender")
	}
	asBob := RequestReceived{Adapter: "api", MessageID: "M", ChatUser: "bob", Sender: "admin"}
	asCarol := asBob
	asCarol.ChatUser = "carol"
	if asBob.SameSender(asCarol) {
		t.Error("one message id sent as bob, then as carol, is the same sender")
	}
	err := MessageIDTaken("slack", "C1:1")
	if KindOf(err) != KindMessageIDTaken || !strings.Contains(err.Error(), "another sender") {
		t.Errorf("MessageIDTaken = %v (%v)", err, KindOf(err))
	}
}

// v7At is a UUIDv7 of the millisecond ms, with tail for its random bits.
func v7At(ms uint64, tail byte) uuid.UUID {
	var id uuid.UUID
	for i := range 6 {
		id[i] = byte(ms >> (8 * (5 - i)))
	}
	id[6], id[8] = 0x70, 0x80
	for i := 9; i < 16; i++ {
		id[i] = tail
	}
	return id
}

// Given requests whose message ids Logbook made (WithFreshMessageID), when
// their ids are derived, then each keeps its message id's time, so they
// sort in the order the messages were made whatever their hash, stays a
// version-5 UUID, and is the same for the same message; and a request
// without TimedID, or whose message id is not a UUIDv7, derives as before.
func TestATimedRequestIDKeepsItsMessagesTimeAndSortsByIt(t *testing.T) {
	t.Parallel()
	var ids []string
	for i, ms := range []uint64{1_765_000_000_000, 1_765_000_000_001, 1_765_000_000_002, 1_765_000_060_000} {
		message := v7At(ms, byte(200-i*50)) // hashes in no particular order
		in := RequestReceived{Adapter: "api", MessageID: message.String(), ChatUser: "bob", Sender: "bob", TimedID: true}
		id := uuid.MustParse(in.ID())
		if !bytes.Equal(id[:derivedPrefixBytes], message[:derivedPrefixBytes]) {
			t.Errorf("request id %s does not keep the time of its message id %s", id, message)
		}
		if id.Version() != 5 || id.Variant() != uuid.RFC4122 {
			t.Errorf("request id %s is version %d, variant %s; want a version-5 RFC 4122 UUID", id, id.Version(), id.Variant())
		}
		if again := in.ID(); again != id.String() {
			t.Errorf("one message derived %s, then %s", id, again)
		}
		untimed := in
		untimed.TimedID = false
		if untimed.ID() == id.String() || untimed.ID()[:8] == id.String()[:8] {
			t.Errorf("without TimedID the id %s still keeps the time (%s)", untimed.ID(), id)
		}
		ids = append(ids, id.String())
	}
	if !slices.IsSorted(ids) {
		t.Errorf("request ids of messages made in order do not sort in it: %v", ids)
	}
	for _, in := range []RequestReceived{
		{Adapter: "api", MessageID: "ci-build-7", ChatUser: "bob", Sender: "bob", TimedID: true},
		{Adapter: "api", MessageID: uuid.NewSHA1(uuid.NameSpaceURL, []byte("v5")).String(), ChatUser: "bob", Sender: "bob", TimedID: true},
	} {
		untimed := in
		untimed.TimedID = false
		if in.ID() != untimed.ID() {
			t.Errorf("message id %q is no UUIDv7, yet TimedID changed its request id", in.MessageID)
		}
	}
	fresh := RequestReceived{Adapter: "web", ChatUser: "bob", Sender: "bob"}.WithFreshMessageID()
	if m, err := uuid.Parse(fresh.MessageID); err != nil || m.Version() != 7 || !fresh.TimedID {
		t.Errorf("a fresh message id is %q (timed %v), want a UUIDv7 with TimedID", fresh.MessageID, fresh.TimedID)
	}
}

// The ids of the events a dispatcher makes for a request by itself derive
// from a seed that keeps the request id's first bytes, and differs for
// each request.
func TestARequestSeedKeepsItsRequestIDsPrefix(t *testing.T) {
	t.Parallel()
	a := RequestReceived{Adapter: "api", MessageID: v7At(1_765_000_000_000, 1).String(), Sender: "bob", TimedID: true}.ID()
	b := RequestReceived{Adapter: "api", MessageID: v7At(1_765_000_000_000, 2).String(), Sender: "bob", TimedID: true}.ID()
	seedA, seedB := RequestSeed(a), RequestSeed(b)
	if seedA == seedB {
		t.Fatalf("two requests share the seed %s", seedA)
	}
	if seedA.String()[:13] != a[:13] {
		t.Errorf("seed %s does not start as its request id %s", seedA, a)
	}
	if RequestSeed(a) != seedA {
		t.Error("a request's seed changed")
	}
	if got, want := RequestSeed("not-a-uuid"), uuid.NewSHA1(uuid.NameSpaceURL, []byte("not-a-uuid")); got != want {
		t.Errorf("the seed of an id that is no UUID is %s, want the plain hash %s", got, want)
	}
}
