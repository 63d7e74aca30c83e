package dispatcher_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/dispatcher/admin"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/internal/testenv"
)

// startRegistering runs a dispatcher with self-registration into group (and
// the administration builtins), answering slack and api requests.
func startRegistering(t *testing.T, group string) *harness {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	adminBuiltins, err := admin.Builtins(admin.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	facts := dispatcher.NewFacts(dispatch.DefaultBuiltins().With(adminBuiltins...), dispatch.Settings{SelfRegister: true, SelfRegisterGroup: group}, nil)
	d, err := dispatcher.New(dispatcher.Config{
		Store: store, Publisher: withBuiltins(t, store, facts, &capture{}), Facts: facts,
		Checkpoints: dispatcher.SQLCheckpoints{DB: store.WriteDB(), Rebind: sqlstore.RebindQuestion},
		Posters:     map[string]dispatcher.ReplyPoster{"api": dispatcher.Posted{}, "slack": dispatcher.Posted{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	h := &harness{store: store, d: d, facts: facts}
	h.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		store.Close()
	}
	t.Cleanup(h.stop)
	if _, err := dispatcher.Bootstrap(context.Background(), store); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the admin to be known", func() bool { _, ok := facts.UserByUsername("admin"); return ok })
	return h
}

// fromSlack sends text as a slack handle and returns the reply and the
// request id.
func (h *harness) fromSlack(t *testing.T, messageID, handle, text string) (dispatch.Reply, string) {
	t.Helper()
	id := dispatch.RequestID("slack", messageID)
	wait := h.d.WaitForReply(t.Context(), id)
	if _, err := h.d.Receive(context.Background(), dispatch.RequestReceived{Adapter: "slack", MessageID: messageID, Room: "general", ChatUser: handle, Text: text}, "slack"); err != nil {
		t.Fatal(err)
	}
	select {
	case reply := <-wait:
		return reply, id
	case <-time.After(10 * time.Second):
		t.Fatalf("no reply to %q within 10s", text)
		return dispatch.Reply{}, ""
	}
}

func TestAnUnknownChatUserRegistersAndGoesOnAsTheNewUser(t *testing.T) {
	h := startRegistering(t, "newcomers")
	h.must(t, "admin", "group create newcomers")

	reply, requestID := h.fromSlack(t, "s-1", "U77", "whoami")
	if reply.Failed || !strings.Contains(reply.Text, "Welcome: I registered you as Logbook user u77, linked to your slack handle U77, in group newcomers.") ||
		!strings.Contains(reply.Text, "You are u77.") || !strings.Contains(reply.Text, "Groups: newcomers") {
		t.Fatalf("reply = %+v", reply)
	}

	// Recorded as events, with the dispatcher as the actor and the request
	// as the cause.
	received, err := h.store.ReadStream(context.Background(), dispatch.Stream(requestID), 0, 1)
	if err != nil || len(received) != 1 {
		t.Fatalf("request stream: %v", err)
	}
	userID := dispatch.SelfRegisteredUserID(requestID)
	userEvents, err := h.store.ReadStream(context.Background(), access.UserStream(userID), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(userEvents) != 2 || userEvents[0].Type != "UserCreated" || userEvents[1].Type != "ChatHandleLinked" {
		t.Fatalf("user stream has %d events", len(userEvents))
	}
	for _, e := range userEvents {
		var md domain.Metadata
		if err := json.Unmarshal(e.RawMetadata, &md); err != nil {
			t.Fatal(err)
		}
		if md.Actor != "dispatcher" || md.CausationID != received[0].ID.String() || md.CorrelationID != requestID {
			t.Fatalf("%s metadata %+v, want actor dispatcher caused by %s", e.Type, md, received[0].ID)
		}
	}
	if types := eventTypes(t, h, "group-newcomers"); strings.Join(types, " ") != "GroupCreated MemberAdded" {
		t.Fatalf("group-newcomers = %v", types)
	}
	if types := eventTypes(t, h, dispatch.Stream(requestID)); types[1] != "UserRegistered" || types[2] != "IdentityResolved" {
		t.Fatalf("request stream = %v", types)
	}

	// The next request resolves to the user; nobody is registered twice.
	again, _ := h.fromSlack(t, "s-2", "U77", "echo hi")
	if again.Failed || strings.TrimSpace(again.Text) != "hi" {
		t.Fatalf("second reply = %+v", again)
	}
	// Deny-by-default: the new user may not administer anything.
	denied, _ := h.fromSlack(t, "s-3", "U77", "user list")
	if !denied.Failed || !strings.Contains(denied.Text, "logbook:manage_users") {
		t.Fatalf("an administration command by a new user = %+v", denied)
	}
	if text := h.must(t, "admin", "user list"); strings.Count(text, "u77") != 1 || !strings.Contains(text, "slack: U77") {
		t.Fatalf("user list = %q", text)
	}
	report, err := eventstore.Verify(context.Background(), h.store, nil)
	if err != nil || !report.OK {
		t.Fatalf("verify = %+v, %v", report, err)
	}
}

// Two requests from one unknown handle, both recorded before either is
// decided (as when the loop was busy): one user is registered, and both
// requests run as that user.
func TestTwoRequestsFromOneUnknownHandleRegisterOneUser(t *testing.T) {
	h := startRegistering(t, "")
	var parts []eventstore.StreamAppend
	var ids []string
	for _, messageID := range []string{"twin-1", "twin-2"} {
		id := dispatch.RequestID("slack", messageID)
		ids = append(ids, id)
		e := domain.MustEncode(dispatch.RequestReceived{Adapter: "slack", MessageID: messageID, Room: "general", ChatUser: "U88", Text: "whoami"}, domain.Metadata{CorrelationID: id, Actor: "slack"})
		parts = append(parts, eventstore.StreamAppend{Stream: dispatch.Stream(id), Expected: eventstore.NoStream, Events: []domain.NewEvent{e}})
	}
	waits := []<-chan dispatch.Reply{h.d.WaitForReply(t.Context(), ids[0]), h.d.WaitForReply(t.Context(), ids[1])}
	if _, err := h.store.AppendMulti(context.Background(), parts...); err != nil {
		t.Fatal(err)
	}
	for i, wait := range waits {
		select {
		case reply := <-wait:
			if reply.Failed || !strings.Contains(reply.Text, "You are u88.") {
				t.Fatalf("reply %d = %+v", i+1, reply)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no reply to request %d", i+1)
		}
	}
	registered := 0
	for _, id := range ids {
		for _, typ := range eventTypes(t, h, dispatch.Stream(id)) {
			if typ == "UserRegistered" {
				registered++
			}
		}
	}
	if registered != 1 {
		t.Fatalf("%d registrations for one handle, want 1", registered)
	}
	if text := h.must(t, "admin", "user list"); strings.Count(text, "u88") != 1 {
		t.Fatalf("user list = %q, want u88 once", text)
	}
}
