// Package executortest holds test doubles for the executor: an in-memory
// event store and a harness that wires an Executor straight to it.
package executortest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// MemStore is a minimal in-memory eventstore.Store for tests.
type MemStore struct {
	mu      sync.Mutex
	events  []domain.RecordedEvent
	streams map[string][]int // stream -> indexes into events
	ids     map[string]int
	changed chan struct{}
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{streams: map[string][]int{}, ids: map[string]int{}, changed: make(chan struct{})}
}

func (s *MemStore) Append(_ context.Context, stream string, expected eventstore.ExpectedVersion, events ...domain.NewEvent) (eventstore.AppendResult, error) {
	if err := eventstore.Validate(stream, expected, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dups := 0
	for _, e := range events {
		if i, ok := s.ids[e.ID.String()]; ok {
			if s.events[i].Stream != stream {
				return eventstore.AppendResult{}, fmt.Errorf("%w: %s is in %s", eventstore.ErrDuplicateEvent, e.ID, s.events[i].Stream)
			}
			dups++
		}
	}
	if dups == len(events) {
		first := s.events[s.ids[events[0].ID.String()]]
		last := s.events[s.ids[events[len(events)-1].ID.String()]]
		return eventstore.AppendResult{FirstPosition: first.Position, LastPosition: last.Position, LastVersion: last.Version, Duplicate: true}, nil
	}
	if dups > 0 {
		return eventstore.AppendResult{}, fmt.Errorf("%w: part of the batch is stored", eventstore.ErrDuplicateEvent)
	}
	current := int64(len(s.streams[stream])) - 1
	if !expected.Matches(current) {
		return eventstore.AppendResult{}, &eventstore.VersionConflictError{Stream: stream, Expected: expected, Actual: current}
	}
	res := eventstore.AppendResult{FirstPosition: int64(len(s.events)) + 1}
	for _, e := range events {
		current++
		md, _ := json.Marshal(e.Metadata)
		rec := domain.RecordedEvent{ID: e.ID, Stream: stream, Version: current, Position: int64(len(s.events)) + 1, Type: e.Type, Data: e.Data, RawMetadata: md, RecordedAt: time.Now()}
		s.ids[e.ID.String()] = len(s.events)
		s.streams[stream] = append(s.streams[stream], len(s.events))
		s.events = append(s.events, rec)
	}
	res.LastPosition, res.LastVersion = int64(len(s.events)), current
	close(s.changed)
	s.changed = make(chan struct{})
	return res, nil
}

func (s *MemStore) ReadStream(_ context.Context, stream string, from int64, limit int) ([]domain.RecordedEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []domain.RecordedEvent
	idx := s.streams[stream]
	for v := from; v < int64(len(idx)) && len(out) < limit; v++ {
		out = append(out, s.events[idx[v]])
	}
	return out, nil
}

func (s *MemStore) ReadAll(_ context.Context, from int64, limit int) ([]domain.RecordedEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []domain.RecordedEvent
	for p := max(from, 1); p <= int64(len(s.events)) && len(out) < limit; p++ {
		out = append(out, s.events[p-1])
	}
	return out, nil
}

func (s *MemStore) Head(context.Context) (int64, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.events)), nil, nil
}

func (s *MemStore) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *MemStore) Ping(context.Context) error { return nil }
func (s *MemStore) Close() error               { return nil }

// Payloads decodes a stream's events.
func (s *MemStore) Payloads(stream string) []domain.Payload {
	events, _ := s.ReadStream(context.Background(), stream, 0, 1<<20)
	out := make([]domain.Payload, 0, len(events))
	for _, e := range events {
		p, err := domain.Decode(e)
		if err != nil {
			panic(err)
		}
		out = append(out, p)
	}
	return out
}

// AppendMulti appends the parts atomically: every part is checked under the
// lock before any is written.
func (s *MemStore) AppendMulti(_ context.Context, parts ...eventstore.StreamAppend) ([]eventstore.AppendResult, error) {
	if err := eventstore.ValidateMulti(parts); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	stored, total := 0, 0
	for _, p := range parts {
		for _, e := range p.Events {
			total++
			if i, ok := s.ids[e.ID.String()]; ok {
				if s.events[i].Stream != p.Stream {
					return nil, fmt.Errorf("%w: %s is in %s", eventstore.ErrDuplicateEvent, e.ID, s.events[i].Stream)
				}
				stored++
			}
		}
	}
	results := make([]eventstore.AppendResult, len(parts))
	if stored > 0 {
		if stored < total {
			return nil, fmt.Errorf("%w: part of the batch is stored", eventstore.ErrDuplicateEvent)
		}
		for k, p := range parts {
			first := s.events[s.ids[p.Events[0].ID.String()]]
			last := s.events[s.ids[p.Events[len(p.Events)-1].ID.String()]]
			results[k] = eventstore.AppendResult{FirstPosition: first.Position, LastPosition: last.Position, LastVersion: last.Version, Duplicate: true}
		}
		return results, nil
	}
	for _, p := range parts {
		if current := int64(len(s.streams[p.Stream])) - 1; !p.Expected.Matches(current) {
			return nil, &eventstore.VersionConflictError{Stream: p.Stream, Expected: p.Expected, Actual: current}
		}
	}
	for k, p := range parts {
		current := int64(len(s.streams[p.Stream])) - 1
		res := eventstore.AppendResult{FirstPosition: int64(len(s.events)) + 1}
		for _, e := range p.Events {
			current++
			md, _ := json.Marshal(e.Metadata)
			rec := domain.RecordedEvent{ID: e.ID, Stream: p.Stream, Version: current, Position: int64(len(s.events)) + 1, Type: e.Type, Data: e.Data, RawMetadata: md, RecordedAt: time.Now()}
			s.ids[e.ID.String()] = len(s.events)
			s.streams[p.Stream] = append(s.streams[p.Stream], len(s.events))
			s.events = append(s.events, rec)
		}
		res.LastPosition, res.LastVersion = int64(len(s.events)), current
		results[k] = res
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return results, nil
}
