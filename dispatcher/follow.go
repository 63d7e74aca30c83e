package dispatcher

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/internal/supervisor"
)

// Follow is the dispatcher of a server that does not lead (several servers
// on one database, one of them deciding). It keeps this server able to
// serve people and to take over:
//   - it folds the log as far as the leader's stored checkpoint, deciding
//     nothing, so the facts the API authenticates with (users, tokens,
//     grants) follow the leader's, a checkpoint interval behind;
//   - it hands the replies the leader posts to the callers waiting here
//     (ReceiveAndWait), as soon as they are recorded.
//
// A takeover calls Run once Follow has returned: Run goes on from the
// checkpoint as a restart would, deciding again what follows it (event
// ids derive from their triggers, so what the old leader recorded is not
// recorded twice) and resuming what it left half done. Follow after Run
// (a leader that stepped down) keeps what Run folded and stops what Run
// had under way: its deadlines and the builtins it was to hand over; the
// next leader resumes them.
//
// Follow is a part of the server's supervisor: it reports itself ready once
// it has folded up to the checkpoint stored when it started. Never call it
// beside Run.
func (d *Dispatcher) Follow(ctx context.Context) error {
	if d.opened {
		d.stepDown()
	}
	log := d.cfg.Logger.With().Str("component", "dispatcher").Str("mode", "follow").Logger()
	head, _, err := d.cfg.Store.Head(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it began: nothing to report
		}
		return fmt.Errorf("dispatcher: read the head of the log: %w", err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan error, 1)
	go func() { watched <- d.watchReplies(watchCtx, head+1) }()
	defer func() {
		stopWatch()
		<-watched // Run must not begin while it still hands over replies
	}()
	ticker := time.NewTicker(d.cfg.FollowEvery)
	defer ticker.Stop()
	ready := false
	for {
		checkpoint, err := d.cfg.Checkpoints.Load(ctx, d.cfg.Name)
		if err == nil {
			err = d.foldTo(ctx, log, checkpoint)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("dispatcher: follow the log: %w", err)
		}
		if !ready {
			ready = true
			supervisor.Ready(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-watched:
			watched <- err // for the deferred wait
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("dispatcher: follow the replies: %w", err)
		case <-ticker.C:
		}
	}
}

// stepDown leaves what Run had under way to the next leader, keeping the
// fold: deadlines stop, builtins not yet handed over are forgotten (the
// next leader's resume publishes them again), and the next Run reads the
// stored checkpoint again. Decisions that failed stay pending: a later
// term of this server decides them again, as a restart of Run would.
func (d *Dispatcher) stepDown() {
	for _, st := range d.requests {
		if st.timer != nil {
			st.timer.Stop()
			st.timer = nil
		}
	}
	clear(d.builtins)
	d.changing = changingBuiltins{}
	d.resumed = false
	d.opened = false
	// Drain deadlines that fired before they stopped: a later term arms
	// them again from the requests.
	for {
		select {
		case <-d.timeouts:
		default:
			return
		}
	}
}

// foldTo folds the log up to position, deciding nothing.
func (d *Dispatcher) foldTo(ctx context.Context, log zerolog.Logger, position int64) error {
	for d.loop.folded < position {
		events, err := eventstore.ReadLive(ctx, d.cfg.Store, d.loop.folded+1, int(min(position-d.loop.folded, 500)))
		if err != nil {
			return err
		}
		if len(events) == 0 {
			return nil
		}
		for _, e := range events {
			if e.Position > position {
				return nil
			}
			d.handle(ctx, log, e, false)
			d.loop.folded = e.Position
			d.position.Store(e.Position)
		}
	}
	return nil
}

// watchReplies follows the log from position from and hands each reply
// recorded posted to the callers waiting for it here.
func (d *Dispatcher) watchReplies(ctx context.Context, from int64) error {
	for e, err := range eventstore.Follow(ctx, d.cfg.Store, from, eventstore.FeedOptions{}) {
		if err != nil {
			return err
		}
		id, ok := strings.CutPrefix(e.Stream, dispatch.StreamPrefix)
		if ok && e.Type == replyPostedType && d.awaited(id) {
			d.handOverFromLog(ctx, id)
		}
	}
	return nil
}

// replyPostedType is the type name ReplyPosted is recorded under.
var replyPostedType = dispatch.ReplyPosted{}.EventType()

// awaited says whether anyone here waits for the request's reply.
func (d *Dispatcher) awaited(requestID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.waiters[requestID]) > 0
}

// delivering says whether this dispatcher is delivering the request's
// reply (it hands the reply over itself once recorded).
func (d *Dispatcher) delivering(requestID string) bool {
	q := &d.delivery
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.inFlight[requestID]
	return ok
}

// handOverFromLog gives the callers waiting here for the request's reply
// the reply as the log holds it posted (rendered again, its secrets left
// out: only the server that decided it had them).
func (d *Dispatcher) handOverFromLog(ctx context.Context, requestID string) {
	if !d.awaited(requestID) {
		return
	}
	reply, posted, err := d.postedReply(ctx, requestID)
	if err != nil {
		if ctx.Err() == nil {
			d.cfg.Logger.Warn().Err(err).Str("request_id", requestID).Msg("reading a reply another server posted")
		}
		return
	}
	if posted {
		d.notify(requestID, reply)
	}
}
