package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/executor/executortest"
	"github.com/logbookhq/logbook/internal/testenv"
)

// countingStore counts the reads that reach the store.
type countingStore struct {
	eventstore.Store
	readAll, readStream, head atomic.Int64
	// failReadAll, when set, fails the next ReadAll.
	failReadAll atomic.Bool
}

func (s *countingStore) ReadAll(ctx context.Context, from int64, limit int) ([]domain.RecordedEvent, error) {
	s.readAll.Add(1)
	if s.failReadAll.CompareAndSwap(true, false) {
		return nil, errors.New("the database went away")
	}
	return s.Store.ReadAll(ctx, from, limit)
}

func (s *countingStore) ReadStream(ctx context.Context, stream string, from int64, limit int) ([]domain.RecordedEvent, error) {
	s.readStream.Add(1)
	return s.Store.ReadStream(ctx, stream, from, limit)
}

func (s *countingStore) Head(ctx context.Context) (int64, []byte, error) {
	s.head.Add(1)
	return s.Store.Head(ctx)
}

// runHub runs hub until the test ends.
func runHub(t *testing.T, hub *eventstore.Hub) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the hub's Run: %v", err)
		}
	})
}

func appendTo(t testing.TB, s eventstore.Store, stream string, n int) {
	t.Helper()
	events := make([]domain.NewEvent, n)
	for i := range events {
		events[i] = domain.NewEvent{ID: uuid.Must(uuid.NewV7()), Type: "Noted", Data: []byte(`{}`)}
	}
	if _, err := s.Append(context.Background(), stream, eventstore.Any, events...); err != nil {
		t.Error(err)
	}
}

// reader reads a subscription in its own goroutine, keeping what it got.
type reader struct {
	mu   sync.Mutex
	got  []domain.RecordedEvent
	err  error
	done chan struct{}
}

// read starts reading sub until ctx ends or stop says so; it closes sub.
func read(ctx context.Context, sub *eventstore.Subscription, stop func([]domain.RecordedEvent) bool) *reader {
	r := &reader{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer sub.Close()
		for e, err := range sub.Events(ctx) {
			r.mu.Lock()
			if err != nil {
				r.err = err
				r.mu.Unlock()
				return
			}
			r.got = append(r.got, e)
			enough := stop != nil && stop(r.got)
			r.mu.Unlock()
			if enough {
				return
			}
		}
	}()
	return r
}

// wait waits for the reader to stop, failing the test after
// testenv.DefaultWait.
func (r *reader) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(testenv.DefaultWait):
		t.Fatalf("the reader did not stop; it got %d events", len(r.events()))
	}
}

func (r *reader) events() []domain.RecordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// versions lists the versions r got of stream, in the order it got them.
func (r *reader) versions(stream string) []int64 {
	var out []int64
	for _, e := range r.events() {
		if e.Stream == stream {
			out = append(out, e.Version)
		}
	}
	return out
}

func upTo(n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i)
	}
	return out
}

func TestASubscriberGetsWhatIsStoredThenEachNewEventOfItsStreamOnly(t *testing.T) {
	t.Parallel()
	store := executortest.NewMemStore()
	hub := eventstore.NewHub(store, eventstore.HubOptions{})
	runHub(t, hub)
	// Given a stream with three events and another stream,
	appendTo(t, store, "run-a", 3)
	appendTo(t, store, "run-b", 2)
	// when a reader subscribes to the first, and both streams go on,
	sub, err := hub.Subscribe(context.Background(), "run-a")
	if err != nil {
		t.Fatal(err)
	}
	r := read(context.Background(), sub, func(got []domain.RecordedEvent) bool { return len(got) == 5 })
	appendTo(t, store, "run-b", 1)
	appendTo(t, store, "run-a", 2)
	r.wait(t)
	// then it got its stream's five events, each once, in order, and
	// nothing of the other.
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := r.versions("run-a"); !slices.Equal(got, upTo(5)) || len(r.events()) != 5 {
		t.Fatalf("got versions %v of run-a and %d events in all, want 0..4 and nothing else", got, len(r.events()))
	}
}

