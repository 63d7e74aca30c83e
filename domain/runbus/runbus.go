// Package runbus is the contract between the dispatcher, which requests
// runs, and the executors, which run them: the topics, the run request
// and cancel messages, and how they are encoded on a watermill message
// (an envelope only: this package does no I/O).
package runbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain/run"
)

// Topics of the run-request contract.
const (
	// TopicRunRequested carries runs for the executors of containers.
	TopicRunRequested = "run.requested"
	// TopicBuiltinRequested carries the runs of builtin commands, for the
	// builtin executor.
	TopicBuiltinRequested = "run.builtin"
	// TopicRunCancel carries cancels to whichever executor holds a run.
	TopicRunCancel = "run.cancel"
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
	// SealedEnv is Env sealed to the relay group's public key (NaCl
	// anonymous box) when the request crosses a broker: NATS keeps its
	// streams on disk, so a secret never travels there in the clear.
	SealedEnv []byte `json:"sealed_env,omitempty"`

	// justRequested is JustRequested's mark: in memory only, never
	// encoded, shared by the copies of one request.
	justRequested *atomic.Bool
}

// JustRequested returns r marked as a run whose stream this process has
// just created, its RunRequested the only event in it, and hands out for
// the first time. The mark is never encoded: a request that crossed a
// broker, or was published again after a restart, has none.
func (r RunRequest) JustRequested() RunRequest {
	r.justRequested = new(atomic.Bool)
	return r
}

// TakeJustRequested reports whether r carries JustRequested's mark and no
// copy of r took it before. Only the first handling of the request may
// trust that the run's stream holds its RunRequested alone and skip
// reading it; a retry or a redelivery of the same message finds the mark
// taken and reads the stream.
func (r RunRequest) TakeJustRequested() bool {
	return r.justRequested != nil && r.justRequested.CompareAndSwap(false, true)
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
	Carry(msg, r)
	return msg, nil
}

// requestKey carries, in a run request message's context, the request its
// payload holds.
type requestKey struct{}

// Carry puts r, the request msg's payload holds, in msg's context (kept
// through a SetContext that derives from it), so that DecodeRunRequest
// of msg in the same process does not decode the payload again: a run
// request went through JSON three times on an executor. Whoever changes
// the payload carries the new request.
func Carry(msg *message.Message, r RunRequest) {
	msg.SetContext(context.WithValue(msg.Context(), requestKey{}, r))
}

// DecodeRunRequest reads a run.requested message (the request Carry put
// in its context, when there is one). The request shares its maps and
// slices with the carried one: a caller changes a field of its copy, never
// an element of a map or slice.
func DecodeRunRequest(msg *message.Message) (RunRequest, error) {
	if r, ok := msg.Context().Value(requestKey{}).(RunRequest); ok {
		return r, validRunRequest(msg, r)
	}
	var r RunRequest
	if err := json.Unmarshal(msg.Payload, &r); err != nil {
		return r, fmt.Errorf("%w: run request %s is not JSON: %v", ErrBadMessage, msg.UUID, err)
	}
	return r, validRunRequest(msg, r)
}

func validRunRequest(msg *message.Message, r RunRequest) error {
	if r.RunID == "" {
		return fmt.Errorf("%w: run request %s has no run_id", ErrBadMessage, msg.UUID)
	}
	if err := run.ValidateID(r.RunID); err != nil {
		return fmt.Errorf("%w: run request %s: %v", ErrBadMessage, msg.UUID, err)
	}
	return nil
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
