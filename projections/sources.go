package projections

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/logbookhq/logbook/domain/schedule"
	"github.com/logbookhq/logbook/domain/trigger"
)

// Sources is the view of the requests' sources that are not people: one
// row per live trigger and per live schedule, for `trigger list`,
// `schedule list` and GET /v1/triggers and /v1/schedules. A deleted one
// leaves the view; its stream keeps its history.
type Sources struct{}

// NewSources returns the triggers and schedules view.
func NewSources() *Sources { return &Sources{} }

// Name implements Projection.
func (*Sources) Name() string { return "sources" }

// Types implements Projection.
func (*Sources) Types() []string {
	return []string{"TriggerCreated", "TriggerEnabled", "TriggerDisabled", "TriggerDeleted", "TriggerSecretSet", "TriggerTokenIssued",
		"ScheduleAdded", "SchedulePaused", "ScheduleResumed", "ScheduleDeleted", "ScheduleTickDecided", "ScheduleTicksSkipped", "ScheduleTickAbandoned"}
}

// Tables implements Projection.
func (*Sources) Tables() []string { return []string{"view_triggers", "view_schedules"} }

// Open implements Projection: nothing is kept in memory.
func (*Sources) Open(context.Context, Env, int64) error { return nil }

// Committed implements Projection.
func (*Sources) Committed(int64) {}

// TriggerRow is one trigger. Its token and secret are never here: only
// whether it has a token, and its secret's version.
type TriggerRow struct {
	Name            string        `json:"name"`
	Pipeline        string        `json:"pipeline"`
	RunAs           string        `json:"run_as"`
	Provider        string        `json:"provider,omitempty"`
	TimeoutMS       int64         `json:"timeout_ms"`
	RequireHMAC     bool          `json:"require_hmac"`
	SignatureHeader string        `json:"signature_header,omitempty"`
	HasToken        bool          `json:"has_token"`
	SecretVersion   int64         `json:"secret_version"`
	Enabled         bool          `json:"enabled"`
	CreatedBy       string        `json:"created_by"`
	CreatedAt       sql.NullInt64 `json:"-"`
	Position        int64         `json:"position"`
}

var triggerCols = []string{"name", "pipeline", "run_as", "provider", "timeout_ms", "require_hmac", "signature_header", "has_token", "secret_version", "enabled", "created_by", "created_at", "position"}

func (r *TriggerRow) scanTargets() []any {
	return []any{&r.Name, &r.Pipeline, &r.RunAs, &r.Provider, &r.TimeoutMS, &r.RequireHMAC, &r.SignatureHeader, &r.HasToken, &r.SecretVersion, &r.Enabled, &r.CreatedBy, &r.CreatedAt, &r.Position}
}

func (r *TriggerRow) values() []any {
	return []any{r.Name, r.Pipeline, r.RunAs, r.Provider, r.TimeoutMS, boolInt(r.RequireHMAC), r.SignatureHeader, boolInt(r.HasToken), r.SecretVersion, boolInt(r.Enabled), r.CreatedBy, r.CreatedAt, r.Position}
}

// ScheduleRow is one schedule.
type ScheduleRow struct {
	Name        string        `json:"name"`
	ID          string        `json:"id"`
	Spec        string        `json:"spec"`
	TZ          string        `json:"tz,omitempty"`
	Pipeline    string        `json:"pipeline"`
	Owner       string        `json:"owner"`
	Provider    string        `json:"provider,omitempty"`
	Room        string        `json:"room,omitempty"`
	Missed      string        `json:"missed"`
	Paused      bool          `json:"paused"`
	LastTick    sql.NullInt64 `json:"-"`
	LastOutcome string        `json:"last_outcome,omitempty"`
	LastRequest string        `json:"last_request,omitempty"`
	CreatedBy   string        `json:"created_by"`
	CreatedAt   sql.NullInt64 `json:"-"`
	Position    int64         `json:"position"`
}

