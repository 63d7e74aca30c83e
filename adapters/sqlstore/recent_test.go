package sqlstore

import (
	"bytes"
	"slices"
	"testing"

	"github.com/logbookhq/logbook/domain"
)

func recentRows(from, to int64, size int) []domain.RecordedEvent {
	var rows []domain.RecordedEvent
	for p := from; p <= to; p++ {
		rows = append(rows, domain.RecordedEvent{Position: p, Stream: "s", Type: "T", Data: bytes.Repeat([]byte{'x'}, size)})
	}
	return rows
}

func positions(events []domain.RecordedEvent) []int64 {
	var out []int64
	for _, e := range events {
		out = append(out, e.Position)
	}
	return out
}

// The recent events keep at most so many events and so many bytes, the
// newest, and only consecutive positions: a commit after another
// process's appends replaces what was kept.
func TestTheRecentEventsKeepTheNewestWithinTheirBounds(t *testing.T) {
	r := newRecentEvents(4, 1<<20)
	r.add(recentRows(1, 3, 10))
	r.add(recentRows(4, 6, 10))
	if got, _, ok := r.read(1, 10); ok {
		t.Fatalf("read from 1 = %v, want it not kept (only 4 events are)", positions(got))
	}
	got, _, ok := r.read(3, 10)
	if want := []int64{3, 4, 5, 6}; !ok || !slices.Equal(positions(got), want) {
		t.Fatalf("read from 3 = %v, %v; want %v", positions(got), ok, want)
	}
	if got, _, _ := r.read(4, 2); !slices.Equal(positions(got), []int64{4, 5}) {
		t.Fatalf("read from 4, at most 2 = %v, want [4 5]", positions(got))
	}

	r.add(recentRows(9, 10, 10)) // 7 and 8 came from another process
	if _, _, ok := r.read(6, 10); ok {
		t.Fatal("position 6 is still kept after a gap, want only 9 and 10")
	}
	if got, _, ok := r.read(9, 10); !ok || !slices.Equal(positions(got), []int64{9, 10}) {
		t.Fatalf("read from 9 = %v, %v; want [9 10]", positions(got), ok)
	}

	small := newRecentEvents(100, 3*(1000+eventBytes(&domain.RecordedEvent{Stream: "s", Type: "T"})))
	small.add(recentRows(1, 5, 1000))
	if got, _, ok := small.read(3, 10); !ok || !slices.Equal(positions(got), []int64{3, 4, 5}) {
		t.Fatalf("within three events' bytes, read from 3 = %v, %v; want [3 4 5]", positions(got), ok)
	}
	if _, _, ok := small.read(2, 10); ok {
		t.Fatal("position 2 is kept beyond the byte bound")
	}
	huge := newRecentEvents(100, 10)
	huge.add(recentRows(1, 2, 1000))
	if got, _, ok := huge.read(2, 10); !ok || len(got) != 1 {
		t.Fatalf("an event bigger than the bound: read = %v, %v; want the last one alone", positions(got), ok)
	}
}

// What is kept is a copy: an appender that reuses its buffer changes
// nothing a follower reads.
func TestTheRecentEventsKeepTheirOwnCopyOfTheData(t *testing.T) {
	r := newRecentEvents(4, 1<<20)
	rows := recentRows(1, 1, 3)
	r.add(rows)
	copy(rows[0].Data, "yyy")
	got, _, _ := r.read(1, 1)
	if string(got[0].Data) != "xxx" {
		t.Fatalf("kept data = %q after the appender's buffer changed, want %q", got[0].Data, "xxx")
	}
}

// A read that reaches the last commit is whole only while that commit is
// known to be the log's head: where the adapter watches for another
// process's appends, until the watch finds one or a commit fails.
func TestAReadEndsAtTheLastCommitOnlyWhileItIsTheHead(t *testing.T) {
	unwatched := newRecentEvents(8, 1<<20)
	unwatched.add(recentRows(1, 3, 10))
	if _, _, ok := unwatched.read(4, 10); ok {
		t.Fatal("unwatched, a read past the last commit is answered from memory, want it sent to the database")
	}
	if got, whole, _ := unwatched.read(2, 10); whole || len(got) != 2 {
		t.Fatalf("unwatched, a read from 2 = %v, whole %v; want [2 3], not whole", positions(got), whole)
	}

	r := newRecentEvents(8, 1<<20)
	r.watched = true
	if _, _, ok := r.read(1, 10); ok {
		t.Fatal("before any commit, a read is answered from memory")
	}
	r.add(recentRows(1, 3, 10))
	if got, whole, ok := r.read(4, 10); !ok || !whole || len(got) != 0 {
		t.Fatalf("caught up with the head: read = %v, whole %v, ok %v; want nothing, whole", positions(got), whole, ok)
	}
	if got, whole, _ := r.read(2, 10); !whole || !slices.Equal(positions(got), []int64{2, 3}) {
		t.Fatalf("a read from 2 = %v, whole %v; want [2 3], whole", positions(got), whole)
	}
	r.behind()
	if _, _, ok := r.read(4, 10); ok {
		t.Fatal("behind the head, a read past the last commit is answered from memory")
	}
	if _, whole, _ := r.read(2, 10); whole {
		t.Fatal("behind the head, a read that reaches the last commit says it is whole")
	}
	r.add(recentRows(6, 6, 10))
	if _, whole, ok := r.read(7, 10); !ok || !whole {
		t.Fatal("after the next commit, a read past it is not answered from memory")
	}
}
