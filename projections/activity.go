package projections

import (
	"slices"
	"strings"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/run"
)

// Activity folds the live log into what observability reports: each
// request from its RequestReceived to its end and its reply, and each run
// from its RunRequested to its end, with the times the log recorded. It
// holds only what is open. A request or run whose beginning it did not see
// (it began before the fold started) is not reported, so the figures count
// whole lifecycles only. It is not safe for concurrent use.
type Activity struct {
	// MaxOpen bounds the requests and runs held open at once (100,000);
	// past it the oldest are dropped, so a lifecycle the log never ends
	// cannot grow the fold without bound.
	MaxOpen int
	// ReplyWait is how long (in the log's recorded time) an ended request
	// waits for its ReplyPosted before it is reported without one (1m).
	ReplyWait time.Duration

	requests map[string]*RequestActivity
	runs     map[string]*RunActivity
	order    []string // request ids and "run:"+run ids, oldest first, for dropping
	queued   int      // runs requested and not yet started
	running  int      // runs started and not yet ended
	dropped  int64
	// unlinked are the runs of this commit whose request comes later in
	// it (a request decided as it was received: its runs' streams go
	// before its own), linked when its RequestReceived comes; commitAt
	// is that commit's recorded time, which every event of it shares.
	unlinked []*RunActivity
	commitAt time.Time
}

// RequestActivity is one request's lifecycle as far as the log has told.
type RequestActivity struct {
	RequestID, Adapter, Room, User string
	ReceivedAt                     time.Time
	// DecidedAt is when the request was allowed, denied or rejected (its
	// first StageStarted, RequestDenied, PipelineRejected, or
	// IdentityUnknown); zero before.
	DecidedAt time.Time
	EndedAt   time.Time
	// Outcome is the history view's terminal status (completed, failed,
	// denied, rejected, unknown-user); "" while open.
	Outcome   string
	RepliedAt time.Time
	// Denied names the commands whose permission check refused them.
	Denied []string
	Runs   []*RunActivity
}

// RunActivity is one run's lifecycle.
type RunActivity struct {
	RunID, RequestID string
	Stage            int
	Bundle, Command  string
	Mode             run.Mode
	RequestedAt      time.Time
	StartedAt        time.Time // its container started (zero for builtins)
	EndedAt          time.Time
	Outcome          string // the history view's run status once ended
	OutputChunks     int
	OutputBytes      int64
	StderrChunks     int
	// FirstOutputAt and LastOutputAt are when its first and last output
	// chunks were recorded (zero when it printed nothing).
	FirstOutputAt, LastOutputAt time.Time
}

// Duration is how long the run took from its request to its end.
func (r *RunActivity) Duration() time.Duration { return r.EndedAt.Sub(r.RequestedAt) }

// ActivityChanges is what one event changed.
type ActivityChanges struct {
	// RequestEnded is a request that has just reached its outcome.
	RequestEnded *RequestActivity
	// RequestDone is a request that is ended and replied to (or waited
	// ReplyWait for its reply): its lifecycle is whole, and the fold lets
	// go of it.
	RequestDone []*RequestActivity
	// RunEnded is a run that has just ended.
	RunEnded *RunActivity
}

// NewActivity returns an empty fold with the defaults.
func NewActivity() *Activity {
	return &Activity{MaxOpen: 100000, ReplyWait: time.Minute, requests: map[string]*RequestActivity{}, runs: map[string]*RunActivity{}}
}

// Queued is the number of runs requested and not started; Running the
// number started and not ended.
func (a *Activity) Queued() int  { return a.queued }
func (a *Activity) Running() int { return a.running }

// Dropped counts the lifecycles let go of unfinished (MaxOpen).
func (a *Activity) Dropped() int64 { return a.dropped }

// activityByTypeAlone are the payloads whose type is all Apply reads of
// them: DecodeForActivity gives them without decoding the data (for a
// request's end or a run's result, its whole output).
var activityByTypeAlone = map[string]domain.Payload{}

func init() {
	for _, p := range []domain.Payload{
		dispatch.IdentityUnknown{}, dispatch.PipelineRejected{}, dispatch.RequestDenied{},
		dispatch.RequestCompleted{}, dispatch.RequestFailed{}, dispatch.ReplyPosted{},
		run.ContainerStarted{}, run.RunSucceeded{}, run.RunFailed{}, run.RunTimedOut{}, run.RunCancelled{}, run.RunLost{},
	} {
		activityByTypeAlone[p.EventType()] = p
	}
}

// DecodeForActivity decodes e as far as Apply reads it: the events Apply
// tells apart by type alone come back as their type's zero value, the
// rest decoded whole.
func DecodeForActivity(e domain.RecordedEvent) (domain.Payload, error) {
	if p, ok := activityByTypeAlone[e.Type]; ok {
		return p, nil
	}
	return domain.Decode(e)
}

