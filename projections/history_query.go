package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// HistoryReader answers history queries from the view's tables. Lists are
// newest first and paged by keyset: a page's Next cursor is the position of
// its last row, so the next page is one index range scan however deep it is.
type HistoryReader struct{ db DB }

// NewHistoryReader reads the history view in db.
func NewHistoryReader(db DB) *HistoryReader { return &HistoryReader{db: db} }

// RunFilter selects runs. Empty fields do not filter. From and To bound
// when the run was requested, [From, To).
type RunFilter struct {
	UserID    string
	Username  string
	Command   string // bundle:command
	Status    string
	Adapter   string // chat provider
	Room      string
	RequestID string
	From, To  time.Time
	Limit     int    // rows per page: default 50, at most 1000
	Cursor    string // Next of the previous page; empty for the first
}

// RunPage is one page of runs; Next is empty on the last page.
type RunPage struct {
	Runs []RunRow `json:"runs"`
	Next string   `json:"next,omitempty"`
}

// RequestFilter selects requests, like RunFilter; From and To bound when the
// request was received. Command matches any stage's command.
type RequestFilter struct {
	UserID   string
	Username string
	Command  string
	Status   string
	Adapter  string
	Room     string
	From, To time.Time
	Limit    int
	Cursor   string
}

// RequestPage is one page of requests.
type RequestPage struct {
	Requests []RequestRow `json:"requests"`
	Next     string       `json:"next,omitempty"`
}

// ErrBadCursor is the kind of a cursor that no page handed out.
var ErrBadCursor = errors.New("bad cursor")

type whereClause struct {
	conds []string
	args  []any
	// cols qualifies the filtered table's columns and pos the position
	// the page is ordered by, in a join; both empty and "position" alone.
	cols, pos string
}

func (w *whereClause) position() string {
	if w.pos == "" {
		return "position"
	}
	return w.pos
}

func (w *whereClause) add(cond string, arg any) {
	w.args = append(w.args, arg)
	w.conds = append(w.conds, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(w.args))))
}

func (w *whereClause) eq(col, value string) {
	if value != "" {
		w.add(w.cols+col+" = ?", value)
	}
}

func (w *whereClause) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

func pageLimit(limit int) int {
	switch {
	case limit <= 0:
		return 50
	case limit > 1000:
		return 1000
	}
	return limit
}

// timeBounds turns a time range into position bounds as well, so the list
// stays an index range scan on (filter, position): positions and recorded
// times grow together, because the store stamps each commit as it appends.
func (h *HistoryReader) timeBounds(ctx context.Context, w *whereClause, table, col string, from, to time.Time) error {
	if !from.IsZero() {
		var p int64
		err := h.db.Read.QueryRowContext(ctx, h.db.rebind("SELECT position FROM "+table+" WHERE "+col+" >= $1 ORDER BY "+col+", position LIMIT 1"), from.UnixMicro()).Scan(&p)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			w.add("1 = ?", 0) // nothing is that recent
		case err != nil:
			return err
		default:
			w.add(w.position()+" >= ?", p)
		}
		w.add(w.cols+col+" >= ?", from.UnixMicro())
	}
	if !to.IsZero() {
		var p int64
		err := h.db.Read.QueryRowContext(ctx, h.db.rebind("SELECT position FROM "+table+" WHERE "+col+" < $1 ORDER BY "+col+" DESC, position DESC LIMIT 1"), to.UnixMicro()).Scan(&p)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			w.add("1 = ?", 0) // nothing is that old
		case err != nil:
			return err
		default:
			w.add(w.position()+" <= ?", p)
		}
		w.add(w.cols+col+" < ?", to.UnixMicro())
	}
	return nil
}

func cursorPosition(w *whereClause, cursor string) error {
	if cursor == "" {
		return nil
	}
	p, err := strconv.ParseInt(cursor, 10, 64)
	if err != nil || p < 1 {
		return fmt.Errorf("%w: %q is not a cursor this API handed out", ErrBadCursor, cursor)
	}
	w.add(w.position()+" < ?", p)
	return nil
}

// Runs lists runs newest first.
func (h *HistoryReader) Runs(ctx context.Context, f RunFilter) (RunPage, error) {
	w := &whereClause{}
	w.eq("user_id", f.UserID)
	w.eq("username", f.Username)
	w.eq("command", f.Command)
	w.eq("status", f.Status)
	w.eq("adapter", f.Adapter)
	w.eq("room", f.Room)
	w.eq("request_id", f.RequestID)
	if err := h.timeBounds(ctx, w, "view_history_runs", "requested_at", f.From, f.To); err != nil {
		return RunPage{}, err
	}
	if err := cursorPosition(w, f.Cursor); err != nil {
		return RunPage{}, err
	}
	limit := pageLimit(f.Limit)
	rows, err := h.db.query(ctx, "SELECT "+runCols+" FROM view_history_runs"+w.String()+
		fmt.Sprintf(" ORDER BY position DESC LIMIT %d", limit+1), w.args...)
	if err != nil {
		return RunPage{}, err
	}
	defer rows.Close()
	var page RunPage
	for rows.Next() {
		var r RunRow
		if err := rows.Scan(r.scanTargets()...); err != nil {
			return RunPage{}, err
		}
		page.Runs = append(page.Runs, r)
	}
	if len(page.Runs) > limit {
		page.Runs = page.Runs[:limit]
		page.Next = strconv.FormatInt(page.Runs[limit-1].Position, 10)
	}
	return page, rows.Err()
}

