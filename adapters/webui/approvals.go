package webui

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/projections"
)

// The approvals page lists the requests waiting for approval that the
// viewer may see (their own, those whose approvers' permissions they
// hold, everyone's with logbook:read_history: the API's rule) with a form
// to approve or reject each one they may answer. An answer is sent as the
// console sends a command ("approve ID reason" from provider web), so the
// approve and reject builtins judge it as they judge one typed in chat,
// and the page shows their reply.

// answerWait bounds how long an answer's page waits for the builtin's
// reply before it says the answer is recorded and still being judged.
const answerWait = 30 * time.Second

type approvalsData struct {
	Status    string
	Statuses  []string
	Approvals []approvalRow
	// Answered is the reply to the answer just sent, shown at the top.
	Answered *dispatch.Reply
}

// approvalRow is one approval on the page, with whether the viewer may
// answer it.
type approvalRow struct {
	httpapi.ApprovalView
	Answerable bool
}

// approvalViewer is the viewer as the approvals list sees them (nil: may
// see every approval).
func (v *viewer) approvalViewer() *projections.ApprovalViewer {
	if v.historyReader().ReadsEveryone() {
		return nil
	}
	return &projections.ApprovalViewer{Username: v.User.Username, Permissions: v.held}
}

// mayAnswer reports whether the viewer may answer a pending approval that
// requires permissions: they hold one, and it is not their own request.
func (v *viewer) mayAnswer(requester string, permissions []string) bool {
	if requester == v.User.Username {
		return false
	}
	return slices.ContainsFunc(permissions, func(p string) bool { return slices.Contains(v.held, p) })
}

func (ui *UI) approvalsPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	ui.renderApprovals(w, r, v, http.StatusOK, nil)
}

func (ui *UI) renderApprovals(w http.ResponseWriter, r *http.Request, v *viewer, status int, answered *dispatch.Reply) {
	if ui.cfg.Approvals == nil {
		ui.fail(w, r, v, http.StatusNotImplemented, "This server does not serve approvals.")
		return
	}
	state := r.URL.Query().Get("status")
	switch {
	case state == "":
		state = projections.ApprovalPending
	case state == "all":
	case !slices.Contains(projections.ApprovalStatuses, state):
		ui.fail(w, r, v, http.StatusBadRequest, "status: "+state+" is not one of all, "+strings.Join(projections.ApprovalStatuses, ", ")+".")
		return
	}
	filter := projections.ApprovalFilter{Status: state, Visible: v.approvalViewer(), Limit: 200}
	if state == "all" {
		filter.Status = ""
	}
	if err := ui.catchUp(r.Context(), "approvals"); err != nil {
		ui.unavailable(w, r, v, "reading the approvals view", err)
		return
	}
	list, err := ui.cfg.Approvals.List(r.Context(), filter)
	if err != nil {
		ui.unavailable(w, r, v, "reading the approvals", err)
		return
	}
	data := approvalsData{Status: state, Statuses: append([]string{"all"}, projections.ApprovalStatuses...), Answered: answered}
	for _, row := range list.Approvals {
		a := approvalRow{ApprovalView: httpapi.NewApprovalView(row)}
		if row.Status == projections.ApprovalPending {
			d, err := ui.cfg.Approvals.Get(r.Context(), row.RequestID)
			if err != nil {
				ui.unavailable(w, r, v, "reading an approval", err)
				return
			}
			a.Answerable = v.mayAnswer(row.Requester, d.Permissions)
		}
		data.Approvals = append(data.Approvals, a)
	}
	ui.render(w, r, status, "approvals", page{Title: "Approvals", Section: "approvals", Viewer: v, Data: data})
}

func (ui *UI) approve(w http.ResponseWriter, r *http.Request, v *viewer) {
	ui.answer(w, r, v, dispatch.VerdictApprove)
}

func (ui *UI) reject(w http.ResponseWriter, r *http.Request, v *viewer) {
	ui.answer(w, r, v, dispatch.VerdictReject)
}

