package dispatch

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/rules"
)

// Approvals: a rule may ask for approval (`... with 2 approvals from
// deploy:approver`). A request whose every stage is allowed, and some of
// whose stages ask for approval, records ApprovalRequested instead of
// starting anything: all the permission checks come first, so nothing of
// it runs before it is approved. Approvers answer with the approve and
// reject builtins, which record ApprovalAnswered in the request's stream
// (the input); the request's own decision judges it (the output):
// ApprovalGranted when it counts, ApprovalRefused when it does not,
// ApprovalRejected when it ends the request. Once every requirement has
// its approvals, RequestApproved, and the request goes on exactly as it was
// parsed and checked. ApprovalTimedOut, the runner's trigger at
// ApprovalRequested.ExpiresAt, records ApprovalExpired.

// DefaultApprovalTTL is how long a request waits for approval when
// Settings leaves ApprovalTTL zero.
const DefaultApprovalTTL = 15 * time.Minute

// ApprovalRequirement is what one approver permission asks for: Needed
// distinct people other than the requester, each holding Permission when
// they answer.
type ApprovalRequirement struct {
	Permission string `json:"permission"`
	Needed     int    `json:"needed"`
	// Stages are the 0-based stages whose rules asked for it.
	Stages []int `json:"stages"`
}

// ApprovedStage is one stage as it was checked, so that an approved
// request runs what was approved and nothing else.
type ApprovedStage struct {
	Stage   int    `json:"stage"`
	Command string `json:"command"` // bundle:command
	// Version is the bundle's version when the approval was asked for; ""
	// for a builtin.
	Version string `json:"version,omitempty"`
}

// Notice is a message a decision posts besides the request's reply: the
// approval request, in the request's room and the approvers' room. Key
// tells its deliveries from the reply's in the request stream.
type Notice struct {
	Key   string `json:"key"`
	Reply Reply  `json:"reply"`
}

// ApprovalNoticeKey keys the approval request's notices.
const ApprovalNoticeKey = "approval"

// NoticeTarget is where a notice goes: one destination on one provider.
type NoticeTarget struct {
	Adapter string      `json:"adapter"`
	To      Destination `json:"to"`
}

// ApprovalRequested says the request waits for approval before anything
// of it runs.
type ApprovalRequested struct {
	Requirements []ApprovalRequirement `json:"requirements"`
	Stages       []ApprovedStage       `json:"stages"`
	// Text is what will run, as parsed (an alias or "!!" expanded).
	Text string `json:"text"`
	// Requester and RequesterName are the user who asked.
	Requester     string `json:"requester"`
	RequesterName string `json:"requester_name"`
	// Approvers are the usernames who held a required permission when the
	// approval was asked for, the requester left out: who may approve.
	Approvers []string  `json:"approvers"`
	ExpiresAt time.Time `json:"expires_at"`
	// Notify lists where the request was posted for approvers to see.
	Notify []NoticeTarget `json:"notify,omitempty"`
}

// Verdict is an approver's answer.
type Verdict string

const (
	VerdictApprove Verdict = "approve"
	VerdictReject  Verdict = "reject"
)

// ApprovalAnswered is an answer to a request awaiting approval, as given:
// who answered, when and why. The approve and reject builtins record it in
// the answered request's stream; that request's decision then judges it.
type ApprovalAnswered struct {
	Verdict  Verdict   `json:"verdict"`
	User     string    `json:"user"` // the approver's user id
	Username string    `json:"username"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
	// Via is the run of the approve or reject builtin that carried the
	// answer (its request is "!approve ..."); it tells answers apart.
	Via string `json:"via"`
	// Room is where the answer was given.
	Room string `json:"room,omitempty"`
}

// ApprovalGranted counts an approval toward the requirements whose
// permission the approver held when answering.
type ApprovalGranted struct {
	User     string    `json:"user"`
	Username string    `json:"username"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
	Via      string    `json:"via"`
	// Permissions are the required permissions the approval counts for.
	Permissions []string `json:"permissions"`
}

