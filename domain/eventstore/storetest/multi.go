package storetest

import (
	"errors"
	"sync"
	"testing"

	"github.com/logbookhq/logbook/domain/eventstore"
)

// runMulti is the part of the suite about AppendMulti.
func runMulti(t *testing.T, h Harness) {
	t.Run("appends to several streams in one atomic commit", func(t *testing.T) { t.Parallel(); testMultiAppend(t, h) })
	t.Run("writes no part of a multi-stream append that conflicts", func(t *testing.T) { t.Parallel(); testMultiConflict(t, h) })
	t.Run("treats a repeated multi-stream append as a no-op or an error", func(t *testing.T) { t.Parallel(); testMultiDuplicates(t, h) })
	t.Run("rejects a bad multi-stream append and writes nothing", func(t *testing.T) { t.Parallel(); testMultiBadInput(t, h) })
	t.Run("keeps multi-stream appends whole under concurrent writers", func(t *testing.T) { t.Parallel(); testMultiConcurrent(t, h) })
}

func mustAppendMulti(t *testing.T, s eventstore.Store, parts ...eventstore.StreamAppend) []eventstore.AppendResult {
	t.Helper()
	res, err := s.AppendMulti(ctxFor(t), parts...)
	if err != nil {
		t.Fatalf("multi-stream append: %v", err)
	}
	if len(res) != len(parts) {
		t.Fatalf("multi-stream append of %d parts returned %d results", len(parts), len(res))
	}
	return res
}

func testMultiAppend(t *testing.T, h Harness) {
	s := h.New(t)
	mustAppend(t, s, "b-1", eventstore.NoStream, newEvents(1, "before")...)
	res := mustAppendMulti(t, s,
		eventstore.StreamAppend{Stream: "a-1", Expected: eventstore.NoStream, Events: newEvents(2, "a")},
		eventstore.StreamAppend{Stream: "b-1", Expected: eventstore.Exact(0), Events: newEvents(3, "b")},
		eventstore.StreamAppend{Stream: "c-1", Expected: eventstore.Any, Events: newEvents(1, "c")},
	)
	want := []eventstore.AppendResult{
		{FirstPosition: 2, LastPosition: 3, LastVersion: 1},
		{FirstPosition: 4, LastPosition: 6, LastVersion: 3},
		{FirstPosition: 7, LastPosition: 7, LastVersion: 0},
	}
	for i := range want {
		if res[i] != want[i] {
			t.Fatalf("part %d landed at %+v, want %+v", i, res[i], want[i])
		}
	}
	all, err := s.ReadAll(ctxFor(t), 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	streams := ""
	for _, e := range all {
		streams += e.Stream + " "
	}
	if streams != "b-1 a-1 a-1 b-1 b-1 b-1 c-1 " {
		t.Fatalf("global order = %s, want the parts' events consecutive in part order", streams)
	}
	if all[1].RecordedAt != all[6].RecordedAt {
		t.Fatalf("the parts were not committed together: recorded at %v and %v", all[1].RecordedAt, all[6].RecordedAt)
	}
	report, err := eventstore.Verify(ctxFor(t), s, nil)
	if err != nil || !report.OK {
		t.Fatalf("verify after a multi-stream append = %+v, %v", report, err)
	}
}

func testMultiConflict(t *testing.T, h Harness) {
	s := h.New(t)
	mustAppend(t, s, "x-1", eventstore.NoStream, newEvents(2, "")...)
	cases := []struct {
		name     string
		parts    []eventstore.StreamAppend
		stream   string
		expected eventstore.ExpectedVersion
		actual   int64
	}{
		{"the second part expects no stream", []eventstore.StreamAppend{
			{Stream: "y-1", Expected: eventstore.NoStream, Events: newEvents(1, "")},
			{Stream: "x-1", Expected: eventstore.NoStream, Events: newEvents(1, "")},
		}, "x-1", eventstore.NoStream, 1},
		{"the first part is a version behind", []eventstore.StreamAppend{
			{Stream: "x-1", Expected: eventstore.Exact(0), Events: newEvents(1, "")},
			{Stream: "y-1", Expected: eventstore.Any, Events: newEvents(1, "")},
		}, "x-1", eventstore.Exact(0), 1},
		{"a part expects a version of a missing stream", []eventstore.StreamAppend{
			{Stream: "x-1", Expected: eventstore.Exact(1), Events: newEvents(1, "")},
			{Stream: "z-1", Expected: eventstore.Exact(0), Events: newEvents(1, "")},
		}, "z-1", eventstore.Exact(0), -1},
	}
	for _, c := range cases {
		_, err := s.AppendMulti(ctxFor(t), c.parts...)
		var conflict *eventstore.VersionConflictError
		if !errors.As(err, &conflict) || !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			t.Fatalf("%s: err = %v, want a VersionConflictError", c.name, err)
		}
		if conflict.Stream != c.stream || conflict.Expected != c.expected || conflict.Actual != c.actual {
			t.Fatalf("%s: conflict = %+v", c.name, conflict)
		}
	}
	if h := head(t, s); h != 2 {
		t.Fatalf("conflicting multi-stream appends wrote something: head = %d, want 2", h)
	}
	for _, stream := range []string{"y-1", "z-1"} {
		if events, err := s.ReadStream(ctxFor(t), stream, 0, 10); err != nil || len(events) != 0 {
			t.Fatalf("%s has %d events after a failed multi-stream append (%v)", stream, len(events), err)
		}
	}
}

