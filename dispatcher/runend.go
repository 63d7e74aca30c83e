package dispatcher

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
)

// maxRunEndBatch bounds the runs' ends decided together in one commit.
const maxRunEndBatch = 64

// runEndJob is a run's last events on their way from the executor's
// appender to the loop (EndRun).
type runEndJob struct {
	runID  string
	first  int64 // the version of the first of events
	events []domain.NewEvent
	done   chan bool // whether they were appended, with their decision
}

// EndRun implements executor.RunEnder: the loop appends a run's last
// events with the decision its end calls for (the request's completion and
// reply, or its next stage) in one atomic append, where the executor's
// commit of them and the dispatcher's of its decision took one each. A
// warm run so costs one commit fewer, and its reply comes a commit sooner.
//
// The decision is the one the feed would make on the run's end, with the
// same ids (its trigger is the run's terminal event), so a crash between
// the two paths records nothing twice. Whatever does not fit (a loop that
// is not deciding or is far behind, a run this dispatcher does not own, a
// request whose stream moved on, a decision with changes, a failed append)
// answers false: the caller appends the events alone, and the feed decides
// the run's end in its turn, as before.
func (d *Dispatcher) EndRun(ctx context.Context, runID string, first int64, events []domain.NewEvent) (bool, error) {
	if len(events) == 0 || !d.inline.Load() {
		return false, nil
	}
	d.loopMu.Lock()
	loopDone := d.loopDone
	d.loopMu.Unlock()
	job := &runEndJob{runID: runID, first: first, events: events, done: make(chan bool, 1)}
	select {
	case d.runEnds <- job:
	case <-loopDone:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
	select {
	case ended := <-job.done:
		return ended, nil
	case <-ctx.Done():
		// The loop may yet append them: a caller that appends them
		// again finds them stored (the Appender settles redeliveries).
		return false, ctx.Err()
	}
}

// runEnding is a run's end of a batch, decided and made into its parts.
type runEnding struct {
	job     *runEndJob
	st      *requestState
	ended   dispatch.Request // st.req with the run's end
	trigger domain.Payload   // the run's terminal event
	rec     *preparedRecord  // nil when the end calls for nothing
	parts   []eventstore.StreamAppend
	added   []ownRun // the next stages' runs added to the quotas' usage
}

// endRuns decides the runs' ends that arrived together and appends them,
// their events and decisions, in one atomic append. Each job is answered
// whether its events were appended.
func (d *Dispatcher) endRuns(ctx context.Context, log zerolog.Logger, jobs []*runEndJob) {
	var members []*runEnding
	defer func() {
		appended := map[*runEndJob]bool{}
		for _, m := range members {
			appended[m.job] = true
		}
		for _, job := range jobs {
			job.done <- appended[job]
		}
	}()
	// The decision sees everything recorded before the run's end, as the
	// feed's would; too far behind, the feed decides it.
	if err := d.catchUp(ctx, log); err != nil {
		return
	}
	at := time.Now().UTC()
	requests := map[string]bool{} // one run's end per request and batch
	for _, job := range jobs {
		m := d.prepareRunEnd(ctx, log, job, at, requests)
		if m != nil {
			members = append(members, m)
		}
	}
	if len(members) == 0 {
		return
	}
	var parts []eventstore.StreamAppend
	for _, m := range members {
		parts = append(parts, m.parts...)
	}
	results, err := d.cfg.Store.AppendMulti(ctx, parts...)
	if err != nil {
		// A stream moved on (the run was recorded lost, the request
		// cancelled), the events are stored already (a redelivery), or
		// the store failed: each is appended alone and decided from the
		// log, which tells them apart.
		log.Debug().Err(err).Int("runs", len(members)).Msg("runs' ends not recorded with their decisions; recording them alone")
		for _, m := range members {
			d.cfg.Facts.forgetOwnRuns(m.added)
		}
		members = nil
		return
	}
	for _, m := range members {
		mine := results[:len(m.parts)]
		results = results[len(m.parts):]
		id := m.st.req.ID()
		m.st.req = m.ended
		delete(d.runOwners, m.job.runID)
		// The run's end is in the log: the quotas count it ended now, as
		// the feed's fold of it would (ending a run there again is a no-op).
		d.cfg.Facts.Apply(m.trigger, domain.RecordedEvent{Stream: run.Stream(m.job.runID), RecordedAt: at})
		if m.rec == nil {
			continue
		}
		for _, step := range m.rec.steps {
			d.cfg.Facts.ApplyRecorded(step.decision.Changes)
		}
		d.foldRecorded(m.st, m.rec, mine[1:]) // mine[0] is the run's own part
		d.followUp(ctx, log.With().Str("request_id", id).Str("run_id", m.job.runID).Logger(), m.st, m.rec)
	}
	if d.resumed {
		d.roomMayHaveFreed(ctx, log, time.Now().UTC())
	}
}

// prepareRunEnd decides job's run end, or returns nil when it is left to
// the feed.
func (d *Dispatcher) prepareRunEnd(ctx context.Context, log zerolog.Logger, job *runEndJob, at time.Time, requests map[string]bool) *runEnding {
	id, owned := d.runOwners[job.runID]
	st := d.requests[id]
	if !owned || st == nil || requests[id] || st.req.Status().Ended() {
		return nil
	}
	if _, pending := d.pending[id]; pending {
		return nil // its earlier decision is to be recorded first
	}
	last := job.events[len(job.events)-1]
	p, err := domain.Decode(domain.RecordedEvent{ID: last.ID, Stream: run.Stream(job.runID), Version: job.first + int64(len(job.events)) - 1,
		Type: last.Type, Data: last.Data, RecordedAt: at})
	if err != nil || !run.IsTerminal(p) {
		return nil
	}
	trigger := dispatch.RunEvent{RunID: job.runID, Event: p}
	m := &runEnding{job: job, st: st, ended: dispatch.Evolve(st.req, trigger), trigger: p,
		parts: []eventstore.StreamAppend{{Stream: run.Stream(job.runID), Expected: eventstore.Exact(job.first - 1), Events: job.events}}}
	decision, err := dispatch.Decide(m.ended, trigger, decidingAt{d.cfg.Facts, at})
	if err != nil {
		log.Error().Err(err).Str("request_id", id).Str("run_id", job.runID).Msg("deciding on a run's end failed; it is decided from the feed")
		return nil
	}
	if !decision.IsZero() {
		steps := d.runPureBuiltins(ctx, log, m.ended, decision, last.ID, at)
		if changesIn(steps) {
			return nil // it decides on what it changes in the order of the log
		}
		after := &requestState{req: m.ended, version: st.version}
		if m.rec, err = d.prepareSteps(after, steps); err != nil {
			return nil
		}
		m.parts = append(m.parts, m.rec.parts...)
		for _, step := range steps {
			m.added = append(m.added, d.cfg.Facts.applyOwnRunsUndoably(step.decision.Runs, at)...)
		}
	}
	requests[id] = true
	return m
}
