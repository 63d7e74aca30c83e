// Package eventstore defines the Store port: an append-only, hash-chained log
// of events with a gap-free global order. Adapters live in adapters/; every
// adapter passes the conformance suite in storetest.
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/logbookhq/logbook/domain"
)

// MaxEventBytes bounds one event's data plus metadata. Large outputs are
// chunked by their producers; anything bigger than this is a bug upstream.
const MaxEventBytes = 4 << 20 // 4 MiB

// ExpectedVersion states what the writer believes about the stream.
type ExpectedVersion int64

const (
	// Any appends whatever the stream's state.
	Any ExpectedVersion = -2
	// NoStream appends only when the stream has no events yet.
	NoStream ExpectedVersion = -1
)

// Exact expects the stream's last event to have version v.
func Exact(v int64) ExpectedVersion { return ExpectedVersion(v) }

func (ev ExpectedVersion) String() string {
	switch ev {
	case Any:
		return "any"
	case NoStream:
		return "no stream"
	default:
		return fmt.Sprintf("version %d", int64(ev))
	}
}

// Matches reports whether a stream whose last version is current (-1 when the
// stream is empty) satisfies the expectation.
func (ev ExpectedVersion) Matches(current int64) bool {
	switch ev {
	case Any:
		return true
	case NoStream:
		return current == -1
	default:
		return int64(ev) == current
	}
}

// AppendResult says where an append landed. For an idempotent repeat it
// describes the events already stored.
type AppendResult struct {
	FirstPosition int64
	LastPosition  int64
	LastVersion   int64
	Duplicate     bool // every event was already stored; nothing was written
}

// Store is the port every event store adapter implements.
type Store interface {
	// Append writes events to the end of stream atomically, provided the
	// stream's current version matches expected. Appending events whose ids
	// are all already stored, in the same stream and order, is a no-op that
	// returns the stored positions.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events ...domain.NewEvent) (AppendResult, error)
	// AppendMulti writes to several streams in one atomic commit: every
	// part is written, or none is. Each part's expected version is checked
	// as Append checks it; a conflict on any part returns that part's
	// *VersionConflictError and writes nothing. Repeating an AppendMulti
	// whose events are all stored, in the same streams and order, is a no-op
	// that returns the stored positions; when only some of its events are
	// stored it fails with ErrDuplicateEvent. Results are in part order, and
	// the parts' events take consecutive positions in part order.
	AppendMulti(ctx context.Context, parts ...StreamAppend) ([]AppendResult, error)
	// ReadStream returns up to limit events of stream from version from on.
	ReadStream(ctx context.Context, stream string, from int64, limit int) ([]domain.RecordedEvent, error)
	// ReadAll returns up to limit events in global order from position from on.
	ReadAll(ctx context.Context, from int64, limit int) ([]domain.RecordedEvent, error)
	// Head returns the highest position and its hash (0 and nil when empty).
	Head(ctx context.Context) (int64, []byte, error)
	// Changed returns a channel that is closed after the next append made
	// visible after the call (by this process or, where the database can tell,
	// another). Feeds wait on it instead of polling.
	Changed() <-chan struct{}
	// Ping checks the database answers.
	Ping(ctx context.Context) error
	Close() error
}

// StreamAppend is one stream's part of an AppendMulti.
type StreamAppend struct {
	Stream   string
	Expected ExpectedVersion
	Events   []domain.NewEvent
}

// ValidateMulti checks an AppendMulti as Validate checks an Append, and
// that the parts name distinct streams and repeat no event id.
func ValidateMulti(parts []StreamAppend) error {
	if len(parts) == 0 {
		return fmt.Errorf("%w: a multi-stream append has no parts", ErrInvalidEvent)
	}
	streams := make(map[string]bool, len(parts))
	ids := map[[16]byte]string{}
	for _, p := range parts {
		if err := Validate(p.Stream, p.Expected, p.Events); err != nil {
			return err
		}
		if streams[p.Stream] {
			return fmt.Errorf("%w: stream %s appears twice in one multi-stream append; give it one part", ErrInvalidEvent, p.Stream)
		}
		streams[p.Stream] = true
		for _, e := range p.Events {
			if other, seen := ids[e.ID]; seen {
				return fmt.Errorf("%w: event id %s is in the parts for %s and %s", ErrInvalidEvent, e.ID, other, p.Stream)
			}
			ids[e.ID] = p.Stream
		}
	}
	return nil
}

