package dispatch

import (
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/pipeline"
	"github.com/logbookhq/logbook/domain/run"
)

// RunEvent is an event of one of the request's runs, as the runner hands it
// to Evolve and Decide: run events do not name their run, so the runner
// wraps each with the id of the stream it came from. It is never stored.
type RunEvent struct {
	RunID string
	Event domain.Payload
}

// EventType implements domain.Payload.
func (RunEvent) EventType() string { return "dispatch.RunEvent" }

// RequestTimedOut is the trigger the runner sends when a request's deadline
// (Settings.Timeout after RequestReceived) passes. It is never stored; the
// decision records RequestFailed.
type RequestTimedOut struct {
	At time.Time
}

// EventType implements domain.Payload.
func (RequestTimedOut) EventType() string { return "dispatch.RequestTimedOut" }

// Status is where a request stands.
type Status string

const (
	StatusNew        Status = ""           // nothing received yet
	StatusReceived   Status = "received"   // waiting for identity and parsing
	StatusIdentified Status = "identified" // identity resolved, not parsed yet
	StatusParsed     Status = "parsed"     // parsed, not every stage checked yet
	// StatusAwaitingApproval: every stage is allowed, and some ask for
	// approval before anything runs.
	StatusAwaitingApproval Status = "awaiting_approval"
	StatusApproved         Status = "approved"     // approved; not started yet
	StatusQueued           Status = "queued"       // over a quota, waiting for room
	StatusRunning          Status = "running"      // a stage has started
	StatusUnknown          Status = "unknown_user" // the sender has no user
	StatusRejected         Status = "rejected"     // the text does not parse or names no command
	StatusDenied           Status = "denied"       // refused before anything ran
	StatusCompleted        Status = "completed"
	StatusFailed           Status = "failed"
)

// Ended reports whether the status is final.
func (s Status) Ended() bool {
	switch s {
	case StatusUnknown, StatusRejected, StatusDenied, StatusCompleted, StatusFailed:
		return true
	}
	return false
}

// Request is the state of one request-<id> stream plus the outcomes of its
// runs. The zero value is a request not yet received. A Request is a value:
// Evolve never changes the one it is given.
type Request struct {
	id       string
	received RequestReceived
	status   Status

	user, username string
	unknown        IdentityUnknown
	registered     UserRegistered

	stages    []pipeline.Stage
	redirects []pipeline.Redirect
	parsed    PipelineParsed
	checks    []PermissionChecked

	runs     []stageRun         // in the order started
	outcomes map[string]outcome // by run id; may arrive before StageStarted

	approval Approval
	queued   QuotaWaiting
	answers  []ApprovalAnswered // answers folded, judged or not

	rejected  PipelineRejected
	denied    RequestDenied
	completed RequestCompleted
	failed    RequestFailed
	replies   []ReplyPosted
}

type stageRun struct {
	stage, invocation int
	runID             string
	version           string // of the command's bundle
}

// outcome is how a run ended.
type outcome struct {
	kind   string // the terminal event's type
	reason string
	result run.Result
}

func (o outcome) succeeded() bool { return o.kind == "RunSucceeded" && !o.result.Aborted }

