package dispatcher

// Reply delivery to chat providers, off the decide loop.
//
// The decide loop hands a reply to deliver and goes on deciding. The reply
// is planned into parts (chat.Plan, by the provider's limits) and each
// destination gets its own queue, served by one goroutine while it has
// work, so a slow or rate-limited room never holds up decisions or other
// rooms. For every part the queue records ReplyPartAttempted, asks the
// provider to post, and records ReplyPartPosted; once every destination is
// settled it records ReplyPosted (the request's end of life) and wakes the
// waiters. Temporary failures (chat.ErrRetry) are retried with backoff while
// the process lives; after a restart the dispatcher's resume hands the
// pending reply here again, and the queue reads what the request stream
// already says, so only the missing parts are posted.
//
// Never posted twice: a part is recorded attempted before it is posted, so
// a part with no record was never sent. A part attempted but not recorded
// posted (a crash, a timeout, a disconnect after the provider took it) is
// looked up first when the provider is a chat.PartFinder (Slack: the part's
// metadata in the channel history) and recorded found instead of being
// posted again. A provider that cannot look (IRC) posts such a part again:
// at most one part, in that window, can appear twice there.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// Backoff bounds of a part's retries after chat.ErrRetry.
const (
	deliveryFirstRetry = 200 * time.Millisecond
	deliveryMaxRetry   = 30 * time.Second
)

// deliveries holds the per-destination queues and the replies in flight.
type deliveries struct {
	mu       sync.Mutex
	queues   map[string]*deliveryQueue
	inFlight map[string]*replyDelivery // by request id
	running  sync.WaitGroup            // the queues' and settles' goroutines
}

// wait returns once every delivery goroutine has ended (their context ends
// with the dispatcher's part).
func (q *deliveries) wait() { q.running.Wait() }

type deliveryQueue struct {
	key     string
	tasks   []deliveryTask
	running bool
}

type deliveryTask struct {
	reply *replyDelivery
	to    dispatch.Destination
}

// replyDelivery is one reply, or one notice, on its way to all its
// destinations.
type replyDelivery struct {
	ctx       context.Context
	log       zerolog.Logger
	requestID string
	// notice is the key of the notice delivered (dispatch.Notice.Key); ""
	// for the request's reply.
	notice    string
	reply     dispatch.Reply
	provider  chat.Provider
	parts     []chat.Part
	causation uuid.UUID
	mu        sync.Mutex
	remaining int    // destinations not settled
	messageID string // of the first destination's first part
}

// deliver plans the reply and queues it to each destination. It returns at
// once; a reply already in flight (resume after a live post) is not queued
// twice.
func (d *Dispatcher) deliver(ctx context.Context, log zerolog.Logger, requestID string, reply dispatch.Reply, provider chat.Provider, triggerID uuid.UUID) {
	link := ""
	if d.cfg.TranscriptURL != nil {
		if st := d.requests[requestID]; st != nil {
			if runs := st.req.Runs(); len(runs) > 0 {
				link = d.cfg.TranscriptURL(runs[len(runs)-1].RunID)
			}
		}
	}
	d.enqueue(&replyDelivery{
		ctx: ctx, log: log, requestID: requestID, reply: reply, provider: provider,
		parts: chat.Plan(requestID, reply, provider.Limits(), link), causation: triggerID, remaining: len(reply.To),
	})
}

// deliverNotice plans a notice (the approval request) and queues it to its
// destinations, as deliver does a reply; its deliveries are recorded under
// its key, and no ReplyPosted ends it.
func (d *Dispatcher) deliverNotice(ctx context.Context, log zerolog.Logger, requestID string, n dispatch.Notice, triggerID uuid.UUID) {
	provider, ok := d.cfg.Chat[n.Reply.Adapter]
	if !ok {
		log.Warn().Str("adapter", n.Reply.Adapter).Str("notice", n.Key).Msg("no chat provider for this notice; it is not posted")
		return
	}
	d.enqueue(&replyDelivery{
		ctx: ctx, log: log.With().Str("notice", n.Key).Logger(), requestID: requestID, notice: n.Key, reply: n.Reply, provider: provider,
		parts: chat.PlanNotice(requestID, n, provider.Limits()), causation: triggerID, remaining: len(n.Reply.To),
	})
}

// key names a delivery in flight: its request's, and its notice's.
func (rd *replyDelivery) key() string {
	if rd.notice == "" {
		return rd.requestID
	}
	return rd.requestID + "\x00" + rd.notice
}

