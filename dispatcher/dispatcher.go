package dispatcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/template/render"
	"github.com/logbookhq/logbook/executor"
)

// Checkpoints stores how far the dispatcher has decided.
type Checkpoints interface {
	Load(ctx context.Context, name string) (int64, error)
	Save(ctx context.Context, name string, position int64) error
}

// ReplyPoster delivers a reply on one chat provider and says where it went.
type ReplyPoster interface {
	Post(ctx context.Context, requestID string, reply dispatch.Reply) (messageID string, err error)
}

// Config configures a Dispatcher. Zero fields take the defaults named.
type Config struct {
	Store       eventstore.Store  // required
	Checkpoints Checkpoints       // required
	Publisher   message.Publisher // required: run requests and cancels go to the executors
	Facts       *Facts            // required
	// Posters deliver replies by adapter name; a reply for an adapter
	// without one is recorded as posted to nowhere (logged).
	Posters map[string]ReplyPoster
	// Chat are the chat providers by adapter name. Their replies are cut
	// into parts and delivered off the decide loop, each part recorded
	// (see delivery.go).
	Chat map[string]chat.Provider
	// TranscriptURL gives the web address of a run's transcript, linked
	// from a reply too long to post whole (nil: no link).
	TranscriptURL func(runID string) string
	Name          string // checkpoint name ("dispatcher")
	Actor         string // recorded as the actor of its events ("dispatcher")
	Logger        zerolog.Logger
}

// Dispatcher is the runner of domain/dispatch.
type Dispatcher struct {
	cfg       Config
	requests  map[string]*requestState // open requests, by id
	runOwners map[string]string        // run id → request id
	// builtins are the builtin runs this dispatcher requested, run when
	// the feed delivers their RunRequested: by then the facts hold
	// everything recorded before it (a user the same decision registered).
	builtins map[string]bool
	timeouts chan string // request ids whose deadline passed
	// received takes Receive's requests to the loop, which decides them at
	// once when it has folded the whole log (see receiveInline); inline
	// says the loop is there to take them.
	received chan *receiveJob
	inline   atomic.Bool
	stopped  chan struct{} // closed when Run returns
	loop     loopState
	// deferring holds builtins back while a received request is decided;
	// deferred are those held, run once it is answered.
	deferring bool
	deferred  []func()
	resumed   bool       // resume ran after the fold reached the checkpoint
	mu        sync.Mutex // guards waiters
	waiters   map[string][]chan dispatch.Reply
	delivery  deliveries // replies on their way to chat providers
}

type requestState struct {
	req     dispatch.Request
	version int64 // of the request stream, -1 before any event
	timer   *time.Timer
}

