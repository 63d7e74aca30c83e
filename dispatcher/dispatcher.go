package dispatcher

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/bundleconfig"
	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/runbus"
	"github.com/logbookhq/logbook/domain/template/render"
	"github.com/logbookhq/logbook/internal/supervisor"
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
	// Vault holds the values of secrets: a run's are read from it as the
	// run is published, into the message alone (nil: no secrets; a run
	// that has one fails, saying so).
	Vault bundleconfig.Vault
	// TranscriptURL gives the web address of a run's transcript, linked
	// from a reply too long to post whole (nil: no link).
	TranscriptURL func(runID string) string
	// CheckpointEvery is how often the checkpoint is stored while it
	// moves (1s). A follower (Follow) folds up to the stored checkpoint,
	// so with several servers this bounds how far its facts lag.
	CheckpointEvery time.Duration
	// FollowEvery is how often a follower reads the stored checkpoint
	// (200ms).
	FollowEvery time.Duration
	Name        string // checkpoint name ("dispatcher")
	Actor       string // recorded as the actor of its events ("dispatcher")
	Logger      zerolog.Logger
}

// Dispatcher is the runner of domain/dispatch.
type Dispatcher struct {
	cfg Config
	// position mirrors loop.folded for readers outside the loop (metrics).
	position  atomic.Int64
	requests  map[string]*requestState // open requests, by id
	runOwners map[string]string        // run id → request id
	// builtins are the builtin runs this dispatcher requested, published
	// to the builtin executor when the feed delivers their RunRequested:
	// by then the facts hold everything recorded before it (a user the
	// same decision registered).
	builtins map[string]bool
	// recorded are the payloads of events this dispatcher encoded and
	// committed, by event id, until the feed brings the events: the fold
	// takes them instead of decoding what it has just encoded. The
	// request's own state is folded from the same payloads when they are
	// committed (foldRecorded).
	recorded map[uuid.UUID]domain.Payload
	timeouts chan string // request ids whose deadline passed
	// received takes Receive's requests to the loop, which decides them at
	// once when it has folded the whole log (see receiveInline); inline
	// says the loop is there to take them, and loopDone closes when the
	// current Run returns.
	received chan *receiveJob
	// runEnds takes runs' last events from the executors' appender to the
	// loop, which appends them with their decision (EndRun) while inline.
	runEnds chan *runEndJob
	// undecided counts the requests waiting for the loop to take them.
	undecided atomic.Int64
	inline    atomic.Bool
	loopMu    sync.Mutex
	loopDone  chan struct{}

	// The loop's own state, which only Run's goroutine touches. It
	// outlives a Run: a restart goes on from what was folded.
	loop      loopState
	opened    bool  // the first Run has loaded the checkpoint
	lastSaved int64 // the checkpoint last stored
	resumed   bool  // resume ran once the fold reached resumeAt
	// failure is what this Run could not do for now (record a decision,
	// post a reply, publish a run): Run ends with it, and the restart's
	// resume does it again.
	failure error
	// pending are the triggers whose decision was not recorded, by
	// request id; the checkpoint stays before the first of them.
	pending map[string]pendingDecision
	// late are answers to requests that ended and were forgotten whose
	// judgement the store did not take (judgeLate), by request id: judged
	// again on resume, and the checkpoint stays before the first of them.
	late map[string]domain.RecordedEvent
	// waitingFor are the requests waiting for approval or for a quota, by id
	// (approvals.go).
	waitingFor map[string]bool
	// changing holds the builtin runs that may record changes back, so
	// they run in the order of the log.
	changing changingBuiltins
	// batch, while the loop handles what the feed holds, gathers the
	// decisions to record in one commit (feedbatch.go); nil otherwise.
	batch *feedBatch

	mu       sync.Mutex // guards waiters
	waiters  map[string][]*replyWaiter
	delivery deliveries // replies on their way to chat providers
}

// pendingDecision is a trigger decided but not recorded (the store failed).
type pendingDecision struct {
	trigger   domain.Payload
	triggerID uuid.UUID
	position  int64     // of the trigger's event; 0 for a timer
	at        time.Time // when the trigger happened
}

type requestState struct {
	req     dispatch.Request
	version int64 // of the request stream, -1 before any event
	timer   *time.Timer
	// waited is set while the request waits for approval or a quota: its
	// deadline starts again when it starts.
	waited bool
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
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = time.Second
	}
	if cfg.FollowEvery <= 0 {
		cfg.FollowEvery = 200 * time.Millisecond
	}
	stopped := make(chan struct{})
	close(stopped) // no Run yet
	return &Dispatcher{
		cfg: cfg, requests: map[string]*requestState{}, runOwners: map[string]string{}, builtins: map[string]bool{}, recorded: map[uuid.UUID]domain.Payload{},
		timeouts: make(chan string, 64), waiters: map[string][]*replyWaiter{},
		received: make(chan *receiveJob), runEnds: make(chan *runEndJob), loopDone: stopped, pending: map[string]pendingDecision{}, late: map[string]domain.RecordedEvent{}, waitingFor: map[string]bool{},
	}, nil
}

// Position is the last position of the log the dispatcher has folded.
func (d *Dispatcher) Position() int64 { return d.position.Load() }

// Receive records a chat message as a request. A provider's redelivery of
// the same message id is recognised and recorded once; a message from
// another sender under the id of a recorded request is refused with a
// dispatch error of kind KindMessageIDTaken, and is never taken for it.
// An api or web request must carry its authenticated sender (Sender, the
// actor), which its id derives from.
//
// While Run is following the log, the request is decided as it is recorded:
// its RequestReceived goes in the same atomic append as its decision, one
// commit from the message to its runs. Otherwise it is recorded alone and
// decided when the feed delivers it.
func (d *Dispatcher) Receive(ctx context.Context, in dispatch.RequestReceived, actor string) (string, error) {
	id, _, err := d.receive(ctx, in, actor)
	return id, err
}