// enqueue queues a planned delivery to each destination; one already in
// flight (resume after a live post) is not queued twice.
func (d *Dispatcher) enqueue(rd *replyDelivery) {
	reply := rd.reply
	q := &d.delivery
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.inFlight == nil {
		q.inFlight, q.queues = map[string]*replyDelivery{}, map[string]*deliveryQueue{}
	}
	if q.inFlight[rd.key()] != nil {
		return
	}
	if len(reply.To) == 0 {
		q.running.Go(func() { d.settle(rd) })
		return
	}
	q.inFlight[rd.key()] = rd
	for _, to := range reply.To {
		key := reply.Adapter + "\x00" + string(to.Kind) + "\x00" + to.Name
		dq := q.queues[key]
		if dq == nil {
			dq = &deliveryQueue{key: key}
			q.queues[key] = dq
		}
		dq.tasks = append(dq.tasks, deliveryTask{reply: rd, to: to})
		if !dq.running {
			dq.running = true
			q.running.Go(func() { d.serveQueue(dq) })
		}
	}
}

// serveQueue posts a destination's tasks in order until it has none.
func (d *Dispatcher) serveQueue(dq *deliveryQueue) {
	q := &d.delivery
	for {
		q.mu.Lock()
		if len(dq.tasks) == 0 {
			dq.running = false
			delete(q.queues, dq.key)
			q.mu.Unlock()
			return
		}
		task := dq.tasks[0]
		dq.tasks = dq.tasks[1:]
		q.mu.Unlock()
		if err := d.deliverTo(task.reply, task.to); err != nil {
			// Only the end of the process stops a delivery half way; the
			// next start resumes it from the events.
			task.reply.log.Info().Err(err).Str("room", task.to.Name).Msg("reply delivery stopped with the process; it resumes when the dispatcher restarts")
			q.mu.Lock()
			delete(q.inFlight, task.reply.key())
			q.mu.Unlock()
			continue
		}
		rd := task.reply
		rd.mu.Lock()
		rd.remaining--
		last := rd.remaining == 0
		rd.mu.Unlock()
		if last {
			d.settle(rd)
		}
	}
}

// deliverTo posts the parts one destination still misses, in order.
func (d *Dispatcher) deliverTo(rd *replyDelivery, to dispatch.Destination) error {
	log := rd.log.With().Str("adapter", rd.reply.Adapter).Str("room", to.Name).Logger()
	state, err := d.deliveryState(rd.ctx, log, rd.requestID, rd.notice)
	if err != nil {
		return err
	}
	count := len(rd.parts)
	retry := newDeliveryBackOff() // of the part being posted
	for {
		step := state.Next(to, count)
		if step.Done {
			break
		}
		part := rd.parts[step.Part]
		var outcome domain.Payload
		if step.Lookup {
			if finder, ok := rd.provider.(chat.PartFinder); ok {
				since := state.AttemptedAt(to, step.Part)
				messageID, found, err := finder.FindPart(rd.ctx, to, part, since)
				if err != nil {
					if err := waitToRetry(rd, log, step.Part, retry, err); err != nil {
						return err
					}
					continue
				}
				if found {
					log.Info().Int("part", step.Part).Str("message_id", messageID).Msg("a part attempted before was found posted; not posting it again")
					outcome = chat.ReplyPartPosted{Notice: rd.notice, Adapter: rd.reply.Adapter, To: to, Part: step.Part, Count: count, MessageID: messageID, Found: true}
				}
			}
		} else {
			attempt := chat.ReplyPartAttempted{Notice: rd.notice, Adapter: rd.reply.Adapter, To: to, Part: step.Part, Count: count, At: time.Now().UTC()}
			if err := d.recordDelivery(rd, attempt, to, step.Part, "attempted"); err != nil {
				return err
			}
			state.Apply(attempt)
		}
		if outcome == nil {
			messageID, err := rd.provider.Post(rd.ctx, to, part)
			switch {
			case err == nil:
				outcome = chat.ReplyPartPosted{Notice: rd.notice, Adapter: rd.reply.Adapter, To: to, Part: step.Part, Count: count, MessageID: messageID}
			case errors.Is(err, chat.ErrRetry) && rd.ctx.Err() == nil:
				if err := waitToRetry(rd, log, step.Part, retry, err); err != nil {
					return err
				}
				continue
			case rd.ctx.Err() != nil:
				return rd.ctx.Err()
			default:
				log.Error().Err(err).Int("part", step.Part).Msg("the provider refused a part of the reply for good")
				outcome = chat.ReplyPartFailed{Notice: rd.notice, Adapter: rd.reply.Adapter, To: to, Part: step.Part, Count: count, Error: err.Error()}
			}
		}
		if err := d.recordDelivery(rd, outcome, to, step.Part, "outcome"); err != nil {
			return err
		}
		state.Apply(outcome)
		retry.Reset()
	}
	rd.mu.Lock()
	if rd.messageID == "" {
		rd.messageID = state.MessageID(to)
	}
	rd.mu.Unlock()
	return nil
}

