package httpapi

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// AuditReport answers GET /v1/audit/verify: the hash chain walked from
// position From (1: the whole log) to the head. FirstBadPosition and
// Reason are set when it breaks; HeadPosition and HeadHash are what to
// keep outside the database to catch a later deletion of the newest events.
type AuditReport struct {
	OK               bool    `json:"ok"`
	From             int64   `json:"from"`
	Checked          int64   `json:"checked"`
	HeadPosition     int64   `json:"head_position"`
	HeadHash         string  `json:"head_hash,omitempty"`
	FirstBadPosition int64   `json:"first_bad_position,omitempty"`
	Reason           string  `json:"reason,omitempty"`
	DurationMS       float64 `json:"duration_ms"`
	// Shared is true when this answer is another caller's walk, which was
	// under way when this request came in.
	Shared bool `json:"shared,omitempty"`
}

// verifier runs one chain walk at a time: a call that arrives while a walk
// is under way waits for that walk's answer instead of starting another,
// so however many callers ask, the store is read once at a time.
type verifier struct {
	mu      sync.Mutex
	current *verification
}

type verification struct {
	from    int64
	done    chan struct{}
	report  AuditReport
	err     error
	callers int // how many callers wait on it (under verifier.mu)
}

// verify joins the walk from the same position under way, or waits for a
// walk from elsewhere to end and starts its own, which runs to the end
// even if its first caller goes away (others may be waiting on it).
func (v *verifier) verify(ctx context.Context, store eventstore.Store, from int64) (AuditReport, error) {
	v.mu.Lock()
	for v.current != nil && v.current.from != from {
		other := v.current
		v.mu.Unlock()
		select {
		case <-other.done:
		case <-ctx.Done():
			return AuditReport{}, ctx.Err()
		}
		v.mu.Lock()
	}
	c, shared := v.current, true
	if c == nil {
		c, shared = &verification{from: from, done: make(chan struct{})}, false
		v.current = c
		go func() {
			started := time.Now()
			var report eventstore.VerifyReport
			var err error
			if from <= 1 {
				report, err = eventstore.Verify(context.WithoutCancel(ctx), store, nil)
			} else {
				report, err = verifyFrom(context.WithoutCancel(ctx), store, from)
			}
			c.report = AuditReport{
				OK: report.OK, From: max(from, 1), Checked: report.Checked, HeadPosition: report.Head, HeadHash: report.HeadHash,
				FirstBadPosition: report.FirstBad, Reason: report.Problem,
				DurationMS: float64(time.Since(started).Microseconds()) / 1000,
			}
			c.err = err
			v.mu.Lock()
			v.current = nil
			v.mu.Unlock()
			close(c.done)
		}()
	}
	c.callers++
	v.mu.Unlock()
	select {
	case <-c.done:
		report := c.report
		report.Shared = shared
		return report, c.err
	case <-ctx.Done():
		return AuditReport{}, ctx.Err()
	}
}

// verifyFrom walks the chain from position from to the head with the
// checks eventstore.Verify makes, anchored at the stored hash of from-1:
// it shows that nothing from there on was altered, deleted, inserted or
// reordered, and says nothing about the events before it.
func verifyFrom(ctx context.Context, store eventstore.Store, from int64) (eventstore.VerifyReport, error) {
	var report eventstore.VerifyReport
	anchor, err := store.ReadAll(ctx, from-1, 1)
	if err != nil {
		return report, err
	}
	if len(anchor) == 0 || anchor[0].Position != from-1 {
		report.FirstBad, report.Problem = from-1, fmt.Sprintf("position %d, the anchor of a walk from %d, is not stored", from-1, from)
		return report, nil
	}
	prev, expected := anchor[0].Hash, from
	for {
		events, err := store.ReadAll(ctx, expected, 5000)
		if err != nil {
			return report, err
		}
		for _, e := range events {
			var problem string
			switch {
			case e.Position != expected:
				problem = fmt.Sprintf("position %d is missing or out of order: the next stored event is at %d", expected, e.Position)
			case !bytes.Equal(eventstore.ChainHash(e.PrevHash, e), e.Hash):
				problem = fmt.Sprintf("position %d: the stored hash does not match the event's content, so the event (%s in %s) was altered or moved here from another position", e.Position, e.Type, e.Stream)
			case !bytes.Equal(e.PrevHash, prev):
				problem = fmt.Sprintf("position %d: prev_hash does not match the hash of position %d, so an event was deleted, inserted or reordered here", e.Position, expected-1)
			}
			if problem != "" {
				report.FirstBad, report.Problem = min(e.Position, expected), problem
				return report, nil
			}
			report.Checked++
			report.Head, prev, expected = e.Position, e.Hash, e.Position+1
		}
		if len(events) < 5000 {
			break
		}
	}
	report.OK = true
	if report.Head == 0 {
		report.Head = from - 1
	}
	report.HeadHash = hex.EncodeToString(prev)
	return report, nil
}

// verifyAudit walks the hash chain; it needs logbook:admin, since a walk
// reads the whole log.
func (a *API) verifyAudit(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if !a.requirePermission(w, user, permAdmin) {
		return
	}
	q := r.URL.Query()
	if err := onlyParams(q, []string{"from"}); err != nil {
		writeParamError(w, err)
		return
	}
	if a.Events == nil {
		writeJSON(w, http.StatusNotImplemented, apiError{"this server has no event store to verify"})
		return
	}
	from := int64(1)
	if raw := q.Get("from"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 1 {
			writeParamError(w, paramError("from", "%q is not a position (a whole number from 1)", raw))
			return
		}
		head, _, err := a.Events.Head(r.Context())
		if err != nil {
			unavailable(w, "reading the event store", err)
			return
		}
		if n > head {
			writeParamError(w, paramError("from", "%d is past the head of the log (%d)", n, head))
			return
		}
		from = n
	}
	report, err := a.verifier.verify(r.Context(), a.Events, from)
	if err != nil {
		if r.Context().Err() != nil {
			return // the caller went away
		}
		unavailable(w, "reading the event store", err)
		return
	}
	writeJSON(w, http.StatusOK, report)
}