func testMultiDuplicates(t *testing.T, h Harness) {
	s := h.New(t)
	a, b := newEvents(2, "a"), newEvents(1, "b")
	parts := []eventstore.StreamAppend{
		{Stream: "m-a", Expected: eventstore.NoStream, Events: a},
		{Stream: "m-b", Expected: eventstore.NoStream, Events: b},
	}
	first := mustAppendMulti(t, s, parts...)
	again := mustAppendMulti(t, s, parts...)
	for i := range first {
		if !again[i].Duplicate || again[i].FirstPosition != first[i].FirstPosition || again[i].LastPosition != first[i].LastPosition || again[i].LastVersion != first[i].LastVersion {
			t.Fatalf("repeated part %d = %+v, want a duplicate of %+v", i, again[i], first[i])
		}
	}
	partial := []eventstore.StreamAppend{
		{Stream: "m-a", Expected: eventstore.Any, Events: a},
		{Stream: "m-c", Expected: eventstore.NoStream, Events: newEvents(1, "new")},
	}
	if _, err := s.AppendMulti(ctxFor(t), partial...); !errors.Is(err, eventstore.ErrDuplicateEvent) {
		t.Fatalf("a multi-stream append repeating one stored part among new ones: err = %v, want ErrDuplicateEvent", err)
	}
	moved := []eventstore.StreamAppend{
		{Stream: "m-b", Expected: eventstore.Any, Events: a},
		{Stream: "m-a", Expected: eventstore.Any, Events: b},
	}
	if _, err := s.AppendMulti(ctxFor(t), moved...); !errors.Is(err, eventstore.ErrDuplicateEvent) {
		t.Fatalf("stored events named for other streams: err = %v, want ErrDuplicateEvent", err)
	}
	if h := head(t, s); h != 3 {
		t.Fatalf("head = %d, want 3 (nothing written twice, nothing of the refused appends)", h)
	}
}

func testMultiBadInput(t *testing.T, h Harness) {
	s := h.New(t)
	shared := newEvents(1, "")
	bad := newEvents(1, "")
	bad[0].Data = []byte(`{"a":`)
	cases := []struct {
		name  string
		parts []eventstore.StreamAppend
	}{
		{"no parts", nil},
		{"one stream twice", []eventstore.StreamAppend{
			{Stream: "q-1", Expected: eventstore.Any, Events: newEvents(1, "")},
			{Stream: "q-1", Expected: eventstore.Any, Events: newEvents(1, "")},
		}},
		{"one id in two parts", []eventstore.StreamAppend{
			{Stream: "q-1", Expected: eventstore.Any, Events: shared},
			{Stream: "q-2", Expected: eventstore.Any, Events: shared},
		}},
		{"a bad event in the second part", []eventstore.StreamAppend{
			{Stream: "q-1", Expected: eventstore.Any, Events: newEvents(1, "")},
			{Stream: "q-2", Expected: eventstore.Any, Events: bad},
		}},
		{"a part without events", []eventstore.StreamAppend{
			{Stream: "q-1", Expected: eventstore.Any, Events: newEvents(1, "")},
			{Stream: "q-2", Expected: eventstore.Any},
		}},
	}
	for _, c := range cases {
		if _, err := s.AppendMulti(ctxFor(t), c.parts...); !errors.Is(err, eventstore.ErrInvalidEvent) {
			t.Errorf("%s: err = %v, want ErrInvalidEvent", c.name, err)
		}
	}
	if h := head(t, s); h != 0 {
		t.Fatalf("rejected multi-stream appends wrote something: head = %d, want 0", h)
	}
}

// testMultiConcurrent races writers that each append to a shared stream
// and their own in one AppendMulti: each wins or loses whole, so the shared
// stream's events and the own streams match one for one.
func testMultiConcurrent(t *testing.T, h Harness) {
	s := h.New(t)
	const writers, rounds = 8, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				events, err := s.ReadStream(ctxFor(t), "shared-1", 0, 100000)
				if err != nil {
					t.Error(err)
					return
				}
				_, err = s.AppendMulti(ctxFor(t),
					eventstore.StreamAppend{Stream: "shared-1", Expected: eventstore.Exact(int64(len(events)) - 1), Events: newEvents(1, "")},
					eventstore.StreamAppend{Stream: "own-" + string(rune('a'+w)), Expected: eventstore.Any, Events: newEvents(1, string(rune('0'+r)))},
				)
				if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	shared, err := s.ReadStream(ctxFor(t), "shared-1", 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if len(shared) != won || head(t, s) != int64(2*won) {
		t.Fatalf("%d appends won; shared stream has %d events and the log %d, want %d and %d", won, len(shared), head(t, s), won, 2*won)
	}
	all, err := s.ReadAll(ctxFor(t), 1, 100000)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(all); i += 2 {
		if all[i].Stream != "shared-1" || all[i+1].Stream == "shared-1" {
			t.Fatalf("positions %d and %d are %s and %s: a multi-stream append was split", all[i].Position, all[i+1].Position, all[i].Stream, all[i+1].Stream)
		}
	}
}
