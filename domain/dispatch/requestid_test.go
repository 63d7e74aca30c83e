package dispatch

import (
	"strings"
	"testing"
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
