package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/run"
)

// Request statuses in the history view.
const (
	RequestReceived = "received"
	// RequestAwaitingApproval: allowed, and waiting for the approvals its
	// rules ask for before anything runs.
	RequestAwaitingApproval = "awaiting-approval"
	// RequestQueued: over a quota, waiting for room to start.
	RequestQueued      = "queued"
	RequestRunning     = "running"
	RequestCompleted   = "completed"
	RequestFailed      = "failed"
	RequestDenied      = "denied"
	RequestRejected    = "rejected"
	RequestUnknownUser = "unknown-user"
)

// Run statuses in the history view.
const (
	RunRequested = "requested"
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
	RunTimedOut  = "timed_out"
	RunCancelled = "cancelled"
	RunLost      = "lost"
)

func requestTerminal(status string) bool {
	switch status {
	case RequestCompleted, RequestFailed, RequestDenied, RequestRejected, RequestUnknownUser:
		return true
	}
	return false
}

func runTerminal(status string) bool {
	switch status {
	case RunSucceeded, RunFailed, RunTimedOut, RunCancelled, RunLost:
		return true
	}
	return false
}

// History is the history view: one row per request and one per run, for
// the API's filtered, paged lists. A batch's rows are folded in memory and
// written once each, so a rebuild costs about one row write per request and
// per run however many events they have.
type History struct{}

// NewHistory returns the history view.
func NewHistory() *History { return &History{} }

// Name implements Projection.
func (*History) Name() string { return "history" }

// Types implements Projection.
func (*History) Types() []string {
	return []string{
		"RequestReceived", "IdentityResolved", "IdentityUnknown", "PipelineParsed", "PipelineRejected",
		"RequestDenied", "StageStarted", "RequestCompleted", "RequestFailed", "ApprovalRequested", "QuotaWaiting",
		"RunRequested", "ContainerCreated", "ContainerStarted", "OutputTruncated", "ContainerStopped",
		"RunSucceeded", "RunFailed", "RunTimedOut", "RunCancelled", "RunLost",
	}
}

// Tables implements Projection.
func (*History) Tables() []string {
	return []string{"view_history_requests", "view_history_request_commands", "view_history_runs", "view_history_request_hours", "view_history_run_hours"}
}

// Open implements Projection: the view keeps nothing in memory.
func (*History) Open(context.Context, Env, int64) error { return nil }

// Committed implements Projection.
func (*History) Committed(int64) {}

// RequestRow is one request in the history view.
type RequestRow struct {
	RequestID  string        `json:"request_id"`
	Position   int64         `json:"position"`
	Adapter    string        `json:"adapter"`
	MessageID  string        `json:"message_id"`
	Room       string        `json:"room"`
	ChatUser   string        `json:"chat_user"`
	Text       string        `json:"text"`
	Thread     string        `json:"thread,omitempty"`
	UserID     string        `json:"user_id,omitempty"`
	Username   string        `json:"username,omitempty"`
	Commands   string        `json:"commands,omitempty"` // space-separated, in stage order
	Status     string        `json:"status"`
	Reason     string        `json:"reason,omitempty"`
	Runs       int64         `json:"runs"`
	ReceivedAt sql.NullInt64 `json:"-"`
	EndedAt    sql.NullInt64 `json:"-"`
	DurationMS sql.NullInt64 `json:"-"`
}

const requestCols = "request_id, position, adapter, message_id, room, chat_user, text, thread, user_id, username, commands, status, reason, runs, received_at, ended_at, duration_ms"

func (r *RequestRow) scanTargets() []any {
	return []any{&r.RequestID, &r.Position, &r.Adapter, &r.MessageID, &r.Room, &r.ChatUser, &r.Text, &r.Thread, &r.UserID, &r.Username,
		&r.Commands, &r.Status, &r.Reason, &r.Runs, &r.ReceivedAt, &r.EndedAt, &r.DurationMS}
}