// waitToRetry waits before a part's next try, longer after each failure
// (retry's delays), and returns the context's error when the process is
// stopping.
func waitToRetry(rd *replyDelivery, log zerolog.Logger, part int, retry *backoff.ExponentialBackOff, cause error) error {
	wait := retry.NextBackOff()
	log.Warn().Err(cause).Int("part", part).Dur("retry_in", wait).Msg("posting a part of the reply failed; retrying")
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-rd.ctx.Done():
		return rd.ctx.Err()
	}
}

// deliveryState folds what the request stream says about the delivery of
// its reply, or of its notice keyed notice. A store that does not answer
// is retried with backoff until ctx ends.
func (d *Dispatcher) deliveryState(ctx context.Context, log zerolog.Logger, requestID, notice string) (*chat.Delivery, error) {
	var state *chat.Delivery
	err := retryStore(ctx, log, "reading what was delivered of a reply", func() error {
		var err error
		state, err = d.readDeliveryState(ctx, requestID, notice)
		return err
	})
	return state, err
}

func (d *Dispatcher) readDeliveryState(ctx context.Context, requestID, notice string) (*chat.Delivery, error) {
	state := chat.NewNoticeDelivery(notice)
	from := int64(0)
	for {
		events, err := d.cfg.Store.ReadStream(ctx, dispatch.Stream(requestID), from, 1000)
		if err != nil {
			return nil, fmt.Errorf("reading the delivery of request %s: %w", requestID, err)
		}
		for _, e := range events {
			if p, err := domain.Decode(e); err == nil {
				state.Apply(p)
			}
		}
		if len(events) < 1000 {
			return state, nil
		}
		from = events[len(events)-1].Version + 1
	}
}

// recordDelivery appends a delivery event with an id stable for the
// request, destination, part and purpose: recording it again is a no-op.
// A store that is down is retried with backoff; only the end of the process
// gives up (the next start resumes from what was recorded).
func (d *Dispatcher) recordDelivery(rd *replyDelivery, p domain.Payload, to dispatch.Destination, part int, purpose string) error {
	md := domain.Metadata{CorrelationID: rd.requestID, Actor: d.cfg.Actor}
	if rd.causation != uuid.Nil {
		md.CausationID = rd.causation.String()
	}
	e, err := domain.Encode(p, md)
	if err != nil {
		return err
	}
	message := "reply"
	if rd.notice != "" {
		message = "notice/" + rd.notice
	}
	e.ID = dispatch.DerivedID(dispatch.RequestSeed(rd.requestID), fmt.Sprintf("%s/%s/%s/%d/%s", message, to.Kind, to.Name, part, purpose), 0)
	return retryStore(rd.ctx, rd.log.With().Str("event", p.EventType()).Int("part", part).Logger(), "recording the delivery of a reply part", func() error {
		_, err := d.cfg.Store.Append(rd.ctx, dispatch.Stream(rd.requestID), eventstore.Any, e)
		return err
	})
}

// newDeliveryBackOff gives the waits between tries: 200 ms doubling to 30
// s, with jitter, for as long as the process lives.
func newDeliveryBackOff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = deliveryFirstRetry, deliveryMaxRetry
	return b
}

// retryStore runs op until the store takes it or ctx ends, backing off and
// logging each failure: a store that is down holds a delivery up, never
// loses it.
func retryStore(ctx context.Context, log zerolog.Logger, what string, op func() error) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) { return struct{}{}, op() },
		backoff.WithBackOff(newDeliveryBackOff()), backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, wait time.Duration) {
			log.Error().Err(err).Dur("retry_in", wait).Msg(what)
		}))
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// settle records ReplyPosted once every destination is settled, and wakes
// whoever waits for the reply. A notice ends with its parts.
func (d *Dispatcher) settle(rd *replyDelivery) {
	q := &d.delivery
	if rd.notice != "" {
		q.mu.Lock()
		delete(q.inFlight, rd.key())
		q.mu.Unlock()
		return
	}
	room := ""
	if len(rd.reply.To) > 0 {
		room = rd.reply.To[0].Name
	}
	posted := dispatch.NewReplyPosted(rd.reply, room, rd.messageID)
	if err := retryStore(rd.ctx, rd.log, "recording ReplyPosted", func() error {
		return d.recordReplyPosted(rd.ctx, rd.requestID, posted, rd.causation)
	}); err != nil {
		// Only the end of the process stops it; the next start resumes.
		q.mu.Lock()
		delete(q.inFlight, rd.requestID)
		q.mu.Unlock()
		return
	}
	d.notify(rd.requestID, rd.reply)
	q.mu.Lock()
	delete(q.inFlight, rd.requestID)
	q.mu.Unlock()
}
