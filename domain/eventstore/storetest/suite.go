// Package storetest is the conformance suite every eventstore.Store adapter
// passes. An adapter's test calls Run with a Harness that makes fresh stores.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// Harness adapts the suite to one store.
type Harness struct {
	// Dialect selects the SQL used to tamper with rows: "postgres" or "sqlite".
	Dialect string
	// New returns a fresh, empty store, closed when the test ends.
	New func(t *testing.T) eventstore.Store
	// Exec runs raw SQL against the store's database, bypassing the store,
	// the way an attacker with database access would.
	Exec func(s eventstore.Store, query string) error
	// Another opens a second store on the database s uses, as a second
	// process would, closed when the test ends.
	Another func(t *testing.T, s eventstore.Store) eventstore.Store
}

// Run runs the whole suite.
func Run(t *testing.T, h Harness) {
	t.Run("appends and reads back a stream", func(t *testing.T) { t.Parallel(); testAppendRead(t, h) })
	t.Run("keeps data and metadata byte for byte", func(t *testing.T) { t.Parallel(); testExactBytes(t, h) })
	t.Run("enforces expected versions with a typed error", func(t *testing.T) { t.Parallel(); testExpectedVersion(t, h) })
	t.Run("treats a repeated event id as a no-op or an error", func(t *testing.T) { t.Parallel(); testDuplicates(t, h) })
	t.Run("rejects bad events and writes nothing", func(t *testing.T) { t.Parallel(); testBadInput(t, h) })
	t.Run("stores large events", func(t *testing.T) { t.Parallel(); testLargeEvents(t, h) })
	t.Run("serializes concurrent writers to one stream", func(t *testing.T) { t.Parallel(); testConcurrentOneStream(t, h) })
	t.Run("keeps a gap-free global order under concurrent writers", func(t *testing.T) { t.Parallel(); testConcurrentManyStreams(t, h) })
	t.Run("feed catches up then tails without polling", func(t *testing.T) { t.Parallel(); testFeedCatchUpThenTail(t, h) })
	t.Run("feed resumes from a checkpoint", func(t *testing.T) { t.Parallel(); testFeedResume(t, h) })
	t.Run("reads with positions and limits", func(t *testing.T) { t.Parallel(); testReadBounds(t, h) })
	t.Run("verifies an intact chain", func(t *testing.T) { t.Parallel(); testVerifyIntact(t, h) })
	t.Run("detects tampering", func(t *testing.T) { t.Parallel(); testTamper(t, h) })
	t.Run("keeps one chain with two processes writing", func(t *testing.T) { t.Parallel(); testTwoWriters(t, h) })
	t.Run("gives followers exactly what is stored", func(t *testing.T) { t.Parallel(); testLiveReads(t, h) })
	t.Run("has one identity per database, kept when it is opened again", func(t *testing.T) { t.Parallel(); testIdentity(t, h) })
	runMulti(t, h)
	runTree(t, h)
	runLeases(t, h)
}

// Event is a small payload for tests.
type Event struct {
	N    int    `json:"n"`
	Note string `json:"note,omitempty"`
}

// EventType implements domain.Payload.
func (Event) EventType() string { return "StoreTestEvent" }

func init() { domain.Register[Event]() }

func newEvents(n int, note string) []domain.NewEvent {
	out := make([]domain.NewEvent, n)
	for i := range out {
		out[i] = domain.MustEncode(Event{N: i, Note: note}, domain.Metadata{CorrelationID: "req-1", Actor: "tester"})
	}
	return out
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, ev eventstore.ExpectedVersion, events ...domain.NewEvent) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(ctxFor(t), stream, ev, events...)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return res
}