// New builds a dispatcher.
func New(cfg Config) (*Dispatcher, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("dispatcher config: Store is required"))
	}
	if cfg.Checkpoints == nil {
		errs = append(errs, errors.New("dispatcher config: Checkpoints is required"))
	}
	if cfg.Publisher == nil {
		errs = append(errs, errors.New("dispatcher config: Publisher is required"))
	}
	if cfg.Facts == nil {
		errs = append(errs, errors.New("dispatcher config: Facts is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = "dispatcher"
	}
	if cfg.Actor == "" {
		cfg.Actor = "dispatcher"
	}
	return &Dispatcher{
		cfg: cfg, requests: map[string]*requestState{}, runOwners: map[string]string{}, builtins: map[string]bool{},
		timeouts: make(chan string, 64), waiters: map[string][]chan dispatch.Reply{},
		received: make(chan *receiveJob), stopped: make(chan struct{}),
	}, nil
}

// Receive records a chat message as a request. A provider's redelivery of
// the same message id is recognised and recorded once.
//
// While Run is following the log, the request is decided as it is recorded:
// its RequestReceived goes in the same atomic append as its decision, one
// commit from the message to its runs. Otherwise it is recorded alone and
// decided when the feed delivers it.
func (d *Dispatcher) Receive(ctx context.Context, in dispatch.RequestReceived, actor string) (string, error) {
	id := dispatch.RequestID(in.Adapter, in.MessageID)
	e, err := domain.Encode(in, domain.Metadata{CorrelationID: id, Actor: actor})
	if err != nil {
		return "", err
	}
	e.ID = derivedID(uuid.NewSHA1(uuid.NameSpaceURL, []byte(id)), "received", 0)
	if d.inline.Load() {
		job := &receiveJob{in: in, event: e, done: make(chan error, 1)}
		select {
		case d.received <- job:
			select {
			case err := <-job.done:
				return id, err
			case <-ctx.Done():
				return id, ctx.Err()
			}
		case <-d.stopped:
		case <-time.After(inlineWait):
			// The loop is busy (a slow builtin): record the request now,
			// the feed decides it in its turn.
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return id, d.appendReceived(ctx, id, e)
}

// appendReceived records a RequestReceived alone, for the feed to decide.
func (d *Dispatcher) appendReceived(ctx context.Context, id string, e domain.NewEvent) error {
	_, err := d.cfg.Store.Append(ctx, dispatch.Stream(id), eventstore.NoStream, e)
	if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		return nil // the same message again: it is already recorded
	}
	return err
}

// WaitForReply returns the reply of a request once it is posted (or at
// once, if it was posted before). The channel receives one reply.
func (d *Dispatcher) WaitForReply(requestID string) <-chan dispatch.Reply {
	ch := make(chan dispatch.Reply, 1)
	d.mu.Lock()
	d.waiters[requestID] = append(d.waiters[requestID], ch)
	d.mu.Unlock()
	return ch
}

func (d *Dispatcher) notify(requestID string, reply dispatch.Reply) {
	d.mu.Lock()
	chans := d.waiters[requestID]
	delete(d.waiters, requestID)
	d.mu.Unlock()
	for _, ch := range chans {
		ch <- reply
	}
}

// Run follows the log until ctx ends. Events up to the checkpoint are only
// folded (the model and the open requests are rebuilt); later ones are
// decided. Deciding again what was decided before a crash appends nothing
// new: event ids derive from the trigger's id.
func (d *Dispatcher) Run(ctx context.Context) error {
	log := d.cfg.Logger.With().Str("component", "dispatcher").Logger()
	checkpoint, err := d.cfg.Checkpoints.Load(ctx, d.cfg.Name)
	if err != nil {
		return fmt.Errorf("dispatcher checkpoint: %w", err)
	}
	head, _, err := d.cfg.Store.Head(ctx)
	if err != nil {
		return err
	}
	d.loop = loopState{start: checkpoint, checkpoint: checkpoint}
	lastSaved := checkpoint
	defer close(d.stopped)
	defer d.inline.Store(false)
	// Resume once everything stored at start is folded, so that what a
	// previous process already recorded (a reply posted, a run ended) is
	// known before anything is redone.
	d.loop.resumeAt = max(checkpoint, head)
	if d.loop.resumeAt == 0 {
		d.resumed = true
		d.inline.Store(true)
	}
	feed := make(chan domain.RecordedEvent)
	feedErr := make(chan error, 1)
	go func() {
		defer close(feed)
		for e, err := range eventstore.Follow(ctx, d.cfg.Store, 1, eventstore.FeedOptions{}) {
			if err != nil {
				feedErr <- err
				return
			}
			select {
			case feed <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	idle := time.NewTicker(time.Second)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			d.saveCheckpoint(context.Background(), log, &lastSaved, d.loop.checkpoint)
			return nil
		case err := <-feedErr:
			return fmt.Errorf("dispatcher feed: %w", err)
		case id := <-d.timeouts:
			if st := d.requests[id]; st != nil && !st.req.Status().Ended() {
				trigger := dispatch.RequestTimedOut{At: time.Now().UTC()}
				d.decide(ctx, log, st, trigger, derivedID(uuid.NewSHA1(uuid.NameSpaceURL, []byte(id)), "timeout", 0))
			}
		case <-idle.C:
			d.saveCheckpoint(ctx, log, &lastSaved, d.loop.checkpoint)
		case job := <-d.received:
			// Builtins that catching up makes due run after the request is
			// answered, so that Receive never waits for one.
			d.deferring = true
			err := d.receiveInline(ctx, log, job)
			d.deferring = false
			job.done <- err
			for _, start := range d.deferred {
				start()
			}
			d.deferred = nil
		case e, ok := <-feed:
			if !ok {
				return nil
			}
			if e.Position > d.loop.folded { // not read already by catchUp
				d.consume(ctx, log, e)
			}
		}
	}
}

func (d *Dispatcher) saveCheckpoint(ctx context.Context, log zerolog.Logger, saved *int64, position int64) {
	if position <= *saved {
		return
	}
	if err := d.cfg.Checkpoints.Save(ctx, d.cfg.Name, position); err != nil {
		log.Error().Err(err).Int64("position", position).Msg("saving the dispatcher checkpoint")
		return
	}
	*saved = position
}

// resume, once the fold reached the head, restarts what a previous process
// left half done: runs requested but not finished are published again (an
// executor skips a run that has ended), and replies not yet posted are posted.
func (d *Dispatcher) resume(ctx context.Context, log zerolog.Logger) {
	for id, st := range d.requests {
		if st.req.Status().Ended() {
			if reply, ok := st.req.PendingReply(); ok {
				d.post(ctx, log, id, reply, uuid.Nil)
			}
			continue
		}
		d.arm(id, st)
		for _, runID := range st.req.RunningRuns() {
			events, err := d.cfg.Store.ReadStream(ctx, run.Stream(runID), 0, 1)
			if err != nil || len(events) == 0 {
				continue
			}
			p, err := domain.Decode(events[0])
			rr, ok := p.(run.RunRequested)
			switch {
			case err != nil || !ok:
			case rr.Mode == dispatch.ModeBuiltin:
				// A crash came between the run's request and its end: run
				// it now, as nothing of its run was recorded.
				if err := d.runBuiltin(ctx, log, runID, rr, events[0].ID.String(), events[0].RecordedAt); err != nil {
					log.Error().Err(err).Str("run_id", runID).Msg("running a builtin again after a restart")
				}
			default:
				d.publishRun(ctx, log, runID, events[0].ID.String(), rr)
			}
		}
	}
}

func (d *Dispatcher) handle(ctx context.Context, log zerolog.Logger, e domain.RecordedEvent, deciding bool) {
	p, err := domain.Decode(e)
	if err != nil {
		log.Error().Err(err).Int64("position", e.Position).Msg("an event the dispatcher cannot read; skipped")
		return
	}
	d.cfg.Facts.Apply(p, e)
	switch {
	case strings.HasPrefix(e.Stream, dispatch.StreamPrefix):
		id := strings.TrimPrefix(e.Stream, dispatch.StreamPrefix)
		st := d.requests[id]
		if st == nil {
			st = &requestState{version: -1}
			d.requests[id] = st
		}
		if e.Version <= st.version {
			return // recorded by this dispatcher and folded when it was
		}
		st.req = dispatch.Evolve(st.req, p)
		st.version = e.Version
		switch ev := p.(type) {
		case dispatch.StageStarted:
			d.runOwners[ev.RunID] = id
		case dispatch.RequestReceived:
			if deciding {
				d.arm(id, st)
				d.decide(ctx, log, st, p, e.ID)
			}
		case dispatch.ReplyPosted:
			if st.req.Status().Ended() {
				d.forget(id)
			}
		}
	case strings.HasPrefix(e.Stream, run.StreamPrefix):
		runID := strings.TrimPrefix(e.Stream, run.StreamPrefix)
		if rr, ok := p.(run.RunRequested); ok {
			if rr.RequestID != "" {
				d.runOwners[runID] = rr.RequestID
			}
			if d.builtins[runID] {
				delete(d.builtins, runID)
				d.startBuiltin(ctx, log, runID, rr, e)
			}
		}
		id, ok := d.runOwners[runID]
		if !ok || !run.IsTerminal(p) {
			return
		}
		st := d.requests[id]
		if st == nil {
			return
		}
		trigger := dispatch.RunEvent{RunID: runID, Event: p}
		st.req = dispatch.Evolve(st.req, trigger)
		delete(d.runOwners, runID)
		if deciding {
			d.decide(ctx, log, st, trigger, e.ID)
		}
	}
}

// forget drops a request that ended and whose reply was posted.
func (d *Dispatcher) forget(id string) {
	if st := d.requests[id]; st != nil && st.timer != nil {
		st.timer.Stop()
	}
	delete(d.requests, id)
}

// arm starts the request's deadline.
func (d *Dispatcher) arm(id string, st *requestState) {
	if st.timer != nil {
		return
	}
	st.timer = time.AfterFunc(d.cfg.Facts.Settings().Timeout(), func() {
		select {
		case d.timeouts <- id:
		default:
		}
	})
}

// decide asks domain/dispatch what to do and does it, in the order
// dispatch.Decision prescribes.
func (d *Dispatcher) decide(ctx context.Context, log zerolog.Logger, st *requestState, trigger domain.Payload, triggerID uuid.UUID) {
	id := st.req.ID()
	log = log.With().Str("request_id", id).Logger()
	for attempt := 0; attempt < 3; attempt++ {
		decision, err := dispatch.Decide(st.req, trigger, d.cfg.Facts)
		if err != nil {
			log.Error().Err(err).Str("trigger", trigger.EventType()).Msg("deciding failed")
			return
		}
		if decision.IsZero() {
			return
		}
		err = d.record(ctx, log, st, decision, triggerID)
		var conflict *eventstore.VersionConflictError
		if errors.As(err, &conflict) && conflict.Stream == dispatch.Stream(id) {
			// Another dispatcher moved the request on: catch up and decide again.
			events, rerr := d.cfg.Store.ReadStream(ctx, dispatch.Stream(id), st.version+1, 10000)
			if rerr != nil {
				log.Error().Err(rerr).Msg("re-reading the request after a conflict")
				return
			}
			for _, e := range events {
				if p, derr := domain.Decode(e); derr == nil {
					st.req = dispatch.Evolve(st.req, p)
					st.version = e.Version
				}
			}
			continue
		}
		if err != nil {
			log.Error().Err(err).Msg("recording the decision failed; it is retried when the dispatcher restarts")
		}
		return
	}
}

func (d *Dispatcher) record(ctx context.Context, log zerolog.Logger, st *requestState, decision dispatch.Decision, triggerID uuid.UUID, received ...domain.NewEvent) error {
	id := st.req.ID()
	md := domain.Metadata{CorrelationID: id, CausationID: triggerID.String(), Actor: d.cfg.Actor}
	seq := 0
	next := func(p domain.Payload) (domain.NewEvent, error) {
		e, err := domain.Encode(p, md)
		e.ID = derivedID(triggerID, "decision", seq)
		seq++
		return e, err
	}
	// The decision's changes, the runs' RunRequested and the request's
	// events go in one atomic append: one commit on the way from a request
	// to its runs, no StageStarted is ever recorded without its run, and no
	// user a request registered without the request.
	parts, err := encodeChanges(decision.Changes, md, triggerID)
	if err != nil {
		return err
	}
	runEventIDs := map[string]string{}
	for _, start := range decision.Runs {
		e, err := next(start.Request)
		if err != nil {
			return err
		}
		parts = append(parts, eventstore.StreamAppend{Stream: run.Stream(start.RunID), Expected: eventstore.NoStream, Events: []domain.NewEvent{e}})
		runEventIDs[start.RunID] = e.ID.String()
		d.runOwners[start.RunID] = id
	}
	if len(decision.Request) > 0 || len(received) > 0 {
		events := make([]domain.NewEvent, 0, len(decision.Request))
		for _, p := range decision.Request {
			e, err := next(p)
			if err != nil {
				return err
			}
			events = append(events, e)
		}
		// A request decided as it is received (receiveInline) starts its
		// stream with the RequestReceived.
		events = append(received, events...)
		parts = append(parts, eventstore.StreamAppend{Stream: dispatch.Stream(id), Expected: eventstore.Exact(st.version), Events: events})
	}
	if len(parts) > 0 {
		results, err := d.appendDecision(ctx, parts, len(received) == 0)
		if err != nil {
			return err
		}
		d.cfg.Facts.applyOwn(decision.Changes)
		if len(decision.Request) > 0 || len(received) > 0 {
			// The feed delivers these events too; folding them now keeps
			// the state current for the steps below, and the feed's copies
			// are recognised by version.
			for _, p := range decision.Request {
				st.req = dispatch.Evolve(st.req, p)
			}
			st.version = results[len(results)-1].LastVersion
		}
	}
	for _, start := range decision.Runs {
		if start.Builtin {
			d.builtins[start.RunID] = true
			continue
		}
		d.publishRun(ctx, log, start.RunID, runEventIDs[start.RunID], start.Request)
	}
	for _, runID := range decision.Cancel {
		msg, err := executor.NewCancelMessage(executor.CancelRequest{RunID: runID, Actor: d.cfg.Actor, Reason: "the request ended"})
		if err == nil {
			err = d.cfg.Publisher.Publish(executor.TopicRunCancel, msg)
		}
		if err != nil {
			log.Error().Err(err).Str("run_id", runID).Msg("publishing a cancel")
		}
	}
	if decision.Reply != nil {
		d.post(ctx, log, id, *decision.Reply, triggerID)
	}
	return nil
}

func (d *Dispatcher) publishRun(ctx context.Context, log zerolog.Logger, runID, eventID string, req run.RunRequested) {
	msg, err := executor.NewRunRequestMessage(executor.RunRequest{RunID: runID, EventID: eventID, Request: req})
	if err == nil {
		msg.SetContext(ctx)
		err = d.cfg.Publisher.Publish(executor.TopicRunRequested, msg)
	}
	if err != nil {
		log.Error().Err(err).Str("run_id", runID).Msg("publishing a run request; it is published again when the dispatcher restarts")
	}
}

// post hands the reply to its adapter. A chat provider's reply is
// delivered off the loop, part by part (delivery.go); the api and web
// posters answer at once; a reply for an adapter with neither is recorded
// as posted to nowhere.
func (d *Dispatcher) post(ctx context.Context, log zerolog.Logger, requestID string, reply dispatch.Reply, triggerID uuid.UUID) {
	// A secret a builtin showed (a new token) goes into the reply only: the
	// recorded output holds a placeholder, and so does the rendered text
	// ReplyPosted records; the text posted is rendered again with the
	// secret revealed.
	format := render.FormatFor(reply.Adapter)
	recorded := dispatch.RenderReply(reply, d.cfg.Facts, format).Rendered
	if revealed := d.cfg.Facts.revealSecrets(requestID, reply); revealed.Text != reply.Text || !bytes.Equal(revealed.Value, reply.Value) {
		reply = dispatch.RenderReply(revealed, d.cfg.Facts, format)
		reply.Rendered.Recorded, reply.Rendered.RecordedAttachments = recorded.Text, recorded.Attachments
	} else {
		reply.Rendered = recorded
	}
	if provider, ok := d.cfg.Chat[reply.Adapter]; ok {
		d.deliver(ctx, log, requestID, reply, provider, triggerID)
		return
	}
	messageID := ""
	if poster, ok := d.cfg.Posters[reply.Adapter]; ok {
		var err error
		if messageID, err = poster.Post(ctx, requestID, reply); err != nil {
			log.Error().Err(err).Str("adapter", reply.Adapter).Msg("posting the reply failed; it is posted again when the dispatcher restarts")
			return
		}
	} else {
		log.Warn().Str("adapter", reply.Adapter).Msg("no chat adapter for this reply; recorded as posted")
	}
	room := ""
	if len(reply.To) > 0 {
		room = reply.To[0].Name
	}
	d.recordReplyPosted(ctx, log, requestID, reply, dispatch.NewReplyPosted(reply, room, messageID), triggerID)
}

// recordReplyPosted records that the reply is delivered and wakes whoever
// waits for it.
func (d *Dispatcher) recordReplyPosted(ctx context.Context, log zerolog.Logger, requestID string, reply dispatch.Reply, posted dispatch.ReplyPosted, triggerID uuid.UUID) {
	md := domain.Metadata{CorrelationID: requestID, Actor: d.cfg.Actor}
	if triggerID != uuid.Nil {
		md.CausationID = triggerID.String()
	}
	e, err := domain.Encode(posted, md)
	if err == nil {
		// One reply per request: its record has a stable id, so recording
		// it twice (a crash between posting and recording) is a no-op.
		e.ID = derivedID(uuid.NewSHA1(uuid.NameSpaceURL, []byte(requestID)), "reply", 0)
		_, err = d.cfg.Store.Append(ctx, dispatch.Stream(requestID), eventstore.Any, e)
	}
	if err != nil {
		log.Error().Err(err).Msg("recording ReplyPosted")
	}
	d.notify(requestID, reply)
}

// derivedID gives the n-th event a trigger causes a stable id, so that
// deciding the same trigger twice appends the same events (no-ops).
func derivedID(trigger uuid.UUID, purpose string, n int) uuid.UUID {
	return uuid.NewSHA1(trigger, []byte(fmt.Sprintf("%s/%d", purpose, n)))
}
