package dispatch

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/bundle"
)

// Quotas: a bundle's execution section (and the site's LOGBOOK_QUOTAS)
// bounds its runs in flight, for the whole bundle, one user and one room,
// and the requests one user may start with it in a minute. A request is
// admitted against them just before its first stage starts (after its
// approval, when it needed one): over a quota, it waits (QuotaWaiting) up
// to the quota's queue bound, and the runner asks again (QuotaCheck) when
// a run ends and at that bound; admitted after waiting it records
// QuotaAdmitted, and past the bound, or over a quota with no queue, it
// records QuotaExceeded and is denied with a reply naming the quota. Once
// admitted, a request runs all its stages: quotas admit requests, they do
// not pause pipelines half way.

// DefaultQuotaQueue is how long a request over a quota waits when neither
// its bundle nor the site says.
const DefaultQuotaQueue = 30 * time.Second

// Quota names, as the bundle's execution section spells them.
const (
	QuotaBundleConcurrency = "concurrency.bundle"
	QuotaUserConcurrency   = "concurrency.user"
	QuotaRoomConcurrency   = "concurrency.room"
	QuotaRate              = "rate"
)

// Usage is how much of a bundle is in use, as the runner counts it: the
// runs of its commands requested and not ended (all of them, one user's,
// one room's), and the requests one user started with it since a time.
type Usage struct {
	Running     int64
	UserRunning int64
	RoomRunning int64
	Requests    int64
}

// QuotaHit names the quota a request is over.
type QuotaHit struct {
	Bundle string `json:"bundle"`
	Quota  string `json:"quota"` // concurrency.bundle, concurrency.user, concurrency.room or rate
	Limit  int64  `json:"limit"`
	// Current is the usage the quota was measured at.
	Current int64 `json:"current"`
}

// Sentence says which quota, for a reply: "ops allows 1 run of one user
// at once (there are 1)".
func (h QuotaHit) Sentence() string {
	switch h.Quota {
	case QuotaBundleConcurrency:
		return fmt.Sprintf("%s allows %d %s of its commands at once (%d running)", h.Bundle, h.Limit, plural(int(h.Limit), "run"), h.Current)
	case QuotaUserConcurrency:
		return fmt.Sprintf("%s allows %d %s per user at once (you have %d running)", h.Bundle, h.Limit, plural(int(h.Limit), "run"), h.Current)
	case QuotaRoomConcurrency:
		return fmt.Sprintf("%s allows %d %s per room at once (%d running from this room)", h.Bundle, h.Limit, plural(int(h.Limit), "run"), h.Current)
	default:
		return fmt.Sprintf("%s allows %d %s per user a minute (you started %d in the last minute)", h.Bundle, h.Limit, plural(int(h.Limit), "request"), h.Current)
	}
}

// QuotaWaiting says the request is over a quota and waits for room, up to
// Until.
type QuotaWaiting struct {
	QuotaHit
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
}

// QuotaAdmitted says a request that waited is within its quotas now.
type QuotaAdmitted struct {
	WaitedMS int64 `json:"waited_ms"`
}

// QuotaExceeded says the request is refused for a quota: at once, or
// after waiting its bound. A RequestDenied follows.
type QuotaExceeded struct {
	QuotaHit
	WaitedMS int64 `json:"waited_ms,omitempty"`
}

// QuotaCheck is the trigger the runner sends a request waiting for a
// quota when room may have freed (a run ended) and at its bound. It is
// never stored.
type QuotaCheck struct {
	At time.Time
}

// EventType implements domain.Payload.
func (QuotaCheck) EventType() string { return "dispatch.QuotaCheck" }

func (QuotaWaiting) EventType() string  { return "QuotaWaiting" }
func (QuotaAdmitted) EventType() string { return "QuotaAdmitted" }
func (QuotaExceeded) EventType() string { return "QuotaExceeded" }

func init() {
	domain.Register[QuotaWaiting]()
	domain.Register[QuotaAdmitted]()
	domain.Register[QuotaExceeded]()
}

// quotaBundles lists, once each and in stage order, the bundles whose
// commands the request runs (builtins have no quotas).
func quotaBundles(r Request, cat catalog) []*bundle.Bundle {
	var out []*bundle.Bundle
	seen := map[string]bool{}
	for _, s := range r.stages {
		t, err := cat.resolve(s.Bundle, s.Name)
		if err != nil || t.bundle == nil || seen[t.bundle.Name] {
			continue
		}
		seen[t.bundle.Name] = true
		out = append(out, t.bundle)
	}
	return out
}

// overQuota finds the first quota the request is over, with the queue
// bound of its bundle; ok is false when it is within every quota.
func overQuota(r Request, facts Facts, cat catalog, now time.Time) (hit QuotaHit, queue time.Duration, ok bool) {
	settings := facts.Settings()
	for _, b := range quotaBundles(r, cat) {
		q := settings.Quotas.For(b.Name, b.Execution.Quotas)
		if q.IsZero() {
			continue
		}
		use := facts.Usage(b.Name, r.username, r.received.Room, now.Add(-time.Minute))
		queue = DefaultQuotaQueue
		if q.Queue != nil {
			queue = *q.Queue
		}
		for _, c := range []struct {
			name    string
			limit   *int64
			current int64
		}{
			{QuotaUserConcurrency, q.UserConcurrency, use.UserRunning},
			{QuotaRoomConcurrency, q.RoomConcurrency, use.RoomRunning},
			{QuotaBundleConcurrency, q.BundleConcurrency, use.Running},
			{QuotaRate, q.Rate, use.Requests},
		} {
			// A site's 0 lifts the bound.
			if c.limit != nil && *c.limit > 0 && c.current >= *c.limit {
				return QuotaHit{Bundle: b.Name, Quota: c.name, Limit: *c.limit, Current: c.current}, queue, true
			}
		}
	}
	return QuotaHit{}, 0, false
}

// admit starts the request's first stage when it is within its quotas;
// otherwise it waits for room, or is refused when it may not wait (any
// more).
func admit(r Request, facts Facts, cat catalog, now time.Time) ([]domain.Payload, []RunStart) {
	hit, queue, over := overQuota(r, facts, cat, now)
	waiting := r.status == StatusQueued
	var events []domain.Payload
	switch {
	case !over && waiting:
		events = append(events, QuotaAdmitted{WaitedMS: now.Sub(r.queued.Since).Milliseconds()})
	case over && waiting && now.Before(r.queued.Until):
		return nil, nil // still waiting: nothing new to record
	case over && waiting:
		waited := now.Sub(r.queued.Since)
		return []domain.Payload{
			QuotaExceeded{QuotaHit: hit, WaitedMS: waited.Milliseconds()},
			RequestDenied{Reason: fmt.Sprintf("over a quota: %s, and it did not free up in %s", hit.Sentence(), waited.Round(time.Second))},
		}, nil
	case over && queue <= 0:
		return []domain.Payload{
			QuotaExceeded{QuotaHit: hit},
			RequestDenied{Reason: "over a quota: " + hit.Sentence()},
		}, nil
	case over:
		return []domain.Payload{QuotaWaiting{QuotaHit: hit, Since: now, Until: now.Add(queue)}}, nil
	}
	after := r
	for _, e := range events {
		after = Evolve(after, e)
	}
	started, runs := startStage(after, facts, cat, 0, []json.RawMessage{r.received.Input})
	return append(events, started...), runs
}