// Evolve folds one event: an event of the request's stream, or a RunEvent
// wrapping a run event. Events that change nothing (a second
// RequestReceived, a non-terminal run event, an event after the end) are
// ignored, so folding is idempotent for what Decide relies on.
func Evolve(r Request, e domain.Payload) Request {
	switch p := e.(type) {
	case RequestReceived:
		if r.status == StatusNew {
			r.received = p
			r.id = p.ID()
			r.status = StatusReceived
		}
	case UserRegistered:
		if r.status == StatusReceived && r.registered.User == "" {
			r.registered = p
		}
	case IdentityResolved:
		if r.status == StatusReceived {
			r.user, r.username = p.User, p.Username
			r.status = StatusIdentified
		}
	case IdentityUnknown:
		if r.status == StatusReceived {
			r.unknown = p
			r.status = StatusUnknown
		}
	case PipelineParsed:
		if r.status == StatusIdentified {
			if p.decoded != nil {
				r.stages, r.redirects = p.decoded.stages, p.decoded.redirects
			} else {
				r.stages, r.redirects = decodeStages(p.Stages), decodeRedirects(p.Redirects)
			}
			p.decoded = nil // the state is the same however the event came
			r.parsed = p
			r.status = StatusParsed
		}
	case PipelineRejected:
		if !r.status.Ended() {
			r.rejected = p
			r.status = StatusRejected
			r.approval = FoldApproval(r.approval, p)
		}
	case PermissionChecked:
		if r.status == StatusParsed {
			r.checks = append(slices.Clip(r.checks), p)
		}
	case ApprovalRequested:
		if r.status == StatusParsed {
			r.approval = FoldApproval(r.approval, p)
			r.approval.RequestID = r.id
			r.status = StatusAwaitingApproval
		}
	case ApprovalAnswered:
		if !slices.ContainsFunc(r.answers, func(a ApprovalAnswered) bool { return a.Via == p.Via }) {
			r.answers = append(slices.Clip(r.answers), p)
		}
	case ApprovalGranted, ApprovalRefused, ApprovalRejected, ApprovalExpired:
		r.approval = FoldApproval(r.approval, p)
	case RequestApproved:
		if r.status == StatusAwaitingApproval {
			r.approval = FoldApproval(r.approval, p)
			r.status = StatusApproved
		}
	case QuotaWaiting:
		if r.status == StatusParsed || r.status == StatusApproved {
			r.queued = p
			r.status = StatusQueued
		}
	case QuotaAdmitted:
		if r.status == StatusQueued {
			r.status = StatusApproved
		}
	case RequestDenied:
		if !r.status.Ended() {
			r.denied = p
			r.status = StatusDenied
			r.approval = FoldApproval(r.approval, p)
		}
	case StageStarted:
		if r.status == StatusParsed || r.status == StatusApproved || r.status == StatusRunning {
			r.runs = append(slices.Clip(r.runs), stageRun{stage: p.Stage, invocation: p.Invocation, runID: p.RunID, version: p.Version})
			r.status = StatusRunning
		}
	case RequestCompleted:
		if !r.status.Ended() {
			r.completed = p
			r.status = StatusCompleted
			r.approval = FoldApproval(r.approval, p)
		}
	case RequestFailed:
		if !r.status.Ended() {
			r.failed = p
			r.status = StatusFailed
			r.approval = FoldApproval(r.approval, p)
		}
	case ReplyPosted:
		r.replies = append(slices.Clip(r.replies), p)
	case RunEvent:
		o, ok := terminalOutcome(p.Event)
		if !ok || p.RunID == "" {
			break
		}
		if _, seen := r.outcomes[p.RunID]; seen {
			break
		}
		r.outcomes = maps.Clone(r.outcomes)
		if r.outcomes == nil {
			r.outcomes = map[string]outcome{}
		}
		r.outcomes[p.RunID] = o
	}
	return r
}

// Fold evolves the zero Request through events.
func Fold(events []domain.Payload) Request {
	var r Request
	for _, e := range events {
		r = Evolve(r, e)
	}
	return r
}

func terminalOutcome(e domain.Payload) (outcome, bool) {
	switch p := e.(type) {
	case run.RunSucceeded:
		return outcome{kind: p.EventType(), result: p.Result}, true
	case run.RunFailed:
		return outcome{kind: p.EventType(), reason: p.Reason, result: p.Result}, true
	case run.RunTimedOut:
		return outcome{kind: p.EventType(), reason: "timed out after " + (time.Duration(p.TimeoutMS) * time.Millisecond).String(), result: p.Result}, true
	case run.RunCancelled:
		reason := "cancelled"
		if p.Reason != "" {
			reason += ": " + p.Reason
		}
		return outcome{kind: p.EventType(), reason: reason, result: p.Result}, true
	case run.RunLost:
		return outcome{kind: p.EventType(), reason: "lost: " + p.Reason}, true
	}
	return outcome{}, false
}

// decodeStages reads PipelineParsed.Stages. Stages this package wrote
// always decode; anything else folds as no stages, and Decide then has
// nothing to run.
func decodeStages(raw json.RawMessage) []pipeline.Stage {
	var stages []pipeline.Stage
	if err := json.Unmarshal(raw, &stages); err != nil {
		return nil
	}
	return stages
}

func decodeRedirects(raw json.RawMessage) []pipeline.Redirect {
	var redirects []pipeline.Redirect
	if len(raw) == 0 || json.Unmarshal(raw, &redirects) != nil {
		return nil
	}
	return redirects
}