// errKnownRequest says a message's request was recorded before, by the
// same sender: Receive succeeds, and ReceiveAndWait looks for its reply.
var errKnownRequest = errors.New("the request is recorded already")

// receive records the request, and says whether it was recorded before.
func (d *Dispatcher) receive(ctx context.Context, in dispatch.RequestReceived, actor string) (id string, known bool, err error) {
	id, err = d.receiveOnce(ctx, in, actor)
	if errors.Is(err, errKnownRequest) {
		return id, true, nil
	}
	return id, false, err
}

func (d *Dispatcher) receiveOnce(ctx context.Context, in dispatch.RequestReceived, actor string) (string, error) {
	if dispatch.AuthenticatedAdapters[in.Adapter] && (in.Sender == "" || in.Sender != actor) {
		return "", fmt.Errorf("a request from provider %s must name its authenticated sender, the actor %q, as Sender (it names %q)", in.Adapter, actor, in.Sender)
	}
	id := in.ID()
	e, err := domain.Encode(in, domain.Metadata{CorrelationID: id, Actor: actor})
	if err != nil {
		return "", err
	}
	e.ID = dispatch.DerivedID(dispatch.RequestSeed(id), "received", 0)
	if d.inline.Load() {
		d.loopMu.Lock()
		loopDone := d.loopDone
		d.loopMu.Unlock()
		job := &receiveJob{in: in, event: e, done: make(chan error, 1)}
		d.undecided.Add(1)
		select {
		case d.received <- job:
			d.undecided.Add(-1)
			select {
			case err := <-job.done:
				return id, err
			case <-ctx.Done():
				return id, ctx.Err()
			}
		case <-loopDone:
			// The loop stopped (it restarts): record the request alone,
			// the feed decides it in its turn.
			d.undecided.Add(-1)
		case <-ctx.Done():
			d.undecided.Add(-1)
			return "", ctx.Err()
		}
	}
	return id, d.appendReceived(ctx, in, e)
}

// appendReceived records a RequestReceived alone, for the feed to decide.
func (d *Dispatcher) appendReceived(ctx context.Context, in dispatch.RequestReceived, e domain.NewEvent) error {
	// Its id derives from the request's, so the same id again is either a
	// duplicate (a no-op) or, after other events, a version conflict.
	res, err := d.cfg.Store.Append(ctx, dispatch.Stream(in.ID()), eventstore.NoStream, e)
	if res.Duplicate || errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		return d.alreadyReceived(ctx, in)
	}
	return err
}

// alreadyReceived answers a message whose request id is recorded already:
// errKnownRequest when it is the same sender's message again (a
// redelivery or a retry), a KindMessageIDTaken error when the request is
// another sender's.
func (d *Dispatcher) alreadyReceived(ctx context.Context, in dispatch.RequestReceived) error {
	events, err := d.cfg.Store.ReadStream(ctx, dispatch.Stream(in.ID()), 0, 1)
	if err != nil {
		return err
	}
	if len(events) == 0 {
		return fmt.Errorf("request %s: recorded, yet its stream is empty", in.ID())
	}
	p, err := domain.Decode(events[0])
	if err != nil {
		return err
	}
	if stored, ok := p.(dispatch.RequestReceived); !ok || !stored.SameSender(in) {
		return dispatch.MessageIDTaken(in.Adapter, in.MessageID)
	}
	return errKnownRequest
}

// Run follows the log until ctx ends. Events up to the checkpoint are only
// folded (the model and the open requests are rebuilt); later ones are
// decided. Deciding again what was decided before a crash appends nothing
// new: event ids derive from the trigger's id.
//
// Run is a part of the server's supervisor: it reports itself ready once
// it has folded what the log held when it started, and it ends with an
// error when it could not do something for now (the store went away while
// it read the log, recorded a decision, posted a reply). The next Run goes
// on from what is folded, without folding it again, and resumes once it
// has caught up: what failed is done again then.
func (d *Dispatcher) Run(ctx context.Context) error {
	log := d.cfg.Logger.With().Str("component", "dispatcher").Logger()
	head, _, err := d.cfg.Store.Head(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it began: nothing to report
		}
		return fmt.Errorf("dispatcher: read the head of the log: %w", err)
	}
	if !d.opened {
		checkpoint, err := d.cfg.Checkpoints.Load(ctx, d.cfg.Name)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("dispatcher checkpoint: %w", err)
		}
		// Resume once everything stored at start is folded, so that what
		// a previous process already recorded (a reply posted, a run
		// ended) is known before anything is redone. What Follow folded
		// (up to an older checkpoint) is not folded again; what this
		// dispatcher folded past the stored checkpoint, it folded leading
		// an earlier term, and decided (or holds pending).
		start := max(checkpoint, d.loop.folded)
		d.loop = loopState{start: start, checkpoint: start, resumeAt: max(start, head), folded: d.loop.folded}
		d.lastSaved = checkpoint
		d.opened = true
	} else {
		d.loop.resumeAt = max(head, d.loop.folded)
		d.resumed = false
	}
	d.failure = nil
	loopDone := make(chan struct{})
	d.loopMu.Lock()
	d.loopDone = loopDone
	d.loopMu.Unlock()
	defer func() {
		d.inline.Store(false)
		close(loopDone)
	}()
	if d.loop.folded >= d.loop.resumeAt {
		d.resumeNow(ctx, log)
	}
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	feed := make(chan []domain.RecordedEvent)
	feedErr := make(chan error, 1)
	go func() {
		defer close(feed)
		for page, err := range eventstore.FollowPages(feedCtx, d.cfg.Store, d.loop.folded+1, eventstore.FeedOptions{}) {
			if err != nil {
				feedErr <- err
				return
			}
			select {
			case feed <- page:
			case <-feedCtx.Done():
				return
			}
		}
	}()
	idle := time.NewTicker(d.cfg.CheckpointEvery)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			d.saveCheckpoint(context.Background(), log)
			d.delivery.wait()
			return nil
		case err := <-feedErr:
			return fmt.Errorf("dispatcher feed: %w", err)
		case id := <-d.timeouts:
			if st := d.requests[id]; st != nil && !st.req.Status().Ended() {
				now := time.Now().UTC()
				trigger := dispatch.RequestTimedOut{At: now}
				d.decide(ctx, log, st, trigger, dispatch.DerivedID(dispatch.RequestSeed(id), "timeout", 0), 0, now)
			}
		case <-idle.C:
			if d.resumed {
				d.sweep(ctx, log, time.Now().UTC())
			}
			d.saveCheckpoint(ctx, log)
		case job := <-d.received:
			d.receiveBatch(ctx, log, takeReady(d.received, job, maxReceiveBatch))
		case job := <-d.runEnds:
			d.endRuns(ctx, log, takeReady(d.runEnds, job, maxRunEndBatch))
		case page, ok := <-feed:
			if !ok {
				return nil
			}
			d.consumePage(ctx, log, page)
		}
		if d.failure != nil {
			d.saveCheckpoint(context.Background(), log)
			if ctx.Err() != nil {
				// Stopped mid-step: what failed, failed for the stop
				// (a cancelled read), and the next Run does it again.
				d.delivery.wait()
				return nil
			}
			return d.failure
		}
	}
}