func (r *RequestRow) values() []any {
	return []any{r.RequestID, r.Position, r.Adapter, r.MessageID, r.Room, r.ChatUser, r.Text, r.Thread, r.UserID, r.Username,
		r.Commands, r.Status, r.Reason, r.Runs, r.ReceivedAt, r.EndedAt, r.DurationMS}
}

// RunRow is one run in the history view. User, adapter and room are the
// request's, copied when the run was requested, so runs filter without a
// join.
type RunRow struct {
	RunID       string        `json:"run_id"`
	Position    int64         `json:"position"`
	RequestID   string        `json:"request_id"`
	Stage       int64         `json:"stage"`
	Bundle      string        `json:"bundle"`
	Version     string        `json:"version"`
	Command     string        `json:"command"` // bundle:command
	Image       string        `json:"image"`
	ImageDigest string        `json:"image_digest,omitempty"`
	ContainerID string        `json:"container_id,omitempty"`
	Status      string        `json:"status"`
	Reason      string        `json:"reason,omitempty"`
	ExitCode    sql.NullInt64 `json:"-"`
	OOMKilled   bool          `json:"oom_killed,omitempty"`
	Signal      string        `json:"signal,omitempty"`
	UserID      string        `json:"user_id,omitempty"`
	Username    string        `json:"username,omitempty"`
	Adapter     string        `json:"adapter,omitempty"`
	Room        string        `json:"room,omitempty"`
	Truncated   bool          `json:"truncated,omitempty"`
	RequestedAt sql.NullInt64 `json:"-"`
	StartedAt   sql.NullInt64 `json:"-"`
	EndedAt     sql.NullInt64 `json:"-"`
	DurationMS  sql.NullInt64 `json:"-"`
}

const runCols = "run_id, position, request_id, stage, bundle, version, command, image, image_digest, container_id, status, reason, exit_code, oom_killed, signal, user_id, username, adapter, room, truncated, requested_at, started_at, ended_at, duration_ms"

func (r *RunRow) scanTargets() []any {
	return []any{&r.RunID, &r.Position, &r.RequestID, &r.Stage, &r.Bundle, &r.Version, &r.Command, &r.Image, &r.ImageDigest, &r.ContainerID,
		&r.Status, &r.Reason, &r.ExitCode, &r.OOMKilled, &r.Signal, &r.UserID, &r.Username, &r.Adapter, &r.Room, &r.Truncated,
		&r.RequestedAt, &r.StartedAt, &r.EndedAt, &r.DurationMS}
}

func (r *RunRow) values() []any {
	return []any{r.RunID, r.Position, r.RequestID, r.Stage, r.Bundle, r.Version, r.Command, r.Image, r.ImageDigest, r.ContainerID,
		r.Status, r.Reason, r.ExitCode, r.OOMKilled, r.Signal, r.UserID, r.Username, r.Adapter, r.Room, r.Truncated,
		r.RequestedAt, r.StartedAt, r.EndedAt, r.DurationMS}
}

// historyBatch is one batch's working set: every row the batch touches,
// loaded once and written once.
type historyBatch struct {
	requests      map[string]*RequestRow
	runs          map[string]*RunRow
	requestOrder  []string // touched rows, in first-touch order
	runOrder      []string
	touched       map[string]bool // "q"+request id, "r"+run id
	commands      [][]any         // request_commands rows to upsert
	commandsTrims [][2]any        // (request_id, first stage to delete)
	// stored holds the hourly roll-up keys of the rows as the view held
	// them before the batch, to count them out (history_hours.go).
	stored hourKeys
}

// Apply implements Projection.
func (*History) Apply(ctx context.Context, tx *Tx, batch Batch) error {
	hb := &historyBatch{requests: map[string]*RequestRow{}, runs: map[string]*RunRow{}, touched: map[string]bool{}, stored: newHourKeys()}
	if err := hb.prefetch(ctx, tx, batch.Events); err != nil {
		return err
	}
	for _, e := range batch.Events {
		if err := hb.fold(e); err != nil {
			return &EventError{Position: e.Position, Type: e.Type, Err: err}
		}
	}
	return hb.write(ctx, tx)
}

