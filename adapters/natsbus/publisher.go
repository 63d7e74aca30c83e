package natsbus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/logbookhq/logbook/domain/runbus"
	"github.com/logbookhq/logbook/executor"
)

// headerUUID carries the watermill message's uuid (for a run event, the
// event id).
const headerUUID = "Logbook-Uuid"

// Publisher is a watermill Publisher onto the run bus. Topics map to
// subjects: run.requested to logbook.runs.<relay group> (JetStream),
// run.events to logbook.events.<source>.<run> (JetStream), run.poison to
// logbook.poison.<source> (JetStream), run.cancel to logbook.cancel (core
// NATS: every executor hears it, and one that is not connected holds no
// run to cancel).
type Publisher struct {
	conn *Conn
	// Source is who publishes: an executor's id, or "server". NATS
	// permissions tie it to the connection's user.
	source string
	// Seal, when set, seals a run request's secrets to its group's key
	// before the request leaves the process (the server's).
	seal func(group string, req *runbus.RunRequest) error
	// published, when set, hears of each run request published (the
	// queue watch of the server).
	published func(runID, group string)
	// justRequested, when set, hears of each run request marked just
	// requested (PublisherConfig.JustRequested).
	justRequested func(runbus.RunRequest)
	timeout       time.Duration
	pipelined     bool

	mu sync.Mutex
	// pipes are the runs whose events are published and not yet all
	// acknowledged (Pipelined).
	pipes map[string]*pipeline
}

// pipeline is one run's events in flight: each acknowledgement is waited
// for in publish order, apart from the run's progress.
type pipeline struct {
	pending chan pendingEvent
	n       int           // events sent and not yet confirmed (under Publisher.mu)
	done    chan struct{} // closed when the last one is confirmed
	err     error         // the first event that could not be published
}

type pendingEvent struct {
	msg    *nats.Msg
	id     string
	future jetstream.PubAckFuture
}

// attemptTimeout bounds one JetStream publish; a publish that gets no
// acknowledgement (NATS restarting) is tried again with the same message
// id, which JetStream's duplicate window turns into one message.
const attemptTimeout = 5 * time.Second

// PublisherConfig configures NewPublisher.
type PublisherConfig struct {
	Source    string // required: the executor's id, or "server"
	Seal      func(group string, req *runbus.RunRequest) error
	Published func(runID, group string)
	// JustRequested, when set, is told each run request the dispatcher in
	// this process marked runbus.RunRequest.JustRequested, before it is
	// published: the claim desk then takes the run's stream as that
	// request alone instead of reading it (ClaimDesk.JustRequested).
	JustRequested func(runbus.RunRequest)
	// Timeout bounds a JetStream publish with its retries while NATS does
	// not acknowledge it (2m): an executor's events wait out a restart of
	// nats-server instead of being dropped.
	Timeout time.Duration
	// Pipelined publishes run events without waiting for each
	// acknowledgement: a run's events leave in order on the one
	// connection, their acknowledgements are confirmed behind them, one
	// that fails is published again (the appender puts a run's events
	// back in order by version), and Settle waits for them all.
	Pipelined bool
}

// NewPublisher returns a publisher on conn.
func NewPublisher(conn *Conn, cfg PublisherConfig) (*Publisher, error) {
	if err := ValidateName("publisher", cfg.Source); err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	return &Publisher{conn: conn, source: cfg.Source, seal: cfg.Seal, published: cfg.Published, justRequested: cfg.JustRequested, timeout: cfg.Timeout,
		pipelined: cfg.Pipelined, pipes: map[string]*pipeline{}}, nil
}

// Publish sends msgs on topic, each acknowledged by JetStream (persisted)
// before the next, which keeps a run's events in order.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	for _, msg := range msgs {
		if err := p.publish(topic, msg); err != nil {
			return err
		}
	}
	return nil
}

// groupHeadroom is what a message of a run's events together keeps free
// of NATS's maximum payload for its headers.
const groupHeadroom = 4096

func (p *Publisher) publish(topic string, msg *message.Message) error {
	ctx := msg.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	switch topic {
	case runbus.TopicRunRequested:
		req, err := runbus.DecodeRunRequest(msg)
		if err != nil {
			return err
		}
		group := cmp.Or(req.Request.Group, DefaultGroup)
		if err := ValidateName("relay group", group); err != nil {
			return fmt.Errorf("%w: run %s: %v", runbus.ErrBadMessage, req.RunID, err)
		}
		if len(req.Env) > 0 {
			if p.seal == nil {
				return fmt.Errorf("run %s carries secrets and this publisher cannot seal them", req.RunID)
			}
			if err := p.seal(group, &req); err != nil {
				return fmt.Errorf("run %s: sealing its secrets for relay group %s: %w", req.RunID, group, err)
			}
			sealed, err := runbus.NewRunRequestMessage(req)
			if err != nil {
				return err
			}
			sealed.UUID, sealed.Metadata = msg.UUID, msg.Metadata
			msg = sealed
		}
		if err := p.conn.EnsureGroupOnce(ctx, group); err != nil {
			return err
		}
		if p.published != nil {
			p.published(req.RunID, group)
		}
		if p.justRequested != nil && req.TakeJustRequested() {
			p.justRequested(req)
		}
		return p.persist(ctx, toNATS(RunsSubject(group), msg), msg.UUID)
	case executor.TopicRunEvents:
		if msg.Metadata.Get(MetaRunEvents) != "" && int64(len(msg.Payload))+groupHeadroom > p.conn.NC.MaxPayload() {
			// A run's events together, more than NATS takes in one
			// message: each goes on its own, in order.
			events, err := executor.DecodeRunEventsMessage(msg)
			if err != nil {
				return err
			}
			return p.Publish(topic, events...)
		}
		stream := msg.Metadata.Get("stream")
		runID, ok := strings.CutPrefix(stream, "run-")
		if !ok || runID == "" || strings.ContainsAny(runID, ".*> ") {
			return fmt.Errorf("%w: event %s is for stream %q, not a run", runbus.ErrBadMessage, msg.UUID, stream)
		}
		if p.pipelined {
			return p.pipeline(ctx, runID, toNATS(subjectEvents+p.source+"."+runID, msg), msg.UUID)
		}
		return p.persist(ctx, toNATS(subjectEvents+p.source+"."+runID, msg), msg.UUID)
	case executor.TopicPoison:
		return p.persist(ctx, toNATS(subjectPoison+p.source, msg), msg.UUID)
	case runbus.TopicRunCancel:
		return p.conn.NC.PublishMsg(toNATS(subjectCancel, msg))
	}
	return fmt.Errorf("natsbus: topic %q is not carried over NATS", topic)
}

