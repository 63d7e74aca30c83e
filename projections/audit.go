package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/logbookhq/logbook/domain"
)

// AuditCategories group the administrative event types the audit view
// keeps, as the audit page filters them.
var AuditCategories = []AuditCategory{
	{Name: "logins", Types: []string{"SessionStarted", "SessionEnded"}},
	{Name: "grants", Types: []string{"RoleGranted", "RoleRevoked", "PermissionGranted", "PermissionRevoked", "MemberAdded", "MemberRemoved", "GroupCreated", "RoleCreated", "SitePermissionCreated"}},
	{Name: "tokens", Types: []string{"TokenIssued", "TokenRevoked"}},
	{Name: "users", Types: []string{"UserCreated", "UserDisabled", "UserEnabled", "ChatHandleLinked", "ChatHandleUnlinked", "UserRegistered"}},
	{Name: "bundles", Types: []string{"BundleInstalled", "BundleUninstalled", "BundleEnabled", "BundleDisabled", "RuleAdded", "RuleRemoved"}},
	{Name: "configuration", Types: []string{"ConfigSet", "ConfigUnset", "SecretSet", "SecretUnset", "SecretKeyRotated", "AliasCreated", "AliasDeleted"}},
	{Name: "verifications", Types: []string{"ChainVerified"}},
}

// AuditCategory is a named group of event types.
type AuditCategory struct {
	Name  string
	Types []string
}

// Audit is the audit view: one row per administrative event (logins,
// grants, tokens, users, bundles, configuration, chain verifications),
// with who did it, for the audit page's filterable stream. The actor is
// the event's metadata, which the feed does not read, so each batch reads
// it for its events by position (administrative events are few).
type Audit struct{}

// NewAudit returns the audit view.
func NewAudit() *Audit { return &Audit{} }

// Name implements Projection.
func (*Audit) Name() string { return "audit" }

// Types implements Projection.
func (*Audit) Types() []string {
	var out []string
	for _, c := range AuditCategories {
		out = append(out, c.Types...)
	}
	return out
}

// Tables implements Projection.
func (*Audit) Tables() []string { return []string{"view_audit_events"} }

// Open implements Projection: the view keeps nothing in memory.
func (*Audit) Open(context.Context, Env, int64) error { return nil }

// Committed implements Projection.
func (*Audit) Committed(int64) {}

// AuditRow is one administrative event.
type AuditRow struct {
	Position int64  `json:"position"`
	Type     string `json:"type"`
	Stream   string `json:"stream"`
	Actor    string `json:"actor"`
	At       int64  `json:"-"` // unix microseconds
	// Summary is the event's plain fields as "name: value", never a
	// token's hash.
	Summary string `json:"summary"`
}

// Time is when the event was recorded.
func (r AuditRow) Time() time.Time { return timeOf(sql.NullInt64{Int64: r.At, Valid: true}) }

var auditCols = []string{"position", "type", "stream", "actor", "at", "summary"}

// Apply implements Projection.
func (*Audit) Apply(ctx context.Context, tx *Tx, batch Batch) error {
	if len(batch.Events) == 0 {
		return nil
	}
	positions := make([]int64, len(batch.Events))
	for i, e := range batch.Events {
		positions[i] = e.Position
	}
	actors := map[int64]string{}
	err := inChunks(tx.db, positions, func(args []any, in string) error {
		// The feed leaves the metadata out; it is read from the log, which
		// on SQLite is another file than the views the transaction sees.
		rows, err := tx.db.query(ctx, "SELECT position, metadata FROM events WHERE position IN ("+in+")", args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				position int64
				metadata []byte
			)
			if err := rows.Scan(&position, &metadata); err != nil {
				return err
			}
			var m domain.Metadata
			if len(metadata) > 0 && json.Unmarshal(metadata, &m) == nil {
				actors[position] = m.Actor
			}
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("read the actors: %w", err)
	}
	rows := make([][]any, 0, len(batch.Events))
	for _, e := range batch.Events {
		rows = append(rows, []any{e.Position, e.Type, e.Stream, actors[e.Position], e.RecordedAt.UnixMicro(), auditSummary(e.Data)})
	}
	return tx.upsert(ctx, "view_audit_events", auditCols, 1, rows)
}

// auditSummary lists an event's plain fields (text, numbers, booleans) in
// name order as "name: value", leaving out hashes (a token's) and lists
// and objects (a bundle's whole config), each value cut at 120 characters.
func auditSummary(data []byte) string {
	var fields map[string]any
	if json.Unmarshal(data, &fields) != nil {
		return ""
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	var parts []string
	for _, name := range names {
		if name == "hash" { // a token's
			continue
		}
		var value string
		switch v := fields[name].(type) {
		case string:
			value = v
		case float64:
			value = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			value = strconv.FormatBool(v)
		default:
			continue
		}
		if value == "" {
			continue
		}
		if r := []rune(value); len(r) > 120 {
			value = string(r[:120]) + "…"
		}
		parts = append(parts, name+": "+value)
	}
	return strings.Join(parts, ", ")
}

// AuditFilter selects audit events. Types, when not empty, keeps those
// types; From and To bound when they were recorded, [From, To).
type AuditFilter struct {
	Types    []string
	Actor    string
	From, To time.Time
	Limit    int
	Cursor   string // from a previous page's Next
}

// AuditPage is a page of audit events, newest first.
type AuditPage struct {
	Events []AuditRow
	Next   string
}

// AuditReader reads the audit view.
type AuditReader struct{ db DB }

// NewAuditReader reads the audit view in db.
func NewAuditReader(db DB) *AuditReader { return &AuditReader{db: db} }

// Events reads a page of audit events, newest first, keyset-paged by
// position.
func (a *AuditReader) Events(ctx context.Context, f AuditFilter) (AuditPage, error) {
	limit := f.Limit
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if len(f.Types) > 0 {
		marks := make([]string, len(f.Types))
		for i, t := range f.Types {
			marks[i] = arg(t)
		}
		where = append(where, "type IN ("+strings.Join(marks, ", ")+")")
	}
	if f.Actor != "" {
		where = append(where, "actor = "+arg(f.Actor))
	}
	if !f.From.IsZero() {
		where = append(where, "at >= "+arg(f.From.UnixMicro()))
	}
	if !f.To.IsZero() {
		where = append(where, "at < "+arg(f.To.UnixMicro()))
	}
	if f.Cursor != "" {
		before, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || before < 1 {
			return AuditPage{}, ErrBadCursor
		}
		where = append(where, "position < "+arg(before))
	}
	q := "SELECT " + strings.Join(auditCols, ", ") + " FROM view_audit_events"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY position DESC LIMIT " + arg(limit+1)
	rows, err := a.db.query(ctx, q, args...)
	if err != nil {
		return AuditPage{}, err
	}
	defer rows.Close()
	var page AuditPage
	for rows.Next() {
		var r AuditRow
		if err := rows.Scan(&r.Position, &r.Type, &r.Stream, &r.Actor, &r.At, &r.Summary); err != nil {
			return AuditPage{}, err
		}
		page.Events = append(page.Events, r)
	}
	if err := rows.Err(); err != nil {
		return AuditPage{}, err
	}
	if len(page.Events) > limit {
		page.Events = page.Events[:limit]
		page.Next = strconv.FormatInt(page.Events[limit-1].Position, 10)
	}
	return page, nil
}
