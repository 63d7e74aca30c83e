package executor

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/runbus"
)

// Topics of the executors' own messages.
const (
	TopicRunEvents = "run.events"
	TopicPoison    = "run.poison"
)

// Metadata keys of a run event message.
const (
	metaStream      = "stream"
	metaVersion     = "version"
	metaType        = "type"
	metaCausation   = "causation_id"
	metaActor       = "actor"
	metaCorrelation = middleware.CorrelationIDMetadataKey
	// MetaMore marks a run event that another event of the same run
	// follows at once (the events a run records as it ends): a bus that
	// carries them apart (NATS) may wait for the rest and append them in
	// one commit.
	MetaMore = "more"
)

// MoreFollows says whether msg is marked MetaMore.
func MoreFollows(msg *message.Message) bool { return msg.Metadata.Get(MetaMore) == "1" }

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
		return "", 0, e, fmt.Errorf("%w: event message id %q is not a uuid", runbus.ErrBadMessage, msg.UUID)
	}
	stream = msg.Metadata.Get(metaStream)
	version, err = strconv.ParseInt(msg.Metadata.Get(metaVersion), 10, 64)
	if stream == "" || err != nil || version < 0 {
		return "", 0, e, fmt.Errorf("%w: event message %s has no stream or version", runbus.ErrBadMessage, msg.UUID)
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
