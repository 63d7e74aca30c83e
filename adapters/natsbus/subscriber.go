package natsbus

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/logbookhq/logbook/domain/runbus"
	"github.com/logbookhq/logbook/executor"
)

// MetaExecutor is the metadata key a run event message gets from the
// subject it came on: the executor that published it, as NATS
// authenticated it, whatever the message itself says.
const MetaExecutor = "executor_id"

// MetaLastTry marks a run event handed over for the last time: it was held
// back longer than HoldFor waiting for its run's earlier events, and a
// handler refuses it for good now (poison) rather than have it held again.
const MetaLastTry = "last_try"

// SubscriberConfig configures NewSubscriber.
type SubscriberConfig struct {
	// Groups are the relay groups whose run requests an executor takes.
	Groups []string
	// Slots bounds the run requests held at once across the groups: a
	// request is fetched only when a slot is free, so runs wait in the
	// stream, where another executor of the group can take them, rather
	// than in this process (4).
	Slots int
	// Open, when set, unseals a run request's secrets (the executor's
	// group keys). A request it cannot open loses its secrets, and the
	// executor fails the run naming them.
	Open func(group string, req *runbus.RunRequest) error
	// Lanes is how many runs' events the server appends at once; one run's
	// events always go through one lane, in order (16).
	Lanes int
	// Retry is the pause before a message the handler nacked is handed
	// over again (250ms, doubling to 5s).
	Retry time.Duration
	// Settle, when set, is called once the handler has acknowledged a run
	// request (the run ended), before the request is acknowledged to
	// NATS: it waits for the run's events to be acknowledged
	// (Publisher.Settle), so a request never leaves the queue before
	// what its run recorded is safe in the events stream.
	Settle func(ctx context.Context, runID string) error
	// HoldFor bounds how long a run's events are held back waiting for an
	// earlier one (5m, beyond a publisher's two minutes of retries).
	HoldFor time.Duration
}

// Subscriber is a watermill Subscriber on the run bus: run.requested (an
// executor's groups), run.cancel, and run.events (the server's appender).
type Subscriber struct {
	conn *Conn
	cfg  SubscriberConfig

	slots chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	stops []func()
}

// NewSubscriber returns a subscriber on conn.
func NewSubscriber(conn *Conn, cfg SubscriberConfig) (*Subscriber, error) {
	for _, g := range cfg.Groups {
		if err := ValidateName("relay group", g); err != nil {
			return nil, err
		}
	}
	if cfg.Slots <= 0 {
		cfg.Slots = 4
	}
	if cfg.Lanes <= 0 {
		cfg.Lanes = 16
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 250 * time.Millisecond
	}
	if cfg.HoldFor <= 0 {
		cfg.HoldFor = 5 * time.Minute
	}
	return &Subscriber{conn: conn, cfg: cfg, slots: make(chan struct{}, cfg.Slots)}, nil
}

// Subscribe starts delivering topic's messages until ctx ends or Close.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	s.stops = append(s.stops, cancel)
	s.mu.Unlock()
	out := make(chan *message.Message)
	switch topic {
	case runbus.TopicRunRequested:
		if len(s.cfg.Groups) == 0 {
			cancel()
			return nil, errors.New("natsbus: run requests need at least one relay group")
		}
		var wg sync.WaitGroup
		for _, g := range s.cfg.Groups {
			wg.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer wg.Done()
				s.takeRuns(ctx, g, out)
			}()
		}
		go func() { wg.Wait(); close(out) }()
	case runbus.TopicRunCancel:
		ch := make(chan *nats.Msg, 256)
		sub, err := s.conn.NC.ChanSubscribe(subjectCancel, ch)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("subscribe to cancels: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer close(out)
			defer sub.Unsubscribe()
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-ch:
					msg := fromNATS(m.Subject, m.Header, m.Data)
					msg.SetContext(ctx)
					if !s.handOver(ctx, msg, out, nil) {
						return
					}
				}
			}
		}()
	case executor.TopicRunEvents:
		if err := s.appendEvents(ctx, out); err != nil {
			cancel()
			return nil, err
		}
	default:
		cancel()
		return nil, fmt.Errorf("natsbus: topic %q is not carried over NATS", topic)
	}
	return out, nil
}

