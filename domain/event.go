// Package domain holds Logbook's event envelope, the typed event registry and
// the pure deciders of each area (in subpackages). It imports nothing of ours
// outside itself.
package domain

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Metadata travels with every event. CorrelationID is the request id that
// started the chain of events; CausationID is the id of the event that led
// directly to this one; Actor is who (user, component) caused it.
type Metadata struct {
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	Actor         string `json:"actor,omitempty"`
}

// NewEvent is an event about to be appended. Its ID is assigned by the
// producer so that a retried append of the same event is recognised.
type NewEvent struct {
	ID       uuid.UUID
	Type     string
	Data     json.RawMessage
	Metadata Metadata
}

// RecordedEvent is an event as the store holds it. Data and RawMetadata are the
// exact stored bytes: the hash chain is computed over them, so they are never
// re-encoded.
type RecordedEvent struct {
	ID          uuid.UUID
	Stream      string
	Version     int64 // 0-based position in its stream
	Position    int64 // 1-based global position, without gaps
	Type        string
	Data        json.RawMessage
	RawMetadata json.RawMessage
	RecordedAt  time.Time
	PrevHash    []byte
	Hash        []byte
}

// Metadata decodes the stored metadata. Unknown fields are ignored.
func (e RecordedEvent) Metadata() Metadata {
	var m Metadata
	_ = json.Unmarshal(e.RawMetadata, &m) // stored metadata was validated as JSON on append
	return m
}

// Payload is a typed event body. EventType names it in the store and must be
// stable forever: renaming it orphans every stored event of the old name.
type Payload interface {
	EventType() string
}

// Raw is how an event of a type this build does not know is read back: its
// type and exact bytes, never dropped.
type Raw struct {
	Type string
	Data json.RawMessage
}

// EventType implements Payload.
func (r Raw) EventType() string { return r.Type }

var registry = struct {
	sync.RWMutex
	types map[string]reflect.Type
}{types: map[string]reflect.Type{}}

// Register makes T decodable by its EventType. Registering two different Go
// types under one name is a programming error and panics at start-up.
func Register[T Payload]() {
	var zero T
	name := zero.EventType()
	t := reflect.TypeOf(zero)
	registry.Lock()
	defer registry.Unlock()
	if prev, ok := registry.types[name]; ok && prev != t {
		panic(fmt.Sprintf("domain: event type %q registered twice (%v and %v)", name, prev, t))
	}
	registry.types[name] = t
}

// RegisteredTypes lists the event type names this build knows, sorted.
func RegisteredTypes() []string {
	registry.RLock()
	defer registry.RUnlock()
	names := make([]string, 0, len(registry.types))
	for name := range registry.types {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Decode turns a recorded event into its typed payload (a value, not a
// pointer). An event whose type is not registered comes back as Raw.
func Decode(e RecordedEvent) (Payload, error) {
	registry.RLock()
	t, ok := registry.types[e.Type]
	registry.RUnlock()
	if !ok {
		return Raw{Type: e.Type, Data: e.Data}, nil
	}
	ptr := reflect.New(t)
	if err := json.Unmarshal(e.Data, ptr.Interface()); err != nil {
		return nil, fmt.Errorf("decode %s at position %d: %w", e.Type, e.Position, err)
	}
	return ptr.Elem().Interface().(Payload), nil
}

// NewEventID returns a fresh UUIDv7: time-ordered, so ids sort roughly in
// creation order and index well.
func NewEventID() uuid.UUID {
	return uuid.Must(uuid.NewV7())
}

// Encode prepares a typed payload for appending, with a fresh id.
func Encode(p Payload, md Metadata) (NewEvent, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return NewEvent{}, fmt.Errorf("encode %s: %w", p.EventType(), err)
	}
	return NewEvent{ID: NewEventID(), Type: p.EventType(), Data: data, Metadata: md}, nil
}

// MustEncode is Encode for payloads that always marshal (plain structs).
func MustEncode(p Payload, md Metadata) NewEvent {
	e, err := Encode(p, md)
	if err != nil {
		panic(err)
	}
	return e
}