// Apply folds one event (its payload decoded, DecodeForActivity is
// enough) and reports what ended.
func (a *Activity) Apply(e domain.RecordedEvent, payload domain.Payload) ActivityChanges {
	var changes ActivityChanges
	at := e.RecordedAt
	if !at.Equal(a.commitAt) {
		a.unlinked, a.commitAt = nil, at
	}
	switch {
	case strings.HasPrefix(e.Stream, dispatch.StreamPrefix):
		id := strings.TrimPrefix(e.Stream, dispatch.StreamPrefix)
		if p, ok := payload.(dispatch.RequestReceived); ok {
			if _, seen := a.requests[id]; !seen {
				r := &RequestActivity{RequestID: id, Adapter: p.Adapter, Room: p.Room, User: p.ChatUser, ReceivedAt: at}
				for _, rn := range a.unlinked {
					if rn.RequestID == id {
						r.Runs = append(r.Runs, rn)
					}
				}
				a.requests[id] = r
				a.remember(id)
			}
			break
		}
		r := a.requests[id]
		if r == nil {
			break
		}
		decided := func() {
			if r.DecidedAt.IsZero() {
				r.DecidedAt = at
			}
		}
		end := func(outcome string) {
			decided()
			if r.Outcome == "" {
				r.Outcome, r.EndedAt = outcome, at
				changes.RequestEnded = r
			}
		}
		switch p := payload.(type) {
		case dispatch.IdentityResolved:
			r.User = p.Username
		case dispatch.IdentityUnknown:
			end(RequestUnknownUser)
		case dispatch.PipelineRejected:
			end(RequestRejected)
		case dispatch.PermissionChecked:
			if !p.Granted {
				r.Denied = append(r.Denied, p.Command)
			}
		case dispatch.InvocationChecked:
			if !p.Granted {
				r.Denied = append(r.Denied, p.Command)
			}
		case dispatch.RequestDenied:
			end(RequestDenied)
		case dispatch.StageStarted:
			decided()
			if rn := a.runs[p.RunID]; rn != nil && !slices.Contains(r.Runs, rn) {
				r.Runs = append(r.Runs, rn)
			}
		case dispatch.RequestCompleted:
			end(RequestCompleted)
		case dispatch.RequestFailed:
			end(RequestFailed)
		case dispatch.ReplyPosted:
			if r.RepliedAt.IsZero() {
				r.RepliedAt = at
			}
		}
		if r.Outcome != "" && !r.RepliedAt.IsZero() {
			changes.RequestDone = append(changes.RequestDone, r)
			delete(a.requests, id)
		}
	case strings.HasPrefix(e.Stream, run.StreamPrefix):
		id := strings.TrimPrefix(e.Stream, run.StreamPrefix)
		if p, ok := payload.(run.RunRequested); ok {
			if _, seen := a.runs[id]; !seen {
				rn := &RunActivity{RunID: id, RequestID: p.RequestID, Stage: p.Stage, Bundle: p.Bundle, Command: p.Command, Mode: p.Mode, RequestedAt: at}
				a.runs[id] = rn
				a.remember("run:" + id)
				a.queued++
				// The RunRequested comes before its StageStarted, in the
				// same commit; a pure builtin's end comes before it too,
				// so the request links its run now, or when it comes.
				if r := a.requests[p.RequestID]; r != nil {
					r.Runs = append(r.Runs, rn)
				} else {
					a.unlinked = append(a.unlinked, rn)
				}
			}
			break
		}
		rn := a.runs[id]
		if rn == nil {
			break
		}
		started := func() {
			if rn.StartedAt.IsZero() && rn.EndedAt.IsZero() {
				rn.StartedAt = at
				a.queued--
				a.running++
			}
		}
		switch p := payload.(type) {
		case run.ContainerStarted:
			started()
		case run.OutputChunk:
			if rn.FirstOutputAt.IsZero() {
				rn.FirstOutputAt = at
			}
			rn.LastOutputAt = at
			rn.OutputChunks++
			rn.OutputBytes += int64(len(p.Bytes))
			if p.Stream == run.Stderr {
				rn.StderrChunks++
			}
		}
		if status := TerminalRunStatus(payload); status != "" && rn.Outcome == "" {
			if rn.StartedAt.IsZero() {
				a.queued--
			} else {
				a.running--
			}
			rn.Outcome, rn.EndedAt = status, at
			changes.RunEnded = rn
			delete(a.runs, id)
		}
	}
	changes.RequestDone = append(changes.RequestDone, a.expire(at)...)
	return changes
}

// expire lets go of requests that ended more than ReplyWait before now
// without a reply posted, and, past MaxOpen, of the oldest lifecycles
// (reported when ended, counted as dropped when not). It looks at the
// oldest first and stops at the first it keeps.
func (a *Activity) expire(now time.Time) []*RequestActivity {
	var done []*RequestActivity
	for len(a.order) > 0 {
		key := a.order[0]
		over := len(a.requests)+len(a.runs) > a.MaxOpen
		if runID, isRun := strings.CutPrefix(key, "run:"); isRun {
			if rn, open := a.runs[runID]; open {
				if !over {
					return done
				}
				if rn.StartedAt.IsZero() {
					a.queued--
				} else {
					a.running--
				}
				a.dropped++
				delete(a.runs, runID)
			}
		} else if r, open := a.requests[key]; open {
			switch {
			case r.Outcome != "" && (over || now.Sub(r.EndedAt) >= a.ReplyWait):
				done = append(done, r)
			case over:
				a.dropped++
			default:
				return done
			}
			delete(a.requests, key)
		}
		a.order = a.order[1:]
	}
	return done
}

// remember queues key for expire. Keys of lifecycles already let go of
// are skipped when they reach the front; the queue is compacted when they
// outnumber the open ones, so one long-running request at its front cannot
// make it grow without bound.
func (a *Activity) remember(key string) {
	a.order = append(a.order, key)
	open := len(a.requests) + len(a.runs)
	if len(a.order) <= 2*open+1024 {
		return
	}
	kept := make([]string, 0, 2*open)
	for _, k := range a.order {
		if runID, isRun := strings.CutPrefix(k, "run:"); isRun {
			if _, ok := a.runs[runID]; ok {
				kept = append(kept, k)
			}
		} else if _, ok := a.requests[k]; ok {
			kept = append(kept, k)
		}
	}
	a.order = kept
}
