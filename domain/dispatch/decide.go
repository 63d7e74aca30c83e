package dispatch

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/bundleconfig"
	"github.com/logbookhq/logbook/domain/pipeline"
	"github.com/logbookhq/logbook/domain/rules"
	"github.com/logbookhq/logbook/domain/run"
)

// Decision is what the runner does about one trigger, in this order:
//
//  1. Append, in one atomic multi-stream append, each RunStart's
//     RunRequested to run-<RunID> expecting no stream, and Request to
//     request-<id> at the version the state was folded from: no
//     StageStarted is recorded without its run, and a repeat is a no-op. On
//     a concurrency conflict on the request, refold and decide again.
//  2. Execute each RunStart: a Builtin one in-process with Builtins.Execute,
//     appending the output and terminal event it returns to run-<RunID>;
//     any other is published to the executors.
//  3. Append RunCancelRequested to run-<id> for each id in Cancel.
//  4. Post Reply; the adapter records ReplyPosted.
//  5. Post each of Notices (the approval request), its deliveries recorded
//     under its Key.
//
// The runner feeds Decide every RequestReceived, every ApprovalAnswered,
// every terminal run event of the request's runs wrapped in RunEvent,
// RequestTimedOut once the request has been running Settings.Timeout (it
// is ignored while the request waits for approval or a quota: the
// deadline counts from the start), ApprovalTimedOut at
// ApprovalRequested.ExpiresAt, and QuotaCheck while the request waits for
// a quota (when a run ends, and at QuotaWaiting.Until). On start it
// republishes Request.RunningRuns that have no terminal event, posts
// Request.PendingReply, posts Request.ApprovalNotices while the request
// awaits approval, and decides Request.Unjudged answers.
type Decision struct {
	// Changes are other streams' events the decision makes (a
	// self-registered user), appended in the same atomic append as Request.
	Changes []Change
	Request []domain.Payload // append to request-<id>, in this order
	Runs    []RunStart       // for each: append RunRequested to run-<RunID>, then run it
	Cancel  []string         // run ids to cancel (RunCancelRequested)
	Reply   *Reply           // post this, then the adapter records ReplyPosted
	Notices []Notice         // post these besides the reply
}

// IsZero reports whether the decision does nothing.
func (d Decision) IsZero() bool {
	return len(d.Changes) == 0 && len(d.Request) == 0 && len(d.Runs) == 0 && len(d.Cancel) == 0 && d.Reply == nil && len(d.Notices) == 0
}

// RunStart is one run to start. Builtin runs (Request.Mode is ModeBuiltin)
// are executed in-process with Builtins.Execute; the others are published to
// the executors.
type RunStart struct {
	RunID   string
	Builtin bool
	Request run.RunRequested
}

// RunID derives the id of the run of one invocation of one stage, so that
// deciding the same trigger again names the same runs.
func RunID(requestID string, stage, invocation int) string {
	return requestID + "-s" + strconv.Itoa(stage) + "-i" + strconv.Itoa(invocation)
}