func head(t *testing.T, s eventstore.Store) int64 {
	t.Helper()
	pos, _, err := s.Head(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

func testAppendRead(t *testing.T, h Harness) {
	s := h.New(t)
	before := time.Now().Add(-time.Second)
	first := mustAppend(t, s, "order-1", eventstore.NoStream, newEvents(3, "a")...)
	if first.FirstPosition != 1 || first.LastPosition != 3 || first.LastVersion != 2 || first.Duplicate {
		t.Fatalf("first append result = %+v, want positions 1..3, version 2", first)
	}
	mustAppend(t, s, "order-2", eventstore.NoStream, newEvents(1, "b")...)
	second := mustAppend(t, s, "order-1", eventstore.Exact(2), newEvents(2, "c")...)
	if second.FirstPosition != 5 || second.LastPosition != 6 || second.LastVersion != 4 {
		t.Fatalf("second append result = %+v, want positions 5..6, version 4", second)
	}

	got, err := s.ReadStream(ctxFor(t), "order-1", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	wantPositions := []int64{1, 2, 3, 5, 6}
	if len(got) != len(wantPositions) {
		t.Fatalf("ReadStream returned %d events, want %d", len(got), len(wantPositions))
	}
	for i, e := range got {
		if e.Version != int64(i) || e.Position != wantPositions[i] || e.Stream != "order-1" || e.Type != "StoreTestEvent" {
			t.Errorf("event %d = version %d position %d stream %s type %s", i, e.Version, e.Position, e.Stream, e.Type)
		}
		if e.RecordedAt.Before(before) || e.RecordedAt.After(time.Now().Add(time.Second)) {
			t.Errorf("event %d recorded_at %v is not now", i, e.RecordedAt)
		}
		if md := e.Metadata(); md.CorrelationID != "req-1" || md.Actor != "tester" {
			t.Errorf("event %d metadata = %+v", i, md)
		}
		p, err := domain.Decode(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := p.(Event); !ok {
			t.Errorf("event %d decoded as %T, want storetest.Event", i, p)
		}
	}
	tail, err := s.ReadStream(ctxFor(t), "order-1", 3, 100)
	if err != nil || len(tail) != 2 || tail[0].Version != 3 {
		t.Fatalf("ReadStream from version 3 = %d events (%v), want versions 3..4", len(tail), err)
	}
	none, err := s.ReadStream(ctxFor(t), "order-404", 0, 10)
	if err != nil || len(none) != 0 {
		t.Fatalf("ReadStream of a missing stream = %d events, %v; want none", len(none), err)
	}
	if h := head(t, s); h != 6 {
		t.Fatalf("head = %d, want 6", h)
	}
}

func testExactBytes(t *testing.T, h Harness) {
	s := h.New(t)
	// Whitespace, key order, escapes and non-ASCII: what a JSON re-encoder
	// would change and the hash chain must not see changed.
	data := json.RawMessage("{\"z\": 1,  \"a\":\"\\u00e9t\u00e9\", \"nested\" : [ 1.50, {\"k\":null} ]}")
	e := domain.NewEvent{ID: domain.NewEventID(), Type: "Exact", Data: data, Metadata: domain.Metadata{CausationID: "c-1"}}
	mustAppend(t, s, "exact-1", eventstore.Any, e)
	got, err := s.ReadAll(ctxFor(t), 1, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("ReadAll = %d events, %v", len(got), err)
	}
	if !bytes.Equal(got[0].Data, data) {
		t.Fatalf("data came back as %q, want %q", got[0].Data, data)
	}
	if got[0].ID != e.ID {
		t.Fatalf("id came back as %s, want %s", got[0].ID, e.ID)
	}
	raw, err := domain.Decode(got[0])
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := raw.(domain.Raw); !ok || r.Type != "Exact" || !bytes.Equal(r.Data, data) {
		t.Fatalf("an unknown event type decoded as %#v, want domain.Raw with the stored bytes", raw)
	}
	if !bytes.Equal(got[0].Hash, eventstore.ChainHash(eventstore.GenesisHash, got[0])) {
		t.Fatal("the stored hash does not match the bytes read back")
	}
}

func testExpectedVersion(t *testing.T, h Harness) {
	s := h.New(t)
	mustAppend(t, s, "acct-1", eventstore.NoStream, newEvents(2, "")...)
	cases := []struct {
		name     string
		expected eventstore.ExpectedVersion
		actual   int64
	}{
		{"no stream on an existing stream", eventstore.NoStream, 1},
		{"a version behind", eventstore.Exact(0), 1},
		{"a version ahead", eventstore.Exact(5), 1},
	}
	for _, c := range cases {
		_, err := s.Append(ctxFor(t), "acct-1", c.expected, newEvents(1, "x")...)
		var conflict *eventstore.VersionConflictError
		if !errors.As(err, &conflict) || !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			t.Fatalf("%s: err = %v, want a VersionConflictError", c.name, err)
		}
		if conflict.Actual != c.actual || conflict.Stream != "acct-1" || conflict.Expected != c.expected {
			t.Fatalf("%s: conflict = %+v", c.name, conflict)
		}
	}
	if _, err := s.Append(ctxFor(t), "acct-2", eventstore.Exact(0), newEvents(1, "")...); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("exact version on a missing stream: err = %v, want a conflict", err)
	}
	if h := head(t, s); h != 2 {
		t.Fatalf("conflicting appends wrote something: head = %d, want 2", h)
	}
	mustAppend(t, s, "acct-1", eventstore.Exact(1), newEvents(1, "")...)
	mustAppend(t, s, "acct-1", eventstore.Any, newEvents(1, "")...)
	mustAppend(t, s, "acct-3", eventstore.Any, newEvents(1, "")...)
	if h := head(t, s); h != 5 {
		t.Fatalf("head = %d, want 5", h)
	}
}

func testDuplicates(t *testing.T, h Harness) {
	s := h.New(t)
	events := newEvents(3, "dup")
	first := mustAppend(t, s, "dup-1", eventstore.NoStream, events...)
	again := mustAppend(t, s, "dup-1", eventstore.NoStream, events...)
	if !again.Duplicate || again.FirstPosition != first.FirstPosition || again.LastPosition != first.LastPosition || again.LastVersion != first.LastVersion {
		t.Fatalf("repeated append = %+v, want a duplicate of %+v", again, first)
	}
	partial := append([]domain.NewEvent{events[2]}, newEvents(1, "new")...)
	if _, err := s.Append(ctxFor(t), "dup-1", eventstore.Any, partial...); !errors.Is(err, eventstore.ErrDuplicateEvent) {
		t.Fatalf("append repeating one stored id among new ones: err = %v, want ErrDuplicateEvent", err)
	}
	if _, err := s.Append(ctxFor(t), "dup-2", eventstore.Any, events[0]); !errors.Is(err, eventstore.ErrDuplicateEvent) {
		t.Fatalf("append of a stored id to another stream: err = %v, want ErrDuplicateEvent", err)
	}
	repeatInBatch := []domain.NewEvent{events[0], events[0]}
	repeatInBatch[0].ID = domain.NewEventID()
	repeatInBatch[1].ID = repeatInBatch[0].ID
	if _, err := s.Append(ctxFor(t), "dup-3", eventstore.Any, repeatInBatch...); !errors.Is(err, eventstore.ErrInvalidEvent) {
		t.Fatalf("a batch repeating an id: err = %v, want ErrInvalidEvent", err)
	}
	// Concurrent retries of the same append land once.
	retried := newEvents(2, "retry")
	var wg sync.WaitGroup
	var duplicates atomic.Int32
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.Append(ctxFor(t), "dup-4", eventstore.Any, retried...)
			if err != nil {
				t.Errorf("concurrent retry: %v", err)
			}
			if res.Duplicate {
				duplicates.Add(1)
			}
		}()
	}
	wg.Wait()
	if duplicates.Load() != 7 {
		t.Fatalf("%d of 8 concurrent retries were duplicates, want 7", duplicates.Load())
	}
	if h := head(t, s); h != 5 {
		t.Fatalf("head = %d, want 5 (3 + 2, nothing twice)", h)
	}
}