// answer sends the viewer's answer and shows the approvals page with its
// reply. The id must name a request the viewer may see, as on the page.
func (ui *UI) answer(w http.ResponseWriter, r *http.Request, v *viewer, verdict dispatch.Verdict) {
	id := r.PathValue("id")
	if ui.cfg.Approvals == nil {
		ui.fail(w, r, v, http.StatusNotImplemented, "This server does not serve approvals.")
		return
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if verdict == dispatch.VerdictReject && reason == "" {
		ui.fail(w, r, v, http.StatusBadRequest, "Say why you reject it: the reason is required.")
		return
	}
	if err := ui.catchUp(r.Context(), "approvals"); err != nil {
		ui.unavailable(w, r, v, "reading the approvals view", err)
		return
	}
	d, err := ui.cfg.Approvals.Get(r.Context(), id)
	visible := err == nil && v.approvalViewer().Sees(d)
	switch {
	case errors.Is(err, projections.ErrNoApproval) || err == nil && !visible:
		ui.fail(w, r, v, http.StatusNotFound, "No request "+id+" asked for approval.")
		return
	case err != nil:
		ui.unavailable(w, r, v, "reading the approval", err)
		return
	}
	in := dispatch.RequestReceived{Adapter: "web", Room: consoleRoom, ChatUser: v.User.Username,
		Text: dispatch.AnswerText(verdict, id, reason), Sender: v.User.Username}.WithFreshMessageID()
	waiting, stop := context.WithTimeout(r.Context(), answerWait)
	defer stop()
	_, replies, err := ui.cfg.Requests.ReceiveAndWait(r.Context(), waiting, in, v.User.Username)
	if err != nil {
		ui.cfg.Logger.Error().Err(err).Str("approval", id).Str("user", v.User.Username).Msg("recording an answer")
		ui.fail(w, r, v, http.StatusServiceUnavailable, "The answer could not be recorded: "+err.Error())
		return
	}
	ui.cfg.Logger.Info().Str("approval", id).Str("request_id", in.ID()).Str("user", v.User.Username).Str("verdict", string(verdict)).Msg("answer recorded")
	var reply dispatch.Reply
	select {
	case reply = <-replies:
	case <-waiting.Done():
		reply = dispatch.Reply{Text: "Your answer is recorded and still being judged: see request " + in.ID() + "."}
	}
	ui.renderApprovals(w, r, v, http.StatusOK, &reply)
}

// approvalSection is the request page's account of its approval, folded
// from the request's own events: what it needs, who may approve, and every
// answer as judged, with who, when and why.
type approvalSection struct {
	Needs      string
	Approvers  []string
	Expires    time.Time
	State      string
	Progress   string
	Answers    []answerRow
	Answerable bool
	RequestID  string
}

type answerRow struct {
	Username string
	Verdict  string
	Outcome  string // approved, rejected, refused
	Reason   string
	At       time.Time
}

// approvalOf folds a request's events into its approval section; nil when
// it asked for none.
func approvalOf(requestID string, events []domain.RecordedEvent, v *viewer) *approvalSection {
	a := dispatch.Approval{RequestID: requestID}
	var answers []answerRow
	for _, e := range events {
		p, err := domain.Decode(e)
		if err != nil {
			continue
		}
		a = dispatch.FoldApproval(a, p)
		switch ev := p.(type) {
		case dispatch.ApprovalGranted:
			answers = append(answers, answerRow{Username: ev.Username, Verdict: string(dispatch.VerdictApprove), Outcome: "approved", Reason: ev.Reason, At: ev.At})
		case dispatch.ApprovalRejected:
			answers = append(answers, answerRow{Username: ev.Username, Verdict: string(dispatch.VerdictReject), Outcome: "rejected", Reason: ev.Reason, At: ev.At})
		case dispatch.ApprovalRefused:
			answers = append(answers, answerRow{Username: ev.Username, Verdict: string(ev.Verdict), Outcome: "refused", Reason: ev.Reason, At: ev.At})
		}
	}
	if a.State == dispatch.ApprovalStateNone {
		return nil
	}
	s := &approvalSection{Needs: a.Needs(), Approvers: a.Requested.Approvers, Expires: a.Requested.ExpiresAt, State: string(a.State),
		Progress: a.Progress(), Answers: answers, RequestID: requestID}
	var perms []string
	for _, req := range a.Requested.Requirements {
		perms = append(perms, req.Permission)
	}
	s.Answerable = a.Pending() && v.mayAnswer(a.Requested.RequesterName, perms)
	return s
}
