package eventstore

import (
	"context"
	"iter"
	"time"

	"github.com/logbookhq/logbook/domain"
)

// FeedOptions tune Follow. The zero value is good.
type FeedOptions struct {
	// BatchSize is how many events one read fetches (default 500).
	BatchSize int
	// SafetyNet bounds how long the feed trusts the change signal alone
	// before it looks again (default 5s). It is a backstop for a missed
	// cross-process notification, not a polling loop.
	SafetyNet time.Duration
}

// Follow yields every event from position from on, in global order: first
// what is stored (catch-up), then each new event as it is appended (live
// tail), until ctx ends. It waits on the store's change signal, never by
// busy polling. A consumer that checkpoints position p resumes with
// Follow(ctx, s, p+1, ...). On a read error the error is yielded and the
// feed stops.
func Follow(ctx context.Context, s Store, from int64, opts FeedOptions) iter.Seq2[domain.RecordedEvent, error] {
	return func(yield func(domain.RecordedEvent, error) bool) {
		for page, err := range FollowPages(ctx, s, from, opts) {
			if err != nil {
				yield(domain.RecordedEvent{}, err)
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
			}
		}
	}
}

// FollowPages is Follow a read at a time: each page is what one read of
// the log returned (never empty), so a consumer can act on the events
// that came together at once.
func FollowPages(ctx context.Context, s Store, from int64, opts FeedOptions) iter.Seq2[[]domain.RecordedEvent, error] {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.SafetyNet <= 0 {
		opts.SafetyNet = 5 * time.Second
	}
	if from < 1 {
		from = 1
	}
	return func(yield func([]domain.RecordedEvent, error) bool) {
		next := from
		timer := time.NewTimer(opts.SafetyNet)
		defer timer.Stop()
		for {
			// Subscribe before reading, so an append that lands between the
			// read and the wait still wakes us.
			changed := s.Changed()
			events, err := ReadLive(ctx, s, next, opts.BatchSize)
			if err != nil {
				if ctx.Err() == nil {
					yield(nil, err)
				}
				return
			}
			if len(events) > 0 {
				if !yield(events, nil) {
					return
				}
				next = events[len(events)-1].Position + 1
			}
			if len(events) == opts.BatchSize {
				continue
			}
			timer.Reset(opts.SafetyNet)
			select {
			case <-ctx.Done():
				return
			case <-changed:
			case <-timer.C:
			}
		}
	}
}