// ID is the request id (RequestReceived.ID).
func (r Request) ID() string { return r.id }

// Received is the request as the chat adapter received it.
func (r Request) Received() RequestReceived { return r.received }

// Status is where the request stands.
func (r Request) Status() Status { return r.status }

// User and Username identify the sender once IdentityResolved is folded.
func (r Request) User() string     { return r.user }
func (r Request) Username() string { return r.username }

// Owner is whose request this is, as the history rule
// (access.HistoryReader) reads it: the username identity resolution named;
// before that, for a provider that authenticates its senders (api, web),
// the username the request carries, which is the user it resolves to; ""
// for a sender no user is linked to, or a chat sender not identified yet.
func (r Request) Owner() string {
	if r.username != "" {
		return r.username
	}
	if r.status == StatusReceived && AuthenticatedAdapters[r.received.Adapter] {
		return r.received.ChatUser
	}
	return ""
}

// Stages are the parsed stages, after alias expansion.
func (r Request) Stages() []pipeline.Stage { return slices.Clone(r.stages) }

// Redirects are where the output goes; none means the room it came from.
func (r Request) Redirects() []pipeline.Redirect { return slices.Clone(r.redirects) }

// Checks are the PermissionChecked events folded so far, by stage.
func (r Request) Checks() []PermissionChecked { return slices.Clone(r.checks) }

// Approval is where the request's approval stands (its State is
// ApprovalStateNone when no rule asked for one).
func (r Request) Approval() Approval { return r.approval }

// Queued is the quota the request waits for while its status is
// StatusQueued.
func (r Request) Queued() (QuotaWaiting, bool) { return r.queued, r.status == StatusQueued }

// Unjudged lists the answers folded whose judgement is not recorded yet:
// what a runner that crashed between an answer and its decision decides
// on recovery.
func (r Request) Unjudged() []ApprovalAnswered {
	var out []ApprovalAnswered
	for _, a := range r.answers {
		if !r.approval.Judged(a.Via) {
			out = append(out, a)
		}
	}
	return out
}

// RunInfo is one run of the request.
type RunInfo struct {
	RunID      string
	Stage      int
	Invocation int
	// Ended is the terminal event's type ("RunSucceeded", ...), "" while
	// the run is going.
	Ended string
}

// Runs lists the request's runs in the order they started.
func (r Request) Runs() []RunInfo {
	out := make([]RunInfo, len(r.runs))
	for i, sr := range r.runs {
		out[i] = RunInfo{RunID: sr.runID, Stage: sr.stage, Invocation: sr.invocation, Ended: r.outcomes[sr.runID].kind}
	}
	return out
}

// RunningRuns lists the runs that started and have not ended: what a
// runner recovering from a crash republishes, and what a timeout cancels.
func (r Request) RunningRuns() []string {
	var out []string
	for _, sr := range r.runs {
		if _, done := r.outcomes[sr.runID]; !done {
			out = append(out, sr.runID)
		}
	}
	return out
}

// Replies are the ReplyPosted events folded so far.
func (r Request) Replies() []ReplyPosted { return slices.Clone(r.replies) }

// PendingReply is the reply the request's end calls for while no
// ReplyPosted is recorded: what a runner that crashed between recording the
// end and posting the reply posts on recovery.
func (r Request) PendingReply() (Reply, bool) {
	if !r.status.Ended() || len(r.replies) > 0 {
		return Reply{}, false
	}
	return replyFor(r), true
}

// stageRuns lists the runs of one stage by invocation.
func (r Request) stageRuns(stage int) []stageRun {
	var out []stageRun
	for _, sr := range r.runs {
		if sr.stage == stage {
			out = append(out, sr)
		}
	}
	slices.SortStableFunc(out, func(a, b stageRun) int { return a.invocation - b.invocation })
	return out
}

// currentStage is the highest stage started, or -1.
func (r Request) currentStage() int {
	current := -1
	for _, sr := range r.runs {
		current = max(current, sr.stage)
	}
	return current
}

// commandOf names stage i by its resolved full name when checked, else as
// written.
func (r Request) commandOf(i int) string {
	for _, c := range r.checks {
		if c.Stage == i {
			return c.Command
		}
	}
	if i >= 0 && i < len(r.stages) {
		return r.stages[i].Command
	}
	return "?"
}