var scheduleCols = []string{"name", "id", "spec", "tz", "pipeline", "owner", "provider", "room", "missed", "paused", "last_tick", "last_outcome", "last_request", "created_by", "created_at", "position"}

func (r *ScheduleRow) scanTargets() []any {
	return []any{&r.Name, &r.ID, &r.Spec, &r.TZ, &r.Pipeline, &r.Owner, &r.Provider, &r.Room, &r.Missed, &r.Paused, &r.LastTick, &r.LastOutcome, &r.LastRequest, &r.CreatedBy, &r.CreatedAt, &r.Position}
}

func (r *ScheduleRow) values() []any {
	return []any{r.Name, r.ID, r.Spec, r.TZ, r.Pipeline, r.Owner, r.Provider, r.Room, r.Missed, boolInt(r.Paused), r.LastTick, r.LastOutcome, r.LastRequest, r.CreatedBy, r.CreatedAt, r.Position}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Apply implements Projection: the rows the batch touches are loaded,
// folded in memory, then written once (or deleted).
func (*Sources) Apply(ctx context.Context, tx *Tx, batch Batch) error {
	triggers := map[string]*TriggerRow{}
	schedules := map[string]*ScheduleRow{}
	var triggerNames, scheduleNames []string
	for _, e := range batch.Events {
		switch {
		case strings.HasPrefix(e.Stream, trigger.StreamPrefix):
			if name := strings.TrimPrefix(e.Stream, trigger.StreamPrefix); !slices.Contains(triggerNames, name) {
				triggerNames = append(triggerNames, name)
			}
		case strings.HasPrefix(e.Stream, schedule.StreamPrefix):
			if name := strings.TrimPrefix(e.Stream, schedule.StreamPrefix); !slices.Contains(scheduleNames, name) {
				scheduleNames = append(scheduleNames, name)
			}
		}
	}
	if err := loadRows(ctx, tx, "view_triggers", triggerCols, triggerNames, func(q *sql.Rows) error {
		r := &TriggerRow{}
		err := q.Scan(r.scanTargets()...)
		triggers[r.Name] = r
		return err
	}); err != nil {
		return err
	}
	if err := loadRows(ctx, tx, "view_schedules", scheduleCols, scheduleNames, func(q *sql.Rows) error {
		r := &ScheduleRow{}
		err := q.Scan(r.scanTargets()...)
		schedules[r.Name] = r
		return err
	}); err != nil {
		return err
	}
	for _, e := range batch.Events {
		at := micros(e.RecordedAt)
		tname := strings.TrimPrefix(e.Stream, trigger.StreamPrefix)
		sname := strings.TrimPrefix(e.Stream, schedule.StreamPrefix)
		t, s := triggers[tname], schedules[sname]
		switch p := e.Payload.(type) {
		case trigger.Created:
			triggers[tname] = &TriggerRow{Name: p.Name, Pipeline: p.Pipeline, RunAs: p.As, Provider: p.Provider, TimeoutMS: p.TimeoutMS,
				RequireHMAC: p.RequireHMAC, SignatureHeader: p.SignatureHeader, HasToken: p.TokenSHA256 != "", Enabled: true,
				CreatedBy: p.By, CreatedAt: at, Position: e.Position}
		case trigger.Enabled:
			if t != nil {
				t.Enabled = true
			}
		case trigger.Disabled:
			if t != nil {
				t.Enabled = false
			}
		case trigger.SecretSet:
			if t != nil {
				t.SecretVersion = int64(p.Version)
			}
		case trigger.TokenIssued:
			if t != nil {
				t.HasToken = true
			}
		case trigger.Deleted:
			triggers[tname] = nil
		case schedule.Added:
			schedules[sname] = &ScheduleRow{Name: p.Name, ID: p.ID, Spec: p.Spec, TZ: p.TZ, Pipeline: p.Pipeline, Owner: p.Owner,
				Provider: p.Provider, Room: p.Room, Missed: p.Missed, CreatedBy: p.By, CreatedAt: at, Position: e.Position}
		case schedule.Paused:
			if s != nil {
				s.Paused = true
			}
		case schedule.Resumed:
			if s != nil {
				s.Paused = false
			}
		case schedule.TickDecided:
			if s != nil {
				s.LastTick, s.LastRequest, s.LastOutcome = micros(p.Scheduled), p.RequestID, "decided"
				if p.Late {
					s.LastOutcome = fmt.Sprintf("ran late (for %d missed)", p.Missed+1)
				}
			}
		case schedule.TicksSkipped:
			if s != nil {
				s.LastTick, s.LastRequest, s.LastOutcome = micros(p.Last), "", fmt.Sprintf("skipped %d missed", p.Count)
			}
		case schedule.TickAbandoned:
			if s != nil {
				s.LastTick, s.LastRequest, s.LastOutcome = micros(p.Scheduled), p.RequestID, "abandoned"
			}
		case schedule.Deleted:
			schedules[sname] = nil
		}
	}
	if err := writeRows(ctx, tx, "view_triggers", triggerCols, triggerNames, func(name string) []any {
		if r := triggers[name]; r != nil {
			return r.values()
		}
		return nil
	}); err != nil {
		return err
	}
	return writeRows(ctx, tx, "view_schedules", scheduleCols, scheduleNames, func(name string) []any {
		if r := schedules[name]; r != nil {
			return r.values()
		}
		return nil
	})
}

// loadRows reads the rows of table whose name is among names.
func loadRows(ctx context.Context, tx *Tx, table string, cols []string, names []string, scan func(*sql.Rows) error) error {
	return inChunks(tx.db, names, func(args []any, in string) error {
		q, err := tx.Query(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+table+" WHERE name IN ("+in+")", args...)
		if err != nil {
			return fmt.Errorf("load %s: %w", table, err)
		}
		defer q.Close()
		for q.Next() {
			if err := scan(q); err != nil {
				return err
			}
		}
		return q.Err()
	})
}

// writeRows upserts each named row that lives, and deletes the others.
func writeRows(ctx context.Context, tx *Tx, table string, cols []string, names []string, row func(string) []any) error {
	var live [][]any
	for _, name := range names {
		values := row(name)
		if values == nil {
			if err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE name = $1", name); err != nil {
				return fmt.Errorf("delete from %s: %w", table, err)
			}
			continue
		}
		live = append(live, values)
	}
	return tx.upsert(ctx, table, cols, 1, live)
}

