package dispatcher_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
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
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/internal/testenv"
)

// dyingStore stands for a process that dies before a builtin run's end is
// recorded: while dying is set, every append that would end a run fails,
// as the commit a crash interrupts writes nothing.
type dyingStore struct {
	eventstore.Store
	dying atomic.Bool
}

var errDied = errors.New("the process died before this commit")

func (s *dyingStore) AppendMulti(ctx context.Context, parts ...eventstore.StreamAppend) ([]eventstore.AppendResult, error) {
	for _, p := range parts {
		if s.dying.Load() && strings.HasPrefix(p.Stream, run.StreamPrefix) && p.Expected == eventstore.Exact(0) {
			return nil, errDied
		}
	}
	return s.Store.AppendMulti(ctx, parts...)
}

// startOn runs a dispatcher with the administration builtins (and extra)
// on the SQLite database at path, through wrap when given.
func startOn(t *testing.T, path string, wrap func(eventstore.Store) eventstore.Store, extra ...dispatch.Builtin) (*harness, eventstore.Store) {
	t.Helper()
	store, err := sqlite.Open(context.Background(), path, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var s eventstore.Store = store
	if wrap != nil {
		s = wrap(store)
	}
	adminBuiltins, err := admin.Builtins(admin.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	facts := dispatcher.NewFacts(dispatch.DefaultBuiltins().With(adminBuiltins...).With(extra...), dispatch.Settings{}, nil)
	d, err := dispatcher.New(dispatcher.Config{
		Store: s, Publisher: withBuiltins(t, s, facts, &capture{}), Facts: facts,
		Checkpoints: dispatcher.SQLCheckpoints{DB: store.WriteDB(), Rebind: sqlstore.RebindQuestion},
		Posters:     map[string]dispatcher.ReplyPoster{"api": dispatcher.Posted{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	h := &harness{store: store, d: d, facts: facts}
	stopped := false
	h.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		store.Close()
	}
	t.Cleanup(h.stop)
	return h, s
}

// userCreations counts UserCreated events for username in the whole log.
func userCreations(t *testing.T, s eventstore.Store, username string) int {
	t.Helper()
	events, err := s.ReadAll(context.Background(), 1, 100000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range events {
		if p, err := domain.Decode(e); err == nil {
			if created, ok := p.(access.UserCreated); ok && created.Username == username {
				n++
			}
		}
	}
	return n
}

// completedText waits for the request to complete and returns its reply
// text as recorded.
func completedText(t *testing.T, s eventstore.Store, requestID string) string {
	t.Helper()
	var text string
	testenv.Eventually(t, "the request to complete", func() bool {
		events, err := s.ReadStream(context.Background(), dispatch.Stream(requestID), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var req dispatch.Request
		for _, e := range events {
			p, err := domain.Decode(e)
			if err != nil {
				t.Fatal(err)
			}
			if _, posted := p.(dispatch.ReplyPosted); !posted {
				req = dispatch.Evolve(req, p) // so that the reply it calls for is pending
			}
		}
		if req.Status() != dispatch.StatusCompleted {
			return false
		}
		reply, _ := req.PendingReply()
		text = reply.Text
		return true
	})
	return text
}

// A crash after a builtin's run was requested and before its end was
// recorded: the restarted dispatcher runs it, the change lands once and
// the reply says it was made.
func TestAnAdministrationBuiltinCutShortByACrashIsRunOnRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logbook.db")
	var dying *dyingStore
	h, _ := startOn(t, path, func(s eventstore.Store) eventstore.Store { dying = &dyingStore{Store: s}; return dying })
	if _, err := dispatcher.Bootstrap(context.Background(), h.store); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the admin to be known", func() bool { _, ok := h.facts.UserByUsername("admin"); return ok })

	dying.dying.Store(true)
	id, err := h.d.Receive(context.Background(), dispatch.RequestReceived{Adapter: "api", MessageID: "crash-1", Room: "api", ChatUser: "admin", Text: "user create dave", Sender: "admin"}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	runID := dispatch.RunID(id, 0, 0)
	testenv.Eventually(t, "the builtin run to be requested", func() bool {
		events, _ := h.store.ReadStream(context.Background(), run.Stream(runID), 0, 10)
		return len(events) == 1
	})
	h.stop()
	before, err := sqlite.Open(context.Background(), path, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	n := userCreations(t, before, "dave")
	before.Close()
	if n != 0 {
		t.Fatalf("dave was created %d times before the run's end was recorded", n)
	}

	h2, s := startOn(t, path, nil)
	defer h2.stop()
	if text := completedText(t, s, id); text != "Created user dave." {
		t.Fatalf("reply after the restart = %q, want Created user dave.", text)
	}
	if n := userCreations(t, s, "dave"); n != 1 {
		t.Fatalf("dave was created %d times, want once", n)
	}
	if text := h2.must(t, "admin", "user list"); strings.Count(text, "dave") != 1 {
		t.Fatalf("user list = %q, want dave once", text)
	}
}

// Deciding again, after a restart, requests that were decided before the
// crash (the checkpoint lagged): nothing is appended twice, no conflict,
// the change is there once, and the recorded reply is unchanged.
func TestDecidingAdministrationRequestsAgainAfterACrashChangesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logbook.db")
	h, s := startOn(t, path, nil)
	if _, err := dispatcher.Bootstrap(context.Background(), h.store); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the admin to be known", func() bool { _, ok := h.facts.UserByUsername("admin"); return ok })
	before, _, err := s.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"user create erin", "group create auditors", "group add auditors erin", "role create readers", "group grant auditors readers", "user token erin"}
	for _, text := range texts {
		h.must(t, "admin", text)
	}
	testenv.Eventually(t, "the replies to be recorded", func() bool {
		last := apiRequestID("admin", lastMessageID())
		events, _ := s.ReadStream(context.Background(), dispatch.Stream(last), 0, 100)
		return len(events) > 0 && events[len(events)-1].Type == "ReplyPosted"
	})
	h.stop()
	head := countEvents(t, path)
	// The crash: the checkpoint is from before all of it.
	rewind(t, path, before)

	h2, _ := startOn(t, path, nil)
	if text := h2.must(t, "admin", "group list auditors"); text != "auditors: members erin; roles readers" {
		t.Fatalf("group list after deciding everything again = %q", text)
	}
	h2.stop()
	if grown := countEvents(t, path) - head; grown != 10 {
		t.Fatalf("the log grew by %d events after deciding again and one more request, want 10 (the new request alone)", grown)
	}
	s3, err := sqlite.Open(context.Background(), path, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if n := userCreations(t, s3, "erin"); n != 1 {
		t.Fatalf("erin was created %d times, want once", n)
	}
	report, err := eventstore.Verify(context.Background(), s3, nil)
	if err != nil || !report.OK {
		t.Fatalf("verify = %+v, %v", report, err)
	}
}

func lastMessageID() string { return fmt.Sprintf("admin-%d", messageSeq.Load()) }

func rewind(t *testing.T, path string, position int64) {
	t.Helper()
	store, err := sqlite.Open(context.Background(), path, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// Set outright: Save never moves a checkpoint back.
	if _, err := store.WriteDB().Exec("UPDATE checkpoints SET position = ? WHERE name = 'dispatcher'", position); err != nil {
		t.Fatal(err)
	}
}

// Two "user create bob" recorded together, before either is decided: the
// second builtin reads the first one's change, so bob is created once and
// the second is told the name is taken.
func TestTwoCreationsOfOneNameInFlightCreateItOnce(t *testing.T) {
	h, s := startOn(t, filepath.Join(t.TempDir(), "logbook.db"), nil)
	if _, err := dispatcher.Bootstrap(context.Background(), h.store); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the admin to be known", func() bool { _, ok := h.facts.UserByUsername("admin"); return ok })
	var parts []eventstore.StreamAppend
	var waits []<-chan dispatch.Reply
	for _, messageID := range []string{"bob-1", "bob-2"} {
		id := dispatch.RequestID("api", messageID)
		waits = append(waits, h.d.WaitForReply(t.Context(), id))
		e := domain.MustEncode(dispatch.RequestReceived{Adapter: "api", MessageID: messageID, Room: "api", ChatUser: "admin", Text: "user create bob"}, domain.Metadata{CorrelationID: id, Actor: "admin"})
		parts = append(parts, eventstore.StreamAppend{Stream: dispatch.Stream(id), Expected: eventstore.NoStream, Events: []domain.NewEvent{e}})
	}
	if _, err := s.AppendMulti(context.Background(), parts...); err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, wait := range waits {
		select {
		case reply := <-wait:
			texts = append(texts, reply.Text)
		case <-time.After(10 * time.Second):
			t.Fatal("no reply")
		}
	}
	if texts[0] != "Created user bob." || !strings.Contains(texts[1], "already taken") {
		t.Fatalf("replies = %q, want bob created, then the name taken", texts)
	}
	if n := userCreations(t, s, "bob"); n != 1 {
		t.Fatalf("bob was created %d times", n)
	}
}