// persist publishes m to JetStream until it is acknowledged or ctx ends,
// under one message id, so a retry of a publish that did land is dropped
// by the stream's duplicate window.
func (p *Publisher) persist(ctx context.Context, m *nats.Msg, id string) error {
	wait := 100 * time.Millisecond
	for {
		attempt, cancel := context.WithTimeout(ctx, attemptTimeout)
		_, err := p.conn.JS.PublishMsg(attempt, m, jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, nats.ErrConnectionClosed) {
			return err
		}
		p.conn.log.Warn().Err(err).Str("subject", m.Subject).Msg("NATS did not take a message; trying again")
		select {
		case <-ctx.Done():
			return fmt.Errorf("publish to %s: %w (last error: %v)", m.Subject, ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// pipeline sends a run event without waiting for its acknowledgement,
// which the run's pipeline confirms behind it. When the event cannot even
// be sent (too many in flight, the connection closing), the run's earlier
// events are settled and this one is published and acknowledged before
// Publish returns.
func (p *Publisher) pipeline(ctx context.Context, runID string, m *nats.Msg, id string) error {
	// PublishMsgAsync sets the message's reply subject: a retry goes out
	// as a copy.
	sent := &nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}
	p.mu.Lock()
	future, err := p.conn.JS.PublishMsgAsync(sent, jetstream.WithMsgID(id))
	if err != nil {
		p.mu.Unlock()
		if err := p.Settle(ctx, runID); err != nil {
			return err
		}
		return p.persist(ctx, m, id)
	}
	pipe := p.pipes[runID]
	if pipe == nil {
		pipe = &pipeline{pending: make(chan pendingEvent, 256), done: make(chan struct{})}
		p.pipes[runID] = pipe
		go p.confirm(runID, pipe)
	}
	pipe.n++
	p.mu.Unlock()
	// The recorder publishes a run's events one at a time, so they queue
	// here in publish order.
	pipe.pending <- pendingEvent{msg: m, id: id, future: future}
	return nil
}

// confirm waits for each of a run's events to be acknowledged, in order,
// and publishes again (until acknowledged or Timeout) one that was not.
func (p *Publisher) confirm(runID string, pipe *pipeline) {
	for ev := range pipe.pending {
		select {
		case <-ev.future.Ok():
		case err := <-ev.future.Err():
			p.conn.log.Warn().Err(err).Str("subject", ev.msg.Subject).Msg("NATS did not acknowledge a run event; publishing it again")
			ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
			if err := p.persist(ctx, ev.msg, ev.id); err != nil && pipe.err == nil {
				pipe.err = err
				p.conn.log.Error().Err(err).Str("subject", ev.msg.Subject).Msg("a run event could not be published")
			}
			cancel()
		}
		p.mu.Lock()
		pipe.n--
		if pipe.n == 0 {
			delete(p.pipes, runID)
			p.mu.Unlock()
			close(pipe.done)
			return
		}
		p.mu.Unlock()
	}
}

// Settle waits until every event of runID published so far is
// acknowledged, and says whether one could not be published.
func (p *Publisher) Settle(ctx context.Context, runID string) error {
	p.mu.Lock()
	pipe := p.pipes[runID]
	p.mu.Unlock()
	if pipe == nil {
		return nil
	}
	select {
	case <-pipe.done:
		return pipe.err
	case <-ctx.Done():
		return fmt.Errorf("the events of run %s are not all acknowledged: %w", runID, ctx.Err())
	}
}

// Close does nothing: the connection is the Conn's.
func (p *Publisher) Close() error { return nil }

func toNATS(subject string, msg *message.Message) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = msg.Payload
	m.Header.Set(headerUUID, msg.UUID)
	for k, v := range msg.Metadata {
		m.Header.Set(k, v)
	}
	return m
}

func fromNATS(subject string, header nats.Header, data []byte) *message.Message {
	msg := message.NewMessage(header.Get(headerUUID), data)
	for k := range header {
		if k == headerUUID || strings.HasPrefix(k, "Nats-") {
			continue
		}
		msg.Metadata.Set(k, header.Get(k))
	}
	msg.Metadata.Set("nats_subject", subject)
	return msg
}