// Decide reacts to a trigger: RequestReceived, ApprovalAnswered, a
// RunEvent carrying a terminal run event, RequestTimedOut,
// ApprovalTimedOut or QuotaCheck. Any other trigger (the request's own
// later events) decides nothing. r is the request's state, with or
// without the trigger folded in (Decide folds it; folding is idempotent),
// and the decision depends only on r, the trigger and facts, so deciding
// the same trigger again after its decision was recorded decides nothing.
func Decide(r Request, trigger domain.Payload, facts Facts) (Decision, error) {
	r = Evolve(r, trigger)
	if r.status == StatusNew {
		return Decision{}, errorf(KindNotReceived, "a %s trigger for a request whose RequestReceived was not folded", trigger.EventType())
	}
	var events []domain.Payload
	var runs []RunStart
	var cancel []string
	var changes []Change
	var notices []Notice
	switch t := trigger.(type) {
	case RequestReceived:
		if r.status != StatusReceived {
			return Decision{}, nil
		}
		events, runs, changes = decideReceived(r, facts)
	case ApprovalAnswered:
		if r.approval.Judged(t.Via) {
			return Decision{}, nil
		}
		events, runs = decideAnswer(r, t, facts)
	case ApprovalTimedOut:
		if r.status != StatusAwaitingApproval || t.At.Before(r.approval.Requested.ExpiresAt) {
			return Decision{}, nil
		}
		a := r.approval
		events = []domain.Payload{ApprovalExpired{At: t.At}, RequestDenied{Reason: fmt.Sprintf(
			"it needed %s by %s and had %s", a.Needs(), clock(a.Requested.ExpiresAt), a.Progress())}}
	case QuotaCheck:
		if r.status != StatusQueued {
			return Decision{}, nil
		}
		events, runs = admit(r, facts, newCatalog(facts), t.At)
	case RunEvent:
		if _, terminal := terminalOutcome(t.Event); !terminal || r.status != StatusRunning {
			return Decision{}, nil
		}
		events, runs, cancel = decideProgress(r, facts)
	case RequestTimedOut:
		if r.status.Ended() || r.status == StatusAwaitingApproval || r.status == StatusQueued {
			return Decision{}, nil
		}
		stage := max(r.currentStage(), 0)
		events = []domain.Payload{RequestFailed{Reason: fmt.Sprintf("the request timed out (at %s) while stage %d (%s) was running",
			t.At.UTC().Format("15:04:05"), stage+1, r.commandOf(stage)), Stage: stage}}
		cancel = r.RunningRuns()
	default:
		return Decision{}, nil
	}
	d := Decision{Changes: changes, Request: events, Runs: runs, Cancel: cancel}
	after := r
	for _, e := range events {
		after = Evolve(after, e)
	}
	if after.status == StatusAwaitingApproval && r.status != StatusAwaitingApproval {
		notices = after.ApprovalNotices()
	}
	d.Notices = notices
	if after.status.Ended() && !r.status.Ended() {
		reply := replyFor(after)
		d.Reply = &reply
	}
	return d, nil
}

// decideReceived takes a received request through identity, parsing,
// aliases and every permission and redirect check to its first stage.
// An unknown sender is registered first when Settings.SelfRegister is on,
// and the request decided as the new user.
func decideReceived(r Request, facts Facts) ([]domain.Payload, []RunStart, []Change) {
	rec := r.received
	var events []domain.Payload
	var changes []Change
	user, ok := facts.UserByHandle(rec.Adapter, rec.ChatUser)
	permissions := func() []string { return facts.PermissionsOf(user.ID) }
	if !ok {
		reg, on, err := selfRegister(r, facts)
		unknown := IdentityUnknown{Adapter: rec.Adapter, ChatUser: rec.ChatUser}
		if err != nil {
			unknown.RegistrationError = err.Error()
		}
		if !on || err != nil {
			return []domain.Payload{unknown}, nil, nil
		}
		events, changes, user = append(events, reg.event), reg.changes, reg.user
		permissions = func() []string { return reg.perms }
		r = Evolve(r, reg.event)
	}
	resolved := IdentityResolved{User: user.ID, Username: user.Username}
	events = append(events, resolved)
	if user.Disabled {
		return append(events, RequestDenied{Reason: fmt.Sprintf("your Logbook user %s is disabled; ask an admin to enable it", user.Username)}), nil, changes
	}
	r = Evolve(r, resolved)
	settings := facts.Settings()
	if limit := settings.maxRequestBytes(); len(rec.Text) > limit {
		return append(events, PipelineRejected{Error: fmt.Sprintf("the request is %d bytes long; the limit is %d bytes", len(rec.Text), limit)}), nil, changes
	}
	cat := newCatalog(facts)
	parsed, rejected := parseRequest(r, facts, cat)
	if rejected != nil {
		return append(events, *rejected), nil, changes
	}
	events = append(events, parsed.event)
	r = Evolve(r, parsed.event)

	var denied []string
	for i, stage := range parsed.pipeline.Stages {
		check := checkStage(parsed.targets[i], stage, permissions())
		check.Stage = i
		events = append(events, check)
		r = Evolve(r, check)
		if !check.Granted {
			denied = append(denied, fmt.Sprintf("stage %d (%s): %s", i+1, check.Command, check.Reason))
		}
	}
	if len(denied) > 0 {
		return append(events, RequestDenied{Reason: strings.Join(denied, "; ")}), nil, changes
	}
	for _, rd := range parsed.pipeline.Redirects {
		if rd.Kind == pipeline.DestinationHere {
			continue
		}
		if d := resolveDestination(rec, rd); !facts.CanPost(rec.PostsVia(), d) {
			return append(events, RequestDenied{Reason: fmt.Sprintf("I cannot post to %s (column %d): invite me there, or redirect elsewhere", rd.Target, rd.Column)}), nil, changes
		}
	}
	if needs := approvalsNeeded(r.checks); len(needs) > 0 {
		return append(events, askApproval(r, facts, cat, needs)), nil, changes
	}
	started, runs := admit(r, facts, cat, facts.Now())
	return append(events, started...), runs, changes
}

