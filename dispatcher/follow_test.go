package dispatcher_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/internal/testenv"
)

// server is one of several servers' dispatchers on one database: it
// follows (Follow) or leads (Run).
type server struct {
	d           *dispatcher.Dispatcher
	facts       *dispatcher.Facts
	checkpoints *freezable
	stop        func()
}

// freezable are checkpoints whose saves can be stopped, as a server's stop
// when it dies.
type freezable struct {
	dispatcher.SQLCheckpoints
	frozen atomic.Bool
}

func (f *freezable) Save(ctx context.Context, name string, position int64) error {
	if f.frozen.Load() {
		return nil
	}
	return f.SQLCheckpoints.Save(ctx, name, position)
}

func newServer(t *testing.T, store *sqlite.Store) *server {
	t.Helper()
	return newServerOn(t, store, store)
}

// newServerOn is newServer deciding through via (a wrapper of store).
func newServerOn(t *testing.T, store *sqlite.Store, via eventstore.Store) *server {
	t.Helper()
	facts := dispatcher.NewFacts(dispatch.DefaultBuiltins(), dispatch.Settings{}, nil)
	checkpoints := &freezable{SQLCheckpoints: dispatcher.SQLCheckpoints{DB: store.WriteDB(), Rebind: sqlstore.RebindQuestion}}
	d, err := dispatcher.New(dispatcher.Config{
		Store: via, Publisher: withBuiltins(t, store, facts, &capture{}), Facts: facts,
		Checkpoints:     checkpoints,
		Posters:         map[string]dispatcher.ReplyPoster{"api": dispatcher.Posted{}},
		CheckpointEvery: 20 * time.Millisecond, FollowEvery: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &server{d: d, facts: facts, checkpoints: checkpoints, stop: func() {}}
}

// run runs part (the dispatcher's Run or Follow) until stop.
func (s *server) run(t *testing.T, part func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- part(ctx) }()
	s.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		s.stop = func() {}
	}
	t.Cleanup(func() { s.stop() })
}

// send records a request through s and returns the channel its reply
// comes on.
func (s *server) send(t *testing.T, messageID, text string) <-chan dispatch.Reply {
	t.Helper()
	in := dispatch.RequestReceived{Adapter: "api", MessageID: messageID, Room: "api", ChatUser: "admin", Text: text, Sender: "admin"}
	_, replies, err := s.d.ReceiveAndWait(context.Background(), t.Context(), in, "admin")
	if err != nil {
		t.Fatal(err)
	}
	return replies
}

// ask sends a request through s and waits for its reply's text.
func (s *server) ask(t *testing.T, messageID, text string) string {
	t.Helper()
	return awaitReply(t, s.send(t, messageID, text), text)
}

func awaitReply(t *testing.T, replies <-chan dispatch.Reply, text string) string {
	t.Helper()
	select {
	case reply := <-replies:
		return strings.TrimSpace(reply.Text)
	case <-time.After(10 * time.Second):
		t.Fatalf("no reply to %q within 10s", text)
		return ""
	}
}

func openShared(t *testing.T) *sqlite.Store {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := dispatcher.Bootstrap(context.Background(), store); err != nil {
		t.Fatal(err)
	}
	return store
}

func TestAFollowerKnowsWhatTheLeaderDecidedAndHandsOverItsReplies(t *testing.T) {
	// Given a leader and a follower on one database
	store := openShared(t)
	leader, follower := newServer(t, store), newServer(t, store)
	leader.run(t, leader.d.Run)
	follower.run(t, follower.d.Follow)

	// When a request arrives at the follower
	got := follower.ask(t, "on-the-follower", "echo hello from afar")

	// Then the leader decides it, and the follower's caller gets the reply
	if got != "hello from afar" {
		t.Fatalf("reply through the follower = %q", got)
	}
	// And the follower's facts know what the leader recorded, once the
	// leader's checkpoint has passed it
	testenv.Eventually(t, "the follower to know the admin", func() bool {
		_, ok := follower.facts.UserByUsername("admin")
		return ok
	})
	// And the follower decided nothing: the request is recorded once
	if n := countType(t, store, "RequestReceived"); n != 1 {
		t.Fatalf("RequestReceived recorded %d times, want 1", n)
	}
}

