package dispatcher

import (
	"slices"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/run"
)

// The facts approvals and quotas decide with: the requests waiting for
// approval, for the approve and reject builtins, and how much of each
// bundle is in use, for quotas. Both are folded from the feed like the
// rest of the facts, so after a restart they are what the log says.

// usage is the runs in flight and the recent requests, for quotas.
type usage struct {
	running map[string]runningRun // by run id: requested and not ended
	// started is, by bundle and username, when each request first ran a
	// command of the bundle; entries older than a minute are dropped as
	// new ones come.
	started map[usageKey]*startedRequests
}

// startedRequests are one bundle's and user's requests of the last
// minute, in the order they started (the order of the log, or of this
// dispatcher's own decisions, each near the clock's), and their ids, so a
// run is folded in constant time however many there are.
type startedRequests struct {
	list []startedRequest
	ids  map[string]bool
}

type runningRun struct{ bundle, username, room string }

type usageKey struct{ bundle, username string }

type startedRequest struct {
	requestID string
	at        time.Time
}

// rateWindow is how far back the rate quota counts.
const rateWindow = time.Minute

func newUsage() usage {
	return usage{running: map[string]runningRun{}, started: map[usageKey]*startedRequests{}}
}

// apply folds a run's event: a RunRequested starts it (once), a terminal
// event ends it. at is when the run was requested.
func (u usage) apply(runID string, p domain.Payload, at time.Time) {
	if rr, ok := p.(run.RunRequested); ok {
		if _, known := u.running[runID]; known {
			return
		}
		u.running[runID] = runningRun{bundle: rr.Bundle, username: rr.Invocation.Username, room: rr.Invocation.Room}
		key := usageKey{rr.Bundle, rr.Invocation.Username}
		started := u.started[key]
		if started == nil {
			started = &startedRequests{ids: map[string]bool{}}
			u.started[key] = started
		}
		old := 0
		for old < len(started.list) && at.Sub(started.list[old].at) > rateWindow {
			delete(started.ids, started.list[old].requestID)
			old++
		}
		started.list = started.list[old:]
		if !started.ids[rr.RequestID] {
			started.ids[rr.RequestID] = true
			started.list = append(started.list, startedRequest{requestID: rr.RequestID, at: at})
		}
		return
	}
	if run.IsTerminal(p) {
		delete(u.running, runID)
	}
}

func (u usage) of(bundleName, username, room string, since time.Time) dispatch.Usage {
	var out dispatch.Usage
	for _, r := range u.running {
		if r.bundle != bundleName {
			continue
		}
		out.Running++
		if r.username == username {
			out.UserRunning++
		}
		if r.room == room {
			out.RoomRunning++
		}
	}
	if started := u.started[usageKey{bundleName, username}]; started != nil {
		for _, s := range started.list {
			if !s.at.Before(since) {
				out.Requests++
			}
		}
	}
	return out
}

// applyApproval folds a request stream's event into the requests waiting
// for approval: one joins with ApprovalRequested and leaves once it no
// longer waits.
func (f *Facts) applyApproval(requestID string, p domain.Payload) {
	a, known := f.approvals[requestID]
	if _, asked := p.(dispatch.ApprovalRequested); !known && !asked {
		return
	}
	if !known {
		a = dispatch.Approval{RequestID: requestID}
	}
	a = dispatch.FoldApproval(a, p)
	if a.Pending() {
		f.approvals[requestID] = a
	} else {
		delete(f.approvals, requestID)
	}
}

// applyOwnRuns folds the runs a decision just recorded, before the feed
// brings them, so the next quota check in the same step counts them.
func (f *Facts) applyOwnRuns(starts []dispatch.RunStart, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range starts {
		f.usage.apply(s.RunID, s.Request, at)
	}
}

// ownRun is a run applyOwnRunsUndoably added to the usage, and whether
// its request joined the recent ones with it.
type ownRun struct {
	runID, requestID string
	key              usageKey
	startedRequest   bool
}

// applyOwnRunsUndoably is applyOwnRuns for decisions not yet committed (a
// batch of requests, each deciding with the runs of those before it): it
// says what it added, for forgetOwnRuns to take back if the commit fails.
func (f *Facts) applyOwnRunsUndoably(starts []dispatch.RunStart, at time.Time) []ownRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	var added []ownRun
	for _, s := range starts {
		if _, known := f.usage.running[s.RunID]; known {
			continue
		}
		key := usageKey{s.Request.Bundle, s.Request.Invocation.Username}
		before := f.usage.started[key] != nil && f.usage.started[key].ids[s.Request.RequestID]
		f.usage.apply(s.RunID, s.Request, at)
		added = append(added, ownRun{runID: s.RunID, requestID: s.Request.RequestID, key: key, startedRequest: !before})
	}
	return added
}

// forgetOwnRuns takes back what applyOwnRunsUndoably added.
func (f *Facts) forgetOwnRuns(added []ownRun) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range added {
		delete(f.usage.running, a.runID)
		started := f.usage.started[a.key]
		if !a.startedRequest || started == nil || !started.ids[a.requestID] {
			continue
		}
		delete(started.ids, a.requestID)
		if i := slices.IndexFunc(started.list, func(s startedRequest) bool { return s.requestID == a.requestID }); i >= 0 {
			started.list = slices.Delete(started.list, i, i+1)
		}
	}
}

// Now implements dispatch.Facts: the clock, for whoever decides outside
// the loop (an explanation). The loop decides with the time of the
// trigger (decidingAt).
func (f *Facts) Now() time.Time { return time.Now().UTC() }

// Holders implements dispatch.Facts.
func (f *Facts) Holders(permission string) []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return dispatch.Holders(f.dir, permission)
}

// Usage implements dispatch.Facts.
func (f *Facts) Usage(bundleName, username, room string, since time.Time) dispatch.Usage {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.usage.of(bundleName, username, room, since)
}

// PendingApprovals implements dispatch.Facts.
func (f *Facts) PendingApprovals() []dispatch.Approval {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]dispatch.Approval, 0, len(f.approvals))
	for _, a := range f.approvals {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b dispatch.Approval) int { return a.Requested.ExpiresAt.Compare(b.Requested.ExpiresAt) })
	return out
}

// decidingAt is the facts as the loop decides one trigger: the time is the
// trigger's (its recorded time, or the timer's), so deciding a recorded
// trigger again reads the same time.
type decidingAt struct {
	*Facts
	at time.Time
}

// Now implements dispatch.Facts.
func (d decidingAt) Now() time.Time { return d.at }