// askApproval asks for the approvals the stages' rules need, or denies the
// request when too few people other than the requester hold a required
// permission for it ever to be approved.
func askApproval(r Request, facts Facts, cat catalog, needs []ApprovalRequirement) domain.Payload {
	var approvers []string
	for _, req := range needs {
		eligible := slices.DeleteFunc(facts.Holders(req.Permission), func(u string) bool { return u == r.username })
		if len(eligible) < req.Needed {
			who := "nobody else holds it"
			if len(eligible) > 0 {
				who = fmt.Sprintf("only %s %s it", strings.Join(eligible, ", "), agree(len(eligible), "holds", "hold"))
			}
			return RequestDenied{Reason: fmt.Sprintf("%s %s %d %s from %s, and %s besides you; an admin can grant it to approvers",
				stageList(r, req.Stages), agree(len(req.Stages), "needs", "need"), req.Needed, plural(req.Needed, "approval"), req.Permission, who)}
		}
		for _, u := range eligible {
			if !slices.Contains(approvers, u) {
				approvers = append(approvers, u)
			}
		}
	}
	slices.Sort(approvers)
	requested := ApprovalRequested{
		Requirements: needs, Text: r.received.Text, Requester: r.user, RequesterName: r.username,
		Approvers: approvers, ExpiresAt: facts.Now().Add(facts.Settings().ApprovalWait()).UTC(),
	}
	if r.parsed.Expanded != "" {
		requested.Text = r.parsed.Expanded
	}
	for i, stage := range r.stages {
		as := ApprovedStage{Stage: i, Command: r.commandOf(i)}
		if t, err := cat.resolve(stage.Bundle, stage.Name); err == nil && t.bundle != nil {
			as.Version = t.bundle.Version
		}
		requested.Stages = append(requested.Stages, as)
	}
	requested.Notify = noticeTargets(r, facts, cat, needs)
	return requested
}

