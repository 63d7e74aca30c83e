package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/logbookhq/logbook/domain"
)

// maxFeedRange bounds how many positions one ReadFeed covers, so a read
// never holds more than that many rows however sparse the types are.
const maxFeedRange = 1_000_000

// ReadFeed reads the events at positions from through to (inclusive) whose
// type is one of types (every type when types is empty), in global order.
// It is the lean read for views that replay the log: only the position,
// stream, version, type, data and recording time are read; the id,
// metadata and hashes are left zero, and rows of other types never leave
// the database. Because positions have no gaps, a view that read up to to
// has seen every event of its types up to to. A range among the events
// this store's writer committed last is read from memory (recent.go).
func (s *Store) ReadFeed(ctx context.Context, from, to int64, types []string) ([]domain.RecordedEvent, error) {
	from = max(from, 1)
	if to < from {
		return nil, nil
	}
	if to-from >= maxFeedRange {
		return nil, fmt.Errorf("read the %s feed from %d to %d: at most %d positions at a time", s.dialect.Name(), from, to, maxFeedRange)
	}
	if kept, ok := s.recent.feed(from, to, types); ok {
		return kept, nil
	}
	var q strings.Builder
	q.WriteString("SELECT position, stream_id, version, type, data, recorded_at FROM events WHERE position >= $1 AND position <= $2")
	args := make([]any, 0, 2+len(types))
	args = append(args, from, to)
	if len(types) > 0 {
		q.WriteString(" AND type IN (")
		for i, t := range types {
			if i > 0 {
				q.WriteString(", ")
			}
			args = append(args, t)
			fmt.Fprintf(&q, "$%d", len(args))
		}
		q.WriteString(")")
	}
	q.WriteString(" ORDER BY position")
	rows, err := s.reads.QueryContext(ctx, s.dialect.Rebind(q.String()), args...)
	if err != nil {
		return nil, fmt.Errorf("read %s feed: %w", s.dialect.Name(), err)
	}
	defer rows.Close()
	out := make([]domain.RecordedEvent, 0, min(to-from+1, 16384))
	// Streams and types repeat a lot within a range; keeping one copy of
	// each saves an allocation per row for the type.
	typeNames := map[string]string{}
	var typeBuf []byte
	for rows.Next() {
		var (
			e        domain.RecordedEvent
			recorded any
		)
		if err := rows.Scan(&e.Position, &e.Stream, &e.Version, &typeBuf, &e.Data, &recorded); err != nil {
			return nil, fmt.Errorf("read %s feed: %w", s.dialect.Name(), err)
		}
		name, ok := typeNames[string(typeBuf)]
		if !ok {
			name = string(typeBuf)
			typeNames[name] = name
		}
		e.Type = name
		// As in ReadAll, a time tampered into nonsense reads as zero; the
		// audit names it, and a view records no time rather than stopping.
		e.RecordedAt, _ = s.dialect.DecodeTime(recorded)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s feed: %w", s.dialect.Name(), err)
	}
	return out, nil
}
