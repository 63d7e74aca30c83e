package dispatcher

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// feedBatch gathers the decisions made on the events of one read of the
// log (a page of the feed), to record them in one commit. The loop used to
// record each event's decision before it took the next, so the ends of
// runs that were read together waited for each other's commits, one at a
// time.
//
// Only a decision that starts no run and changes nothing but its request
// goes in a batch: a later decision must see the runs and changes of those
// before it as recorded, so such a decision is recorded alone, as before.
// The decision is made when its event is handled, with what the log held
// up to it; only its commit waits, until the end of the page or until an
// event of the same request comes (flushFor). A batch the store refuses is
// decided again request by request, which tells a conflict from the store
// being down.
type feedBatch struct {
	members  []feedMember
	requests map[string]bool // the requests with a decision in members
}

// feedMember is a decision of a batch and what decide needs to make it
// again alone.
type feedMember struct {
	st        *requestState
	rec       *preparedRecord
	trigger   domain.Payload
	triggerID uuid.UUID
	position  int64
	at        time.Time
}

// consumePage handles the events of one read of the log, then records
// the decisions they called for together. It stops at a failure, as the
// loop does: the next Run reads on from the last event handled.
func (d *Dispatcher) consumePage(ctx context.Context, log zerolog.Logger, page []domain.RecordedEvent) {
	d.batch = &feedBatch{requests: map[string]bool{}}
	defer func() {
		d.flushBatch(ctx, log)
		d.batch = nil
	}()
	for _, e := range page {
		if e.Position > d.loop.folded { // not read already by catchUp
			d.consume(ctx, log, e)
		}
		if d.failure != nil {
			return
		}
	}
}

// batchDecision puts the decision in the batch, when one is being
// gathered and the decision may wait for the others' commit; it reports
// whether it did.
func (d *Dispatcher) batchDecision(log zerolog.Logger, st *requestState, decision dispatch.Decision, m feedMember) bool {
	b := d.batch
	if b == nil || len(decision.Runs) > 0 || len(decision.Changes) > 0 || b.requests[st.req.ID()] {
		return false
	}
	rec, err := d.prepareSteps(st, []decisionStep{{decision: decision, triggerID: m.triggerID}})
	if err != nil {
		log.Warn().Err(err).Str("request_id", st.req.ID()).Msg("a decision could not be prepared for a batch; it is recorded alone")
		return false
	}
	m.st, m.rec = st, rec
	b.members = append(b.members, m)
	b.requests[st.req.ID()] = true
	return true
}

// flushFor records the batch before an event of request id is handled, when
// the batch holds a decision of it: the event must find the request as
// its decision left it.
func (d *Dispatcher) flushFor(ctx context.Context, log zerolog.Logger, id string) {
	if d.batch != nil && d.batch.requests[id] {
		d.flushBatch(ctx, log)
	}
}

// flushBatch records the batch's decisions in one append and does what
// each calls for; when the store refuses it, each is decided again alone.
func (d *Dispatcher) flushBatch(ctx context.Context, log zerolog.Logger) {
	b := d.batch
	if b == nil || len(b.members) == 0 {
		return
	}
	members := b.members
	b.members, b.requests = nil, map[string]bool{}
	var parts []eventstore.StreamAppend
	for _, m := range members {
		parts = append(parts, m.rec.parts...)
	}
	results, err := d.appendDecision(ctx, parts, false)
	if err != nil {
		d.batch = nil // decide records alone
		for _, m := range members {
			d.decide(ctx, log, m.st, m.trigger, m.triggerID, m.position, m.at)
		}
		d.batch = b
		return
	}
	for _, m := range members {
		mine := results[:len(m.rec.parts)]
		results = results[len(m.rec.parts):]
		d.foldRecorded(m.st, m.rec, mine)
		d.followUp(ctx, log.With().Str("request_id", m.st.req.ID()).Logger(), m.st, m.rec)
	}
}
