package eventstore

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/logbookhq/logbook/domain"
)

// HubOptions tune a Hub. The zero value is good.
type HubOptions struct {
	// Buffer is how many events a subscriber may have waiting before it is
	// behind (default 64). A subscriber that is behind gets nothing more
	// from the hub until it has read its streams again from the store, so
	// a slow reader never holds up the others.
	Buffer int
	// BatchSize is how many events one read of the log fetches (500).
	BatchSize int
	// SafetyNet bounds how long the hub trusts the change signal alone
	// (5s), as in Follow.
	SafetyNet time.Duration
	// Spacing is the least time between two reads of the log while it
	// keeps changing (10ms): under a stream of commits one read takes in
	// several of them, at the cost of at most this much delay. A read
	// that comes after a quiet spell, or that goes on through a backlog,
	// is not held back.
	Spacing time.Duration
}

// Hub is one follower of the log for every live reader of a stream in the
// process: it reads each new event once and hands it to the subscribers of
// its stream only. Without it each reader would follow the whole log and
// drop what is not its own, so every append would cost a read per open
// reader. While nobody is subscribed the hub reads nothing.
//
// Run is its one long-running goroutine (a part of the server's
// supervisor); Subscribe may be called before Run starts and while it
// restarts: subscribers then wait, and miss nothing.
type Hub struct {
	store Store
	opts  HubOptions

	mu   sync.Mutex
	subs map[string]map[*Subscription]struct{} // by stream
	// open counts the subscriptions, streams or not.
	open int
	// next is the position the hub reads from; 0 while it is parked
	// because nobody listens.
	next int64
	// resume is closed when a subscriber wakes a parked hub.
	resume chan struct{}
}

// NewHub returns a parked hub over store.
func NewHub(store Store, opts HubOptions) *Hub {
	if opts.Buffer <= 0 {
		opts.Buffer = 64
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.SafetyNet <= 0 {
		opts.SafetyNet = 5 * time.Second
	}
	if opts.Spacing <= 0 {
		opts.Spacing = 10 * time.Millisecond
	}
	return &Hub{store: store, opts: opts, subs: map[string]map[*Subscription]struct{}{}, resume: make(chan struct{})}
}

// Run follows the log while anyone is subscribed and parks while nobody
// is, until ctx ends. A read error ends it; run again, it goes on from the
// position it had reached, so no subscriber misses an event.
func (h *Hub) Run(ctx context.Context) error {
	timer := time.NewTimer(h.opts.SafetyNet)
	defer timer.Stop()
	var lastRead time.Time
	backlog := false
	for {
		from, ok := h.awaitSubscribers(ctx)
		if !ok {
			return nil
		}
		if wait := h.opts.Spacing - time.Since(lastRead); wait > 0 && !backlog {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
		}
		// Take the signal before reading, so an append between the read
		// and the wait still wakes the hub.
		changed := h.store.Changed()
		lastRead = time.Now()
		events, err := ReadLive(ctx, h.store, from, h.opts.BatchSize)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("live streams: reading the log from position %d: %w", from, err)
		}
		h.dispatch(events)
		if backlog = len(events) == h.opts.BatchSize; backlog {
			continue
		}
		timer.Reset(h.opts.SafetyNet)
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-timer.C:
		}
	}
}

// awaitSubscribers returns the position to read from, once someone is
// subscribed; false when ctx ended first. With nobody subscribed the hub
// forgets its position: the next subscriber sets it (see join).
func (h *Hub) awaitSubscribers(ctx context.Context) (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for h.open == 0 || h.next == 0 {
		if h.open == 0 {
			h.next = 0
		}
		resume := h.resume
		h.mu.Unlock()
		select {
		case <-resume:
		case <-ctx.Done():
			h.mu.Lock()
			return 0, false
		}
		h.mu.Lock()
	}
	return h.next, true
}

// dispatch hands each event to the subscribers of its stream. One that
// has no room is marked behind and told so, and gets nothing until it has
// caught up from the store.
func (h *Hub) dispatch(events []domain.RecordedEvent) {
	if len(events) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range events {
		for s := range h.subs[e.Stream] {
			if s.behind {
				continue
			}
			select {
			case s.events <- e:
			default:
				s.behind = true
				select {
				case s.lagged <- struct{}{}:
				default: // told already
				}
			}
		}
	}
	h.next = events[len(events)-1].Position + 1
}

// join counts a new subscription. A parked hub must start reading at or
// before the first event appended after the subscription, and the head
// read before it counts guarantees that: positions become visible in
// order.
func (h *Hub) join(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for h.next == 0 {
		h.mu.Unlock()
		head, _, err := h.store.Head(ctx)
		h.mu.Lock()
		if err != nil {
			return fmt.Errorf("live streams: reading the head: %w", err)
		}
		if h.next == 0 {
			h.next = head + 1
			close(h.resume)
			h.resume = make(chan struct{})
		}
	}
	h.open++
	return nil
}