func testBadInput(t *testing.T, h Harness) {
	s := h.New(t)
	mustAppend(t, s, "ok-1", eventstore.Any, newEvents(1, "")...)
	big := domain.NewEvent{ID: domain.NewEventID(), Type: "Big", Data: json.RawMessage(`"` + strings.Repeat("x", eventstore.MaxEventBytes) + `"`)}
	cases := []struct {
		name    string
		stream  string
		events  []domain.NewEvent
		mention string
	}{
		{"data that is not JSON", "bad-1", []domain.NewEvent{{ID: domain.NewEventID(), Type: "T", Data: json.RawMessage(`{"a":`)}}, "not valid JSON"},
		{"an event over the size limit", "bad-1", []domain.NewEvent{big}, "4 MiB"},
		{"an event without a type", "bad-1", []domain.NewEvent{{ID: domain.NewEventID(), Data: json.RawMessage(`{}`)}}, "no type"},
		{"an event without an id", "bad-1", []domain.NewEvent{{Type: "T", Data: json.RawMessage(`{}`)}}, "no id"},
		{"no events", "bad-1", nil, "no events"},
		{"a stream name without a category", "nocategory", newEvents(1, ""), "category-id"},
		{"a bad event after a good one", "bad-1", append(newEvents(1, ""), domain.NewEvent{ID: domain.NewEventID(), Type: "T", Data: json.RawMessage(`nope`)}), "event 2 of 2"},
	}
	for _, c := range cases {
		_, err := s.Append(ctxFor(t), c.stream, eventstore.Any, c.events...)
		if !errors.Is(err, eventstore.ErrInvalidEvent) || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("%s: err = %v, want ErrInvalidEvent mentioning %q", c.name, err, c.mention)
		}
	}
	if h := head(t, s); h != 1 {
		t.Fatalf("rejected appends wrote something: head = %d, want 1", h)
	}
}