// fail notes what this Run could not do for now; Run ends with it after
// the step at hand.
func (d *Dispatcher) fail(err error) {
	if d.failure == nil {
		d.failure = err
	}
}

// resumeNow runs resume once the fold has reached resumeAt, then lets
// requests be decided as they arrive and reports the part ready.
func (d *Dispatcher) resumeNow(ctx context.Context, log zerolog.Logger) {
	d.resumed = true
	d.flushBatch(ctx, log) // resume reads the requests as recorded
	d.resume(ctx, log)
	d.inline.Store(true)
	supervisor.Ready(ctx)
}

// saveCheckpoint stores how far the dispatcher has decided: never past a
// trigger whose decision is still to be recorded, so a crash decides it
// again.
func (d *Dispatcher) saveCheckpoint(ctx context.Context, log zerolog.Logger) {
	position := d.loop.checkpoint
	for _, p := range d.pending {
		if p.position > 0 {
			position = min(position, p.position-1)
		}
	}
	for _, answer := range d.late {
		position = min(position, answer.Position-1)
	}
	if position <= d.lastSaved {
		return
	}
	if err := d.cfg.Checkpoints.Save(ctx, d.cfg.Name, position); err != nil {
		log.Error().Err(err).Int64("position", position).Msg("saving the dispatcher checkpoint")
		return
	}
	d.lastSaved = position
}

// resume, once the fold reached the head, restarts what a previous process
// (or this one, before a restart of its loop) left half done: decisions
// not recorded are made again, runs requested but not finished are
// published again (an executor skips a run that has ended, or that it
// runs), and replies not yet posted are posted.
func (d *Dispatcher) resume(ctx context.Context, log zerolog.Logger) {
	for id, p := range d.pending {
		st := d.requests[id]
		if st == nil || st.req.Status().Ended() {
			delete(d.pending, id)
			continue
		}
		d.decide(ctx, log, st, p.trigger, p.triggerID, p.position, p.at)
	}
	for id, answer := range d.late {
		if d.requests[id] != nil {
			delete(d.late, id) // folded again: its own trigger decides it
			continue
		}
		d.judgeLate(ctx, log, id, answer)
	}
	var builtins []domain.RecordedEvent
	for id, st := range d.requests {
		if st.req.Status().Ended() {
			if reply, ok := st.req.PendingReply(); ok {
				d.post(ctx, log, id, reply, uuid.Nil)
			}
			continue
		}
		d.arm(id, st)
		d.resumeWaiting(ctx, log, id, st)
		for _, runID := range st.req.RunningRuns() {
			events, err := d.cfg.Store.ReadStream(ctx, run.Stream(runID), 0, 1)
			if err != nil {
				d.fail(fmt.Errorf("read run %s to publish it again: %w", runID, err))
				continue
			}
			if len(events) == 0 {
				continue
			}
			p, err := domain.Decode(events[0])
			rr, ok := p.(run.RunRequested)
			switch {
			case err != nil || !ok:
			case rr.Mode == dispatch.ModeBuiltin:
				builtins = append(builtins, events[0])
			default:
				d.publishRun(ctx, log, runID, events[0].ID.String(), rr, false)
			}
		}
	}
	// Builtin runs go again in the order of the log; the one in flight
	// before, if any, is among them (the executor skips it while it runs).
	slices.SortFunc(builtins, func(a, b domain.RecordedEvent) int { return cmp.Compare(a.Position, b.Position) })
	d.changing = changingBuiltins{}
	for _, e := range builtins {
		p, _ := domain.Decode(e)
		d.startBuiltin(ctx, log, queuedBuiltin{runID: strings.TrimPrefix(e.Stream, run.StreamPrefix), eventID: e.ID.String(), request: p.(run.RunRequested)})
	}
}