// agree picks the verb form that agrees with n subjects.
func agree(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// stageList names stages: "stage 1 (ops:deploy)", "stages 1 (a:b) and 2 (c:d)".
func stageList(r Request, stages []int) string {
	names := make([]string, len(stages))
	for i, s := range stages {
		names[i] = fmt.Sprintf("%d (%s)", s+1, r.commandOf(s))
	}
	if len(names) == 1 {
		return "stage " + names[0]
	}
	return "stages " + strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// noticeTargets are where the approval request is posted: the request's
// room (not for api and web requests, which have no room to post to; their
// sender sees the status), and the approvers' room of each bundle whose
// rule asked, on its provider or else the request's, where the bot may
// post.
func noticeTargets(r Request, facts Facts, cat catalog, needs []ApprovalRequirement) []NoticeTarget {
	rec := r.received
	var out []NoticeTarget
	add := func(t NoticeTarget) {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if !AuthenticatedAdapters[rec.Adapter] {
		add(NoticeTarget{Adapter: rec.Adapter, To: Destination{Kind: pipeline.DestinationRoom, Name: rec.Room}})
	}
	for _, req := range needs {
		for _, stage := range req.Stages {
			t, err := cat.resolve(r.stages[stage].Bundle, r.stages[stage].Name)
			if err != nil || t.bundle == nil || t.bundle.Approvals.Room == "" {
				continue
			}
			adapter := cmp.Or(t.bundle.Approvals.Provider, rec.Adapter)
			to := Destination{Kind: pipeline.DestinationRoom, Name: t.bundle.Approvals.Room}
			if AuthenticatedAdapters[adapter] || !facts.CanPost(adapter, to) {
				continue
			}
			add(NoticeTarget{Adapter: adapter, To: to})
		}
	}
	return out
}

// decideAnswer judges an approver's answer and, when it is the last
// approval needed, lets the request go on.
func decideAnswer(r Request, ans ApprovalAnswered, facts Facts) ([]domain.Payload, []RunStart) {
	j := r.approval.Judge(ans, facts.PermissionsOf(ans.User))
	switch {
	case !j.Counts:
		return []domain.Payload{ApprovalRefused{Verdict: ans.Verdict, User: ans.User, Username: ans.Username, At: ans.At, Via: ans.Via, Reason: j.Refusal}}, nil
	case ans.Verdict == VerdictReject:
		return []domain.Payload{
			ApprovalRejected{User: ans.User, Username: ans.Username, Reason: ans.Reason, At: ans.At, Via: ans.Via},
			RequestDenied{Reason: fmt.Sprintf("%s rejected it: %s", ans.Username, cmp.Or(ans.Reason, "no reason given"))},
		}, nil
	}
	granted := ApprovalGranted{User: ans.User, Username: ans.Username, Reason: ans.Reason, At: ans.At, Via: ans.Via, Permissions: j.Permissions}
	events := []domain.Payload{granted}
	if !j.Approves {
		return events, nil
	}
	r = Evolve(r, granted)
	approved := RequestApproved{Approvers: r.approval.Approvers()}
	events = append(events, approved)
	r = Evolve(r, approved)
	more, runs := proceedApproved(r, facts)
	return append(events, more...), runs
}

// proceedApproved takes an approved request on, as it was approved: each
// stage must still resolve to the command and bundle version approved, the
// requester still be allowed to run it, and the approvals granted cover
// what its rules ask; then it is admitted against its quotas.
func proceedApproved(r Request, facts Facts) ([]domain.Payload, []RunStart) {
	deny := func(format string, args ...any) ([]domain.Payload, []RunStart) {
		return []domain.Payload{RequestDenied{Reason: fmt.Sprintf(format, args...) + "; run the request again"}}, nil
	}
	user, ok := facts.UserByUsername(r.username)
	if !ok || user.Disabled {
		return deny("it was approved, but your Logbook user %s is no longer enabled", r.username)
	}
	cat := newCatalog(facts)
	perms := facts.PermissionsOf(r.user)
	approved := r.approval.Requested.Stages
	for i, stage := range r.stages {
		where := fmt.Sprintf("stage %d (%s)", i+1, r.commandOf(i))
		t, err := cat.resolve(stage.Bundle, stage.Name)
		if err != nil {
			return deny("%s was approved, but it cannot run now: %v", where, err)
		}
		version := ""
		if t.bundle != nil {
			version = t.bundle.Version
		}
		if i >= len(approved) || approved[i].Command != t.FullName() || approved[i].Version != version {
			was := "?"
			if i < len(approved) {
				was = strings.TrimSpace(approved[i].Command + " " + approved[i].Version)
			}
			return deny("%s was approved as %s, and it is %s now", where, was, strings.TrimSpace(t.FullName()+" "+version))
		}
		check := checkStage(t, stage, perms)
		if !check.Granted {
			return deny("%s was approved, but you may no longer run it: %s", where, check.Reason)
		}
		if !r.approval.Covers(check.Approvals) {
			return deny("%s now needs %s", where, approvalWords(check.Approvals))
		}
	}
	return admit(r, facts, cat, facts.Now())
}

// approvalWords writes approval clauses as a sentence part.
func approvalWords(approvals []rules.Approval) string {
	reqs := make([]ApprovalRequirement, len(approvals))
	for i, a := range approvals {
		reqs[i] = ApprovalRequirement{Permission: a.Permission, Needed: a.Count}
	}
	return requirementWords(reqs)
}

type parsedRequest struct {
	event    PipelineParsed
	pipeline pipeline.Pipeline
	targets  []target
}

// parseRequest turns the request's text into a pipeline whose every
// command resolves: "!!" becomes the previous request, an alias its text.
func parseRequest(r Request, facts Facts, cat catalog) (parsedRequest, *PipelineRejected) {
	text := r.received.Text
	var p parsedRequest
	if IsRerun(text) {
		prev, ok := facts.PreviousRequest(r.user, r.id)
		if !ok {
			return p, &PipelineRejected{Error: "there is no previous request of yours to run again"}
		}
		if IsRerun(prev) {
			return p, &PipelineRejected{Error: "your previous request was !! too, so there is nothing to run again"}
		}
		text = prev
		p.event.Rerun, p.event.Expanded = true, prev
	}
	if name, expanded, ok := expandAlias(r.user, text, facts); ok {
		text = expanded
		p.event.Alias, p.event.Expanded = name, expanded
	}
	pl, err := pipeline.ParseWith(text, cat)
	if err != nil {
		rej := PipelineRejected{Error: err.Error()}
		var syntax *pipeline.SyntaxError
		if errors.As(err, &syntax) {
			rej.Error, rej.Column = syntax.Msg, syntax.Column
		}
		if errors.Is(err, pipeline.ErrRerun) {
			rej.Error, rej.Column = "!! must be the whole request", 0
		}
		if p.event.Expanded != "" {
			rej.Error += fmt.Sprintf(" (in %q, %s)", text, expansionOf(p.event))
		}
		return p, &rej
	}
	for _, stage := range pl.Stages {
		t, err := cat.resolve(stage.Bundle, stage.Name)
		if err != nil {
			rej := PipelineRejected{Error: err.Error(), Column: stage.Column}
			var re *ResolveError
			if errors.As(err, &re) {
				rej.Suggestion = re.Suggestion
			}
			if p.event.Expanded != "" {
				rej.Error += fmt.Sprintf(" (in %q, %s)", text, expansionOf(p.event))
			}
			return p, &rej
		}
		p.targets = append(p.targets, t)
	}
	stages, err := json.Marshal(pl.Stages)
	if err != nil {
		return p, &PipelineRejected{Error: "the pipeline cannot be recorded: " + err.Error()}
	}
	redirects := pl.Redirects
	if redirects == nil {
		redirects = []pipeline.Redirect{}
	}
	redirectsJSON, err := json.Marshal(redirects)
	if err != nil {
		return p, &PipelineRejected{Error: "the redirects cannot be recorded: " + err.Error()}
	}
	p.event.Stages, p.event.Redirects = stages, redirectsJSON
	p.event.decoded = &decodedPipeline{stages: decodeStages(stages), redirects: decodeRedirects(redirectsJSON)}
	p.pipeline = pl
	return p, nil
}

func expansionOf(p PipelineParsed) string {
	if p.Alias != "" {
		return "the expansion of the alias " + p.Alias
	}
	return "your previous request"
}

// IsRerun recognises "!!", which runs the sender's previous request again;
// with the chat prefix already stripped it arrives as "!".
func IsRerun(text string) bool {
	t := strings.TrimSpace(text)
	return t == "!!" || t == "!"
}

// expandAlias replaces the first word of text when it names an alias of
// the user, else of the site. The rest of the text follows the alias's
// pipeline text as written, so "!deploy-prod > #ops" redirects the alias's
// output. Expansion is not recursive: an alias naming an alias is parsed as
// a command, so aliases cannot loop.
func expandAlias(user, text string, facts Facts) (name, expanded string, ok bool) {
	rest := strings.TrimLeftFunc(text, unicode.IsSpace)
	rest = strings.TrimPrefix(rest, "!")
	end := strings.IndexFunc(rest, func(r rune) bool { return unicode.IsSpace(r) || r == '|' || r == '>' || r == '*' })
	if end < 0 {
		end = len(rest)
	}
	name = rest[:end]
	if name == "" || strings.Contains(name, ":") {
		return "", "", false
	}
	body, found := facts.UserAlias(user, name)
	if !found {
		body, found = facts.SiteAlias(name)
	}
	if !found {
		return "", "", false
	}
	return name, strings.TrimSpace(body) + rest[end:], true
}

// checkStage evaluates a stage's rules for a user holding perms.
func checkStage(t target, stage pipeline.Stage, perms []string) PermissionChecked {
	inv := StageInvocation(stage)
	inv.Command = t.FullName()
	held := map[string]bool{}
	for _, p := range perms {
		held[p] = true
	}
	decision := rules.Evaluate(t.rules(), inv, func(p string) bool { return held[p] })
	detail, _ := json.Marshal(decision.Explanation())
	check := PermissionChecked{Command: inv.Command, Granted: decision.Allowed, Reason: permissionReason(decision), Detail: detail, Approvals: decision.Approvals}
	if decision.Matched != nil {
		check.Rule, check.Required = decision.Matched.String(), decision.Matched.Requirement()
	}
	return check
}

// permissionReason says, in one sentence, why a stage may or may not run;
// a denial names the missing permissions.
func permissionReason(d rules.Decision) string {
	switch d.Reason {
	case rules.ReasonAllowed:
		return "allowed by " + d.Matched.String()
	case rules.ReasonMissingPermissions:
		return fmt.Sprintf("missing permission %s (required by %s)", strings.Join(d.Missing, ", "), d.Matched.String())
	case rules.ReasonNoRules:
		return fmt.Sprintf("no rule allows %s, so nobody may run it", d.Command)
	default:
		return fmt.Sprintf("no rule for %s matches these arguments and options", d.Command)
	}
}

// decideProgress looks at the current stage after a run ended: fail the
// request when a run failed, start the next stage when every run of this
// one succeeded, complete it after the last.
func decideProgress(r Request, facts Facts) ([]domain.Payload, []RunStart, []string) {
	stage := r.currentStage()
	runs := r.stageRuns(stage)
	for _, sr := range runs {
		o, done := r.outcomes[sr.runID]
		if !done || o.succeeded() {
			continue
		}
		reason := o.reason
		if o.result.Aborted {
			reason = "aborted"
		}
		if reason == "" {
			reason = "failed"
		}
		where := fmt.Sprintf("stage %d (%s)", stage+1, r.commandOf(stage))
		if len(runs) > 1 {
			where += fmt.Sprintf(", invocation %d of %d,", sr.invocation+1, len(runs))
		}
		failed := RequestFailed{Reason: fmt.Sprintf("%s run %s %s", where, sr.runID, reason), Stage: stage, RunID: sr.runID}
		var cancel []string
		for _, other := range r.RunningRuns() {
			if other != sr.runID {
				cancel = append(cancel, other)
			}
		}
		return []domain.Payload{failed}, nil, cancel
	}
	var outputs []json.RawMessage
	for _, sr := range runs {
		o, done := r.outcomes[sr.runID]
		if !done {
			return nil, nil, nil
		}
		outputs = append(outputs, o.result.Value)
	}
	elements := outputElements(outputs)
	if stage == len(r.stages)-1 || len(elements) == 0 {
		return []domain.Payload{RequestCompleted{Output: stageOutput(outputs, elements)}}, nil, nil
	}
	events, starts := startStage(r, facts, newCatalog(facts), stage+1, elements)
	return events, starts, nil
}

// outputElements flattens a stage's outputs into the next stage's inputs, as
// Cog does: a list contributes each element, any other value itself, null
// or nothing contributes nothing.
func outputElements(outputs []json.RawMessage) []json.RawMessage {
	var out []json.RawMessage
	for _, v := range outputs {
		v = bytes.TrimSpace(v)
		if len(v) == 0 || string(v) == "null" {
			continue
		}
		var list []json.RawMessage
		if v[0] == '[' && json.Unmarshal(v, &list) == nil {
			out = append(out, list...)
			continue
		}
		out = append(out, v)
	}
	return out
}

// stageOutput is the request's output: the one run's value as it is, or
// the elements of several runs gathered in one list.
func stageOutput(outputs, elements []json.RawMessage) json.RawMessage {
	if len(outputs) == 1 {
		return outputs[0]
	}
	if len(elements) == 0 {
		return nil
	}
	b, err := json.Marshal(elements)
	if err != nil {
		return nil
	}
	return b
}

// startStage starts stage once per input element, binding its variables to
// the element. Every invocation is bound and checked before any starts;
// when one cannot be, the request fails and nothing of the stage runs.
func startStage(r Request, facts Facts, cat catalog, stage int, inputs []json.RawMessage) ([]domain.Payload, []RunStart) {
	if stage >= len(r.stages) {
		return nil, nil
	}
	written := r.stages[stage]
	fail := func(events []domain.Payload, format string, args ...any) ([]domain.Payload, []RunStart) {
		reason := fmt.Sprintf("stage %d (%s) ", stage+1, r.commandOf(stage)) + fmt.Sprintf(format, args...)
		return append(events, RequestFailed{Reason: reason, Stage: stage}), nil
	}
	t, err := cat.resolve(written.Bundle, written.Name)
	if err != nil {
		return fail(nil, "cannot run: %v", err)
	}
	if t.FullName() != r.commandOf(stage) {
		return fail(nil, "now resolves to %s, not the checked %s; run the request again", t.FullName(), r.commandOf(stage))
	}
	var events []domain.Payload
	var starts []RunStart
	var config []bundleconfig.Entry
	if t.builtin == nil {
		config = facts.BundleConfig(t.bundle.Name, bundleconfig.Scope{Room: r.received.Room, Groups: facts.GroupsOf(r.user), User: r.username})
		if missing := missingEnv(t, config); len(missing) > 0 {
			return fail(nil, "cannot run: %s", missingEnvReason(t.bundle.Name, missing))
		}
	}
	perms := facts.PermissionsOf(r.user)
	for i, input := range inputs {
		bound := written
		if written.NeedsBinding() {
			obj, ok := inputObject(input)
			if !ok {
				return fail(events, "refers to %s, but the previous stage's output is %s, not an object", written.Variables()[0].String(), describeJSON(input))
			}
			bound, err = pipeline.Bind(written, obj)
			if err != nil {
				return fail(events, "cannot run: %v", err)
			}
			check := checkStage(t, bound, perms)
			checked := InvocationChecked{Stage: stage, Invocation: i, Command: check.Command, Rule: check.Rule,
				Required: check.Required, Granted: check.Granted, Reason: check.Reason, Detail: check.Detail, Approvals: check.Approvals}
			events = append(events, checked)
			if !check.Granted {
				return fail(events, "invocation %d is denied with its bound arguments: %s", i+1, check.Reason)
			}
			if !r.approval.Covers(check.Approvals) {
				// Approval is asked for before anything runs; a stage whose
				// bound arguments turn out to need more cannot ask half way.
				return fail(events, "invocation %d needs %s with its bound arguments, more than the request was approved with; run it as a request of its own", i+1, approvalWords(check.Approvals))
			}
		}
		id := RunID(r.id, stage, i)
		req := runRequest(r, t, bound, facts.Settings(), config)
		req.Stage, req.Input = stage, input
		req.Invocation.First, req.Invocation.Last = i == 0, i == len(inputs)-1
		starts = append(starts, RunStart{RunID: id, Builtin: t.builtin != nil, Request: req})
	}
	for i, s := range starts {
		events = append(events, StageStarted{Stage: stage, Invocation: i, RunID: s.RunID, Version: s.Request.Version})
	}
	return events, starts
}

func inputObject(input json.RawMessage) (map[string]any, bool) {
	if len(input) == 0 {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.UseNumber()
	var obj map[string]any
	if dec.Decode(&obj) != nil || obj == nil {
		return nil, false
	}
	return obj, true
}

func describeJSON(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing (it is the first stage)"
	}
	switch v[0] {
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// missingEnv lists the variables the bundle declares (config.env) that
// neither its command's env_vars nor any configuration layer of the
// run's scope sets.
func missingEnv(t target, config []bundleconfig.Entry) []string {
	var missing []string
	for _, env := range t.bundle.Env {
		if _, fixed := t.command.EnvVars[env.Name]; fixed {
			continue
		}
		if !slices.ContainsFunc(config, func(e bundleconfig.Entry) bool { return e.Key == env.Name }) {
			missing = append(missing, env.Name)
		}
	}
	return missing
}

// missingEnvReason names each missing variable and the command that sets
// it, as a plain value or as a secret.
func missingEnvReason(bundleName string, missing []string) string {
	what := "variable " + missing[0] + ", which is"
	if len(missing) > 1 {
		what = "variables " + strings.Join(missing, ", ") + ", which are"
	}
	return fmt.Sprintf("bundle %s needs the %s not set in any configuration layer for this room and user; set it with `logbook config set %s %s=VALUE`, or `logbook secret set %s %s` to keep a secret (add --room, --group or --user for one layer)",
		bundleName, what, bundleName, missing[0], bundleName, missing[0])
}

// runRequest builds the RunRequested for one bound invocation of a stage.
func runRequest(r Request, t target, stage pipeline.Stage, settings Settings, config []bundleconfig.Entry) run.RunRequested {
	req := run.RunRequested{
		RequestID: r.id,
		Invocation: run.Invocation{
			Room:       r.received.Room,
			ChatHandle: r.received.ChatUser,
			Username:   r.username,
			PipelineID: r.id,
		},
	}
	for _, a := range stage.Args {
		req.Args = append(req.Args, argText(a.Literal()))
	}
	if len(stage.Options) > 0 {
		req.Options = map[string]any{}
		for name, v := range stage.Options {
			req.Options[strings.TrimLeft(name, "-")] = v.Literal()
		}
	}
	if t.builtin != nil {
		req.Bundle, req.Command, req.Mode = BuiltinBundle, t.builtin.Name, ModeBuiltin
		req.Limits = settings.DefaultLimits
		return req
	}
	b, cmd := t.bundle, t.command
	req.Bundle, req.Version, req.Command, req.Image, req.Group = b.Name, b.Version, cmd.Name, t.image, t.group
	if req.Image == "" {
		req.Image = b.Image()
	}
	req.Argv = slices.Clone(cmd.Executable)
	// The command's env_vars come first; the configuration layers override
	// them, as an operator's setting overrides an author's default.
	for _, name := range slices.Sorted(maps.Keys(cmd.EnvVars)) {
		if !slices.ContainsFunc(config, func(e bundleconfig.Entry) bool { return e.Key == name }) {
			req.Config = append(req.Config, run.ConfigValue{Name: name, Value: cmd.EnvVars[name], Layer: "bundle"})
		}
	}
	for _, e := range config {
		if e.Secret {
			req.Secrets = append(req.Secrets, run.SecretRef{Name: e.Key, Layer: e.Layer.String(), Version: e.Version})
		} else {
			req.Config = append(req.Config, run.ConfigValue{Name: e.Key, Value: e.Value, Layer: e.Layer.String()})
		}
	}
	for _, env := range b.Env {
		req.EnvNames = append(req.EnvNames, env.Name)
	}
	for name := range cmd.EnvVars {
		req.EnvNames = append(req.EnvNames, name)
	}
	for _, e := range config {
		req.EnvNames = append(req.EnvNames, e.Key)
	}
	sort.Strings(req.EnvNames)
	req.EnvNames = slices.Compact(req.EnvNames)
	exec := cmd.EffectiveExecution()
	switch exec.Mode {
	case bundle.ModeWarm:
		req.Mode = run.ModeWarm
	case bundle.ModeSingleUse:
		req.Mode = run.ModeSingleUse
	default:
		req.Mode = run.ModeFresh
	}
	req.Limits = executionLimits(exec).Or(settings.DefaultLimits)
	// A bundle installed under a higher maximum is held to today's.
	req.Limits.Pids = min(req.Limits.Pids, settings.maxPids())
	user := run.DefaultUser
	if exec.User != nil {
		user = run.User{UID: exec.User.UID, GID: exec.User.GID}
	}
	req.User = &user
	return req
}

func executionLimits(e bundle.Execution) run.Limits {
	var l run.Limits
	if e.Timeout != nil {
		l.TimeoutMS = e.Timeout.Milliseconds()
	}
	if e.MemoryBytes != nil {
		l.MemoryBytes = *e.MemoryBytes
	}
	if e.CPUs != nil {
		l.NanoCPUs = int64(*e.CPUs * 1e9)
	}
	if e.Pids != nil {
		l.Pids = *e.Pids
	}
	if e.OutputCapBytes != nil {
		l.OutputBytes = *e.OutputCapBytes
	}
	return l
}