func testLargeEvents(t *testing.T, h Harness) {
	s := h.New(t)
	payload := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16) // 3 MiB
	data, _ := json.Marshal(map[string]string{"blob": string(payload)})
	events := []domain.NewEvent{
		{ID: domain.NewEventID(), Type: "Large", Data: data},
		{ID: domain.NewEventID(), Type: "Large", Data: data},
	}
	mustAppend(t, s, "large-1", eventstore.NoStream, events...)
	got, err := s.ReadStream(ctxFor(t), "large-1", 0, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("ReadStream = %d events, %v", len(got), err)
	}
	for _, e := range got {
		if !bytes.Equal(e.Data, data) {
			t.Fatalf("a %d-byte event came back as %d bytes", len(data), len(e.Data))
		}
	}
	report, err := eventstore.Verify(ctxFor(t), s, nil)
	if err != nil || !report.OK {
		t.Fatalf("verify after large events = %+v, %v", report, err)
	}
}

func testConcurrentOneStream(t *testing.T, h Harness) {
	s := h.New(t)
	const writers, each = 8, 10
	var conflicts atomic.Int32
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; {
				events, err := s.ReadStream(ctxFor(t), "counter-1", 0, 100000)
				if err != nil {
					t.Error(err)
					return
				}
				expected := eventstore.NoStream
				if len(events) > 0 {
					expected = eventstore.Exact(events[len(events)-1].Version)
				}
				_, err = s.Append(ctxFor(t), "counter-1", expected, newEvents(1, fmt.Sprintf("w%d-%d", w, i))...)
				if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
					conflicts.Add(1)
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				i++
			}
		}()
	}
	wg.Wait()
	events, err := s.ReadStream(ctxFor(t), "counter-1", 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != writers*each {
		t.Fatalf("stream holds %d events, want %d", len(events), writers*each)
	}
	notes := map[string]bool{}
	for i, e := range events {
		if e.Version != int64(i) {
			t.Fatalf("event %d has version %d", i, e.Version)
		}
		var p Event
		_ = json.Unmarshal(e.Data, &p)
		if notes[p.Note] {
			t.Fatalf("%s was appended twice", p.Note)
		}
		notes[p.Note] = true
	}
	t.Logf("%d optimistic-concurrency conflicts were retried", conflicts.Load())
}

