package dispatcher_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/internal/testenv"
)

// gatedStore holds every AppendMulti while its gate is shut, counts the
// requests each one records, and fails the first one recording more than
// one request when failBatch is set.
type gatedStore struct {
	eventstore.Store
	mu        sync.Mutex
	gate      chan struct{} // nil: open
	arrived   int           // the AppendMulti calls that reached it
	perAppend []int         // the RequestReceived each AppendMulti let through held
	failBatch bool
}

func (s *gatedStore) shut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
}

func (s *gatedStore) open() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

var errBatchRefused = errors.New("the store refused this batch")

// eventsOfType counts the events of type typ an append holds.
func eventsOfType(parts []eventstore.StreamAppend, typ string) int {
	n := 0
	for _, p := range parts {
		for _, e := range p.Events {
			if e.Type == typ {
				n++
			}
		}
	}
	return n
}

func (s *gatedStore) AppendMulti(ctx context.Context, parts ...eventstore.StreamAppend) ([]eventstore.AppendResult, error) {
	received := eventsOfType(parts, "RequestReceived")
	s.mu.Lock()
	s.arrived++
	gate := s.gate
	fail := s.failBatch && received > 1
	if fail {
		s.failBatch = false
	}
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	s.perAppend = append(s.perAppend, received)
	s.mu.Unlock()
	if fail {
		return nil, errBatchRefused
	}
	return s.Store.AppendMulti(ctx, parts...)
}

func (s *gatedStore) arrivedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.arrived
}

func (s *gatedStore) appends() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.perAppend...)
}