// prefetch loads the stored rows of every request and run the batch names,
// in a few statements, so folding never waits on the database.
func (hb *historyBatch) prefetch(ctx context.Context, tx *Tx, events []Event) error {
	requestIDs, runIDs := map[string]bool{}, map[string]bool{}
	fresh := freshStreams(events)
	for _, e := range events {
		if fresh[e.Stream] {
			continue
		}
		switch {
		case strings.HasPrefix(e.Stream, dispatch.StreamPrefix):
			requestIDs[strings.TrimPrefix(e.Stream, dispatch.StreamPrefix)] = true
		case strings.HasPrefix(e.Stream, run.StreamPrefix):
			runIDs[strings.TrimPrefix(e.Stream, run.StreamPrefix)] = true
		}
	}
	for _, e := range events {
		if rr, ok := e.Payload.(run.RunRequested); ok && rr.RequestID != "" && !fresh[dispatch.Stream(rr.RequestID)] {
			requestIDs[rr.RequestID] = true
		}
	}
	err := inChunks(tx.db, keysOf(requestIDs), func(args []any, in string) error {
		rows, err := tx.Query(ctx, "SELECT "+requestCols+" FROM view_history_requests WHERE request_id IN ("+in+")", args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r := &RequestRow{}
			if err := rows.Scan(r.scanTargets()...); err != nil {
				return err
			}
			hb.requests[r.RequestID] = r
			hb.stored.requests[r.RequestID] = requestHourKey(r)
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("load requests: %w", err)
	}
	err = inChunks(tx.db, keysOf(runIDs), func(args []any, in string) error {
		rows, err := tx.Query(ctx, "SELECT "+runCols+" FROM view_history_runs WHERE run_id IN ("+in+")", args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r := &RunRow{}
			if err := rows.Scan(r.scanTargets()...); err != nil {
				return err
			}
			hb.runs[r.RunID] = r
			hb.stored.runs[r.RunID] = runHourKey(r)
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("load runs: %w", err)
	}
	return nil
}

// freshStreams are the streams whose first event (version 0) is among
// events. A view keys its rows by stream (a request's, a run's), so it
// holds nothing yet of a fresh stream and need not look. In a rebuild that
// is nearly every stream.
func freshStreams(events []Event) map[string]bool {
	fresh := map[string]bool{}
	for _, e := range events {
		if e.Version == 0 {
			fresh[e.Stream] = true
		}
	}
	return fresh
}

func keysOf(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// request returns the row of a request, creating it at position when the
// view has none, and marks it for writing.
func (hb *historyBatch) request(id string, position int64, touch bool) *RequestRow {
	r, ok := hb.requests[id]
	if !ok {
		if !touch {
			return nil
		}
		r = &RequestRow{RequestID: id, Position: position, Status: RequestReceived}
		hb.requests[id] = r
	}
	if touch && !hb.touched["q"+id] {
		hb.touched["q"+id] = true
		hb.requestOrder = append(hb.requestOrder, id)
	}
	return r
}

func (hb *historyBatch) run(id string, position int64) *RunRow {
	r, ok := hb.runs[id]
	if !ok {
		r = &RunRow{RunID: id, Position: position, Status: RunRequested}
		hb.runs[id] = r
	}
	if !hb.touched["r"+id] {
		hb.touched["r"+id] = true
		hb.runOrder = append(hb.runOrder, id)
	}
	return r
}

func (hb *historyBatch) fold(e Event) error {
	at := micros(e.RecordedAt)
	switch {
	case strings.HasPrefix(e.Stream, dispatch.StreamPrefix):
		r := hb.request(strings.TrimPrefix(e.Stream, dispatch.StreamPrefix), e.Position, true)
		end := func(status, reason string) {
			if requestTerminal(r.Status) {
				return
			}
			r.Status, r.Reason, r.EndedAt = status, reason, at
			if r.ReceivedAt.Valid {
				r.DurationMS = sql.NullInt64{Int64: (at.Int64 - r.ReceivedAt.Int64) / 1000, Valid: true}
			}
		}
		switch p := e.Payload.(type) {
		case dispatch.RequestReceived:
			r.Adapter, r.MessageID, r.Room, r.ChatUser, r.Text, r.Thread = p.Adapter, p.MessageID, p.Room, p.ChatUser, p.Text, p.Thread
			r.ReceivedAt = at
		case dispatch.IdentityResolved:
			r.UserID, r.Username = p.User, p.Username
			// The command rows carry the user, for "one user's requests
			// with one command"; a request parsed before it was resolved
			// writes them again.
			for i, c := range strings.Fields(r.Commands) {
				hb.commands = append(hb.commands, []any{r.RequestID, int64(i), c, r.Position, r.UserID, r.Username})
			}
		case dispatch.IdentityUnknown:
			end(RequestUnknownUser, fmt.Sprintf("no user is linked to %s handle %s", p.Adapter, p.ChatUser))
		case dispatch.PipelineParsed:
			commands, err := stageCommands(p.Stages)
			if err != nil {
				return err
			}
			before := 0
			if r.Commands != "" {
				before = len(strings.Fields(r.Commands))
			}
			r.Commands = strings.Join(commands, " ")
			for i, c := range commands {
				hb.commands = append(hb.commands, []any{r.RequestID, int64(i), c, r.Position, r.UserID, r.Username})
			}
			if len(commands) < before {
				hb.commandsTrims = append(hb.commandsTrims, [2]any{r.RequestID, int64(len(commands))})
			}
		case dispatch.PipelineRejected:
			end(RequestRejected, p.Error)
		case dispatch.RequestDenied:
			end(RequestDenied, p.Reason)
		case dispatch.ApprovalRequested:
			if !requestTerminal(r.Status) && r.Status != RequestRunning {
				r.Status = RequestAwaitingApproval
			}
		case dispatch.QuotaWaiting:
			if !requestTerminal(r.Status) && r.Status != RequestRunning {
				r.Status = RequestQueued
			}
		case dispatch.StageStarted:
			r.Runs++
			if !requestTerminal(r.Status) {
				r.Status = RequestRunning
			}
		case dispatch.RequestCompleted:
			end(RequestCompleted, "")
		case dispatch.RequestFailed:
			end(RequestFailed, p.Reason)
		}
	case strings.HasPrefix(e.Stream, run.StreamPrefix):
		r := hb.run(strings.TrimPrefix(e.Stream, run.StreamPrefix), e.Position)
		end := func(status, reason string) {
			if runTerminal(r.Status) {
				return
			}
			r.Status, r.Reason, r.EndedAt = status, reason, at
			if start := r.StartedAt; !r.DurationMS.Valid && start.Valid {
				r.DurationMS = sql.NullInt64{Int64: (at.Int64 - start.Int64) / 1000, Valid: true}
			}
		}
		switch p := e.Payload.(type) {
		case run.RunRequested:
			r.RequestID, r.Stage, r.Bundle, r.Version, r.Image = p.RequestID, int64(p.Stage), p.Bundle, p.Version, p.Image
			r.Command = runCommand(p)
			r.RequestedAt = at
			r.Room, r.Username = p.Invocation.Room, p.Invocation.Username
			if req := hb.request(p.RequestID, 0, false); req != nil {
				r.UserID, r.Adapter = req.UserID, req.Adapter
				if req.Username != "" {
					r.Username = req.Username
				}
				if req.Room != "" {
					r.Room = req.Room
				}
			}
		case run.ContainerCreated:
			r.ContainerID, r.ImageDigest = p.ContainerID, p.ImageDigest
			if p.Image != "" {
				r.Image = p.Image
			}
		case run.ContainerStarted:
			r.StartedAt = at
			if p.ContainerID != "" {
				r.ContainerID = p.ContainerID
			}
			if !runTerminal(r.Status) {
				r.Status = RunRunning
			}
		case run.ContainerStopped:
			r.ExitCode = sql.NullInt64{Int64: int64(p.ExitCode), Valid: true}
			r.OOMKilled, r.Signal = p.OOMKilled, p.Signal
			r.DurationMS = sql.NullInt64{Int64: p.DurationMS, Valid: true}
		case run.OutputTruncated:
			r.Truncated = true
		case run.RunSucceeded:
			end(RunSucceeded, "")
		case run.RunFailed:
			end(RunFailed, p.Reason)
		case run.RunTimedOut:
			end(RunTimedOut, fmt.Sprintf("timed out after %d ms", p.TimeoutMS))
		case run.RunCancelled:
			end(RunCancelled, p.Reason)
		case run.RunLost:
			end(RunLost, p.Reason)
		}
	}
	return nil
}

// runCommand is how the views name a run's command: bundle:command, or
// the command alone for a run of no bundle.
func runCommand(p run.RunRequested) string {
	if p.Bundle == "" {
		return p.Command
	}
	return p.Bundle + ":" + p.Command
}

// stageCommands reads the command names from PipelineParsed's stages,
// bundle-qualified when the parse resolved the bundle.
func stageCommands(stages json.RawMessage) ([]string, error) {
	if len(stages) == 0 || string(stages) == "null" {
		return nil, nil
	}
	var parsed []struct {
		Command string `json:"command"`
		Bundle  string `json:"bundle"`
		Name    string `json:"name"`
	}
	if err := json.Unmarshal(stages, &parsed); err != nil {
		return nil, fmt.Errorf("stages are not a list of pipeline stages: %w", err)
	}
	out := make([]string, len(parsed))
	for i, s := range parsed {
		switch {
		case s.Bundle != "" && s.Name != "":
			out[i] = s.Bundle + ":" + s.Name
		case s.Command != "":
			out[i] = s.Command
		default:
			out[i] = s.Name
		}
		// Commands are stored space-separated; a name never has spaces,
		// but a hostile event must not split into two.
		out[i] = strings.ReplaceAll(out[i], " ", "_")
	}
	return out, nil
}

func (hb *historyBatch) write(ctx context.Context, tx *Tx) error {
	requests := make([][]any, 0, len(hb.requestOrder))
	for _, id := range hb.requestOrder {
		requests = append(requests, hb.requests[id].values())
	}
	if err := tx.upsert(ctx, "view_history_requests", strings.Split(requestCols, ", "), 1, requests); err != nil {
		return err
	}
	runs := make([][]any, 0, len(hb.runOrder))
	for _, id := range hb.runOrder {
		runs = append(runs, hb.runs[id].values())
	}
	if err := tx.upsert(ctx, "view_history_runs", strings.Split(runCols, ", "), 1, runs); err != nil {
		return err
	}
	if err := hb.writeHours(ctx, tx); err != nil {
		return err
	}
	for _, trim := range hb.commandsTrims {
		if err := tx.Exec(ctx, "DELETE FROM view_history_request_commands WHERE request_id = $1 AND stage >= $2", trim[0], trim[1]); err != nil {
			return err
		}
	}
	// A request parsed twice in one batch lists its stages twice: the last
	// parse wins.
	last := map[string]int{}
	for i, c := range hb.commands {
		last[fmt.Sprint(c[0], "\x00", c[1])] = i
	}
	// A stage past the last parse's stages (a request parsed twice in one
	// batch, the second time shorter) is not written: the trim above
	// deleted any stored one.
	stages := map[string]int64{}
	for _, id := range hb.requestOrder {
		stages[id] = int64(len(strings.Fields(hb.requests[id].Commands)))
	}
	commands := make([][]any, 0, len(last))
	for i, c := range hb.commands {
		if last[fmt.Sprint(c[0], "\x00", c[1])] == i && c[1].(int64) < stages[c[0].(string)] {
			commands = append(commands, c)
		}
	}
	return tx.upsert(ctx, "view_history_request_commands", []string{"request_id", "stage", "command", "position", "user_id", "username"}, 2, commands)
}
