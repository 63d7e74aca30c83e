package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// AuditReport answers GET /v1/audit/verify: the hash chain walked from
// position 1 to the head. FirstBadPosition and Reason are set when it
// breaks; HeadPosition and HeadHash are what to keep outside the database
// to catch a later deletion of the newest events.
type AuditReport struct {
	OK               bool    `json:"ok"`
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
	done    chan struct{}
	report  AuditReport
	err     error
	callers int // how many callers wait on it (under verifier.mu)
}

// verify joins the walk under way, or starts one that runs to the end
// even if its first caller goes away (others may be waiting on it).
func (v *verifier) verify(ctx context.Context, store eventstore.Store) (AuditReport, error) {
	v.mu.Lock()
	c, shared := v.current, true
	if c == nil {
		c, shared = &verification{done: make(chan struct{})}, false
		v.current = c
		go func() {
			started := time.Now()
			report, err := eventstore.Verify(context.WithoutCancel(ctx), store, nil)
			c.report = AuditReport{
				OK: report.OK, Checked: report.Checked, HeadPosition: report.Head, HeadHash: report.HeadHash,
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

// verifyAudit walks the hash chain; it needs logbook:admin, since a walk
// reads the whole log.
func (a *API) verifyAudit(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if !a.requirePermission(w, user, permAdmin) {
		return
	}
	if !noParams(w, r) {
		return
	}
	if a.Events == nil {
		writeJSON(w, http.StatusNotImplemented, apiError{"this server has no event store to verify"})
		return
	}
	report, err := a.verifier.verify(r.Context(), a.Events)
	if err != nil {
		if r.Context().Err() != nil {
			return // the caller went away
		}
		unavailable(w, "reading the event store", err)
		return
	}
	writeJSON(w, http.StatusOK, report)
}