func testConcurrentManyStreams(t *testing.T, h Harness) {
	s := h.New(t)
	const writers, each = 16, 40
	ctx, cancel := context.WithCancel(ctxFor(t))
	defer cancel()

	// A reader tails while the writers run. Positions must arrive one by one:
	// a skipped position that showed up later would be a lower position
	// appearing after a higher one was seen.
	readerDone := make(chan error, 1)
	go func() {
		next := int64(1)
		for next <= writers*each {
			events, err := s.ReadAll(ctx, next, 50)
			if err != nil {
				readerDone <- err
				return
			}
			for _, e := range events {
				if e.Position != next {
					readerDone <- fmt.Errorf("reader expected position %d and saw %d", next, e.Position)
					return
				}
				next++
			}
			if len(events) == 0 {
				select {
				case <-s.Changed():
				case <-time.After(20 * time.Millisecond):
				case <-ctx.Done():
					readerDone <- ctx.Err()
					return
				}
			}
		}
		readerDone <- nil
	}()

	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				stream := fmt.Sprintf("many-%d", (w*each+i)%23)
				if _, err := s.Append(ctx, stream, eventstore.Any, newEvents(1, "")...); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := <-readerDone; err != nil {
		t.Fatal(err)
	}
	all, err := s.ReadAll(ctxFor(t), 1, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != writers*each {
		t.Fatalf("store holds %d events, want %d", len(all), writers*each)
	}
	versions := map[string]int64{}
	for i, e := range all {
		if e.Position != int64(i+1) {
			t.Fatalf("event %d has position %d: there is a gap", i, e.Position)
		}
		want, ok := versions[e.Stream]
		if !ok {
			want = 0
		}
		if e.Version != want {
			t.Fatalf("%s: version %d at position %d, want %d", e.Stream, e.Version, e.Position, want)
		}
		versions[e.Stream] = want + 1
	}
	report, err := eventstore.Verify(ctxFor(t), s, nil)
	if err != nil || !report.OK || report.Checked != writers*each {
		t.Fatalf("verify after concurrent writes = %+v, %v", report, err)
	}
}

func testTwoWriters(t *testing.T, h Harness) {
	first := h.New(t)
	second := h.Another(t, first)

	// Alternating appends to one stream: each store must notice the other's.
	stores := []eventstore.Store{first, second}
	for i := range 6 {
		expected := eventstore.NoStream
		if i > 0 {
			expected = eventstore.Exact(int64(i - 1))
		}
		mustAppend(t, stores[i%2], "shared-1", expected, newEvents(1, fmt.Sprint(i))...)
	}
	// A stale expectation from either side is a conflict, not a fork.
	for _, s := range stores {
		if _, err := s.Append(ctxFor(t), "shared-1", eventstore.Exact(3), newEvents(1, "stale")...); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			t.Fatalf("stale append: err = %v, want a conflict", err)
		}
	}
	// A retry through the other process is recognised as a duplicate.
	events := newEvents(2, "retry")
	res := mustAppend(t, first, "retry-1", eventstore.NoStream, events...)
	again := mustAppend(t, second, "retry-1", eventstore.NoStream, events...)
	if !again.Duplicate || again.LastPosition != res.LastPosition {
		t.Fatalf("the retry through the second process = %+v, want a duplicate of %+v", again, res)
	}

	// A stream the other process moved while this one wrote elsewhere:
	// what this process remembers of it is stale, and must not be trusted.
	mustAppend(t, first, "moved-1", eventstore.NoStream, newEvents(1, "first")...)
	mustAppend(t, second, "moved-1", eventstore.Exact(0), newEvents(1, "second")...)
	mustAppend(t, first, "elsewhere-1", eventstore.NoStream, newEvents(1, "")...)
	if res := mustAppend(t, first, "moved-1", eventstore.Any, newEvents(1, "third")...); res.LastVersion != 2 {
		t.Fatalf("an append after the other process moved the stream = %+v, want version 2", res)
	}

	// Both write concurrently, to shared and to their own streams.
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%2]
			for i := range 25 {
				stream := fmt.Sprintf("both-%d", (w+i)%5)
				if _, err := s.Append(ctxFor(t), stream, eventstore.Any, newEvents(1+i%3, "")...); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	all, err := first.ReadAll(ctxFor(t), 1, 100000)
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]int64{}
	for i, e := range all {
		if e.Position != int64(i+1) {
			t.Fatalf("position %d at index %d: a gap", e.Position, i)
		}
		if want := versions[e.Stream]; e.Version != want {
			t.Fatalf("%s has version %d at position %d, want %d", e.Stream, e.Version, e.Position, want)
		}
		versions[e.Stream]++
	}
	// 6 alternating, 2 retried once, 4 around a moved stream, and 8
	// writers × 49 (1+i%3 for i < 25).
	if want := 6 + 2 + 4 + 8*49; len(all) != want {
		t.Fatalf("%d events stored, want %d", len(all), want)
	}
	for _, s := range stores {
		report, err := eventstore.Verify(ctxFor(t), s, nil)
		if err != nil || !report.OK || report.Checked != int64(len(all)) {
			t.Fatalf("verify = %+v, %v; want all %d events intact", report, err, len(all))
		}
	}
}

// countingStore counts reads, to prove an idle feed waits instead of polling.
type countingStore struct {
	eventstore.Store
	reads atomic.Int64
}

func (c *countingStore) ReadAll(ctx context.Context, from int64, limit int) ([]domain.RecordedEvent, error) {
	c.reads.Add(1)
	return c.Store.ReadAll(ctx, from, limit)
}

