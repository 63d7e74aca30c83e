package dispatcher_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/internal/samplebundle"
	"github.com/logbookhq/logbook/internal/testenv"
)

// quietCommits waits for the store's commit count to stop moving (for
// 100 ms) and returns it.
func quietCommits(t *testing.T, h *harness) int64 {
	t.Helper()
	total := func() int64 { s := h.store.Stats(); return s.Optimistic + s.Locked }
	last := total()
	for stable := 0; stable < 10; {
		time.Sleep(10 * time.Millisecond)
		if now := total(); now == last {
			stable++
		} else {
			stable, last = 0, now
		}
	}
	return last
}

func (c *capture) published() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.topics...)
}

// A request received while the dispatcher follows the log is decided as it
// is recorded: its RequestReceived and its decision are one commit, and
// its run is published when Receive returns.
func TestARequestReachesItsRunInOneCommit(t *testing.T) {
	h := startAdmin(t)
	if _, err := dispatcher.InstallBundle(context.Background(), h.store, samplebundle.Config, "test"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the sample bundle", func() bool { return h.facts.BundleInstalled("toolbox") })
	before := quietCommits(t, h)
	published := len(h.bus.published())
	id, err := h.d.Receive(context.Background(), dispatch.RequestReceived{Adapter: "api", MessageID: "one-commit", Room: "api", ChatUser: "admin", Text: "toolbox:echo hi", Sender: "admin"}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	s := h.store.Stats()
	if commits := s.Optimistic + s.Locked - before; commits != 1 {
		t.Fatalf("Receive took %d commits, want 1", commits)
	}
	if got := h.bus.published(); len(got) != published+1 || got[len(got)-1] != "run.requested" {
		t.Fatalf("published %v, want the run request when Receive returned", got)
	}
	if types := strings.Join(eventTypes(t, h, dispatch.Stream(id)), " "); types != "RequestReceived IdentityResolved PipelineParsed PermissionChecked StageStarted" {
		t.Fatalf("request stream = %s", types)
	}
	// The same message again is recorded once.
	if again, err := h.d.Receive(context.Background(), dispatch.RequestReceived{Adapter: "api", MessageID: "one-commit", Room: "api", ChatUser: "admin", Text: "toolbox:echo hi", Sender: "admin"}, "admin"); err != nil || again != id {
		t.Fatalf("redelivery = %s, %v", again, err)
	}
	if types := eventTypes(t, h, dispatch.Stream(id)); len(types) != 5 {
		t.Fatalf("the redelivery added events: %v", types)
	}
}

// A change appended by someone else just before a request is in force for
// it: the dispatcher folds the whole log before deciding as it receives.
func TestARequestDecidedAsItArrivesSeesEverythingRecordedBeforeIt(t *testing.T) {
	h := startAdmin(t)
	userID := uuid.NewString()
	created := domain.MustEncode(access.UserCreated{User: userID, Username: "zed"}, domain.Metadata{Actor: "test"})
	if _, err := h.store.Append(context.Background(), access.UserStream(userID), eventstore.NoStream, created); err != nil {
		t.Fatal(err)
	}
	reply := h.say(t, "right-after", "zed", "whoami")
	if reply.Failed || !strings.Contains(reply.Text, "You are zed.") {
		t.Fatalf("reply = %+v, want zed known", reply)
	}
}

// A message redelivered after its request ended and was forgotten is not
// recorded again, and Receive does not fail.
func TestARedeliveryAfterTheReplyIsANoOp(t *testing.T) {
	h := startAdmin(t)
	first := h.say(t, "again", "admin", "echo once")
	if strings.TrimSpace(first.Text) != "once" {
		t.Fatalf("reply = %+v", first)
	}
	id := apiRequestID("admin", "again")
	testenv.Eventually(t, "the reply to be recorded", func() bool {
		types := eventTypes(t, h, dispatch.Stream(id))
		return len(types) > 0 && types[len(types)-1] == "ReplyPosted"
	})
	n := len(eventTypes(t, h, dispatch.Stream(id)))
	quietCommits(t, h)
	if _, err := h.d.Receive(context.Background(), dispatch.RequestReceived{Adapter: "api", MessageID: "again", Room: "api", ChatUser: "admin", Text: "echo once", Sender: "admin"}, "admin"); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if got := len(eventTypes(t, h, dispatch.Stream(id))); got != n {
		t.Fatalf("the redelivery changed the request stream from %d to %d events", n, got)
	}
}

// A slow builtin runs off the decide loop: while it runs, another request
// is decided as it arrives and answered, and the slow one is answered once
// it ends.
func TestASlowBuiltinHoldsUpNoOtherRequest(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{}, 1)
	block, err := dispatch.NewBuiltin("block", "Waits for the test.", "block", []string{"allow"}, func(c dispatch.BuiltinCall) (run.Result, error) {
		started <- struct{}{}
		select {
		case <-release:
		case <-c.Ctx.Done():
		}
		return run.Result{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := startOn(t, filepath.Join(t.TempDir(), "logbook.db"), nil, block)
	defer close(release) // a failure must not leave the builtin blocked
	if _, err := dispatcher.Bootstrap(context.Background(), h.store); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the admin to be known", func() bool { _, ok := h.facts.UserByUsername("admin"); return ok })

	blocked := h.d.WaitForReply(t.Context(), apiRequestID("admin", "busy-1"))
	if _, err := h.d.Receive(context.Background(), dispatch.RequestReceived{Adapter: "api", MessageID: "busy-1", Room: "api", ChatUser: "admin", Text: "block", Sender: "admin"}, "admin"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the builtin did not start")
	}
	later := h.d.WaitForReply(t.Context(), apiRequestID("admin", "busy-2"))
	if _, err := h.d.Receive(context.Background(), dispatch.RequestReceived{Adapter: "api", MessageID: "busy-2", Room: "api", ChatUser: "admin", Text: "echo later", Sender: "admin"}, "admin"); err != nil {
		t.Fatal(err)
	}
	select {
	case reply := <-later:
		if reply.Text != "later" {
			t.Fatalf("reply = %+v", reply)
		}
	case <-blocked:
		t.Fatal("the slow builtin was answered before it ended")
	case <-time.After(10 * time.Second):
		t.Fatal("a request waited for a slow builtin")
	}
	release <- struct{}{}
	select {
	case <-blocked:
	case <-time.After(10 * time.Second):
		t.Fatal("no reply once the slow builtin ended")
	}
}

// feedGate holds the dispatcher's feed (its reads of a page of 500) while
// held, and lets the inline catch-up's read (1,001 events) through.
type feedGate struct {
	eventstore.Store
	held    atomic.Bool
	release chan struct{}
}

func (g *feedGate) ReadAll(ctx context.Context, from int64, limit int) ([]domain.RecordedEvent, error) {
	if limit == 500 && g.held.Load() {
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Store.ReadAll(ctx, from, limit)
}

// A request that arrives while the loop is more than 1,000 events behind
// the log is recorded alone, at once, and decided when the feed brings it.
func TestARequestArrivingFarBehindTheLogIsRecordedAloneAndDecidedInItsTurn(t *testing.T) {
	// Given a dispatcher whose feed is held, and 1,200 events appended
	// behind its back
	gate := &feedGate{release: make(chan struct{})}
	h := startWrapped(t, filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{}, func(s eventstore.Store) eventstore.Store {
		gate.Store = s
		return gate
	})
	defer h.stop()
	token, err := dispatcher.Bootstrap(context.Background(), h.store)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the admin to be known", func() bool { _, ok := h.facts.UserForToken(token); return ok })
	if got := strings.TrimSpace(h.say(t, "warm-up", "admin", "echo ready").Text); got != "ready" {
		t.Fatalf("reply = %q", got)
	}
	gate.held.Store(true)
	for i := range 1200 {
		user := uuid.NewString()
		e := domain.MustEncode(access.UserCreated{User: user, Username: fmt.Sprintf("u%d", i)}, domain.Metadata{Actor: "test"})
		if _, err := h.store.Append(context.Background(), access.UserStream(user), eventstore.NoStream, e); err != nil {
			t.Fatal(err)
		}
	}

	// When a request arrives
	id := apiRequestID("admin", "far-behind")
	wait := h.d.WaitForReply(t.Context(), id)
	if _, err := h.d.Receive(context.Background(), dispatch.RequestReceived{Adapter: "api", MessageID: "far-behind", Room: "api", ChatUser: "admin", Text: "echo in its turn", Sender: "admin"}, "admin"); err != nil {
		t.Fatal(err)
	}

	// Then it is recorded alone: nothing is decided yet
	if types := eventTypes(t, h, dispatch.Stream(id)); strings.Join(types, " ") != "RequestReceived" {
		t.Fatalf("request stream while the feed is held = %v, want RequestReceived alone", types)
	}
	// And once the feed goes on, it is decided and answered
	gate.held.Store(false)
	close(gate.release)
	select {
	case reply := <-wait:
		if strings.TrimSpace(reply.Text) != "in its turn" {
			t.Fatalf("reply = %q", reply.Text)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reply once the feed went on")
	}
}