// ErrWrongExpectedVersion is the kind of a concurrency conflict.
var ErrWrongExpectedVersion = errors.New("wrong expected version")

// VersionConflictError says what the writer expected and what the stream had.
type VersionConflictError struct {
	Stream   string
	Expected ExpectedVersion
	Actual   int64 // -1 when the stream has no events
}

func (e *VersionConflictError) Error() string {
	actual := "no events"
	if e.Actual >= 0 {
		actual = fmt.Sprintf("version %d", e.Actual)
	}
	return fmt.Sprintf("stream %s: expected %s, but it is at %s", e.Stream, e.Expected, actual)
}

func (e *VersionConflictError) Unwrap() error { return ErrWrongExpectedVersion }

// ErrInvalidEvent is the kind of every rejection of an event's content.
var ErrInvalidEvent = errors.New("invalid event")

// ErrDuplicateEvent means an event id is already stored elsewhere: in another
// stream, or as part of a different batch.
var ErrDuplicateEvent = errors.New("duplicate event id")

// Validate checks an append before it reaches the database, so a bad event
// never leaves a partial write behind.
func Validate(stream string, expected ExpectedVersion, events []domain.NewEvent) error {
	if err := ValidateStreamName(stream); err != nil {
		return err
	}
	if expected < Any {
		return fmt.Errorf("%w: expected version %d is not any (-2), no stream (-1) or a version", ErrInvalidEvent, int64(expected))
	}
	if len(events) == 0 {
		return fmt.Errorf("%w: append to %s has no events", ErrInvalidEvent, stream)
	}
	seen := make(map[string]bool, len(events))
	for i, e := range events {
		where := fmt.Sprintf("event %d of %d for %s", i+1, len(events), stream)
		if e.ID == [16]byte{} {
			return fmt.Errorf("%w: %s has no id", ErrInvalidEvent, where)
		}
		if seen[e.ID.String()] {
			return fmt.Errorf("%w: %s repeats id %s within the batch", ErrInvalidEvent, where, e.ID)
		}
		seen[e.ID.String()] = true
		if strings.TrimSpace(e.Type) == "" {
			return fmt.Errorf("%w: %s (id %s) has no type", ErrInvalidEvent, where, e.ID)
		}
		if len(e.Data) == 0 {
			return fmt.Errorf("%w: %s (%s, id %s) has no data; use {} for none", ErrInvalidEvent, where, e.Type, e.ID)
		}
		if !jsonValid(e.Data) {
			return fmt.Errorf("%w: %s (%s, id %s): data is not valid JSON", ErrInvalidEvent, where, e.Type, e.ID)
		}
		if size := len(e.Data); size > MaxEventBytes {
			return fmt.Errorf("%w: %s (%s, id %s) is %d bytes, over the %d-byte (4 MiB) event size limit", ErrInvalidEvent, where, e.Type, e.ID, size, MaxEventBytes)
		}
	}
	return nil
}

// ValidateStreamName enforces the `category-id` form.
func ValidateStreamName(stream string) error {
	category, id, ok := strings.Cut(stream, "-")
	if !ok || category == "" || id == "" {
		return fmt.Errorf("%w: stream name %q is not of the form category-id", ErrInvalidEvent, stream)
	}
	if len(stream) > 512 {
		return fmt.Errorf("%w: stream name is %d bytes, over the 512-byte limit", ErrInvalidEvent, len(stream))
	}
	return nil
}
