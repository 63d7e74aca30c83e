package dispatcher_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/internal/testenv"
)

// A chat provider's message id is its own, but a message from another
// handle under the id of a recorded request is not that request again: it
// is refused, on every path Receive takes, and the request is untouched.
func TestAMessageUnderAnotherSendersRequestIdIsRefused(t *testing.T) {
	first := dispatch.RequestReceived{Adapter: "slack", MessageID: "C1:1700000000.1", Room: "C1", ChatUser: "U1", Text: "echo hi"}
	impostor := first
	impostor.ChatUser, impostor.Text = "U2", "echo mine"

	check := func(t *testing.T, d *dispatcher.Dispatcher, h *harness, when string) {
		t.Helper()
		before := eventTypes(t, h, dispatch.Stream(first.ID()))
		if _, err := d.Receive(context.Background(), impostor, "slack"); dispatch.KindOf(err) != dispatch.KindMessageIDTaken {
			t.Fatalf("%s, another handle's message under its id: %v, want a KindMessageIDTaken error", when, err)
		}
		if id, err := d.Receive(context.Background(), first, "slack"); err != nil || id != first.ID() {
			t.Fatalf("%s, a redelivery: %s, %v; want the request's id and no error", when, id, err)
		}
		if after := eventTypes(t, h, dispatch.Stream(first.ID())); len(after) < len(before) || after[0] != "RequestReceived" {
			t.Fatalf("%s, the request stream went from %v to %v", when, before, after)
		}
		events, err := h.store.ReadStream(context.Background(), dispatch.Stream(first.ID()), 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.Type == "RequestReceived" && e.Version > 0 {
				t.Fatalf("%s, a second RequestReceived was recorded", when)
			}
		}
	}

	t.Run("while the dispatcher decides as messages arrive", func(t *testing.T) {
		h := startAdmin(t)
		if _, err := h.d.Receive(context.Background(), first, "slack"); err != nil {
			t.Fatal(err)
		}
		check(t, h.d, h, "while the request is open")
		testenv.Eventually(t, "the reply to be recorded", func() bool {
			types := eventTypes(t, h, dispatch.Stream(first.ID()))
			return types[len(types)-1] == "ReplyPosted"
		})
		check(t, h.d, h, "once it is answered")
	})

	t.Run("before the dispatcher follows the log", func(t *testing.T) {
		store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		// A dispatcher that is not running records each message alone.
		idle, err := dispatcher.New(dispatcher.Config{
			Store: store, Publisher: &capture{}, Facts: dispatcher.NewFacts(dispatch.DefaultBuiltins(), dispatch.Settings{}, nil),
			Checkpoints: dispatcher.SQLCheckpoints{DB: store.WriteDB(), Rebind: sqlstore.RebindQuestion},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := idle.Receive(context.Background(), first, "slack"); err != nil {
			t.Fatal(err)
		}
		check(t, idle, &harness{store: store}, "recorded alone")
	})
}