func TestAFollowerTakesOverAsARestartWouldAndRecordsNothingTwice(t *testing.T) {
	// Given a leader that answered a request, and a follower
	store := openShared(t)
	leader, follower := newServer(t, store), newServer(t, store)
	leader.run(t, leader.d.Run)
	follower.run(t, follower.d.Follow)
	leader.ask(t, "before", "echo before")
	head, _, err := store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the follower to fold up to the head", func() bool { return follower.d.Position() >= head })

	// And the leader dies with its last decision past its stored
	// checkpoint, and a request arrives while nobody leads
	leader.checkpoints.frozen.Store(true)
	leader.ask(t, "past-the-checkpoint", "echo past")
	leader.stop()
	waiting := follower.send(t, "while-nobody-leads", "echo meanwhile")

	// When the follower takes over
	follower.stop()
	follower.run(t, follower.d.Run)

	// Then the request that waited is decided and its caller answered
	if got := awaitReply(t, waiting, "echo meanwhile"); got != "meanwhile" {
		t.Fatalf("reply after the takeover = %q", got)
	}
	// And what the old leader decided is not decided again
	if got := follower.ask(t, "after", "echo after"); got != "after" {
		t.Fatalf("reply from the new leader = %q", got)
	}
	if n := countType(t, store, "RequestCompleted"); n != 4 {
		t.Fatalf("RequestCompleted recorded %d times for 4 requests", n)
	}
	if n := countType(t, store, "ReplyPosted"); n != 4 {
		t.Fatalf("ReplyPosted recorded %d times for 4 requests", n)
	}
}

// stoppingStore holds a leader's next decision until the leader stops,
// then fails it with the stop, as a decision under way when SIGTERM
// arrives does.
type stoppingStore struct {
	eventstore.Store
	hold    atomic.Bool
	holding chan struct{} // closed once a decision is held
}

func (s *stoppingStore) AppendMulti(ctx context.Context, parts ...eventstore.StreamAppend) ([]eventstore.AppendResult, error) {
	if s.hold.CompareAndSwap(true, false) {
		close(s.holding)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.Store.AppendMulti(ctx, parts...)
}

func TestADecisionCutShortByTheLeadersStopIsMadeByTheNextLeader(t *testing.T) {
	// Given a leader whose next decision is under way when it stops
	store := openShared(t)
	stopping := &stoppingStore{Store: store, holding: make(chan struct{})}
	leader, follower := newServerOn(t, store, stopping), newServer(t, store)
	leader.run(t, leader.d.Run)
	follower.run(t, follower.d.Follow)
	leader.ask(t, "before", "echo before")
	stopping.hold.Store(true)

	// When a request arrives at the follower, and the leader stops while
	// it records the decision
	waiting := follower.send(t, "cut-short", "echo cut short")
	select {
	case <-stopping.holding:
	case <-time.After(10 * time.Second):
		t.Fatal("the leader never decided the request")
	}
	leader.stop()

	// And the follower takes over
	follower.stop()
	follower.run(t, follower.d.Run)

	// Then the request is decided, once, and its caller answered
	if got := awaitReply(t, waiting, "echo cut short"); got != "cut short" {
		t.Fatalf("reply after the takeover = %q", got)
	}
	if n := countType(t, store, "RequestCompleted"); n != 2 {
		t.Fatalf("RequestCompleted recorded %d times for 2 requests", n)
	}
}

func TestALeaderThatSteppedDownFollowsAndLeadsAgain(t *testing.T) {
	// Given two servers, the first leading, the second following
	store := openShared(t)
	first, second := newServer(t, store), newServer(t, store)
	first.run(t, first.d.Run)
	second.run(t, second.d.Follow)
	first.ask(t, "first-term", "echo one")

	// When the first steps down to follow, and the second leads
	first.stop()
	first.run(t, first.d.Follow)
	second.stop()
	second.run(t, second.d.Run)

	// Then requests through the first are answered by the second
	if got := first.ask(t, "second-term", "echo two"); got != "two" {
		t.Fatalf("reply through the deposed leader = %q", got)
	}
	// And when the first leads again, it decides, and nothing was
	// recorded twice across the three terms
	second.stop()
	second.run(t, second.d.Follow)
	first.stop()
	first.run(t, first.d.Run)
	if got := second.ask(t, "third-term", "echo three"); got != "three" {
		t.Fatalf("reply in the third term = %q", got)
	}
	for _, typ := range []string{"RequestReceived", "RequestCompleted", "ReplyPosted"} {
		if n := countType(t, store, typ); n != 3 {
			t.Errorf("%s recorded %d times for 3 requests", typ, n)
		}
	}
}

func TestTheStoredCheckpointNeverGoesBack(t *testing.T) {
	store := openShared(t)
	cp := dispatcher.SQLCheckpoints{DB: store.WriteDB(), Rebind: sqlstore.RebindQuestion}
	ctx := context.Background()
	for _, p := range []int64{10, 5, 12, 11} {
		if err := cp.Save(ctx, "dispatcher", p); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := cp.Load(ctx, "dispatcher"); err != nil || got != 12 {
		t.Fatalf("checkpoint after saving 10, 5, 12, 11 = %d, %v; want 12", got, err)
	}
}

func countType(t *testing.T, store *sqlite.Store, eventType string) int {
	t.Helper()
	events, err := store.ReadAll(context.Background(), 1, 100000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range events {
		if e.Type == eventType {
			n++
		}
	}
	return n
}
