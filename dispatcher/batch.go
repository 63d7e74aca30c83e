package dispatcher

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// maxReceiveBatch bounds the requests decided together in one commit.
const maxReceiveBatch = 64

// takeReady adds to first what ch holds already, up to limit in all,
// without waiting for more: the jobs that arrived while the loop was busy
// go in one commit.
func takeReady[T any](ch <-chan T, first T, limit int) []T {
	taken := []T{first}
	for len(taken) < limit {
		select {
		case v := <-ch:
			taken = append(taken, v)
		default:
			return taken
		}
	}
	return taken
}

// batchMember is a request of a batch, decided and made into its parts.
type batchMember struct {
	job   *receiveJob
	st    *requestState
	rec   *preparedRecord
	added []ownRun // the runs it added to the quotas' usage before its commit
}

// receiveBatch decides the requests that arrived together as one commit.
// The loop records a request and its decision before it takes the next
// one, so one at a time its throughput was one read and one commit per
// request (on Postgres, two round trips). Here the log is folded once,
// the requests are decided in turn, each with the runs of those before it
// counted for quotas, and all go in one atomic append.
//
// Only what cannot make one request's decision depend on another's
// recorded events goes in a batch: no decision with changes (a user, a
// grant), no "!!" (it repeats the sender's last request, which may be in
// the batch), and a request id once. Anything else, and a batch whose
// append fails, is decided alone afterwards, as receiveInline does.
func (d *Dispatcher) receiveBatch(ctx context.Context, log zerolog.Logger, jobs []*receiveJob) {
	if len(jobs) == 1 {
		jobs[0].done <- d.receiveInline(ctx, log, jobs[0])
		return
	}
	var alone []*receiveJob
	defer func() {
		for _, job := range alone {
			job.done <- d.receiveInline(ctx, log, job)
		}
	}()
	if err := d.catchUp(ctx, log); err != nil {
		alone = jobs // each catches up, or is recorded alone, by itself
		return
	}
	var members []*batchMember
	for _, job := range jobs {
		id := job.in.ID()
		if _, known := d.requests[id]; known || dispatch.IsRerun(job.in.Text) {
			alone = append(alone, job)
			continue
		}
		at := time.Now().UTC()
		st := &requestState{version: -1, req: dispatch.Evolve(dispatch.Request{}, job.in)}
		decision, err := dispatch.Decide(st.req, job.in, decidingAt{d.cfg.Facts, at})
		if err != nil {
			alone = append(alone, job)
			continue
		}
		// A decision with changes runs no pure builtin: steps holds it alone.
		steps := d.runPureBuiltins(ctx, log, st.req, decision, job.event.ID, at)
		if changesIn(steps) {
			alone = append(alone, job)
			continue
		}
		rec, err := d.prepareSteps(st, steps, job.event)
		if err != nil {
			alone = append(alone, job)
			continue
		}
		m := &batchMember{job: job, st: st, rec: rec}
		for _, step := range steps {
			m.added = append(m.added, d.cfg.Facts.applyOwnRunsUndoably(step.decision.Runs, at)...)
		}
		d.requests[id] = st
		members = append(members, m)
	}
	if len(members) == 0 {
		return
	}
	var parts []eventstore.StreamAppend
	for _, m := range members {
		parts = append(parts, m.rec.parts...)
	}
	results, err := d.appendDecision(ctx, parts, false)
	if err != nil {
		// A request recorded before (its id came again), a conflict, or
		// the store: each is decided again alone, which tells them apart.
		for _, m := range members {
			d.cfg.Facts.forgetOwnRuns(m.added)
			delete(d.requests, m.job.in.ID())
			alone = append(alone, m.job)
		}
		return
	}
	for _, m := range members {
		mine := results[:len(m.rec.parts)]
		results = results[len(m.rec.parts):]
		id := m.job.in.ID()
		if mine[len(mine)-1].Duplicate {
			// Recorded with its decision before: what followed was done then.
			d.cfg.Facts.forgetOwnRuns(m.added)
			delete(d.requests, id)
			m.job.done <- d.alreadyReceived(ctx, m.job.in)
			continue
		}
		d.foldRecorded(m.st, m.rec, mine)
		d.recorded[m.job.event.ID] = m.job.in // committed with its decision: the fold takes it
		d.followUp(ctx, log.With().Str("request_id", id).Logger(), m.st, m.rec)
		d.arm(id, m.st)
		m.job.done <- nil
	}
}

// changesIn says whether any of the steps' decisions changes something
// beside the request and its runs.
func changesIn(steps []decisionStep) bool {
	for _, s := range steps {
		if len(s.decision.Changes) > 0 {
			return true
		}
	}
	return false
}
