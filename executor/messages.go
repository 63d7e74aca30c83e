package executor

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/run"
)

// Default topic names.
const (
	TopicRunRequested = "run.requested"
	TopicRunCancel    = "run.cancel"
	TopicRunEvents    = "run.events"
	TopicPoison       = "run.poison"
)

// RunRequest is the message that asks executors to run a command: the
// stored RunRequested plus the values of its EnvNames. Those values (secrets
// among them) travel only here, never in an event.
type RunRequest struct {
	RunID string `json:"run_id"`
	// EventID is the id of the stored RunRequested, the causation of every
	// event the run records. Empty when the request was not stored first:
	// the executor then records RunRequested itself.
	EventID string            `json:"event_id,omitempty"`
	Request run.RunRequested  `json:"request"`
	Env     map[string]string `json:"env,omitempty"`
}

// CancelRequest asks whichever executor holds a run to stop it.
type CancelRequest struct {
	RunID  string `json:"run_id"`
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// ErrBadMessage is the kind of a message that cannot be understood; it is
// never retried.
var ErrBadMessage = errors.New("bad message")

// NewRunRequestMessage encodes r for the run.requested topic. The message's
// correlation id is the request id.
func NewRunRequestMessage(r RunRequest) (*message.Message, error) {
	if r.RunID == "" {
		return nil, fmt.Errorf("%w: run request has no run id", ErrBadMessage)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode run request %s: %w", r.RunID, err)
	}
	msg := message.NewMessage(uuid.NewString(), b)
	middleware.SetCorrelationID(r.Request.RequestID, msg)
	return msg, nil
}

// DecodeRunRequest reads a run.requested message.
func DecodeRunRequest(msg *message.Message) (RunRequest, error) {
	var r RunRequest
	if err := json.Unmarshal(msg.Payload, &r); err != nil {
		return r, fmt.Errorf("%w: run request %s is not JSON: %v", ErrBadMessage, msg.UUID, err)
	}
	if r.RunID == "" {
		return r, fmt.Errorf("%w: run request %s has no run_id", ErrBadMessage, msg.UUID)
	}
	if err := run.ValidateID(r.RunID); err != nil {
		return r, fmt.Errorf("%w: run request %s: %v", ErrBadMessage, msg.UUID, err)
	}
	return r, nil
}

// NewCancelMessage encodes c for the run.cancel topic.
func NewCancelMessage(c CancelRequest) (*message.Message, error) {
	if c.RunID == "" {
		return nil, fmt.Errorf("%w: cancel request has no run id", ErrBadMessage)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return message.NewMessage(uuid.NewString(), b), nil
}

// DecodeCancel reads a run.cancel message.
func DecodeCancel(msg *message.Message) (CancelRequest, error) {
	var c CancelRequest
	if err := json.Unmarshal(msg.Payload, &c); err != nil || c.RunID == "" {
		return c, fmt.Errorf("%w: cancel request %s has no run_id", ErrBadMessage, msg.UUID)
	}
	return c, nil
}

// Metadata keys of a run event message.
const (
	metaStream      = "stream"
	metaVersion     = "version"
	metaType        = "type"
	metaCausation   = "causation_id"
	metaActor       = "actor"
	metaCorrelation = middleware.CorrelationIDMetadataKey
)

// NewEventMessage wraps an event bound for stream at version for the
// run.events topic. The message uuid is the event id, so the Appender's
// append is idempotent however often the message is delivered.
func NewEventMessage(stream string, version int64, e domain.NewEvent) *message.Message {
	msg := message.NewMessage(e.ID.String(), message.Payload(e.Data))
	msg.Metadata.Set(metaStream, stream)
	msg.Metadata.Set(metaVersion, strconv.FormatInt(version, 10))
	msg.Metadata.Set(metaType, e.Type)
	msg.Metadata.Set(metaCorrelation, e.Metadata.CorrelationID)
	msg.Metadata.Set(metaCausation, e.Metadata.CausationID)
	msg.Metadata.Set(metaActor, e.Metadata.Actor)
	return msg
}

// DecodeEventMessage reads a run.events message back.
func DecodeEventMessage(msg *message.Message) (stream string, version int64, e domain.NewEvent, err error) {
	id, err := uuid.Parse(msg.UUID)
	if err != nil {
		return "", 0, e, fmt.Errorf("%w: event message id %q is not a uuid", ErrBadMessage, msg.UUID)
	}
	stream = msg.Metadata.Get(metaStream)
	version, err = strconv.ParseInt(msg.Metadata.Get(metaVersion), 10, 64)
	if stream == "" || err != nil || version < 0 {
		return "", 0, e, fmt.Errorf("%w: event message %s has no stream or version", ErrBadMessage, msg.UUID)
	}
	e = domain.NewEvent{
		ID:   id,
		Type: msg.Metadata.Get(metaType),
		Data: json.RawMessage(msg.Payload),
		Metadata: domain.Metadata{
			CorrelationID: msg.Metadata.Get(metaCorrelation),
			CausationID:   msg.Metadata.Get(metaCausation),
			Actor:         msg.Metadata.Get(metaActor),
		},
	}
	return stream, version, e, nil
}
