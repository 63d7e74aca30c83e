package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/logbookhq/logbook/domain/dispatch"
)

// Approval statuses in the approvals view.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalRejected = "rejected"
	ApprovalExpired  = "expired"
)

// ApprovalStatuses are the values of the approvals view's status filter.
var ApprovalStatuses = []string{ApprovalPending, ApprovalApproved, ApprovalRejected, ApprovalExpired}

// Outcomes of an answer in the approvals view.
const (
	AnswerCounted  = "counted"
	AnswerRefused  = "refused"
	AnswerRejected = "rejected"
)

// Approvals is the approvals view: one row per request that asked for
// approval, its requirements (for "what may I answer"), and every answer
// as the request's decision judged it.
type Approvals struct{}

// NewApprovals returns the approvals view.
func NewApprovals() *Approvals { return &Approvals{} }

// Name implements Projection.
func (*Approvals) Name() string { return "approvals" }

// Types implements Projection.
func (*Approvals) Types() []string {
	return []string{"ApprovalRequested", "ApprovalGranted", "ApprovalRefused", "ApprovalRejected", "ApprovalExpired", "RequestApproved"}
}

// Tables implements Projection.
func (*Approvals) Tables() []string {
	return []string{"view_approvals", "view_approval_permissions", "view_approval_answers"}
}

// Open implements Projection: the view keeps nothing in memory.
func (*Approvals) Open(context.Context, Env, int64) error { return nil }

// Committed implements Projection.
func (*Approvals) Committed(int64) {}

// ApprovalRow is one request that asked for approval.
type ApprovalRow struct {
	RequestID   string        `json:"request_id"`
	Position    int64         `json:"position"`
	RequesterID string        `json:"requester_id"`
	Requester   string        `json:"requester"`
	Text        string        `json:"text"`
	Needs       string        `json:"needs"`
	Approvers   string        `json:"approvers"`
	Status      string        `json:"status"`
	ApprovedBy  string        `json:"approved_by,omitempty"`
	RejectedBy  string        `json:"rejected_by,omitempty"`
	Reason      string        `json:"reason,omitempty"`
	RequestedAt sql.NullInt64 `json:"-"`
	ExpiresAt   sql.NullInt64 `json:"-"`
	DecidedAt   sql.NullInt64 `json:"-"`
}

var approvalCols = []string{"request_id", "position", "requester_id", "requester", "text", "needs", "approvers", "status", "approved_by", "rejected_by", "reason", "requested_at", "expires_at", "decided_at"}

func (r *ApprovalRow) scanTargets() []any {
	return []any{&r.RequestID, &r.Position, &r.RequesterID, &r.Requester, &r.Text, &r.Needs, &r.Approvers, &r.Status, &r.ApprovedBy, &r.RejectedBy, &r.Reason, &r.RequestedAt, &r.ExpiresAt, &r.DecidedAt}
}

func (r *ApprovalRow) values() []any {
	return []any{r.RequestID, r.Position, r.RequesterID, r.Requester, r.Text, r.Needs, r.Approvers, r.Status, r.ApprovedBy, r.RejectedBy, r.Reason, r.RequestedAt, r.ExpiresAt, r.DecidedAt}
}

// AnswerRow is one answer to a request awaiting approval, as judged.
type AnswerRow struct {
	RequestID string        `json:"request_id"`
	Position  int64         `json:"position"`
	Username  string        `json:"username"`
	Verdict   string        `json:"verdict"`
	Outcome   string        `json:"outcome"` // counted, refused or rejected
	Reason    string        `json:"reason,omitempty"`
	Refusal   string        `json:"refusal,omitempty"`
	At        sql.NullInt64 `json:"-"`
}

var answerCols = []string{"request_id", "position", "username", "verdict", "outcome", "reason", "refusal", "at"}

