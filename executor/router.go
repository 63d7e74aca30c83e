package executor

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/runbus"
)

// RouterConfig tunes NewRouter. Zero fields take the defaults named.
type RouterConfig struct {
	PoisonPublisher message.Publisher // required: where unprocessable messages go
	PoisonTopic     string            // TopicPoison
	MaxRetries      int               // 8
	RetryInterval   time.Duration     // first backoff (10ms), doubling up to 1s
	HandlerTimeout  time.Duration     // bounds one message with its retries (2m)
	Logger          zerolog.Logger
}

// Unprocessable says whether a handler's error is one no retry can fix: a
// message that cannot be understood, an event the store refuses, or a
// stream that holds another event where this one belongs (or never gets
// the one before it). Such a message goes to the poison queue. Any other
// error (the store unreachable, a database restarting) is the world's, not
// the message's: it is nacked and delivered again, so a run's events wait
// for the store to return instead of being lost.
func Unprocessable(err error) bool {
	return errors.Is(err, runbus.ErrBadMessage) || errors.Is(err, ErrStreamConflict) || errors.Is(err, ErrStreamBehind) ||
		errors.Is(err, eventstore.ErrInvalidEvent)
}

// NewRouter builds a watermill router with the middleware every Logbook
// consumer uses. Listed from the handler outwards, each wrapping the next:
// recoverer (a panic becomes an error), correlation id (kept on produced
// messages), bounded retry (exponential backoff; messages that cannot be
// understood are not retried), timeout (for the message and its retries),
// poison queue (an Unprocessable message is parked on PoisonTopic with its
// reason and acknowledged, so a bad message never loops; any other failure
// is nacked and delivered again, the retries pacing it).
func NewRouter(cfg RouterConfig) (*message.Router, error) {
	if cfg.PoisonPublisher == nil {
		return nil, errors.New("router config: PoisonPublisher is required")
	}
	if cfg.PoisonTopic == "" {
		cfg.PoisonTopic = TopicPoison
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 8
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 10 * time.Millisecond
	}
	if cfg.HandlerTimeout <= 0 {
		cfg.HandlerTimeout = 2 * time.Minute
	}
	logger := NewWatermillLogger(cfg.Logger)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, logger)
	if err != nil {
		return nil, err
	}
	poison, err := middleware.PoisonQueueWithFilter(cfg.PoisonPublisher, cfg.PoisonTopic, Unprocessable)
	if err != nil {
		return nil, err
	}
	retry := middleware.Retry{
		MaxRetries:      cfg.MaxRetries,
		InitialInterval: cfg.RetryInterval,
		MaxInterval:     time.Second,
		Multiplier:      2,
		ShouldRetry: func(p middleware.RetryParams) bool {
			return !errors.Is(p.Err, runbus.ErrBadMessage) && !errors.Is(p.Err, ErrStreamConflict) && !errors.Is(p.Err, ErrHeldBack)
		},
		Logger: logger,
	}
	// AddMiddleware puts the first one outermost.
	router.AddMiddleware(
		poison,
		middleware.Timeout(cfg.HandlerTimeout),
		retry.Middleware,
		middleware.CorrelationID,
		middleware.Recoverer,
	)
	return router, nil
}

// AddHandlers subscribes the executor to run requests and cancels. Cancels
// must reach every executor: give each its own subscription (GoChannel fans
// out to every subscriber; a broker needs a consumer group per executor).
func (e *Executor) AddHandlers(r *message.Router, requests, cancels message.Subscriber) {
	r.AddConsumerHandler("executor.run_requested", runbus.TopicRunRequested, requests, e.HandleRunRequested)
	r.AddConsumerHandler("executor.run_cancel", runbus.TopicRunCancel, cancels, e.HandleCancel)
}

// EventLanes is how many runs' events the Appender takes at once on the
// embedded bus: a GoChannel hands a subscriber one message at a time and
// waits for its acknowledgement, so with one subscription every run's
// events waited for every other's commit, one commit each, and the
// store's group commit never had two to group.
const EventLanes = 16

// EmbeddedBus is the in-process bus of the embedded default: two GoChannels
// because the topics want opposite publishing rules.
type EmbeddedBus struct {
	// Commands carries run.requested, run.cancel and the poison topic.
	// Publish returns at once: a run request must not wait for its run.
	Commands *gochannel.GoChannel
	// Events carries run.events, in EventLanes lanes (topics) chosen by
	// the run: a run's events keep their order in its lane, and the
	// Appender serves the lanes at once (AddAppender). Publish waits until
	// the Appender acknowledges, which keeps a run's events in order and
	// throttles a chatty command to the speed of the store. Executors
	// publish on it through EventsPublisher.
	Events *gochannel.GoChannel
	// groups hands each group of run events published on Events to the
	// Appender as it is (carriedGroups).
	groups *carriedGroups
}

// carriedGroups holds the events of each group message (NewRunEventsMessage)
// while Events delivers it, by the message's uuid: a GoChannel passes on a
// message's payload and metadata but not its context, and without this the
// Appender decoded each group the publisher had just encoded. Publish waits
// for the Appender's acknowledgement (BlockPublishUntilSubscriberAck), so
// the entry is removed when Publish returns; the Appender takes it on its
// first attempt, and a redelivery decodes the payload.
type carriedGroups struct{ byUUID sync.Map }