func testFeedCatchUpThenTail(t *testing.T, h Harness) {
	s := &countingStore{Store: h.New(t)}
	for i := range 5 {
		mustAppend(t, s, fmt.Sprintf("feed-%d", i), eventstore.NoStream, newEvents(2, "")...)
	}
	ctx, cancel := context.WithCancel(ctxFor(t))
	defer cancel()
	got := make(chan domain.RecordedEvent, 100)
	go func() {
		defer close(got)
		for e, err := range eventstore.Follow(ctx, s, 1, eventstore.FeedOptions{BatchSize: 3}) {
			if err != nil {
				t.Error(err)
				return
			}
			got <- e
		}
	}()
	receive := func(n int) []int64 {
		var positions []int64
		for range n {
			select {
			case e := <-got:
				positions = append(positions, e.Position)
			case <-time.After(10 * time.Second):
				t.Fatalf("feed delivered %d of %d events", len(positions), n)
			}
		}
		return positions
	}
	if p := receive(10); p[0] != 1 || p[9] != 10 {
		t.Fatalf("catch-up delivered %v, want 1..10", p)
	}
	// Idle: the feed waits on the change signal. The wakes the catch-up's
	// own appends caused (a store may wake its feeds again shortly after a
	// write, and late on a loaded machine) are over first: the reads stop
	// moving for 100ms. A polling feed never gets there, and fails below.
	for settled, last := time.Now().Add(5*time.Second), int64(-1); time.Now().Before(settled); {
		now := s.reads.Load()
		if now == last {
			break
		}
		last = now
		time.Sleep(100 * time.Millisecond)
	}
	idleStart := s.reads.Load()
	time.Sleep(300 * time.Millisecond)
	if extra := s.reads.Load() - idleStart; extra > 1 {
		t.Fatalf("an idle feed read the store %d times in 300ms: it is polling", extra)
	}
	// Live tail: appends made now arrive in order.
	go func() {
		for i := range 7 {
			if _, err := s.Append(ctx, "feed-live", eventstore.Any, newEvents(1, fmt.Sprint(i))...); err != nil {
				t.Error(err)
			}
		}
	}()
	p := receive(7)
	for i, pos := range p {
		if pos != int64(11+i) {
			t.Fatalf("live tail delivered %v, want 11..17", p)
		}
	}
	// Nothing else came: the next event the feed delivers is the next one
	// appended.
	if _, err := s.Append(ctx, "feed-live", eventstore.Any, newEvents(1, "last")...); err != nil {
		t.Fatal(err)
	}
	if p := receive(1); p[0] != 18 {
		t.Fatalf("after 17 the feed delivered %v, want 18 and nothing before it", p)
	}
	cancel()
	for range got {
	}
}

func testFeedResume(t *testing.T, h Harness) {
	s := h.New(t)
	mustAppend(t, s, "resume-1", eventstore.NoStream, newEvents(12, "")...)
	var checkpoint int64
	ctx, cancel := context.WithCancel(ctxFor(t))
	for e, err := range eventstore.Follow(ctx, s, 1, eventstore.FeedOptions{BatchSize: 5}) {
		if err != nil {
			t.Fatal(err)
		}
		checkpoint = e.Position
		if checkpoint == 7 {
			break
		}
	}
	cancel()
	mustAppend(t, s, "resume-1", eventstore.Exact(11), newEvents(3, "")...)
	ctx, cancel = context.WithCancel(ctxFor(t))
	defer cancel()
	var resumed []int64
	for e, err := range eventstore.Follow(ctx, s, checkpoint+1, eventstore.FeedOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		resumed = append(resumed, e.Position)
		if e.Position == 15 {
			break
		}
	}
	if len(resumed) != 8 || resumed[0] != 8 || resumed[7] != 15 {
		t.Fatalf("resumed from checkpoint 7 and got %v, want 8..15", resumed)
	}
}