// Apply implements Projection.
func (*Approvals) Apply(ctx context.Context, tx *Tx, batch Batch) error {
	rows := map[string]*ApprovalRow{}
	var order []string
	ids := map[string]bool{}
	fresh := freshStreams(batch.Events)
	for _, e := range batch.Events {
		if _, asked := e.Payload.(dispatch.ApprovalRequested); !asked && !fresh[e.Stream] {
			ids[strings.TrimPrefix(e.Stream, dispatch.StreamPrefix)] = true
		}
	}
	err := inChunks(tx.db, keysOf(ids), func(args []any, in string) error {
		q, err := tx.Query(ctx, "SELECT "+strings.Join(approvalCols, ", ")+" FROM view_approvals WHERE request_id IN ("+in+")", args...)
		if err != nil {
			return err
		}
		defer q.Close()
		for q.Next() {
			r := &ApprovalRow{}
			if err := q.Scan(r.scanTargets()...); err != nil {
				return err
			}
			rows[r.RequestID] = r
		}
		return q.Err()
	})
	if err != nil {
		return fmt.Errorf("load approvals: %w", err)
	}
	touched := map[string]bool{}
	var answers, permissions [][]any
	for _, e := range batch.Events {
		id := strings.TrimPrefix(e.Stream, dispatch.StreamPrefix)
		at := micros(e.RecordedAt)
		if p, ok := e.Payload.(dispatch.ApprovalRequested); ok {
			if rows[id] != nil {
				continue // asked once; a second is not the decider's
			}
			approvers := p.Approvers
			rows[id] = &ApprovalRow{RequestID: id, Position: e.Position, RequesterID: p.Requester, Requester: p.RequesterName, Text: p.Text,
				Needs: dispatch.Approval{Requested: p}.Needs(), Approvers: strings.Join(approvers, ", "), Status: ApprovalPending,
				RequestedAt: at, ExpiresAt: micros(p.ExpiresAt)}
			for _, req := range p.Requirements {
				permissions = append(permissions, []any{id, req.Permission, int64(req.Needed), e.Position})
			}
		}
		r := rows[id]
		if r == nil {
			continue // an approval event without its request: nothing to show it in
		}
		if !touched[id] {
			touched[id] = true
			order = append(order, id)
		}
		decide := func(status string) {
			if r.Status == ApprovalPending {
				r.Status, r.DecidedAt = status, at
			}
		}
		switch p := e.Payload.(type) {
		case dispatch.ApprovalGranted:
			r.ApprovedBy = joinName(r.ApprovedBy, p.Username)
			answers = append(answers, []any{id, e.Position, p.Username, string(dispatch.VerdictApprove), AnswerCounted, p.Reason, "", micros(p.At)})
		case dispatch.ApprovalRefused:
			answers = append(answers, []any{id, e.Position, p.Username, string(p.Verdict), AnswerRefused, "", p.Reason, micros(p.At)})
		case dispatch.ApprovalRejected:
			decide(ApprovalRejected)
			r.RejectedBy, r.Reason = p.Username, p.Reason
			answers = append(answers, []any{id, e.Position, p.Username, string(dispatch.VerdictReject), AnswerRejected, p.Reason, "", micros(p.At)})
		case dispatch.ApprovalExpired:
			decide(ApprovalExpired)
		case dispatch.RequestApproved:
			decide(ApprovalApproved)
		}
	}
	out := make([][]any, 0, len(order))
	for _, id := range order {
		out = append(out, rows[id].values())
	}
	if err := tx.upsert(ctx, "view_approvals", approvalCols, 1, out); err != nil {
		return err
	}
	if err := tx.insertIgnore(ctx, "view_approval_permissions", []string{"request_id", "permission", "needed", "position"}, 2, permissions); err != nil {
		return err
	}
	return tx.insertIgnore(ctx, "view_approval_answers", answerCols, 2, answers)
}

func joinName(list, name string) string {
	if list == "" {
		return name
	}
	return list + ", " + name
}

// ApprovalReader answers approval queries from the view's tables.
type ApprovalReader struct{ db DB }

// NewApprovalReader reads the approvals view in db.
func NewApprovalReader(db DB) *ApprovalReader { return &ApprovalReader{db: db} }

// ApprovalFilter selects approvals, newest first. Empty fields do not
// filter. Visible, when set, keeps only the rows its user may see.
type ApprovalFilter struct {
	Status    string
	Requester string // username
	Visible   *ApprovalViewer
	Limit     int    // rows per page: default 50, at most 1000
	Cursor    string // Next of the previous page
}

// ApprovalViewer is a caller without logbook:read_history: they see their
// own requests, and those whose approvers' permissions they hold.
type ApprovalViewer struct {
	Username    string
	Permissions []string
}

// Sees applies the list's visibility to one approval: its requester sees
// it, and so does anyone holding a permission its approvers need; a nil
// viewer sees every one.
func (v *ApprovalViewer) Sees(d ApprovalDetail) bool {
	if v == nil || d.Requester == v.Username {
		return true
	}
	return slices.ContainsFunc(d.Permissions, func(p string) bool { return slices.Contains(v.Permissions, p) })
}