// handle is the Appender's handler of a lane: the group carried for msg,
// or else msg as it came.
func (c *carriedGroups) handle(a *Appender) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		if v, ok := c.byUUID.LoadAndDelete(msg.UUID); ok {
			group := v.([]*message.Message)
			return a.appendTogether(msg.Context(), group)
		}
		return a.Handle(msg)
	}
}

// EventsPublisher is what executors publish run events with on the
// in-process bus: the events of one Publish call reach the Appender as one
// message, stored in one commit (GroupPublisher), in the run's lane.
func (b EmbeddedBus) EventsPublisher() GroupPublisher { return GroupPublisher{b.LanePublisher()} }

// LanePublisher publishes each run.events message in its run's lane, as it
// is; other topics go as they are.
func (b EmbeddedBus) LanePublisher() message.Publisher { return lanePublisher{b.Events, b.groups} }

// AddAppender subscribes a to every lane of run events: each lane is
// handed over one message at a time, so a run's events are appended in
// order, and the lanes at once, so the store commits several runs' events
// together.
func (b EmbeddedBus) AddAppender(r *message.Router, a *Appender) {
	for lane := range EventLanes {
		r.AddConsumerHandler(fmt.Sprintf("appender.run_events.%d", lane), laneTopic(lane), b.Events, b.groups.handle(a))
	}
}

type lanePublisher struct {
	message.Publisher
	groups *carriedGroups
}

// Publish sends msgs one after the other, each to its run's lane: a
// Publish of several runs' events keeps each run's order.
func (p lanePublisher) Publish(topic string, msgs ...*message.Message) error {
	if topic != TopicRunEvents {
		return p.Publisher.Publish(topic, msgs...)
	}
	for _, msg := range msgs {
		group, carried := carriedGroup(msg)
		carried = carried && p.groups != nil
		if carried {
			p.groups.byUUID.Store(msg.UUID, group)
		}
		err := p.Publisher.Publish(laneTopic(laneOf(msg.Metadata.Get(metaStream))), msg)
		if carried {
			p.groups.byUUID.Delete(msg.UUID)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// laneOf is a stream's lane.
func laneOf(stream string) int {
	h := fnv.New32a()
	h.Write([]byte(stream))
	return int(h.Sum32() % EventLanes)
}

func laneTopic(lane int) string { return TopicRunEvents + "." + strconv.Itoa(lane) }

// GroupPublisher publishes run events so that the events of one Publish
// call, one run's at consecutive versions, travel as one message, which
// the Appender stores in one commit, all or none (on NATS, one JetStream
// message, which the server's lane hands over together). A recorder that
// publishes through it holds a run's last events (those after the
// command's end) and publishes them with the terminal event: one commit
// for them all, where each would take its own.
type GroupPublisher struct{ message.Publisher }

// Publish implements message.Publisher. Messages that are not one run's
// events in a row go one by one, as through the publisher underneath.
func (p GroupPublisher) Publish(topic string, msgs ...*message.Message) error {
	if len(msgs) < 2 {
		return p.Publisher.Publish(topic, msgs...)
	}
	together, err := NewRunEventsMessage(msgs)
	if err != nil {
		return p.Publisher.Publish(topic, msgs...)
	}
	return p.Publisher.Publish(topic, together)
}

// NewEmbeddedBus builds the in-process bus.
func NewEmbeddedBus(log zerolog.Logger) EmbeddedBus {
	wl := NewWatermillLogger(log)
	return EmbeddedBus{
		// The context goes with each message, as on a broker the payload
		// does: a run request's (runbus.Carry) is read without decoding.
		// Its handlers use contexts of their own for their work.
		Commands: gochannel.NewGoChannel(gochannel.Config{PreserveContext: true}, wl),
		Events:   gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, wl),
		groups:   &carriedGroups{},
	}
}

// Close closes both channels.
func (b EmbeddedBus) Close() error { return errors.Join(b.Commands.Close(), b.Events.Close()) }

// NewWatermillLogger adapts zerolog to watermill's logger. Watermill's info
// lines are chatty, so they are logged at debug.
func NewWatermillLogger(log zerolog.Logger) watermill.LoggerAdapter { return zerologAdapter{log} }

type zerologAdapter struct{ log zerolog.Logger }

func (z zerologAdapter) fields(e *zerolog.Event, f watermill.LogFields) *zerolog.Event {
	for k, v := range f {
		e = e.Interface(k, v)
	}
	return e
}

func (z zerologAdapter) Error(msg string, err error, f watermill.LogFields) {
	z.fields(z.log.Error().Err(err), f).Msg(msg)
}
func (z zerologAdapter) Info(msg string, f watermill.LogFields)  { z.fields(z.log.Debug(), f).Msg(msg) }
func (z zerologAdapter) Debug(msg string, f watermill.LogFields) { z.fields(z.log.Debug(), f).Msg(msg) }
func (z zerologAdapter) Trace(msg string, f watermill.LogFields) { z.fields(z.log.Trace(), f).Msg(msg) }
func (z zerologAdapter) With(f watermill.LogFields) watermill.LoggerAdapter {
	ctx := z.log.With()
	for k, v := range f {
		ctx = ctx.Interface(k, v)
	}
	return zerologAdapter{ctx.Logger()}
}