func testReadBounds(t *testing.T, h Harness) {
	s := h.New(t)
	if events, err := s.ReadAll(ctxFor(t), 1, 10); err != nil || len(events) != 0 {
		t.Fatalf("ReadAll of an empty store = %d, %v", len(events), err)
	}
	if pos, hash, err := s.Head(ctxFor(t)); err != nil || pos != 0 || hash != nil {
		t.Fatalf("Head of an empty store = %d %x %v, want 0 and no hash", pos, hash, err)
	}
	mustAppend(t, s, "bounds-1", eventstore.NoStream, newEvents(10, "")...)
	cases := []struct {
		from        int64
		limit       int
		first, n    int64
		description string
	}{
		{0, 100, 1, 10, "from 0 reads from the start"},
		{4, 3, 4, 3, "a limit cuts the page"},
		{10, 5, 10, 1, "from the head reads one"},
		{11, 5, 0, 0, "past the head reads none"},
	}
	for _, c := range cases {
		events, err := s.ReadAll(ctxFor(t), c.from, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(events)) != c.n || (c.n > 0 && events[0].Position != c.first) {
			t.Errorf("%s: got %d events", c.description, len(events))
		}
	}
	pos, hash, err := s.Head(ctxFor(t))
	if err != nil || pos != 10 || len(hash) != 32 {
		t.Fatalf("Head = %d %x %v", pos, hash, err)
	}
}

func testVerifyIntact(t *testing.T, h Harness) {
	s := h.New(t)
	report, err := eventstore.Verify(ctxFor(t), s, nil)
	if err != nil || !report.OK || report.Checked != 0 {
		t.Fatalf("verify of an empty store = %+v, %v", report, err)
	}
	for i := range 30 {
		mustAppend(t, s, fmt.Sprintf("v-%d", i%4), eventstore.Any, newEvents(1+i%3, "")...)
	}
	var progressCalls int
	report, err = eventstore.Verify(ctxFor(t), s, func(int64) { progressCalls++ })
	if err != nil || !report.OK || report.Checked != head(t, s) || report.HeadHash == "" || progressCalls == 0 {
		t.Fatalf("verify of an intact store = %+v, %v (progress called %d times)", report, err, progressCalls)
	}
}

func testTamper(t *testing.T, h Harness) {
	unprotect := map[string][]string{
		"postgres": {"ALTER TABLE events DISABLE TRIGGER USER"},
		"sqlite":   {"DROP TRIGGER events_no_update", "DROP TRIGGER events_no_delete"},
	}[h.Dialect]
	jsonLiteral := func(s string) string {
		if h.Dialect == "sqlite" {
			return "CAST('" + s + "' AS BLOB)"
		}
		return "'" + s + "'"
	}
	cases := []struct {
		name     string
		sql      []string
		firstBad int64
	}{
		{"an altered event", []string{
			"UPDATE events SET data = " + jsonLiteral(`{"n":999}`) + " WHERE position = 4",
		}, 4},
		{"a deleted event", []string{
			"DELETE FROM events WHERE position = 4",
		}, 4},
		{"an inserted event", []string{
			"UPDATE events SET position = -position WHERE position > 3",
			"UPDATE events SET position = 1 - position WHERE position < 0",
			"INSERT INTO events (position, stream_id, version, id, type, data, metadata, recorded_at, prev_hash, hash) " +
				"SELECT 4, 'forged-1', 0, '0190d0a0-0000-7000-8000-000000000001', 'Forged', data, metadata, recorded_at, hash, prev_hash FROM events WHERE position = 3",
		}, 4},
		{"two reordered events", []string{
			"UPDATE events SET position = -4 WHERE position = 4",
			"UPDATE events SET position = 4 WHERE position = 5",
			"UPDATE events SET position = 5 WHERE position = -4",
		}, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := h.New(t)
			for i := range 8 {
				mustAppend(t, s, fmt.Sprintf("t-%d", i%3), eventstore.Any, newEvents(1, "")...)
			}
			// The table refuses changes until the attacker disables that.
			if err := h.Exec(s, "DELETE FROM events WHERE position = 1"); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Fatalf("deleting an event directly: err = %v, want the table to refuse as append-only", err)
			}
			for _, q := range append(unprotect, c.sql...) {
				h.mustExec(t, s, q)
			}
			report, err := eventstore.Verify(ctxFor(t), s, nil)
			if err != nil {
				t.Fatal(err)
			}
			if report.OK || report.FirstBad != c.firstBad || report.Problem == "" {
				t.Fatalf("verify = %+v, want the chain broken at position %d", report, c.firstBad)
			}
			t.Logf("verify says: %s", report.Problem)
		})
	}
}

func (h Harness) mustExec(t *testing.T, s eventstore.Store, query string) {
	t.Helper()
	if err := h.Exec(s, query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}
