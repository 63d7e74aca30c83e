package dispatcher

import (
	"context"
	"slices"
	"strings"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/template/render"
)

// replyWaiter is one caller waiting for a request's reply.
type replyWaiter struct {
	ch chan dispatch.Reply // receives the reply once
	// stop unregisters the caller's context hook once the reply is handed
	// over, so a long-lived context keeps no reference to the waiter.
	stop func() bool
}

// WaitForReply returns a channel that receives the request's reply once:
// when the reply is posted, or at once when it was posted before (then
// rendered again from the log, where a secret it showed, such as a new
// token, was never recorded and is not shown). When ctx ends first the
// wait is dropped and the channel never receives; nothing of it is left
// behind. Call it before the request is received, so that a reply posted
// right away is not missed.
func (d *Dispatcher) WaitForReply(ctx context.Context, requestID string) <-chan dispatch.Reply {
	w := d.register(ctx, requestID)
	d.handOverPosted(ctx, requestID, w)
	return w.ch
}

// ReceiveAndWait records a request, as Receive does, and hands over its
// reply on the channel, as WaitForReply does, until wait ends. Only a
// request recorded before (a retry) is looked up in the log for a reply
// posted already; a new one cannot have one, which saves a read of the
// log per request.
func (d *Dispatcher) ReceiveAndWait(ctx, wait context.Context, in dispatch.RequestReceived, actor string) (string, <-chan dispatch.Reply, error) {
	waitID := in.ID()
	// Registered before the request is recorded, so a reply posted at
	// once is not missed.
	w := d.register(wait, waitID)
	id, known, err := d.receive(ctx, in, actor)
	if err != nil {
		if d.unwait(waitID, w) {
			w.stop()
		}
		return id, nil, err
	}
	if known {
		d.handOverPosted(wait, waitID, w)
	}
	return id, w.ch, nil
}

// register adds a waiter for the request's reply, dropped when ctx ends.
func (d *Dispatcher) register(ctx context.Context, requestID string) *replyWaiter {
	w := &replyWaiter{ch: make(chan dispatch.Reply, 1)}
	d.mu.Lock()
	d.waiters[requestID] = append(d.waiters[requestID], w)
	// Under the lock, so notify (which stops it) never sees it unset.
	w.stop = context.AfterFunc(ctx, func() { d.unwait(requestID, w) })
	d.mu.Unlock()
	return w
}

// handOverPosted gives w the request's reply if the log holds it posted.
// w is registered first, then the log read: a reply posted before the
// registration is in the log, one posted after it comes to notify.
func (d *Dispatcher) handOverPosted(ctx context.Context, requestID string, w *replyWaiter) {
	if ctx.Err() != nil {
		return
	}
	reply, posted, err := d.postedReply(ctx, requestID)
	if err != nil {
		if ctx.Err() == nil {
			d.cfg.Logger.Warn().Err(err).Str("request_id", requestID).Msg("reading a request's posted reply; waiting for it to be posted")
		}
		return
	}
	if posted && d.unwait(requestID, w) {
		w.stop()
		w.ch <- reply
	}
}

// unwait removes w from the waiters of requestID, and says whether it was
// still there (not yet handed a reply).
func (d *Dispatcher) unwait(requestID string, w *replyWaiter) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	waiters := d.waiters[requestID]
	i := slices.Index(waiters, w)
	if i < 0 {
		return false
	}
	if len(waiters) == 1 {
		delete(d.waiters, requestID)
	} else {
		d.waiters[requestID] = slices.Delete(waiters, i, i+1)
	}
	return true
}

// notify hands the reply just posted to everyone waiting for it.
func (d *Dispatcher) notify(requestID string, reply dispatch.Reply) {
	d.mu.Lock()
	waiters := d.waiters[requestID]
	delete(d.waiters, requestID)
	d.mu.Unlock()
	for _, w := range waiters {
		w.stop()
		w.ch <- reply
	}
}

// postedReply reads a request from the log and, when its reply was
// posted, renders that reply again for its adapter, its secrets left out.
func (d *Dispatcher) postedReply(ctx context.Context, requestID string) (dispatch.Reply, bool, error) {
	req, posted, err := loadRequest(ctx, d.cfg.Store, requestID)
	if err != nil || !posted {
		return dispatch.Reply{}, false, err
	}
	reply, ok := req.PendingReply()
	if !ok {
		return dispatch.Reply{}, false, nil
	}
	reply = d.linkTranscript(replaceSecrets(reply, func(string) string { return secretShownOnce }))
	return dispatch.RenderReply(reply, d.cfg.Facts, render.FormatFor(reply.Adapter)), true, nil
}

// loadRequest folds a request's stream and its runs' ends, leaving out its
// ReplyPosted events, so that PendingReply renders the reply it calls for;
// posted says whether a ReplyPosted was recorded.
func loadRequest(ctx context.Context, store eventstore.Store, requestID string) (req dispatch.Request, posted bool, err error) {
	var runs []string
	err = eachEvent(ctx, store, dispatch.Stream(requestID), func(p domain.Payload) {
		switch p := p.(type) {
		case dispatch.ReplyPosted:
			posted = true
			return
		case dispatch.StageStarted:
			runs = append(runs, p.RunID)
		}
		req = dispatch.Evolve(req, p)
	})
	if err != nil || !posted {
		return req, posted, err
	}
	for _, runID := range runs {
		err := eachEvent(ctx, store, run.Stream(runID), func(p domain.Payload) {
			if run.IsTerminal(p) {
				req = dispatch.Evolve(req, dispatch.RunEvent{RunID: runID, Event: p})
			}
		})
		if err != nil {
			return req, posted, err
		}
	}
	return req, posted, nil
}

// eachEvent decodes a whole stream, a page at a time. Only the run events
// it needs (terminal ones) are decoded: a run's output chunks are skipped
// by type.
func eachEvent(ctx context.Context, store eventstore.Store, stream string, fn func(domain.Payload)) error {
	isRun := strings.HasPrefix(stream, run.StreamPrefix)
	for from := int64(0); ; {
		events, err := store.ReadStream(ctx, stream, from, 500)
		if err != nil {
			return err
		}
		for _, e := range events {
			from = e.Version + 1
			if isRun && e.Type == (run.OutputChunk{}).EventType() {
				continue
			}
			p, err := domain.Decode(e)
			if err != nil {
				return err
			}
			fn(p)
		}
		if len(events) < 500 {
			return nil
		}
	}
}
