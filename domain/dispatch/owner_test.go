package dispatch

import (
	"testing"

	"github.com/logbookhq/logbook/domain"
)

func TestARequestIsOwnedByTheUserItsSenderIsIdentifiedAs(t *testing.T) {
	t.Parallel()
	fromSlack := RequestReceived{Adapter: "slack", MessageID: "C1:1", Room: "C1", ChatUser: "U1", Text: "echo hi"}
	fromAPI := RequestReceived{Adapter: "api", MessageID: "m1", Room: "api", ChatUser: "bob", Text: "echo hi", Sender: "admin"}
	for _, c := range []struct {
		name   string
		events []domain.Payload
		want   string
	}{
		{"nothing received is no one's", nil, ""},
		{"a chat sender not identified yet is no one's yet", []domain.Payload{fromSlack}, ""},
		{"a chat sender identified is theirs", []domain.Payload{fromSlack, IdentityResolved{User: "u-alice", Username: "alice"}}, "alice"},
		{"an unknown chat sender is no one's", []domain.Payload{fromSlack, IdentityUnknown{Adapter: "slack", ChatUser: "U1"}}, ""},
		{"an authenticated sender's is the user it carries before it is identified", []domain.Payload{fromAPI}, "bob"},
		{"an authenticated sender's is the user identified", []domain.Payload{fromAPI, IdentityResolved{User: "u-bob", Username: "bob"}}, "bob"},
		{"an authenticated sender no longer known is no one's", []domain.Payload{fromAPI, IdentityUnknown{Adapter: "api", ChatUser: "bob"}}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r Request
			for _, e := range c.events {
				r = Evolve(r, e)
			}
			if got := r.Owner(); got != c.want {
				t.Fatalf("Owner() = %q, want %q", got, c.want)
			}
		})
	}
}
