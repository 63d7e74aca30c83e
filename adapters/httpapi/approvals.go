package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/projections"
)

// ApprovalsReader is what the API reads of the approvals view.
type ApprovalsReader interface {
	List(ctx context.Context, f projections.ApprovalFilter) (projections.ApprovalPage, error)
	Get(ctx context.Context, requestID string) (projections.ApprovalDetail, error)
}

// ApprovalView is a request that asked for approval, as the API shows it.
type ApprovalView struct {
	projections.ApprovalRow
	Requested *time.Time `json:"requested_at,omitempty"`
	Expires   *time.Time `json:"expires_at,omitempty"`
	Decided   *time.Time `json:"decided_at,omitempty"`
}

// NewApprovalView adds the row's times.
func NewApprovalView(r projections.ApprovalRow) ApprovalView {
	return ApprovalView{ApprovalRow: r,
		Requested: timePtr(timeOfMicros(r.RequestedAt.Int64, r.RequestedAt.Valid)),
		Expires:   timePtr(timeOfMicros(r.ExpiresAt.Int64, r.ExpiresAt.Valid)),
		Decided:   timePtr(timeOfMicros(r.DecidedAt.Int64, r.DecidedAt.Valid))}
}

func timeOfMicros(us int64, valid bool) time.Time {
	if !valid {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// ApprovalsPage answers GET /v1/approvals.
type ApprovalsPage struct {
	Approvals  []ApprovalView `json:"approvals"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// AnswerView is one answer to a request awaiting approval.
type AnswerView struct {
	projections.AnswerRow
	Answered *time.Time `json:"answered_at,omitempty"`
}

// ApprovalDetail answers GET /v1/approvals/{id}: the approval, the
// permissions its approvers must hold, and every answer as judged.
type ApprovalDetail struct {
	Approval    ApprovalView `json:"approval"`
	Permissions []string     `json:"permissions"`
	Answers     []AnswerView `json:"answers"`
}

// answerBody is POST /v1/approvals/{id}/approve and /reject.
type answerBody struct {
	// Reason says why; a rejection needs one.
	Reason string `json:"reason"`
	// MessageID makes a retried answer idempotent; default: a new one.
	MessageID string `json:"message_id"`
}

// AnswerResponse answers an approval or a rejection: the request that
// carried the answer ("approve ID ..."), whether the answer counts, and
// the reply, which says how it fared.
type AnswerResponse struct {
	RequestID string         `json:"request_id"`
	Counted   bool           `json:"counted"`
	Reply     dispatch.Reply `json:"reply"`
}

var approvalParams = []string{"status", "requester", "limit", "cursor"}

// approvalViewer is who the caller may see approvals as: everyone's with
// logbook:read_history; else their own requests and those whose approvers'
// permissions they hold (nil: no restriction).
func (a *API) approvalViewer(user access.UserInfo) *projections.ApprovalViewer {
	perms := a.Users.PermissionsOf(user.ID)
	if (access.HistoryReader{Username: user.Username, Permissions: perms}).ReadsEveryone() {
		return nil
	}
	return &projections.ApprovalViewer{Username: user.Username, Permissions: perms}
}

func (a *API) servesApprovals(w http.ResponseWriter, r *http.Request) bool {
	if a.Approvals == nil {
		writeJSON(w, http.StatusNotImplemented, apiError{"this server does not serve approvals"})
		return false
	}
	if err := a.catchUp(r.Context(), "approvals"); err != nil {
		unavailable(w, "the approvals view", err)
		return false
	}
	return true
}

func (a *API) listApprovals(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	q := r.URL.Query()
	if err := onlyParams(q, approvalParams); err != nil {
		writeParamError(w, err)
		return
	}
	f := projections.ApprovalFilter{Status: q.Get("status"), Requester: q.Get("requester"), Cursor: q.Get("cursor"), Visible: a.approvalViewer(user)}
	if f.Status != "" && !slices.Contains(projections.ApprovalStatuses, f.Status) {
		writeParamError(w, paramError("status", "%q is not one of %s", f.Status, strings.Join(projections.ApprovalStatuses, ", ")))
		return
	}
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 200 {
			writeParamError(w, paramError("limit", "%q is not a number from 1 to 200", raw))
			return
		}
		f.Limit = n
	}
	if !a.servesApprovals(w, r) {
		return
	}
	page, err := a.Approvals.List(r.Context(), f)
	if errors.Is(err, projections.ErrBadCursor) {
		writeParamError(w, paramError("cursor", "%q is not a cursor this list gave", f.Cursor))
		return
	}
	if err != nil {
		unavailable(w, "reading the approvals", err)
		return
	}
	out := ApprovalsPage{Approvals: make([]ApprovalView, 0, len(page.Approvals)), NextCursor: page.Next}
	for _, row := range page.Approvals {
		out.Approvals = append(out.Approvals, NewApprovalView(row))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getApproval(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if !noParams(w, r) || !a.servesApprovals(w, r) {
		return
	}
	d, ok := a.visibleApproval(w, r, user, r.PathValue("id"))
	if !ok {
		return
	}
	out := ApprovalDetail{Approval: NewApprovalView(d.ApprovalRow), Permissions: d.Permissions, Answers: make([]AnswerView, 0, len(d.Answers))}
	for _, ans := range d.Answers {
		out.Answers = append(out.Answers, AnswerView{AnswerRow: ans, Answered: timePtr(timeOfMicros(ans.At.Int64, ans.At.Valid))})
	}
	writeJSON(w, http.StatusOK, out)
}

// visibleApproval reads the approval of request id, answering 404 for one
// the user may not see, as for a missing one.
func (a *API) visibleApproval(w http.ResponseWriter, r *http.Request, user access.UserInfo, id string) (projections.ApprovalDetail, bool) {
	d, err := a.Approvals.Get(r.Context(), id)
	if err == nil && !a.approvalViewer(user).Sees(d) {
		err = projections.ErrNoApproval
	}
	switch {
	case errors.Is(err, projections.ErrNoApproval):
		writeJSON(w, http.StatusNotFound, apiError{"no approval for request " + id})
		return d, false
	case err != nil:
		unavailable(w, "reading the approval", err)
		return d, false
	}
	return d, true
}

func (a *API) approve(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	a.answer(w, r, user, dispatch.VerdictApprove)
}

func (a *API) reject(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	a.answer(w, r, user, dispatch.VerdictReject)
}

// answer sends "approve ID reason" (or reject) as the token's user and
// waits for its reply, as chat would: the approve and reject builtins
// judge it, so every surface answers alike.
func (a *API) answer(w http.ResponseWriter, r *http.Request, user access.UserInfo, v dispatch.Verdict) {
	if !noParams(w, r) {
		return
	}
	var body answerBody
	if !decodeBody(w, r, &body, `{"reason": ...}`) {
		return
	}
	id := r.PathValue("id")
	if !a.servesApprovals(w, r) {
		return
	}
	// The answered request must be one the caller may see, as in the list.
	_, ok := a.visibleApproval(w, r, user, id)
	if !ok {
		return
	}
	if v == dispatch.VerdictReject && strings.TrimSpace(body.Reason) == "" {
		writeJSON(w, http.StatusBadRequest, apiError{`"reason" is required: say why you reject it`})
		return
	}
	in := dispatch.RequestReceived{Adapter: "api", MessageID: body.MessageID, Room: "api", ChatUser: user.Username,
		Text: dispatch.AnswerText(v, id, body.Reason), Sender: user.Username}
	if body.MessageID == "" {
		in = in.WithFreshMessageID()
	}
	timeout := a.ReplyTimeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	waiting, stop := context.WithTimeout(r.Context(), timeout)
	defer stop()
	_, wait, err := a.Requests.ReceiveAndWait(r.Context(), waiting, in, user.Username)
	if err != nil {
		if dispatch.KindOf(err) == dispatch.KindMessageIDTaken {
			writeJSON(w, http.StatusConflict, apiError{err.Error()})
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, apiError{"the answer could not be recorded: " + err.Error()})
		return
	}
	select {
	case reply := <-wait:
		writeJSON(w, http.StatusOK, AnswerResponse{RequestID: in.ID(), Counted: !reply.Failed, Reply: reply})
	case <-waiting.Done():
		if r.Context().Err() == nil {
			writeJSON(w, http.StatusAccepted, requestResponse{RequestID: in.ID()})
		}
	}
}