// takeRuns fetches group's run requests one at a time, each when a slot is
// free, and hands each to the handler, keeping it with in-progress
// acknowledgements until the handler acks (the run ended) or nacks (it is
// delivered again later, perhaps to another executor).
func (s *Subscriber) takeRuns(ctx context.Context, group string, out chan<- *message.Message) {
	var cons jetstream.Consumer
	for wait := s.cfg.Retry; ; wait = min(wait*2, 5*time.Second) {
		var err error
		cons, err = s.conn.JS.Consumer(ctx, RunsStream, GroupConsumer(group))
		if err == nil {
			break
		}
		s.conn.log.Warn().Err(err).Str("group", group).Msg("the relay group's consumer is not there yet (the server makes it); waiting")
		if !sleepCtx(ctx, wait) {
			return
		}
	}
	for {
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		fetchCtx, cancelFetch := context.WithTimeout(ctx, 5*time.Second)
		m, err := cons.Next(jetstream.FetchContext(fetchCtx))
		cancelFetch()
		if err != nil {
			<-s.slots
			if ctx.Err() != nil {
				return
			}
			if !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
				s.conn.log.Warn().Err(err).Str("group", group).Msg("fetching a run request")
				sleepCtx(ctx, s.cfg.Retry)
			}
			continue
		}
		msg := fromNATS(m.Subject(), m.Headers(), m.Data())
		// Decoded once here, and carried to the handler (runbus.Carry).
		req, err := runbus.DecodeRunRequest(msg)
		if err == nil && s.cfg.Open != nil && len(req.SealedEnv) > 0 {
			req = s.open(group, msg, req)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			msg.SetContext(ctx)
			if err == nil {
				runbus.Carry(msg, req)
			}
			s.holdRun(ctx, m, msg, req.RunID, out, func() { <-s.slots })
		}()
	}
}

// open unseals a run request's secrets into its message, and returns the
// request as the message now holds it.
func (s *Subscriber) open(group string, msg *message.Message, req runbus.RunRequest) runbus.RunRequest {
	if err := s.cfg.Open(group, &req); err != nil {
		s.conn.log.Error().Err(err).Str("run_id", req.RunID).Str("group", group).Msg("the run's secrets could not be opened; it runs without them and fails naming them")
		req.SealedEnv = nil
	}
	opened, err := runbus.NewRunRequestMessage(req)
	if err != nil {
		return req
	}
	msg.Payload = opened.Payload
	return req
}

// holdRun hands a run request over and keeps it until the handler's
// verdict. The slot is freed as soon as the verdict is in (the run is over
// here), so the next request is fetched while this one's events are
// settled and it is acknowledged.
func (s *Subscriber) holdRun(ctx context.Context, m jetstream.Msg, msg *message.Message, runID string, out chan<- *message.Message, freeSlot func()) {
	every := s.conn.cfg.AckWait / 3
	progress := time.NewTicker(every)
	defer progress.Stop()
	acked := s.handOverHolding(ctx, msg, out, func() { _ = m.InProgress() }, progress.C)
	freeSlot()
	switch {
	case acked:
		// The run is over here: its events are all in the events stream,
		// and the request is acknowledged.
		if s.cfg.Settle != nil && runID != "" {
			settleCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
			err := s.cfg.Settle(settleCtx, runID)
			cancel()
			if err != nil {
				s.conn.log.Error().Err(err).Str("run_id", runID).Msg("the run's events are not all in the events stream; its request goes back")
				_ = m.NakWithDelay(s.cfg.Retry)
				return
			}
		}
		// Not waited for: an acknowledgement NATS loses gives the request
		// again later, and its claim answers that the run is not to be
		// run, as for any redelivery.
		if err := m.Ack(); err != nil {
			s.conn.log.Warn().Err(err).Str("subject", m.Subject()).Msg("acknowledging a run request")
		}
	case ctx.Err() != nil:
		// Shutting down: the run request goes back at once.
		_ = m.Nak()
	default:
		_ = m.NakWithDelay(s.cfg.Retry)
	}
}

// handOver sends msg to out and waits for the handler's verdict.
func (s *Subscriber) handOver(ctx context.Context, msg *message.Message, out chan<- *message.Message, keep func()) bool {
	return s.handOverHolding(ctx, msg, out, keep, nil)
}

func (s *Subscriber) handOverHolding(ctx context.Context, msg *message.Message, out chan<- *message.Message, keep func(), tick <-chan time.Time) bool {
	select {
	case out <- msg:
	case <-ctx.Done():
		return false
	}
	for {
		select {
		case <-msg.Acked():
			return true
		case <-msg.Nacked():
			return false
		case <-tick:
			keep()
		case <-ctx.Done():
			return false
		}
	}
}