func (d *Dispatcher) handle(ctx context.Context, log zerolog.Logger, e domain.RecordedEvent, deciding bool) {
	if strings.HasPrefix(e.Stream, run.StreamPrefix) && !foldsRunEvent(e.Type) {
		return
	}
	p, own := d.recorded[e.ID]
	if own {
		delete(d.recorded, e.ID)
	} else {
		var err error
		if p, err = domain.Decode(e); err != nil {
			log.Error().Err(err).Int64("position", e.Position).Msg("an event the dispatcher cannot read; skipped")
			return
		}
	}
	d.cfg.Facts.Apply(p, e)
	switch {
	case strings.HasPrefix(e.Stream, dispatch.StreamPrefix):
		id := strings.TrimPrefix(e.Stream, dispatch.StreamPrefix)
		d.flushFor(ctx, log, id)
		st := d.requests[id]
		if st == nil {
			if _, late := p.(dispatch.ApprovalAnswered); late && deciding {
				// An answer to a request that ended, and was forgotten,
				// after the answer was given: it is judged all the same.
				d.judgeLate(ctx, log, id, e)
				return
			}
			st = &requestState{version: -1}
			d.requests[id] = st
		}
		if e.Version <= st.version {
			// Recorded by this dispatcher and folded when it was. A reply
			// recorded with its decision ends the request here, where the
			// feed has passed every event before it.
			if _, ok := p.(dispatch.ReplyPosted); ok && e.Version == st.version && st.req.Status().Ended() {
				d.forget(id)
			}
			return
		}
		st.req = dispatch.Evolve(st.req, p)
		st.version = e.Version
		d.track(id, st)
		switch ev := p.(type) {
		case dispatch.StageStarted:
			d.runOwners[ev.RunID] = id
		case dispatch.RequestReceived:
			if deciding {
				d.arm(id, st)
				d.decide(ctx, log, st, p, e.ID, e.Position, e.RecordedAt)
			}
		case dispatch.ApprovalAnswered:
			if deciding {
				d.decide(ctx, log, st, p, e.ID, e.Position, e.RecordedAt)
			}
		case dispatch.ReplyPosted:
			if st.req.Status().Ended() {
				d.forget(id)
			}
			// Posted by another server (the one this one took over
			// from): its callers waiting here get the reply from the
			// log. One this dispatcher delivers is handed over whole,
			// with any secret it shows, by the delivery itself.
			if !d.delivering(id) {
				d.handOverFromLog(ctx, id)
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
				d.startBuiltin(ctx, log, queuedBuiltin{runID: runID, eventID: e.ID.String(), request: rr})
			}
		}
		if run.IsTerminal(p) && runID == d.changing.inFlight {
			d.changing.inFlight = ""
			d.nextChangingBuiltin(ctx, log)
		}
		id, ok := d.runOwners[runID]
		if !ok || !run.IsTerminal(p) {
			return
		}
		st := d.requests[id]
		if st == nil {
			// The request ended and was forgotten, or comes later in the
			// log (a pure builtin's run goes before the request's events
			// in the commit that decided it): its own events say how
			// the run ended.
			delete(d.runOwners, runID)
			return
		}
		d.flushFor(ctx, log, id)
		trigger := dispatch.RunEvent{RunID: runID, Event: p}
		st.req = dispatch.Evolve(st.req, trigger)
		delete(d.runOwners, runID)
		if deciding {
			d.decide(ctx, log, st, trigger, e.ID, e.Position, e.RecordedAt)
			if d.resumed {
				d.roomMayHaveFreed(ctx, log, time.Now().UTC())
			}
		}
	}
}

// foldsRunEvent says whether the dispatcher folds a run's event of type
// typ: a run's request and its end are all that it, and its facts (the
// quotas' running runs), read from a run's stream. The rest, its output
// above all, is not even decoded.
func foldsRunEvent(typ string) bool {
	return typ == runRequestedType || run.IsTerminalType(typ)
}

var runRequestedType = run.RunRequested{}.EventType()

// changingBuiltins are the builtin runs that may record changes, handed to
// the builtin executor one at a time in the order of the log: each is
// published once the one before has ended, so it decides on what that one
// recorded (the first "user create bob" creates bob, the second finds the
// name taken), however the bus orders deliveries.
type changingBuiltins struct {
	queue    []queuedBuiltin
	inFlight string // the run id published and not yet ended
}

type queuedBuiltin struct {
	runID, eventID string
	request        run.RunRequested
}

// startBuiltin publishes a builtin run, or queues it behind the one in
// flight when it may record changes.
func (d *Dispatcher) startBuiltin(ctx context.Context, log zerolog.Logger, b queuedBuiltin) {
	if !d.cfg.Facts.Builtins().Changes(b.request) {
		d.publishRun(ctx, log, b.runID, b.eventID, b.request, false)
		return
	}
	d.changing.queue = append(d.changing.queue, b)
	d.nextChangingBuiltin(ctx, log)
}

// nextChangingBuiltin publishes the next queued changing builtin when none
// is in flight.
func (d *Dispatcher) nextChangingBuiltin(ctx context.Context, log zerolog.Logger) {
	if d.changing.inFlight != "" || len(d.changing.queue) == 0 {
		return
	}
	b := d.changing.queue[0]
	d.changing.queue = d.changing.queue[1:]
	d.changing.inFlight = b.runID
	d.publishRun(ctx, log, b.runID, b.eventID, b.request, false)
}