func TestAStreamAddedWhileReadingComesFromItsFirstEvent(t *testing.T) {
	t.Parallel()
	store := executortest.NewMemStore()
	hub := eventstore.NewHub(store, eventstore.HubOptions{})
	runHub(t, hub)
	// Given a request stream that names a run whose events were stored
	// before it,
	appendTo(t, store, "run-x", 2)
	appendTo(t, store, "request-x", 2)
	sub, err := hub.Subscribe(context.Background(), "request-x")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// when the reader adds the run on reading the request's first event,
	var got []string
	for e, err := range sub.Events(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s/%d", e.Stream, e.Version))
		switch {
		case e.Stream == "request-x" && e.Version == 0:
			sub.Add("run-x")
		case e.Stream == "request-x" && e.Version == 1:
			appendTo(t, store, "run-x", 1)
		}
		if len(got) == 5 {
			break
		}
	}
	// then the run's stored events come right after it, then the rest,
	// then the run's new event.
	want := []string{"request-x/0", "run-x/0", "run-x/1", "request-x/1", "run-x/2"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestAnAppendWakesOnlyTheSubscribersOfItsStream(t *testing.T) {
	t.Parallel()
	store := &countingStore{Store: executortest.NewMemStore()}
	// No safety-net read during the test: every read counted is an append's.
	hub := eventstore.NewHub(store, eventstore.HubOptions{SafetyNet: time.Hour})
	runHub(t, hub)
	const subscribers = 50
	readers := make([]*reader, subscribers)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Given 50 subscribers of 50 streams, each past its stored events,
	for i := range readers {
		sub, err := hub.Subscribe(ctx, fmt.Sprintf("run-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		readers[i] = read(ctx, sub, nil)
	}
	testenv.Eventually(t, "every subscriber to read its stream from the store", func() bool { return store.readStream.Load() == subscribers })
	// (the hub reads the log once after the first subscription, finding nothing)
	testenv.Eventually(t, "the hub to read the empty log", func() bool { return store.readAll.Load() >= 1 })
	readAll, readStream := store.readAll.Load(), store.readStream.Load()
	// when one event is appended to one of the streams,
	appendTo(t, store, "run-7", 1)
	testenv.Eventually(t, "the subscriber of run-7 to get its event", func() bool { return len(readers[7].events()) == 1 })
	// then the log was read once, by the hub, no stream was read, and no
	// other subscriber got anything.
	if n := store.readAll.Load() - readAll; n != 1 {
		t.Errorf("the append cost %d reads of the log, want 1", n)
	}
	if n := store.readStream.Load() - readStream; n != 0 {
		t.Errorf("the append cost %d reads of streams, want none", n)
	}
	for i, r := range readers {
		if n := len(r.events()); i != 7 && n != 0 {
			t.Errorf("the subscriber of run-%d got %d events", i, n)
		}
	}
}

func TestNobodySubscribedNothingIsRead(t *testing.T) {
	t.Parallel()
	store := &countingStore{Store: executortest.NewMemStore()}
	hub := eventstore.NewHub(store, eventstore.HubOptions{SafetyNet: time.Hour})
	runHub(t, hub)
	// Given a subscriber that came and went,
	sub, err := hub.Subscribe(context.Background(), "run-a")
	if err != nil {
		t.Fatal(err)
	}
	r := read(context.Background(), sub, func(got []domain.RecordedEvent) bool { return len(got) == 1 })
	appendTo(t, store, "run-a", 1)
	r.wait(t) // and closed its subscription
	// when events are appended while nobody listens, and then someone
	// subscribes and gets a new event,
	appendTo(t, store, "run-a", 1) // wakes the hub, which finds nobody and parks
	before := store.readAll.Load()
	for range 20 {
		appendTo(t, store, "run-b", 1)
	}
	sub, err = hub.Subscribe(context.Background(), "run-b")
	if err != nil {
		t.Fatal(err)
	}
	r = read(context.Background(), sub, func(got []domain.RecordedEvent) bool { return len(got) == 21 })
	appendTo(t, store, "run-b", 1)
	r.wait(t)
	// then the 20 appends nobody listened to cost at most the one read
	// that found nobody listening, and the new subscriber got all 21.
	if n := store.readAll.Load() - before; n > 3 {
		t.Errorf("%d reads of the log after nobody listened, want the new subscriber's (at most 2) and the one that parked the hub", n)
	}
	if got := r.versions("run-b"); !slices.Equal(got, upTo(21)) {
		t.Fatalf("the new subscriber got versions %v, want 0..20", got)
	}
}

func TestASlowSubscriberHoldsUpNobodyAndStillGetsEverything(t *testing.T) {
	t.Parallel()
	store := &countingStore{Store: executortest.NewMemStore()}
	hub := eventstore.NewHub(store, eventstore.HubOptions{Buffer: 4, SafetyNet: time.Hour})
	runHub(t, hub)
	ctx := context.Background()
	// Given two subscribers of one stream, one of which reads nothing yet,
	slow, err := hub.Subscribe(ctx, "run-a")
	if err != nil {
		t.Fatal(err)
	}
	fast, err := hub.Subscribe(ctx, "run-a")
	if err != nil {
		t.Fatal(err)
	}
	f := read(ctx, fast, func(got []domain.RecordedEvent) bool { return len(got) == 50 })
	// when 50 events are appended, one at a time,
	for range 50 {
		appendTo(t, store, "run-a", 1)
	}
	// then the other gets all of them while the slow one is stuck,
	f.wait(t)
	if got := f.versions("run-a"); !slices.Equal(got, upTo(50)) {
		t.Fatalf("the fast subscriber got %v", got)
	}
	// and the slow one, reading at last, gets them too and then a new
	// one, each once, in order: what it missed came from the store.
	reads := store.readStream.Load()
	s := read(ctx, slow, func(got []domain.RecordedEvent) bool { return len(got) == 51 })
	testenv.Eventually(t, "the slow subscriber to read what is stored", func() bool { return len(s.events()) >= 50 })
	appendTo(t, store, "run-a", 1)
	s.wait(t)
	if got := s.versions("run-a"); !slices.Equal(got, upTo(51)) {
		t.Fatalf("the slow subscriber got %v", got)
	}
	// Its first read, and the one after it learned it had fallen behind.
	if n := store.readStream.Load() - reads; n < 2 {
		t.Fatalf("the slow subscriber read its stream %d times: it never caught up after falling behind", n)
	}
}

func TestTheHubGoesOnWhereItWasAfterAFailedRead(t *testing.T) {
	t.Parallel()
	store := &countingStore{Store: executortest.NewMemStore()}
	hub := eventstore.NewHub(store, eventstore.HubOptions{SafetyNet: time.Hour})
	ctx := context.Background()
	sub, err := hub.Subscribe(ctx, "run-a")
	if err != nil {
		t.Fatal(err)
	}
	r := read(ctx, sub, func(got []domain.RecordedEvent) bool { return len(got) == 6 })
	// Given a hub whose read fails,
	store.failReadAll.Store(true)
	if err := hub.Run(ctx); err == nil {
		t.Fatal("Run did not report the failed read")
	}
	// when events are appended before it runs again,
	appendTo(t, store, "run-a", 3)
	runHub(t, hub)
	appendTo(t, store, "run-a", 3)
	r.wait(t)
	// then the subscriber misses none of them.
	if got := r.versions("run-a"); !slices.Equal(got, upTo(6)) {
		t.Fatalf("got %v, want 0..5", got)
	}
}

// TestSubscribersUnderConcurrentAppendsGetTheirStreamsWhole runs writers
// appending to many streams of a real store while subscribers come and go,
// each subscribing to a few streams at a random moment, some of them slow
// enough to fall behind; each must see every event of its streams from the
// first, once, in order.
func TestSubscribersUnderConcurrentAppendsGetTheirStreamsWhole(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	hub := eventstore.NewHub(store, eventstore.HubOptions{Buffer: 8})
	runHub(t, hub)
	const (
		streams   = 20
		writers   = 8
		perWriter = 150
		readers   = 120
	)
	stream := func(i int) string { return fmt.Sprintf("run-%d", i) }
	ctx := t.Context()
	var reading sync.WaitGroup
	t.Cleanup(reading.Wait) // after t.Context ends them
	written := make(chan struct{})
	var writing sync.WaitGroup
	for w := range writers {
		writing.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(w), 1))
			for range perWriter {
				appendTo(t, store, stream(rnd.IntN(streams)), 1+rnd.IntN(3))
			}
		})
	}
	type opened struct {
		r       *reader
		streams []string
		// leaves: this one closes after this many events, and then only
		// a prefix of its streams is checked.
		leaves int
	}
	var subs []opened
	rnd := rand.New(rand.NewPCG(42, 7))
	for i := range readers {
		var mine []string
		for range 1 + rnd.IntN(3) {
			if s := stream(rnd.IntN(streams)); !slices.Contains(mine, s) {
				mine = append(mine, s)
			}
		}
		sub, err := hub.Subscribe(ctx, mine...)
		if err != nil {
			t.Fatal(err)
		}
		o := opened{streams: mine}
		// A slow reader takes its first event and then nothing until the
		// writers are done: it falls behind.
		slow := i%10 == 0
		if i%4 == 1 {
			o.leaves = 1 + rnd.IntN(40)
		}
		stop := func(got []domain.RecordedEvent) bool {
			if slow && len(got) == 1 {
				<-written
			}
			return o.leaves > 0 && len(got) == o.leaves
		}
		o.r = read(ctx, sub, stop)
		reading.Go(func() { <-o.r.done })
		subs = append(subs, o)
		if i%10 == 9 {
			appendTo(t, store, stream(rnd.IntN(streams)), 1) // readers join between appends
		}
	}
	writing.Wait()
	close(written)
	// Every stream's last version is now known; a staying reader is done
	// when it has reached the last of each of its streams.
	last := map[string]int64{}
	for i := range streams {
		events, err := store.ReadStream(ctx, stream(i), 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		last[stream(i)] = int64(len(events))
	}
	for i, o := range subs {
		if o.leaves > 0 {
			o.r.wait(t)
		} else {
			testenv.Eventually(t, fmt.Sprintf("reader %d to reach the end of %v", i, o.streams), func() bool {
				for _, s := range o.streams {
					if len(o.r.versions(s)) < int(last[s]) {
						return false
					}
				}
				return true
			})
		}
		if o.r.err != nil {
			t.Fatalf("reader %d: %v", i, o.r.err)
		}
		for _, s := range o.streams {
			got := o.r.versions(s)
			want := upTo(last[s])
			if o.leaves > 0 && len(got) <= len(want) {
				want = want[:len(got)] // a prefix: it left early
			}
			if !slices.Equal(got, want) {
				t.Fatalf("reader %d got versions %v of %s, want 0..%d each once in order", i, got, s, len(want)-1)
			}
		}
	}
}