// Run returns one run.
func (h *HistoryReader) Run(ctx context.Context, runID string) (RunRow, error) {
	var r RunRow
	err := h.db.Read.QueryRowContext(ctx, h.db.rebind("SELECT "+runCols+" FROM view_history_runs WHERE run_id = $1"), runID).Scan(r.scanTargets()...)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("%w: no run %s in the history", ErrNotFound, runID)
	}
	return r, err
}

// qualifiedRequestCols are requestCols of the table aliased r.
var qualifiedRequestCols = "r." + strings.ReplaceAll(requestCols, ", ", ", r.")

// Requests lists requests newest first.
//
// A command filter is driven from the commands table: its (command,
// position) index lists the command's requests newest first, and each is
// one primary-key probe of the request row. Filtering requests newest first
// with "request_id IN (commands of ...)" instead walks every request and
// probes the commands of each: a command in 1 request of 30 costs some 1,400
// probes for a page of 50 (83 ms cold over 1,000,000 runs). A request whose
// pipeline names the command twice has two rows there; only the first
// stage's is kept, so it is listed once. The command rows carry the
// request's user, so a command and a user are one range scan of (username,
// command, position) too.
func (h *HistoryReader) Requests(ctx context.Context, f RequestFilter) (RequestPage, error) {
	w := &whereClause{}
	from, cols := " FROM view_history_requests", requestCols
	if f.Command != "" {
		w.cols, w.pos = "r.", "c.position"
		from, cols = " FROM view_history_request_commands c JOIN view_history_requests r ON r.request_id = c.request_id", qualifiedRequestCols
		w.add("c.command = ?", f.Command)
		w.conds = append(w.conds, "NOT EXISTS (SELECT 1 FROM view_history_request_commands e WHERE e.request_id = c.request_id AND e.stage < c.stage AND e.command = c.command)")
		// The command rows carry the user: (username, command, position).
		if f.UserID != "" {
			w.add("c.user_id = ?", f.UserID)
		}
		if f.Username != "" {
			w.add("c.username = ?", f.Username)
		}
	} else {
		w.eq("user_id", f.UserID)
		w.eq("username", f.Username)
	}
	w.eq("status", f.Status)
	w.eq("adapter", f.Adapter)
	w.eq("room", f.Room)
	if err := h.timeBounds(ctx, w, "view_history_requests", "received_at", f.From, f.To); err != nil {
		return RequestPage{}, err
	}
	if err := cursorPosition(w, f.Cursor); err != nil {
		return RequestPage{}, err
	}
	limit := pageLimit(f.Limit)
	rows, err := h.db.query(ctx, "SELECT "+cols+from+w.String()+
		fmt.Sprintf(" ORDER BY %s DESC LIMIT %d", w.position(), limit+1), w.args...)
	if err != nil {
		return RequestPage{}, err
	}
	defer rows.Close()
	var page RequestPage
	for rows.Next() {
		var r RequestRow
		if err := rows.Scan(r.scanTargets()...); err != nil {
			return RequestPage{}, err
		}
		page.Requests = append(page.Requests, r)
	}
	if len(page.Requests) > limit {
		page.Requests = page.Requests[:limit]
		page.Next = strconv.FormatInt(page.Requests[limit-1].Position, 10)
	}
	return page, rows.Err()
}

// Request returns one request.
func (h *HistoryReader) Request(ctx context.Context, requestID string) (RequestRow, error) {
	var r RequestRow
	err := h.db.Read.QueryRowContext(ctx, h.db.rebind("SELECT "+requestCols+" FROM view_history_requests WHERE request_id = $1"), requestID).Scan(r.scanTargets()...)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("%w: no request %s in the history", ErrNotFound, requestID)
	}
	return r, err
}

// Times of a request, as times (zero when unknown).
func (r RequestRow) Times() (received, ended time.Time, duration time.Duration) {
	return timeOf(r.ReceivedAt), timeOf(r.EndedAt), time.Duration(r.DurationMS.Int64) * time.Millisecond
}

// Times of a run, as times (zero when unknown).
func (r RunRow) Times() (requested, started, ended time.Time, duration time.Duration) {
	return timeOf(r.RequestedAt), timeOf(r.StartedAt), timeOf(r.EndedAt), time.Duration(r.DurationMS.Int64) * time.Millisecond
}