// forget drops a request that ended and whose reply was posted.
func (d *Dispatcher) forget(id string) {
	if st := d.requests[id]; st != nil && st.timer != nil {
		st.timer.Stop()
	}
	delete(d.requests, id)
	delete(d.waitingFor, id)
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
// dispatch.Decision prescribes. A decision the store does not take (it is
// down) is kept pending, with the position of its trigger, and decided
// again when the loop resumes; the loop ends for its supervisor to restart.
//
// at is when the trigger happened, the time the decision reads.
func (d *Dispatcher) decide(ctx context.Context, log zerolog.Logger, st *requestState, trigger domain.Payload, triggerID uuid.UUID, position int64, at time.Time) {
	id := st.req.ID()
	log = log.With().Str("request_id", id).Logger()
	delete(d.pending, id)
	for attempt := 0; attempt < 3; attempt++ {
		decision, err := dispatch.Decide(st.req, trigger, decidingAt{d.cfg.Facts, at.UTC()})
		if err != nil {
			log.Error().Err(err).Str("trigger", trigger.EventType()).Msg("deciding failed")
			return
		}
		if decision.IsZero() {
			return
		}
		if attempt == 0 && d.batchDecision(log, st, decision, feedMember{trigger: trigger, triggerID: triggerID, position: position, at: at}) {
			return
		}
		err = d.record(ctx, log, st, decision, triggerID)
		var conflict *eventstore.VersionConflictError
		if errors.As(err, &conflict) && conflict.Stream == dispatch.Stream(id) {
			// Another dispatcher moved the request on: catch up and decide again.
			events, rerr := d.cfg.Store.ReadStream(ctx, dispatch.Stream(id), st.version+1, 10000)
			if rerr != nil {
				err = fmt.Errorf("re-reading the request after a conflict: %w", rerr)
			} else {
				for _, e := range events {
					if p, derr := domain.Decode(e); derr == nil {
						st.req = dispatch.Evolve(st.req, p)
						st.version = e.Version
					}
				}
				continue
			}
		}
		if err != nil {
			// Pending even when the stop cut it short: the checkpoint
			// saved on the way out stays before its trigger, so the next
			// leader, or this dispatcher's next Run, decides it again.
			d.pending[id] = pendingDecision{trigger: trigger, triggerID: triggerID, position: position, at: at}
			if ctx.Err() == nil {
				log.Warn().Err(err).Str("trigger", trigger.EventType()).Msg("recording the decision failed; it is decided again when the dispatcher resumes")
				d.fail(fmt.Errorf("record the decision of request %s: %w", id, err))
			}
		}
		return
	}
}

func (d *Dispatcher) record(ctx context.Context, log zerolog.Logger, st *requestState, decision dispatch.Decision, triggerID uuid.UUID, received ...domain.NewEvent) error {
	steps := d.runPureBuiltins(ctx, log, st.req, decision, triggerID, time.Now().UTC())
	err := d.recordSteps(ctx, log, st, steps, received...)
	if errors.Is(err, eventstore.ErrDuplicateEvent) && steps[0].ran != nil && len(received) == 0 {
		// Part of the decision is stored already (an earlier build
		// recorded it one stream at a time): its run is left to the
		// builtin executor, as it was then.
		return d.recordSteps(ctx, log, st, []decisionStep{{decision: decision, triggerID: triggerID}})
	}
	return err
}

// decisionStep is one decision of a commit and the id of its trigger; ran
// is its run's output and end when the run is a pure builtin the
// dispatcher ran as it decided.
type decisionStep struct {
	decision  dispatch.Decision
	triggerID uuid.UUID
	ran       *ranBuiltin
}

type ranBuiltin struct {
	runID  string
	events []domain.Payload // after its RunRequested: its output, then its end
}

// maxPureSteps bounds the pure builtins run in one commit (a pipeline of
// them, stage after stage).
const maxPureSteps = 16

// runPureBuiltins runs the decision's run when it is a pure builtin
// (echo, help, whoami: they read only their call and answer at once) and
// decides what its end calls for, again while that starts another such
// run. A request of pure builtins is so decided to its end in one commit
// instead of three. Each step's trigger is the one the feed would decide
// it on, the run's end with the id the builtin executor gives it, so both
// paths record the same events.
func (d *Dispatcher) runPureBuiltins(ctx context.Context, log zerolog.Logger, req dispatch.Request, decision dispatch.Decision, triggerID uuid.UUID, at time.Time) []decisionStep {
	steps := []decisionStep{{decision: decision, triggerID: triggerID}}
	builtins := d.cfg.Facts.Builtins()
	for len(steps) <= maxPureSteps {
		step := &steps[len(steps)-1]
		dec := step.decision
		if len(dec.Runs) != 1 || !dec.Runs[0].Builtin || !builtins.Pure(dec.Runs[0].Request) ||
			len(dec.Changes)+len(dec.Cancel)+len(dec.Notices) > 0 || dec.Reply != nil {
			break
		}
		start := dec.Runs[0]
		out := builtins.Execute(ctx, start.Request, start.RunID, d.cfg.Facts, at)
		if len(out.Changes) > 0 {
			break
		}
		for _, p := range dec.Request {
			req = dispatch.Evolve(req, p)
		}
		end := dispatch.RunEvent{RunID: start.RunID, Event: out.Events[len(out.Events)-1]}
		req = dispatch.Evolve(req, end)
		next, err := dispatch.Decide(req, end, decidingAt{d.cfg.Facts, at})
		if err != nil {
			log.Error().Err(err).Str("run_id", start.RunID).Msg("deciding on a pure builtin's end failed; the builtin executor runs it")
			break
		}
		step.ran = &ranBuiltin{runID: start.RunID, events: out.Events}
		if next.IsZero() {
			break
		}
		// The ids the feed path gives: the run's RunRequested is the
		// step's first decision event, its end the builtin's last event.
		requested := dispatch.DerivedID(step.triggerID, "decision", 0)
		steps = append(steps, decisionStep{decision: next, triggerID: dispatch.DerivedID(requested, "builtin", len(out.Events)-1)})
	}
	return steps
}

// recordSteps records the steps' decisions in one atomic append and does
// what the last one calls for.
func (d *Dispatcher) recordSteps(ctx context.Context, log zerolog.Logger, st *requestState, steps []decisionStep, received ...domain.NewEvent) error {
	rec, err := d.prepareSteps(st, steps, received...)
	if err != nil {
		return err
	}
	if len(rec.parts) > 0 {
		results, err := d.appendDecision(ctx, rec.parts, len(received) == 0)
		if err != nil {
			return err
		}
		if len(received) > 0 && results[len(results)-1].Duplicate {
			// The store holds this request and its decision already: its
			// id came again, and what followed was done then.
			return errAlreadyRecorded
		}
		now := time.Now().UTC()
		for _, step := range steps {
			d.cfg.Facts.ApplyRecorded(step.decision.Changes)
			d.cfg.Facts.applyOwnRuns(step.decision.Runs, now)
		}
		d.foldRecorded(st, rec, results)
	}
	d.followUp(ctx, log, st, rec)
	return nil
}

// preparedRecord is a request's decision steps made into the parts of one
// atomic append, with what is left to do once it is committed.
type preparedRecord struct {
	steps         []decisionStep
	parts         []eventstore.StreamAppend
	requestEvents []domain.NewEvent
	received      []domain.NewEvent
	runEventIDs   map[string]string // run id → its RunRequested's event id
	// created are the runs whose streams this commit created, each with
	// its RunRequested alone (noteCreated): their executor in this
	// process need not read the stream back.
	created map[string]bool
	posted  *postedWithDecision
	// payloads are the events encoded here, by id (see Dispatcher.recorded).
	payloads map[uuid.UUID]domain.Payload
}

// prepareSteps makes the steps' decisions into the parts of one append.
func (d *Dispatcher) prepareSteps(st *requestState, steps []decisionStep, received ...domain.NewEvent) (*preparedRecord, error) {
	id := st.req.ID()
	last := steps[len(steps)-1]
	rec := &preparedRecord{steps: steps, received: received, runEventIDs: map[string]string{}, payloads: map[uuid.UUID]domain.Payload{}}
	// The decisions' changes, the runs' RunRequested (and a pure
	// builtin's output and end) and the request's events go in one
	// atomic append: one commit on the way from a request to its runs,
	// no StageStarted is ever recorded without its run, and no user a
	// request registered without the request.
	for _, step := range steps {
		md := domain.Metadata{CorrelationID: id, CausationID: step.triggerID.String(), Actor: d.cfg.Actor}
		seq := 0
		next := func(p domain.Payload) (domain.NewEvent, error) {
			e, err := domain.Encode(p, md)
			e.ID = dispatch.DerivedID(step.triggerID, "decision", seq)
			seq++
			rec.payloads[e.ID] = p
			return e, err
		}
		changes, err := dispatch.EncodeChanges(step.decision.Changes, md, step.triggerID)
		if err != nil {
			return nil, err
		}
		rec.parts = append(rec.parts, changes...)
		for _, start := range step.decision.Runs {
			e, err := next(start.Request)
			if err != nil {
				return nil, err
			}
			events := []domain.NewEvent{e}
			if step.ran != nil && step.ran.runID == start.RunID {
				ran, err := dispatch.BuiltinRunEvents(e.ID, step.ran.events, domain.Metadata{CorrelationID: id, CausationID: e.ID.String(), Actor: d.cfg.Actor})
				if err != nil {
					return nil, err
				}
				for i, re := range ran {
					rec.payloads[re.ID] = step.ran.events[i]
				}
				events = append(events, ran...)
			} else {
				rec.runEventIDs[start.RunID] = e.ID.String()
				d.runOwners[start.RunID] = id
			}
			rec.parts = append(rec.parts, eventstore.StreamAppend{Stream: run.Stream(start.RunID), Expected: eventstore.NoStream, Events: events})
		}
		for _, p := range step.decision.Request {
			e, err := next(p)
			if err != nil {
				return nil, err
			}
			rec.requestEvents = append(rec.requestEvents, e)
		}
	}
	// A reply read back over HTTP (api, web) is posted by recording it:
	// its ReplyPosted goes in this append, and the caller is woken after
	// the commit, one commit fewer per request.
	if reply := last.decision.Reply; reply != nil && d.postsByRecording(reply.Adapter) {
		prepared := d.prepareReply(id, *reply)
		record := dispatch.NewReplyPosted(prepared, replyRoom(prepared), "")
		e, err := d.replyPostedEvent(id, record, last.triggerID)
		if err != nil {
			return nil, err
		}
		rec.posted = &postedWithDecision{reply: prepared, record: record, event: e}
		rec.payloads[e.ID] = record
		rec.requestEvents = append(rec.requestEvents, e)
	}
	if len(rec.requestEvents) > 0 || len(received) > 0 {
		// A request decided as it is received (receiveInline) starts its
		// stream with the RequestReceived.
		events := append(slices.Clone(received), rec.requestEvents...)
		rec.parts = append(rec.parts, eventstore.StreamAppend{Stream: dispatch.Stream(id), Expected: eventstore.Exact(st.version), Events: events})
	}
	return rec, nil
}

// foldRecorded folds a committed record's request events into the
// request's state. results are the append's, one for each of rec.parts.
func (d *Dispatcher) foldRecorded(st *requestState, rec *preparedRecord, results []eventstore.AppendResult) {
	rec.noteCreated(results)
	d.keepRecorded(rec, results)
	if len(rec.requestEvents) == 0 && len(rec.received) == 0 {
		return
	}
	// The feed delivers these events too; folding them now keeps the
	// state current for the steps below, and the feed's copies are
	// recognised by version (a pure builtin's end, by the run having
	// ended).
	for _, step := range rec.steps {
		for _, p := range step.decision.Request {
			st.req = dispatch.Evolve(st.req, p)
		}
		if step.ran != nil {
			st.req = dispatch.Evolve(st.req, dispatch.RunEvent{RunID: step.ran.runID, Event: step.ran.events[len(step.ran.events)-1]})
		}
	}
	if rec.posted != nil {
		st.req = dispatch.Evolve(st.req, rec.posted.record)
	}
	st.version = results[len(results)-1].LastVersion
	d.track(st.req.ID(), st)
}

// maxRecorded bounds Dispatcher.recorded: payloads the feed never brought
// (a fold restarted past them) are dropped with the rest once it is full,
// and those events are decoded as any other.
const maxRecorded = 100_000

// keepRecorded keeps the payloads of the events rec's commit wrote (not
// those of a part found stored already, which the feed brought before) for
// the fold to take.
func (d *Dispatcher) keepRecorded(rec *preparedRecord, results []eventstore.AppendResult) {
	if len(d.recorded) >= maxRecorded {
		clear(d.recorded)
	}
	for i, p := range rec.parts {
		if i >= len(results) || results[i].Duplicate || results[i].LastPosition == 0 {
			continue
		}
		runStream := strings.HasPrefix(p.Stream, run.StreamPrefix)
		for _, e := range p.Events {
			if runStream && !foldsRunEvent(e.Type) {
				continue // the fold passes it over without looking it up
			}
			if payload, ok := rec.payloads[e.ID]; ok {
				d.recorded[e.ID] = payload
			}
		}
	}
}

// noteCreated records which of rec's run streams the commit that
// returned results (one per part) created: written now, not found stored
// already (a repeat) or left as it was (a piecewise append that found the
// run requested before), and holding its RunRequested alone.
func (rec *preparedRecord) noteCreated(results []eventstore.AppendResult) {
	for i, p := range rec.parts {
		runID, isRun := strings.CutPrefix(p.Stream, run.StreamPrefix)
		if !isRun || i >= len(results) || p.Expected != eventstore.NoStream || len(p.Events) != 1 {
			continue
		}
		if r := results[i]; !r.Duplicate && r.LastPosition > 0 && r.LastVersion == 0 {
			if rec.created == nil {
				rec.created = map[string]bool{}
			}
			rec.created[runID] = true
		}
	}
}

// followUp does what a recorded decision calls for once it is committed:
// hands its runs to their executors, cancels, replies, notifies.
func (d *Dispatcher) followUp(ctx context.Context, log zerolog.Logger, st *requestState, rec *preparedRecord) {
	id := st.req.ID()
	last := rec.steps[len(rec.steps)-1]
	decision, triggerID := last.decision, last.triggerID
	for _, start := range decision.Runs {
		switch {
		case last.ran != nil && last.ran.runID == start.RunID:
		case start.Builtin:
			d.builtins[start.RunID] = true
		default:
			d.publishRun(ctx, log, start.RunID, rec.runEventIDs[start.RunID], start.Request, rec.created[start.RunID])
		}
	}
	for _, runID := range decision.Cancel {
		msg, err := runbus.NewCancelMessage(runbus.CancelRequest{RunID: runID, Actor: d.cfg.Actor, Reason: "the request ended"})
		if err == nil {
			err = d.cfg.Publisher.Publish(runbus.TopicRunCancel, msg)
		}
		if err != nil {
			log.Error().Err(err).Str("run_id", runID).Msg("publishing a cancel")
		}
	}
	switch {
	case rec.posted != nil:
		d.notify(id, rec.posted.reply)
	case decision.Reply != nil:
		d.post(ctx, log, id, *decision.Reply, triggerID)
	}
	for _, n := range decision.Notices {
		d.deliverNotice(ctx, log, id, n, triggerID)
	}
}

// publishRun hands a run to its executor: a builtin run to the builtin
// executor, any other to the executors of containers. created says this
// process's last commit created the run's stream (noteCreated).
func (d *Dispatcher) publishRun(ctx context.Context, log zerolog.Logger, runID, eventID string, req run.RunRequested, created bool) {
	topic := runbus.TopicRunRequested
	if req.Mode == dispatch.ModeBuiltin {
		topic = runbus.TopicBuiltinRequested
	}
	env, err := d.revealSecrets(ctx, log, req)
	if err != nil {
		if ctx.Err() == nil {
			log.Error().Err(err).Str("run_id", runID).Msg("reading a run's secrets; it is published again when the dispatcher resumes")
			d.fail(fmt.Errorf("publish run %s: %w", runID, err))
		}
		return
	}
	request := runbus.RunRequest{RunID: runID, EventID: eventID, Request: req, Env: env}
	if created {
		request = request.JustRequested()
	}
	msg, err := runbus.NewRunRequestMessage(request)
	if err == nil {
		msg.SetContext(ctx)
		runbus.Carry(msg, request) // a publisher or builtin executor in this process reads it without decoding
		err = d.cfg.Publisher.Publish(topic, msg)
	}
	if err != nil && ctx.Err() == nil {
		log.Error().Err(err).Str("run_id", runID).Msg("publishing a run request; it is published again when the dispatcher resumes")
		d.fail(fmt.Errorf("publish run %s: %w", runID, err))
	}
}

// revealSecrets reads the values of a run's secrets, at the versions its
// RunRequested names, for its message. A value the vault no longer holds
// (set again or removed since) is left out: the executor fails the run,
// saying which. Any other failure (the database) is the dispatcher's to
// retry.
func (d *Dispatcher) revealSecrets(ctx context.Context, log zerolog.Logger, req run.RunRequested) (map[string]string, error) {
	if len(req.Secrets) == 0 || req.Mode == dispatch.ModeBuiltin {
		return nil, nil
	}
	env := map[string]string{}
	for _, s := range req.Secrets {
		if d.cfg.Vault == nil {
			log.Warn().Str("secret", s.Name).Msg("a run needs a secret, but this server keeps none (LOGBOOK_SECRET_KEY_FILE)")
			continue
		}
		readCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		value, err := d.cfg.Vault.Reveal(readCtx, bundleconfig.SecretRef{Bundle: req.Bundle, Layer: s.Layer, Key: s.Name, Version: s.Version})
		cancel()
		switch {
		case errors.Is(err, bundleconfig.ErrSecretNotFound):
			log.Warn().Str("secret", s.Name).Str("layer", s.Layer).Int("version", s.Version).Msg("a run's secret is no longer in the vault")
		case err != nil:
			return nil, err
		default:
			env[s.Name] = value
		}
	}
	return env, nil
}

// post hands the reply to its adapter, off the loop: a chat provider's
// reply is delivered part by part (delivery.go); an api or web reply goes
// to its poster, which wakes the caller; a reply for an adapter with
// neither is recorded as posted to nowhere. A store or poster that fails
// is retried with backoff while the process lives; after a restart, resume
// posts what was not recorded posted.
func (d *Dispatcher) post(ctx context.Context, log zerolog.Logger, requestID string, reply dispatch.Reply, triggerID uuid.UUID) {
	reply = d.prepareReply(requestID, reply)
	if provider, ok := d.cfg.Chat[reply.Adapter]; ok {
		d.deliver(ctx, log, requestID, reply, provider, triggerID)
		return
	}
	q := &d.delivery
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.inFlight == nil {
		q.inFlight, q.queues = map[string]*replyDelivery{}, map[string]*deliveryQueue{}
	}
	if q.inFlight[requestID] != nil {
		return // on its way already (resume after a live post)
	}
	rd := &replyDelivery{ctx: ctx, log: log, requestID: requestID, reply: reply, causation: triggerID}
	q.inFlight[requestID] = rd
	q.running.Go(func() { d.postDirect(rd) })
}

// prepareReply renders a reply for its adapter. A secret a builtin showed
// (a new token) goes into the reply only: the recorded output holds a
// placeholder, and so does the rendered text ReplyPosted records; the text
// posted is rendered again with the secret revealed.
func (d *Dispatcher) prepareReply(requestID string, reply dispatch.Reply) dispatch.Reply {
	reply = d.linkTranscript(reply)
	format := render.FormatFor(reply.Adapter)
	recorded := dispatch.RenderReply(reply, d.cfg.Facts, format).Rendered
	if revealed := d.cfg.Facts.revealSecrets(requestID, reply); revealed.Text != reply.Text || !bytes.Equal(revealed.Value, reply.Value) {
		reply = dispatch.RenderReply(revealed, d.cfg.Facts, format)
		reply.Rendered.Recorded, reply.Rendered.RecordedAttachments = recorded.Text, recorded.Attachments
	} else {
		reply.Rendered = recorded
	}
	return reply
}

// postedWithDecision is a reply posted by recording it with the decision
// that made it.
type postedWithDecision struct {
	reply  dispatch.Reply
	record dispatch.ReplyPosted
	event  domain.NewEvent
}

// postsByRecording says whether an adapter's replies are posted by
// recording ReplyPosted alone (Posted: the caller reads the reply back),
// so that the record can go with the decision.
func (d *Dispatcher) postsByRecording(adapter string) bool {
	if _, chat := d.cfg.Chat[adapter]; chat {
		return false
	}
	_, ok := d.cfg.Posters[adapter].(Posted)
	return ok
}

// replyRoom is the room a reply's record names: its first destination.
func replyRoom(reply dispatch.Reply) string {
	if len(reply.To) > 0 {
		return reply.To[0].Name
	}
	return ""
}

// postDirect posts an api or web reply and records it posted.
func (d *Dispatcher) postDirect(rd *replyDelivery) {
	defer func() {
		q := &d.delivery
		q.mu.Lock()
		delete(q.inFlight, rd.requestID)
		q.mu.Unlock()
	}()
	log := rd.log.With().Str("adapter", rd.reply.Adapter).Logger()
	messageID := ""
	if poster, ok := d.cfg.Posters[rd.reply.Adapter]; ok {
		if err := retryStore(rd.ctx, log, "posting the reply failed; retrying", func() error {
			var err error
			messageID, err = poster.Post(rd.ctx, rd.requestID, rd.reply)
			return err
		}); err != nil {
			return // only the end of the process stops it; the next start resumes
		}
	} else {
		log.Warn().Msg("no chat adapter for this reply; recorded as posted")
	}
	posted := dispatch.NewReplyPosted(rd.reply, replyRoom(rd.reply), messageID)
	if err := retryStore(rd.ctx, log, "recording ReplyPosted", func() error {
		return d.recordReplyPosted(rd.ctx, rd.requestID, posted, rd.causation)
	}); err != nil {
		return
	}
	d.notify(rd.requestID, rd.reply)
}

// recordReplyPosted records that the reply is delivered.
func (d *Dispatcher) recordReplyPosted(ctx context.Context, requestID string, posted dispatch.ReplyPosted, triggerID uuid.UUID) error {
	e, err := d.replyPostedEvent(requestID, posted, triggerID)
	if err != nil {
		return err
	}
	_, err = d.cfg.Store.Append(ctx, dispatch.Stream(requestID), eventstore.Any, e)
	return err
}

// replyPostedEvent is the event that records a request's reply posted.
func (d *Dispatcher) replyPostedEvent(requestID string, posted dispatch.ReplyPosted, triggerID uuid.UUID) (domain.NewEvent, error) {
	md := domain.Metadata{CorrelationID: requestID, Actor: d.cfg.Actor}
	if triggerID != uuid.Nil {
		md.CausationID = triggerID.String()
	}
	e, err := domain.Encode(posted, md)
	if err != nil {
		return domain.NewEvent{}, err
	}
	// One reply per request: its record has a stable id, so recording it
	// twice (a crash between posting and recording) is a no-op.
	e.ID = dispatch.DerivedID(dispatch.RequestSeed(requestID), "reply", 0)
	return e, nil
}

// linkTranscript links the whole transcript from a reply whose output was
// cut, when the server knows its web address.
func (d *Dispatcher) linkTranscript(reply dispatch.Reply) dispatch.Reply {
	if reply.CutRunID == "" || d.cfg.TranscriptURL == nil {
		return reply
	}
	return reply.WithTranscript(d.cfg.TranscriptURL(reply.CutRunID))
}