// sayAll sends each text as its own api request at once and returns the
// replies, by message id.
func (h *harness) sayAll(t *testing.T, user string, texts map[string]string) map[string]dispatch.Reply {
	t.Helper()
	var mu sync.Mutex
	replies := map[string]dispatch.Reply{}
	errs := make(chan error, len(texts))
	var wg sync.WaitGroup
	for messageID, text := range texts {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			wait := h.d.WaitForReply(ctx, apiRequestID(user, messageID))
			if _, err := h.d.Receive(ctx, dispatch.RequestReceived{Adapter: "api", MessageID: messageID, Room: "api", ChatUser: user, Text: text, Sender: user}, user); err != nil {
				errs <- fmt.Errorf("%s: %w", messageID, err)
				return
			}
			select {
			case reply := <-wait:
				mu.Lock()
				replies[messageID] = reply
				mu.Unlock()
			case <-ctx.Done():
				errs <- fmt.Errorf("no reply to %s (%q) within 20s", messageID, text)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return replies
}

func startGated(t *testing.T) (*harness, *gatedStore, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "logbook.db")
	var gated *gatedStore
	h := startWithBuiltins(t, path, sqlstore.Config{}, func(s eventstore.Store) eventstore.Store {
		gated = &gatedStore{Store: s}
		return gated
	}, dispatch.DefaultBuiltins())
	token, err := dispatcher.Bootstrap(context.Background(), h.store)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the admin to be known", func() bool { _, ok := h.facts.UserForToken(token); return ok })
	return h, gated, path
}

// Requests that arrive while the dispatcher records another are decided
// together, in one append: the loop's one read and one commit per request
// had been its limit (on Postgres, about 350 requests a second).
func TestRequestsArrivingWhileOneIsRecordedAreDecidedInOneAppend(t *testing.T) {
	// Given a dispatcher recording a request, its commit held
	h, gated, path := startGated(t)
	before, _, err := h.store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	gated.shut()
	first := make(chan map[string]dispatch.Reply, 1)
	go func() { first <- h.sayAll(t, "admin", map[string]string{"held": "echo held"}) }()
	testenv.Eventually(t, "the first request's commit to be held", func() bool { return gated.arrivedCount() == 1 })

	// When five more arrive meanwhile, one of them "!!"
	texts := map[string]string{"b-1": "echo one", "b-2": "echo two", "b-3": "echo three", "b-4": "echo four", "b-5": "!!"}
	more := make(chan map[string]dispatch.Reply, 1)
	go func() { more <- h.sayAll(t, "admin", texts) }()
	testenv.Eventually(t, "five requests waiting to be decided", func() bool { return h.d.WaitingToBeDecided() == 5 })
	gated.open()

	// Then every one is answered with its own output
	replies := <-more
	if got := (<-first)["held"]; strings.TrimSpace(got.Text) != "held" {
		t.Fatalf("the first request's reply = %q", got.Text)
	}
	for id, want := range map[string]string{"b-1": "one", "b-2": "two", "b-3": "three", "b-4": "four"} {
		if got := strings.TrimSpace(replies[id].Text); got != want || replies[id].Failed {
			t.Errorf("%s answered %q (failed %v), want %q", id, got, replies[id].Failed, want)
		}
	}
	// And "!!" ran the sender's request before it, one of the others
	if got := strings.TrimSpace(replies["b-5"].Text); !strings.Contains("held one two three four", got) || got == "" {
		t.Errorf("!! answered %q, want the output of one of the sender's earlier requests", got)
	}
	// And the four went in one append, "!!" in one of its own after it
	appends := gated.appends()
	if len(appends) != 3 || appends[0] != 1 || appends[1] != 4 || appends[2] != 1 {
		t.Errorf("RequestReceived per append: %v, want [1 4 1] (the held one, the batch, then !!)", appends)
	}
	// And a dispatcher started again from before them decides nothing more
	completed := countType(t, h.store, "RequestCompleted")
	h.stop()
	rewind(t, path, before)
	again := startWithBuiltins(t, path, sqlstore.Config{}, nil, dispatch.DefaultBuiltins())
	defer again.stop()
	if reply := again.say(t, "after", "admin", "echo after"); strings.TrimSpace(reply.Text) != "after" {
		t.Fatalf("reply after the restart = %q", reply.Text)
	}
	if n := countType(t, again.store, "RequestCompleted"); n != completed+1 {
		t.Errorf("%d RequestCompleted after the restart, want %d", n, completed+1)
	}
	for _, id := range []string{"held", "b-1", "b-2", "b-3", "b-4", "b-5"} {
		events, err := again.store.ReadStream(context.Background(), dispatch.Stream(apiRequestID("admin", id)), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if n := countOf(events, "RequestReceived"); n != 1 {
			t.Errorf("%s recorded %d times", id, n)
		}
	}
}

// A batch the store refuses is not lost: each of its requests is decided
// again on its own and answered once.
func TestABatchTheStoreRefusesIsDecidedRequestByRequest(t *testing.T) {
	// Given a dispatcher recording a request, and a store that will refuse
	// the next append of several requests
	h, gated, _ := startGated(t)
	gated.mu.Lock()
	gated.failBatch = true
	gated.mu.Unlock()
	gated.shut()
	first := make(chan map[string]dispatch.Reply, 1)
	go func() { first <- h.sayAll(t, "admin", map[string]string{"held": "echo held"}) }()
	testenv.Eventually(t, "the first request's commit to be held", func() bool { return gated.arrivedCount() == 1 })

	// When three more arrive meanwhile
	more := make(chan map[string]dispatch.Reply, 1)
	go func() {
		more <- h.sayAll(t, "admin", map[string]string{"r-1": "echo one", "r-2": "echo two", "r-3": "echo three"})
	}()
	testenv.Eventually(t, "three requests waiting to be decided", func() bool { return h.d.WaitingToBeDecided() == 3 })
	gated.open()

	// Then each is answered with its own output, and recorded once
	replies := <-more
	<-first
	for id, want := range map[string]string{"r-1": "one", "r-2": "two", "r-3": "three"} {
		if got := strings.TrimSpace(replies[id].Text); got != want {
			t.Errorf("%s answered %q, want %q", id, got, want)
		}
		events, err := h.store.ReadStream(context.Background(), dispatch.Stream(apiRequestID("admin", id)), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if n := countOf(events, "RequestReceived"); n != 1 {
			t.Errorf("%s recorded %d times", id, n)
		}
	}
	// And the refused batch was followed by one append per request
	appends := gated.appends()
	if len(appends) != 5 || appends[1] != 3 || appends[2] != 1 || appends[3] != 1 || appends[4] != 1 {
		t.Errorf("RequestReceived per append: %v, want [1 3 1 1 1] (the held one, the refused batch, each alone)", appends)
	}
	h.stop()
}

func countOf(events []domain.RecordedEvent, eventType string) int {
	n := 0
	for _, e := range events {
		if e.Type == eventType {
			n++
		}
	}
	return n
}