// appendEvents delivers run events to the server's appender: one puller,
// and lanes by run, so each run's events reach the handler one at a time in
// the order they were published, while many runs go at once. A nacked
// event is handed over again in its lane (not given back to NATS, which
// would let the run's next event overtake it).
func (s *Subscriber) appendEvents(ctx context.Context, out chan<- *message.Message) error {
	cons, err := s.appenderConsumer(ctx)
	if err != nil {
		return fmt.Errorf("the appender's consumer: %w", err)
	}
	lanes := make([]chan jetstream.Msg, s.cfg.Lanes)
	var lanesDone sync.WaitGroup
	for i := range lanes {
		lanes[i] = make(chan jetstream.Msg, 64)
		lanesDone.Add(1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer lanesDone.Done()
			s.lane(ctx, lanes[i], out)
		}()
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return fmt.Errorf("reading run events: %w", err)
	}
	var iterMu sync.Mutex
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		<-ctx.Done()
		iterMu.Lock()
		iter.Stop()
		iterMu.Unlock()
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			for _, l := range lanes {
				close(l)
			}
			lanesDone.Wait()
			close(out)
		}()
		for {
			m, err := iter.Next()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.conn.log.Warn().Err(err).Msg("reading run events")
				if !sleepCtx(ctx, s.cfg.Retry) {
					return
				}
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					// Closed under us (the consumer went, NATS restarted
					// without it): read again from a fresh one.
					fresh, err := s.reopenEvents(ctx)
					if err != nil {
						s.conn.log.Warn().Err(err).Msg("reading run events again")
						continue
					}
					iterMu.Lock()
					iter = fresh
					iterMu.Unlock()
				}
				continue
			}
			h := fnv.New32a()
			h.Write([]byte(runOfSubject(m.Subject())))
			select {
			case lanes[h.Sum32()%uint32(len(lanes))] <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	return nil
}

// reopenEvents makes the appender's consumer again (it is durable: the
// same one, if NATS kept it) and reads from it.
func (s *Subscriber) reopenEvents(ctx context.Context) (jetstream.MessagesContext, error) {
	cons, err := s.appenderConsumer(ctx)
	if err != nil {
		return nil, err
	}
	return cons.Messages(jetstream.PullMaxMessages(512))
}

func (s *Subscriber) appenderConsumer(ctx context.Context) (jetstream.Consumer, error) {
	return s.conn.JS.CreateOrUpdateConsumer(ctx, EventsStream, jetstream.ConsumerConfig{
		Durable: appenderConsumer, Description: "the server's appender of run events",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: s.conn.cfg.AckWait, MaxAckPending: 20000,
	})
}

// lane hands its runs' events over one at a time. An event the handler
// nacks (its run's stream is behind it, or the store failed) is held back
// with the run's later events, in version order, and handed over again
// after a pause or when an event of the run arrives: a run's events that
// reached the stream out of order (an event published again after its
// acknowledgement was lost) are appended in order, and one stuck run does
// not hold up the others in its lane.
func (s *Subscriber) lane(ctx context.Context, in <-chan jetstream.Msg, out chan<- *message.Message) {
	held := map[string]*heldEvents{}
	// A held event is kept (InProgress) at each retry: retry well within
	// AckWait, so NATS does not give it again meanwhile.
	maxWait := max(min(5*time.Second, s.conn.cfg.AckWait/3), s.cfg.Retry)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	armed := time.Time{}
	arm := func() {
		next := time.Time{}
		for _, h := range held {
			if next.IsZero() || h.at.Before(next) {
				next = h.at
			}
		}
		if next.IsZero() || (!armed.IsZero() && !next.Before(armed)) {
			return
		}
		armed = next
		retry.Reset(time.Until(next))
	}
	// drain hands over the held events of a run from the first, until one
	// is nacked again.
	drain := func(run string, h *heldEvents) {
		for len(h.msgs) > 0 {
			if !s.deliver(ctx, h.msgs[0], out, time.Since(h.since) > s.cfg.HoldFor) {
				if ctx.Err() != nil {
					return
				}
				for _, m := range h.msgs {
					_ = m.InProgress()
				}
				h.at = time.Now().Add(h.wait)
				h.wait = min(h.wait*2, maxWait)
				return
			}
			h.msgs = h.msgs[1:]
			h.wait, h.since = s.cfg.Retry, time.Now()
		}
		delete(held, run)
	}
	// take hands one event over, or holds it back behind its run's
	// earlier ones; false when the lane stops.
	take := func(m jetstream.Msg) bool {
		run := runOfSubject(m.Subject())
		if h := held[run]; h != nil {
			h.add(m)
			drain(run, h)
		} else if !s.deliver(ctx, m, out, false) {
			if ctx.Err() != nil {
				return false // unacked: NATS delivers it again after a restart
			}
			_ = m.InProgress()
			held[run] = &heldEvents{msgs: []jetstream.Msg{m}, since: time.Now(), at: time.Now().Add(s.cfg.Retry), wait: min(2*s.cfg.Retry, maxWait)}
		}
		return true
	}
	for {
		select {
		case m, ok := <-in:
			if !ok {
				return
			}
			if !take(m) {
				return
			}
		case <-retry.C:
			armed = time.Time{}
			now := time.Now()
			for run, h := range held {
				if !h.at.After(now) {
					drain(run, h)
				}
			}
		case <-ctx.Done():
			return
		}
		if ctx.Err() != nil {
			return
		}
		arm()
	}
}