// SourcesReader lists triggers and schedules from the view.
type SourcesReader struct{ db DB }

// NewSourcesReader reads the triggers and schedules view in db.
func NewSourcesReader(db DB) *SourcesReader { return &SourcesReader{db: db} }

// Triggers lists every trigger by name.
func (sr *SourcesReader) Triggers(ctx context.Context) ([]TriggerRow, error) {
	q, err := sr.db.query(ctx, "SELECT "+strings.Join(triggerCols, ", ")+" FROM view_triggers ORDER BY name")
	if err != nil {
		return nil, err
	}
	defer q.Close()
	out := []TriggerRow{}
	for q.Next() {
		var r TriggerRow
		if err := q.Scan(r.scanTargets()...); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, q.Err()
}

// Schedules lists every schedule by name; owner, when set, keeps only
// that user's.
func (sr *SourcesReader) Schedules(ctx context.Context, owner string) ([]ScheduleRow, error) {
	query, args := "SELECT "+strings.Join(scheduleCols, ", ")+" FROM view_schedules", []any{}
	if owner != "" {
		query += " WHERE owner = $1"
		args = append(args, owner)
	}
	q, err := sr.db.query(ctx, query+" ORDER BY name", args...)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	out := []ScheduleRow{}
	for q.Next() {
		var r ScheduleRow
		if err := q.Scan(r.scanTargets()...); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, q.Err()
}
