package dispatcher

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
)

// Requests that wait: for approval (ApprovalRequested) or for room under a
// quota (QuotaWaiting). The loop keeps their ids in waiting and, every
// second, sends each the trigger its wait ends with: ApprovalTimedOut once
// its ExpiresAt has passed, QuotaCheck while it is queued (also as soon as
// a run ends, when room may have freed). A queued request is checked in
// the order it began to wait, so the first to wait is the first admitted.
// The request deadline (RequestTimedOut) counts from the start of the
// runs: a request that waited gets a fresh one when it starts.

// track notes where a request stands after an event: it joins or leaves
// the waiting ones, and one that starts after waiting gets its deadline.
func (d *Dispatcher) track(id string, st *requestState) {
	switch st.req.Status() {
	case dispatch.StatusAwaitingApproval, dispatch.StatusQueued:
		st.waited = true
		d.waitingFor[id] = true
		return
	case dispatch.StatusRunning:
		if st.waited {
			st.waited = false
			if st.timer != nil {
				st.timer.Stop()
				st.timer = nil
			}
			d.arm(id, st)
		}
	}
	delete(d.waitingFor, id)
}

// sweep sends the waiting requests the triggers that are due at now:
// expiries first, then quota checks in the order the requests began to
// wait.
func (d *Dispatcher) sweep(ctx context.Context, log zerolog.Logger, now time.Time) {
	var queued []*requestState
	for id := range d.waitingFor {
		st := d.requests[id]
		if st == nil {
			delete(d.waitingFor, id)
			continue
		}
		switch st.req.Status() {
		case dispatch.StatusAwaitingApproval:
			if expires := st.req.Approval().Requested.ExpiresAt; !now.Before(expires) {
				trigger := dispatch.ApprovalTimedOut{At: now}
				d.decide(ctx, log, st, trigger, dispatch.DerivedID(dispatch.RequestSeed(id), "approval-timeout", 0), 0, now)
			}
		case dispatch.StatusQueued:
			queued = append(queued, st)
		}
	}
	d.checkQueued(ctx, log, queued, now)
}

// checkQueued asks each queued request, first waiting first, whether it
// may start now.
func (d *Dispatcher) checkQueued(ctx context.Context, log zerolog.Logger, queued []*requestState, now time.Time) {
	slices.SortFunc(queued, func(a, b *requestState) int {
		wa, _ := a.req.Queued()
		wb, _ := b.req.Queued()
		if c := wa.Since.Compare(wb.Since); c != 0 {
			return c
		}
		return strings.Compare(a.req.ID(), b.req.ID())
	})
	for _, st := range queued {
		if st.req.Status() != dispatch.StatusQueued {
			continue
		}
		id := st.req.ID()
		d.decide(ctx, log, st, dispatch.QuotaCheck{At: now}, dispatch.DerivedID(dispatch.RequestSeed(id), "quota-check", 0), 0, now)
	}
}

// roomMayHaveFreed checks the queued requests after a run ended.
func (d *Dispatcher) roomMayHaveFreed(ctx context.Context, log zerolog.Logger, now time.Time) {
	var queued []*requestState
	for id := range d.waitingFor {
		if st := d.requests[id]; st != nil && st.req.Status() == dispatch.StatusQueued {
			queued = append(queued, st)
		}
	}
	d.checkQueued(ctx, log, queued, now)
}

// resumeWaiting, after a restart, posts again what is missing of the
// approval request of each request awaiting approval, and decides the
// answers recorded whose judgement is not.
func (d *Dispatcher) resumeWaiting(ctx context.Context, log zerolog.Logger, id string, st *requestState) {
	d.track(id, st)
	if st.req.Status() != dispatch.StatusAwaitingApproval {
		return
	}
	for _, n := range st.req.ApprovalNotices() {
		d.deliverNotice(ctx, log.With().Str("request_id", id).Logger(), id, n, uuid.Nil)
	}
	for _, ans := range st.req.Unjudged() {
		d.decide(ctx, log, st, ans, dispatch.DerivedID(dispatch.RequestSeed(id), "answer/"+ans.Via, 0), 0, ans.At)
	}
}

// judgeLate decides an answer to a request the loop forgot (it ended and
// its reply was posted before the answer was recorded): the request is
// read back from the store up to the answer, the answer judged (refused:
// the request no longer waits) and recorded, and the request forgotten
// again.
func (d *Dispatcher) judgeLate(ctx context.Context, log zerolog.Logger, id string, answer domain.RecordedEvent) {
	events, err := d.cfg.Store.ReadStream(ctx, dispatch.Stream(id), 0, int(answer.Version)+1)
	if err != nil {
		d.late[id] = answer // judged again on resume
		if ctx.Err() == nil {
			d.fail(fmt.Errorf("read request %s to judge a late answer: %w", id, err))
		}
		return
	}
	delete(d.late, id)
	st := &requestState{version: -1}
	var trigger domain.Payload
	for _, e := range events {
		p, err := domain.Decode(e)
		if err != nil {
			continue
		}
		st.req, st.version, trigger = dispatch.Evolve(st.req, p), e.Version, p
	}
	if st.version != answer.Version || st.req.Status() == dispatch.StatusNew {
		return
	}
	d.requests[id] = st
	d.decide(ctx, log, st, trigger, answer.ID, answer.Position, answer.RecordedAt)
	if _, failed := d.pending[id]; failed {
		// Pending decisions of an ended request are dropped on resume:
		// this one is kept as the late answer it is.
		delete(d.pending, id)
		d.late[id] = answer
	}
	d.forget(id)
}