// runEventsKey carries, in the context of the message the handler gets,
// the events of one run handed over together.
type runEventsKey struct{}

// MetaRunEvents marks a message that carries several events of one run,
// as the executor sent them in one message (executor.GroupPublisher).
// RunEvents has them, read and checked.
const MetaRunEvents = executor.MetaRunEvents

// RunEvents are the events of one run a message carries together, in
// version order, each naming the executor the subject names; nil for a
// message of one event. A message the executor sent as a group that does
// not read as one run's events in a row is an error (runbus.ErrBadMessage):
// it is refused whole, never taken as one event.
func RunEvents(msg *message.Message) ([]*message.Message, error) {
	if msg.Metadata.Get(MetaRunEvents) == "" {
		return nil, nil
	}
	msgs, _ := msg.Context().Value(runEventsKey{}).([]*message.Message)
	if len(msgs) == 0 {
		return nil, fmt.Errorf("%w: message %s from executor %q is marked as a run's events together but does not carry them: %s",
			runbus.ErrBadMessage, msg.UUID, msg.Metadata.Get(MetaExecutor), msg.Metadata.Get(metaUnreadable))
	}
	return msgs, nil
}

// metaUnreadable says why a message marked MetaRunEvents carries no events.
const metaUnreadable = "unreadable"

// NewRunEventsMessage is one message carrying events, of one run in
// version order, for the handler (RunEvents reads them back).
func NewRunEventsMessage(ctx context.Context, events []*message.Message) *message.Message {
	msg := message.NewMessage(events[0].UUID+"+"+strconv.Itoa(len(events)), nil)
	msg.Metadata.Set(MetaRunEvents, strconv.Itoa(len(events)))
	msg.Metadata.Set(MetaExecutor, events[0].Metadata.Get(MetaExecutor))
	msg.SetContext(context.WithValue(ctx, runEventsKey{}, events))
	return msg
}

// deliverTogether hands over a run's events that the executor sent in one
// message (m): together, for one commit, and when the handler refuses them
// so (one is stored already after a redelivery, the run's stream is behind
// them), one by one, each settled as if it had come alone (an event stored
// already is recognised by its id). m is acknowledged once they are all
// taken; false when one is refused, and m is then handed over again, whole,
// after a pause.
func (s *Subscriber) deliverTogether(ctx context.Context, m jetstream.Msg, out chan<- *message.Message, lastTry bool) bool {
	events, err := s.groupedEvents(ctx, m)
	if err != nil {
		// Handed over marked and empty: the handler refuses it whole.
		msg := s.eventMessage(ctx, m)
		msg.Metadata.Set(MetaRunEvents, "0")
		msg.Metadata.Set(metaUnreadable, err.Error())
		return s.handOverEvents(ctx, msg, []jetstream.Msg{m}, out)
	}
	progress := time.NewTicker(s.conn.cfg.AckWait / 3)
	defer progress.Stop()
	keep := func() { _ = m.InProgress() }
	if !s.handOverHolding(ctx, NewRunEventsMessage(ctx, events), out, keep, progress.C) {
		if ctx.Err() != nil {
			return false
		}
		// A handed-over message is settled once: each goes again as a
		// fresh copy.
		for _, e := range events {
			one := e.Copy()
			one.SetContext(ctx)
			if lastTry {
				one.Metadata.Set(MetaLastTry, "1")
			}
			if !s.handOverHolding(ctx, one, out, keep, progress.C) {
				return false
			}
		}
	}
	if err := m.Ack(); err != nil {
		s.conn.log.Warn().Err(err).Msg("acknowledging a run's events")
	}
	return true
}

