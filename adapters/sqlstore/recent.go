package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/logbookhq/logbook/domain"
)

// The latest events this store's writer committed are kept in memory, so
// that the followers in this process (the dispatcher, the views, the
// Merkle tree's maintainer, the live streams) read what was just appended
// without reading it back: under builtin load each event was read back
// from SQLite two to three times, about a seventh of the server's CPU
// (docs/benchmarks.md). A database can hold nothing else at a position
// once it is committed, so a copy taken at the commit stays true.
//
// Only the reads meant for followers use it (ReadRecent and ReadFeed).
// ReadAll, which the chain's verification uses, always reads the
// database: a verification must check what is stored.

// Default bounds of the recent events: whichever is reached first.
const (
	recentMaxEvents = 8192
	recentMaxBytes  = 16 << 20
)

// recentEvents is a ring of the last committed events, at consecutive
// positions first..last (none while last < first).
type recentEvents struct {
	mu       sync.RWMutex
	ring     []domain.RecordedEvent // position p at ring[p % len(ring)]
	first    int64
	last     int64
	bytes    int
	maxBytes int
	// atHead says that last is the log's head as far as this process has
	// seen: set at each commit of this store's writer where the adapter
	// watches for other processes' appends (WatchForeignAppends), cleared
	// when that watch finds one, or when a commit fails. While it holds, a
	// follower that has read up to last is caught up without asking the
	// database: at warm load those reads, which found nothing, were a
	// tenth of the server's CPU.
	atHead  bool
	watched bool
}

func newRecentEvents(maxEvents, maxBytes int) *recentEvents {
	return &recentEvents{ring: make([]domain.RecordedEvent, maxEvents), first: 1, maxBytes: maxBytes}
}

func eventBytes(e *domain.RecordedEvent) int {
	return len(e.Data) + len(e.RawMetadata) + len(e.Stream) + len(e.Type) + len(e.Hash) + 128
}

// add keeps rows, which a commit has just made durable at consecutive
// positions. Rows that do not follow the last kept event (another process
// appended in between) replace what is kept. The data is copied: the
// appender's buffers are its own.
func (r *recentEvents) add(rows []domain.RecordedEvent) {
	if len(rows) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if rows[0].Position != r.last+1 {
		clear(r.ring)
		r.first, r.last, r.bytes = rows[0].Position, rows[0].Position-1, 0
	}
	r.atHead = r.watched
	for i := range rows {
		e := rows[i]
		e.Data = append([]byte(nil), e.Data...)
		e.RawMetadata = append([]byte(nil), e.RawMetadata...)
		if r.last-r.first+1 == int64(len(r.ring)) {
			r.dropFirst()
		}
		r.last = e.Position
		r.ring[e.Position%int64(len(r.ring))] = e
		r.bytes += eventBytes(&e)
		for r.bytes > r.maxBytes && r.first < r.last {
			r.dropFirst()
		}
	}
}

func (r *recentEvents) dropFirst() {
	slot := &r.ring[r.first%int64(len(r.ring))]
	r.bytes -= eventBytes(slot)
	*slot = domain.RecordedEvent{}
	r.first++
}

// read copies out up to limit events from position from on. whole says
// the copy is all the log holds there: it reached limit, or it reached
// the head while atHead holds. ok is false when from is not kept (and is
// not just past the head).
func (r *recentEvents) read(from int64, limit int) (out []domain.RecordedEvent, whole, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if from == r.last+1 && r.atHead {
		return nil, true, true
	}
	if from < r.first || from > r.last {
		return nil, false, false
	}
	n := min(r.last-from+1, int64(limit))
	out = make([]domain.RecordedEvent, n)
	for i := range out {
		out[i] = r.ring[(from+int64(i))%int64(len(r.ring))]
	}
	return out, n == int64(limit) || r.atHead, true
}

// head is the last position kept, and whether it is the log's head as far
// as this process has seen.
func (r *recentEvents) head() (int64, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.last, r.atHead
}

// behind clears atHead: the database may hold more than the last commit.
func (r *recentEvents) behind() {
	r.mu.Lock()
	r.atHead = false
	r.mu.Unlock()
}

// feed copies out the events at positions from through to whose type is
// in types (all when empty), with the fields ReadFeed leaves zero zeroed,
// when it holds every position of that range.
func (r *recentEvents) feed(from, to int64, types []string) ([]domain.RecordedEvent, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if from < r.first || to > r.last {
		return nil, false
	}
	out := make([]domain.RecordedEvent, 0, to-from+1)
	for p := from; p <= to; p++ {
		e := &r.ring[p%int64(len(r.ring))]
		if len(types) > 0 && !slices.Contains(types, e.Type) {
			continue
		}
		out = append(out, domain.RecordedEvent{Position: e.Position, Stream: e.Stream, Version: e.Version, Type: e.Type, Data: e.Data, RecordedAt: e.RecordedAt})
	}
	return out, true
}

// ReadRecent implements eventstore.RecentReader: ReadAll for a follower.
// The events this store's writer committed last come from memory; what
// lies before them, or after them (another process's appends), is read
// from the database.
func (s *Store) ReadRecent(ctx context.Context, from int64, limit int) ([]domain.RecordedEvent, error) {
	from, limit = max(from, 1), readLimit(limit)
	kept, whole, ok := s.recent.read(from, limit)
	switch {
	case !ok:
		return s.ReadAll(ctx, from, limit)
	case whole:
		return kept, nil
	}
	rest, err := s.ReadAll(ctx, kept[len(kept)-1].Position+1, limit-len(kept))
	if err != nil {
		return nil, err
	}
	return append(kept, rest...), nil
}

// WatchForeignAppends says the adapter watches for other processes'
// appends and calls CheckForeignAppends when the database may have
// changed (and now and then in any case). From then on, a follower caught
// up with this store's last commit is not sent to the database to find
// nothing (recentEvents.atHead).
func (s *Store) WatchForeignAppends() {
	s.recent.mu.Lock()
	s.recent.watched = true
	s.recent.mu.Unlock()
}

// CheckForeignAppends reads the log's head, and reports whether it is
// beyond this store's last commit: another process appended. The followers
// then read the database again until this store's next commit. The caller
// wakes them (Changed) when it reports true.
func (s *Store) CheckForeignAppends(ctx context.Context) (bool, error) {
	if _, atHead := s.recent.head(); !atHead {
		return false, nil // the followers ask the database already
	}
	var stored int64
	if err := s.reads.QueryRowContext(ctx, "SELECT COALESCE(MAX(position), 0) FROM events").Scan(&stored); err != nil {
		return false, fmt.Errorf("read the %s log's head: %w", s.dialect.Name(), err)
	}
	// Read after the head: a commit of this store's own in between only
	// raises last (a commit not yet kept reads as foreign, which costs the
	// followers a read of the database, nothing more).
	if last, _ := s.recent.head(); stored > last {
		s.recent.behind()
		return true, nil
	}
	return false, nil
}