// Subscribe returns a subscription to streams: its Events are what the
// streams hold, read from the store, then each event as it is appended.
// Close it when done.
func (h *Hub) Subscribe(ctx context.Context, streams ...string) (*Subscription, error) {
	if err := h.join(ctx); err != nil {
		return nil, err
	}
	s := &Subscription{hub: h, events: make(chan domain.RecordedEvent, h.opts.Buffer), lagged: make(chan struct{}, 1),
		next: map[string]int64{}, unread: map[string]bool{}, queued: map[string]int{}}
	for _, stream := range streams {
		s.Add(stream)
	}
	return s, nil
}

// Subscription is one reader's share of a Hub. It is read by one
// goroutine, which is also the one that calls Add and Close.
type Subscription struct {
	hub    *Hub
	events chan domain.RecordedEvent
	lagged chan struct{}
	behind bool // guarded by hub.mu

	// The reader's own: for each stream the version of the next event to
	// yield; the streams to read from the store; how many events of each
	// stream are read but not yet yielded.
	next   map[string]int64
	unread map[string]bool
	queued map[string]int
	closed bool
}

// Add follows one more stream, from its first event. Called while the
// reader handles an event, the stream's stored events come next.
func (s *Subscription) Add(stream string) {
	if _, ok := s.next[stream]; ok || s.closed {
		return
	}
	h := s.hub
	h.mu.Lock()
	subs := h.subs[stream]
	if subs == nil {
		subs = map[*Subscription]struct{}{}
		h.subs[stream] = subs
	}
	subs[s] = struct{}{}
	h.mu.Unlock()
	// Registered before it is read: whatever the read misses, the hub
	// hands over.
	s.next[stream] = 0
	s.unread[stream] = true
}

// Close ends the subscription.
func (s *Subscription) Close() {
	if s.closed {
		return
	}
	s.closed = true
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	for stream := range s.next {
		delete(h.subs[stream], s)
		if len(h.subs[stream]) == 0 {
			delete(h.subs, stream)
		}
	}
	h.open--
}

// Events yields the events of the subscription's streams, each once and
// in its stream's order: first what the store holds (one page of each
// stream at a time, in log order), then each one as the hub hands it
// over, until ctx ends or the loop stops. A stream added meanwhile is read
// from the store before anything else. After falling behind, the
// subscription reads its streams again from where it was. A read error is
// yielded and ends it.
func (s *Subscription) Events(ctx context.Context) iter.Seq2[domain.RecordedEvent, error] {
	return func(yield func(domain.RecordedEvent, error) bool) {
		var queue []domain.RecordedEvent
		for !s.closed {
			if page, err := s.readUnread(ctx); err != nil {
				if ctx.Err() == nil {
					yield(domain.RecordedEvent{}, err)
				}
				return
			} else if len(page) > 0 {
				queue = append(page, queue...)
			}
			if len(queue) > 0 {
				e := queue[0]
				queue = queue[1:]
				s.queued[e.Stream]--
				if s.fresh(e) && !yield(e, nil) {
					return
				}
				continue
			}
			select {
			case e := <-s.events:
				if s.fresh(e) && !yield(e, nil) {
					return
				}
			case <-s.lagged:
				s.hub.mu.Lock()
				s.behind = false
				s.hub.mu.Unlock()
				for stream := range s.next {
					s.unread[stream] = true
				}
			case <-ctx.Done():
				return
			}
		}
	}
}

// fresh reports whether e is the next event of its stream, and counts it
// yielded. An event already yielded is not fresh. An event past the next
// one means some were missed, which the hub's order rules out; the store
// has them, so the stream is read again from where it was.
func (s *Subscription) fresh(e domain.RecordedEvent) bool {
	want, ok := s.next[e.Stream]
	switch {
	case !ok || e.Version < want:
		return false
	case e.Version > want:
		s.unread[e.Stream] = true
		return false
	}
	s.next[e.Stream] = want + 1
	return true
}

// readUnread reads a page of each stream that waits for a read and has
// nothing queued, merged in log order. A stream whose page is full stays
// unread, to be read on once its page has been yielded.
func (s *Subscription) readUnread(ctx context.Context) ([]domain.RecordedEvent, error) {
	var page []domain.RecordedEvent
	for stream := range s.unread {
		if s.queued[stream] > 0 {
			continue
		}
		events, err := s.hub.store.ReadStream(ctx, stream, s.next[stream], s.hub.opts.BatchSize)
		if err != nil {
			return nil, fmt.Errorf("live streams: reading %s: %w", stream, err)
		}
		if len(events) < s.hub.opts.BatchSize {
			delete(s.unread, stream)
		}
		s.queued[stream] += len(events)
		page = append(page, events...)
	}
	slices.SortFunc(page, func(a, b domain.RecordedEvent) int { return cmp.Compare(a.Position, b.Position) })
	return page, nil
}