// ApprovalPage is one page of approvals; Next is empty on the last.
type ApprovalPage struct {
	Approvals []ApprovalRow `json:"approvals"`
	Next      string        `json:"next,omitempty"`
}

// List returns a page of approvals.
func (ar *ApprovalReader) List(ctx context.Context, f ApprovalFilter) (ApprovalPage, error) {
	var w whereClause
	if f.Status != "" {
		w.add("status = ?", f.Status)
	}
	if f.Requester != "" {
		w.add("requester = ?", f.Requester)
	}
	if v := f.Visible; v != nil {
		cond := fmt.Sprintf("(requester = $%d", len(w.args)+1)
		w.args = append(w.args, v.Username)
		if len(v.Permissions) > 0 {
			marks := make([]string, len(v.Permissions))
			for i, p := range v.Permissions {
				w.args = append(w.args, p)
				marks[i] = fmt.Sprintf("$%d", len(w.args))
			}
			cond += " OR request_id IN (SELECT request_id FROM view_approval_permissions WHERE permission IN (" + strings.Join(marks, ", ") + "))"
		}
		w.conds = append(w.conds, cond+")")
	}
	if f.Cursor != "" {
		before, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || before <= 0 {
			return ApprovalPage{}, fmt.Errorf("%w: %q", ErrBadCursor, f.Cursor)
		}
		w.add("position < ?", before)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	query := "SELECT " + strings.Join(approvalCols, ", ") + " FROM view_approvals"
	if len(w.conds) > 0 {
		query += " WHERE " + strings.Join(w.conds, " AND ")
	}
	query += fmt.Sprintf(" ORDER BY position DESC LIMIT %d", limit+1)
	rows, err := ar.db.query(ctx, query, w.args...)
	if err != nil {
		return ApprovalPage{}, err
	}
	defer rows.Close()
	page := ApprovalPage{Approvals: []ApprovalRow{}}
	for rows.Next() {
		var r ApprovalRow
		if err := rows.Scan(r.scanTargets()...); err != nil {
			return ApprovalPage{}, err
		}
		page.Approvals = append(page.Approvals, r)
	}
	if err := rows.Err(); err != nil {
		return ApprovalPage{}, err
	}
	if len(page.Approvals) > limit {
		page.Approvals = page.Approvals[:limit]
		page.Next = strconv.FormatInt(page.Approvals[limit-1].Position, 10)
	}
	return page, nil
}

// ApprovalDetail is one request's approval with its answers.
type ApprovalDetail struct {
	ApprovalRow
	Permissions []string    `json:"permissions"`
	Answers     []AnswerRow `json:"answers"`
}

// ErrNoApproval is returned by Get for a request that asked for none.
var ErrNoApproval = errors.New("no approval")

// Get returns one request's approval, its required permissions and its
// answers in the order they were judged.
func (ar *ApprovalReader) Get(ctx context.Context, requestID string) (ApprovalDetail, error) {
	var d ApprovalDetail
	rows, err := ar.db.query(ctx, "SELECT "+strings.Join(approvalCols, ", ")+" FROM view_approvals WHERE request_id = $1", requestID)
	if err != nil {
		return d, err
	}
	found := rows.Next()
	if found {
		err = rows.Scan(d.scanTargets()...)
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return d, err
	}
	if !found {
		return d, fmt.Errorf("%w for request %s", ErrNoApproval, requestID)
	}
	d.Permissions, d.Answers = []string{}, []AnswerRow{}
	perms, err := ar.db.query(ctx, "SELECT permission FROM view_approval_permissions WHERE request_id = $1 ORDER BY permission", requestID)
	if err != nil {
		return d, err
	}
	for perms.Next() {
		var p string
		if err := perms.Scan(&p); err != nil {
			perms.Close()
			return d, err
		}
		d.Permissions = append(d.Permissions, p)
	}
	if err := perms.Close(); err != nil {
		return d, err
	}
	answers, err := ar.db.query(ctx, "SELECT "+strings.Join(answerCols, ", ")+" FROM view_approval_answers WHERE request_id = $1 ORDER BY position", requestID)
	if err != nil {
		return d, err
	}
	defer answers.Close()
	for answers.Next() {
		var a AnswerRow
		if err := answers.Scan(&a.RequestID, &a.Position, &a.Username, &a.Verdict, &a.Outcome, &a.Reason, &a.Refusal, &a.At); err != nil {
			return d, err
		}
		d.Answers = append(d.Answers, a)
	}
	return d, answers.Err()
}
