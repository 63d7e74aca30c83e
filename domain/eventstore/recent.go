package eventstore

import (
	"context"

	"github.com/logbookhq/logbook/domain"
)

// RecentReader is a store that keeps the events its own writer committed
// last in memory, for the followers in its process.
type RecentReader interface {
	// ReadRecent returns what ReadAll returns, reading the events the
	// store keeps in memory from there rather than from the database.
	ReadRecent(ctx context.Context, from int64, limit int) ([]domain.RecordedEvent, error)
}

// ReadLive is ReadAll for a consumer that follows the log as it grows:
// from memory where the store keeps its latest appends (RecentReader).
// A verification of the log reads what is stored, with ReadAll.
func ReadLive(ctx context.Context, s Store, from int64, limit int) ([]domain.RecordedEvent, error) {
	if r, ok := s.(RecentReader); ok {
		return r.ReadRecent(ctx, from, limit)
	}
	return s.ReadAll(ctx, from, limit)
}