// groupedEvents reads the events an executor sent together in m: one
// run's in a row, the run the subject names, each from the executor the
// subject names whatever its own metadata says.
func (s *Subscriber) groupedEvents(ctx context.Context, m jetstream.Msg) ([]*message.Message, error) {
	events, err := executor.DecodeRunEventsMessage(fromNATS(m.Subject(), m.Headers(), m.Data()))
	if err != nil {
		return nil, err
	}
	runID := runOfSubject(m.Subject())
	for _, e := range events {
		if stream := e.Metadata.Get("stream"); stream != "run-"+runID {
			return nil, fmt.Errorf("event %s is for %q, sent on the subject of run %s", e.UUID, stream, runID)
		}
		e.Metadata.Set(MetaExecutor, executorOfSubject(m.Subject()))
		delete(e.Metadata, MetaLastTry)
		delete(e.Metadata, MetaRunEvents)
		delete(e.Metadata, metaUnreadable)
		e.SetContext(ctx)
	}
	return events, nil
}

// heldEvents are a run's events waiting for the first of them to be
// taken, in version order.
type heldEvents struct {
	msgs  []jetstream.Msg
	since time.Time     // since when the first has been held
	at    time.Time     // when to hand the first over again
	wait  time.Duration // the pause after the next refusal
}

// add puts m among the held events by its version; a second delivery of
// a held event (NATS gave it again after AckWait) takes the place of the
// first, whose acknowledgement would no longer count.
func (h *heldEvents) add(m jetstream.Msg) {
	v := versionOf(m)
	i := 0
	for i < len(h.msgs) && versionOf(h.msgs[i]) < v {
		i++
	}
	if i < len(h.msgs) && versionOf(h.msgs[i]) == v && h.msgs[i].Headers().Get(headerUUID) == m.Headers().Get(headerUUID) {
		h.msgs[i] = m
		return
	}
	h.msgs = slices.Insert(h.msgs, i, m)
}

// versionOf is a run event's version in its stream (-1 when it has none:
// the handler refuses it).
func versionOf(m jetstream.Msg) int64 {
	v, err := strconv.ParseInt(m.Headers().Get("version"), 10, 64)
	if err != nil {
		return -1
	}
	return v
}

// deliver hands one run event to the handler and acknowledges it to NATS
// when the handler took it, keeping it meanwhile.
func (s *Subscriber) deliver(ctx context.Context, m jetstream.Msg, out chan<- *message.Message, lastTry bool) bool {
	if m.Headers().Get(MetaRunEvents) != "" {
		return s.deliverTogether(ctx, m, out, lastTry)
	}
	msg := s.eventMessage(ctx, m)
	if lastTry {
		msg.Metadata.Set(MetaLastTry, "1")
	}
	return s.handOverEvents(ctx, msg, []jetstream.Msg{m}, out)
}

// eventMessage is run event m as the handler gets it: from the executor
// its subject names, without the metadata only the lane sets.
func (s *Subscriber) eventMessage(ctx context.Context, m jetstream.Msg) *message.Message {
	msg := fromNATS(m.Subject(), m.Headers(), m.Data())
	msg.Metadata.Set(MetaExecutor, executorOfSubject(m.Subject()))
	delete(msg.Metadata, MetaLastTry)
	delete(msg.Metadata, MetaRunEvents)
	delete(msg.Metadata, metaUnreadable)
	msg.SetContext(ctx)
	return msg
}

// handOverEvents hands msg, which carries the events ms, to the handler,
// keeping ms in progress meanwhile, and acknowledges them to NATS when
// the handler took it.
func (s *Subscriber) handOverEvents(ctx context.Context, msg *message.Message, ms []jetstream.Msg, out chan<- *message.Message) bool {
	progress := time.NewTicker(s.conn.cfg.AckWait / 3)
	acked := s.handOverHolding(ctx, msg, out, func() {
		for _, m := range ms {
			_ = m.InProgress()
		}
	}, progress.C)
	progress.Stop()
	if !acked {
		return false
	}
	for _, m := range ms {
		if err := m.Ack(); err != nil {
			s.conn.log.Warn().Err(err).Msg("acknowledging a run event")
		}
	}
	return true
}

// executorOfSubject reads <executor> from logbook.events.<executor>.<run>.
func executorOfSubject(subject string) string {
	rest, _ := strings.CutPrefix(subject, subjectEvents)
	id, _, _ := strings.Cut(rest, ".")
	return id
}

func runOfSubject(subject string) string {
	_, run, _ := strings.Cut(strings.TrimPrefix(subject, subjectEvents), ".")
	return run
}

// Close stops every subscription and waits for its goroutines.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	for _, stop := range s.stops {
		stop()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