// ApprovalRefused records an answer that does not count, and why: the
// requester's own, an approver without the permission, a second approval
// by the same person, a request no longer waiting.
type ApprovalRefused struct {
	Verdict  Verdict   `json:"verdict"`
	User     string    `json:"user"`
	Username string    `json:"username"`
	At       time.Time `json:"at"`
	Via      string    `json:"via"`
	Reason   string    `json:"reason"`
}

// ApprovalRejected records the rejection that ends the request; a
// RequestDenied follows.
type ApprovalRejected struct {
	User     string    `json:"user"`
	Username string    `json:"username"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
	Via      string    `json:"via"`
}

// ApprovalExpired records that the approvals did not come in time; a
// RequestDenied follows.
type ApprovalExpired struct {
	At time.Time `json:"at"`
}

// RequestApproved says every requirement has its approvals: the request
// goes on, as it was parsed and checked.
type RequestApproved struct {
	Approvers []string `json:"approvers"` // usernames, in the order they approved
}

// ApprovalTimedOut is the trigger the runner sends at the request's
// ApprovalRequested.ExpiresAt. It is never stored; the decision records
// ApprovalExpired.
type ApprovalTimedOut struct {
	At time.Time
}

// EventType implements domain.Payload.
func (ApprovalTimedOut) EventType() string { return "dispatch.ApprovalTimedOut" }

func (ApprovalRequested) EventType() string { return "ApprovalRequested" }
func (ApprovalAnswered) EventType() string  { return "ApprovalAnswered" }
func (ApprovalGranted) EventType() string   { return "ApprovalGranted" }
func (ApprovalRefused) EventType() string   { return "ApprovalRefused" }
func (ApprovalRejected) EventType() string  { return "ApprovalRejected" }
func (ApprovalExpired) EventType() string   { return "ApprovalExpired" }
func (RequestApproved) EventType() string   { return "RequestApproved" }

func init() {
	domain.Register[ApprovalRequested]()
	domain.Register[ApprovalAnswered]()
	domain.Register[ApprovalGranted]()
	domain.Register[ApprovalRefused]()
	domain.Register[ApprovalRejected]()
	domain.Register[ApprovalExpired]()
	domain.Register[RequestApproved]()
}

// ApprovalState says where a request's approval stands.
type ApprovalState string

const (
	ApprovalStateNone     ApprovalState = ""         // no approval was asked for
	ApprovalStatePending  ApprovalState = "pending"  // waiting for answers
	ApprovalStateApproved ApprovalState = "approved" // every requirement met
	ApprovalStateRejected ApprovalState = "rejected" // an approver rejected it
	ApprovalStateExpired  ApprovalState = "expired"  // no approval in time
	ApprovalStateEnded    ApprovalState = "ended"    // the request ended otherwise while waiting
)

// Approval is the fold of one request's approval events: what it needs,
// who answered and how. Requests keep one; the runner's facts keep those
// pending, for the approve and reject builtins. The zero value is a
// request that asked for no approval. An Approval is a value: folding
// never changes the one it is given.
type Approval struct {
	RequestID string
	Requested ApprovalRequested
	State     ApprovalState
	Granted   []ApprovalGranted
	Refused   []ApprovalRefused
	Rejected  *ApprovalRejected
	ExpiredAt time.Time
	judged    map[string]bool // answers judged, by Via
}

// FoldApproval folds one event of a request's stream into its approval;
// events that are not about approval, other than the request's end, are
// ignored.
func FoldApproval(a Approval, e domain.Payload) Approval {
	switch p := e.(type) {
	case ApprovalRequested:
		if a.State == ApprovalStateNone {
			a.Requested, a.State = p, ApprovalStatePending
		}
	case ApprovalGranted:
		if a.judge(p.Via) {
			a.Granted = append(slices.Clip(a.Granted), p)
		}
	case ApprovalRefused:
		if a.judge(p.Via) {
			a.Refused = append(slices.Clip(a.Refused), p)
		}
	case ApprovalRejected:
		if a.judge(p.Via) && a.State == ApprovalStatePending {
			a.Rejected, a.State = &p, ApprovalStateRejected
		}
	case ApprovalExpired:
		if a.State == ApprovalStatePending {
			a.ExpiredAt, a.State = p.At, ApprovalStateExpired
		}
	case RequestApproved:
		if a.State == ApprovalStatePending {
			a.State = ApprovalStateApproved
		}
	case RequestDenied, RequestFailed, RequestCompleted, PipelineRejected:
		if a.State == ApprovalStatePending {
			a.State = ApprovalStateEnded
		}
	}
	return a
}

// judge marks the answer via as judged; false when it was already.
func (a *Approval) judge(via string) bool {
	if a.judged[via] {
		return false
	}
	judged := make(map[string]bool, len(a.judged)+1)
	for k := range a.judged {
		judged[k] = true
	}
	judged[via] = true
	a.judged = judged
	return true
}

// Judged reports whether the answer carried by request via was judged.
func (a Approval) Judged(via string) bool { return a.judged[via] }

// Pending reports whether the request waits for answers.
func (a Approval) Pending() bool { return a.State == ApprovalStatePending }

// Count is how many approvals count for permission so far.
func (a Approval) Count(permission string) int {
	n := 0
	for _, g := range a.Granted {
		if slices.Contains(g.Permissions, permission) {
			n++
		}
	}
	return n
}

// Met reports whether every requirement has its approvals.
func (a Approval) Met() bool {
	for _, req := range a.Requested.Requirements {
		if a.Count(req.Permission) < req.Needed {
			return false
		}
	}
	return len(a.Requested.Requirements) > 0
}

// Covers reports whether the approvals granted so far meet what approvals
// ask for (those a stage's bound invocation turned out to need).
func (a Approval) Covers(approvals []rules.Approval) bool {
	for _, need := range approvals {
		if a.Count(need.Permission) < need.Count {
			return false
		}
	}
	return true
}

// Approvers are the usernames whose approvals counted, in order.
func (a Approval) Approvers() []string {
	out := make([]string, 0, len(a.Granted))
	for _, g := range a.Granted {
		out = append(out, g.Username)
	}
	return out
}

// Progress says what is in and what is still needed: "1 of 2 approvals
// from deploy:approver".
func (a Approval) Progress() string {
	parts := make([]string, 0, len(a.Requested.Requirements))
	for _, req := range a.Requested.Requirements {
		parts = append(parts, fmt.Sprintf("%d of %d %s from %s", min(a.Count(req.Permission), req.Needed), req.Needed, plural(req.Needed, "approval"), req.Permission))
	}
	return strings.Join(parts, ", ")
}

// Needs says what the request needs: "2 approvals from deploy:approver".
func (a Approval) Needs() string {
	return requirementWords(a.Requested.Requirements)
}

func requirementWords(reqs []ApprovalRequirement) string {
	parts := make([]string, 0, len(reqs))
	for _, req := range reqs {
		parts = append(parts, fmt.Sprintf("%d %s from %s", req.Needed, plural(req.Needed, "approval"), req.Permission))
	}
	return strings.Join(parts, " and ")
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// Judgement is how an answer fares against the approval.
type Judgement struct {
	// Counts is true when the answer counts: an approval toward
	// Permissions, or a rejection that ends the request.
	Counts bool
	// Permissions are the required permissions the approver holds.
	Permissions []string
	// Refusal says why an answer does not count.
	Refusal string
	// Approves is true when, counted, the approval is the last needed.
	Approves bool
}

// Judge decides whether an answer counts. perms are the approver's
// permissions when answering; requestID names the request in the
// sentences. The request's decision and the approve and reject builtins
// judge with it alike, so the builtin's reply says what the decision will
// record.
func (a Approval) Judge(ans ApprovalAnswered, perms []string) Judgement {
	id := shortID(a.RequestID)
	switch a.State {
	case ApprovalStateNone:
		return Judgement{Refusal: fmt.Sprintf("request %s does not wait for approval", id)}
	case ApprovalStateApproved:
		return Judgement{Refusal: fmt.Sprintf("request %s was approved already (by %s)", id, strings.Join(a.Approvers(), ", "))}
	case ApprovalStateRejected:
		return Judgement{Refusal: fmt.Sprintf("request %s was rejected already, by %s", id, a.Rejected.Username)}
	case ApprovalStateExpired:
		return Judgement{Refusal: fmt.Sprintf("request %s expired at %s without its approvals", id, clock(a.Requested.ExpiresAt))}
	case ApprovalStateEnded:
		return Judgement{Refusal: fmt.Sprintf("request %s no longer waits for approval", id)}
	}
	if !ans.At.Before(a.Requested.ExpiresAt) {
		return Judgement{Refusal: fmt.Sprintf("request %s expired at %s without its approvals", id, clock(a.Requested.ExpiresAt))}
	}
	if ans.User == a.Requested.Requester {
		return Judgement{Refusal: fmt.Sprintf("request %s is your own; someone else must %s it", id, ans.Verdict)}
	}
	held := a.Answerable(perms)
	if len(held) == 0 {
		var need []string
		for _, req := range a.Requested.Requirements {
			need = append(need, req.Permission)
		}
		return Judgement{Refusal: fmt.Sprintf("answering request %s needs %s, which you do not hold", id, strings.Join(need, " or "))}
	}
	if ans.Verdict == VerdictReject {
		return Judgement{Counts: true, Permissions: held}
	}
	for _, g := range a.Granted {
		if g.User == ans.User {
			return Judgement{Refusal: fmt.Sprintf("you approved request %s already, and one person counts once; it needs %s", id, a.Progress())}
		}
	}
	after := a
	after.Granted = append(slices.Clip(a.Granted), ApprovalGranted{User: ans.User, Permissions: held})
	return Judgement{Counts: true, Permissions: held, Approves: after.Met()}
}

// Answerable lists the required permissions among perms: those an
// approver holding perms may answer for.
func (a Approval) Answerable(perms []string) []string {
	var held []string
	for _, req := range a.Requested.Requirements {
		if slices.Contains(perms, req.Permission) {
			held = append(held, req.Permission)
		}
	}
	return held
}

// approvalsNeeded merges the approvals the stages' checks ask for, one
// requirement per permission with the largest count, sorted by permission.
func approvalsNeeded(checks []PermissionChecked) []ApprovalRequirement {
	byPerm := map[string]*ApprovalRequirement{}
	for _, c := range checks {
		for _, a := range c.Approvals {
			req := byPerm[a.Permission]
			if req == nil {
				req = &ApprovalRequirement{Permission: a.Permission}
				byPerm[a.Permission] = req
			}
			req.Needed = max(req.Needed, a.Count)
			if !slices.Contains(req.Stages, c.Stage) {
				req.Stages = append(req.Stages, c.Stage)
			}
		}
	}
	out := make([]ApprovalRequirement, 0, len(byPerm))
	for _, req := range byPerm {
		out = append(out, *req)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Permission < out[j].Permission })
	return out
}

// shortID is the part of a request id people type: its first eight
// characters, which the approve and reject builtins take as a prefix.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func clock(t time.Time) string { return t.UTC().Format("15:04:05 UTC") }

// AnswerText is the command text of an answer, as chat, the web UI, the
// API and Slack's buttons send it: "approve ID \"reason\"". The reason is
// double-quoted with \, " and $ escaped, so it reaches the builtin as one
// argument whatever it holds.
func AnswerText(v Verdict, requestID, reason string) string {
	text := string(v) + " " + requestID
	if reason == "" {
		return text
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`)
	return text + ` "` + r.Replace(reason) + `"`
}
