package projections

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// Permissions is the permission view: users, handles, groups, members,
// roles, grants, existing permissions and each user's effective
// permissions as tables (for the API and `logbook access`), and the same
// state in memory as an Access model (for the dispatcher).
//
// The tables are a pure function of the directory: after each batch that
// holds access events the view derives every row from its directory and
// writes only the difference from the rows it wrote before.
type Permissions struct {
	dir     *access.Directory // folded inside the view's transactions
	rows    accessRows        // what the tables hold
	pending struct {
		rows   accessRows
		events []Event
	}
	model *Access // advanced only after commits; never goes back
	// resync makes the next Apply write every row, not only the
	// difference: rows derived from code rather than events (the builtin
	// bundle's permissions) may be missing from tables an older build wrote.
	resync bool
}

// NewPermissions returns the permission view.
func NewPermissions() *Permissions {
	return &Permissions{dir: dispatch.NewDirectory(), rows: accessRows{}, model: NewAccess()}
}

// Access is the view's in-memory model. It only moves forward: a rebuild of
// the tables leaves it as it is.
func (p *Permissions) Access() *Access { return p.model }

// Name implements Projection.
func (*Permissions) Name() string { return "permissions" }

// Types implements Projection.
func (*Permissions) Types() []string { return AccessTypes() }

// accessTable is one permission table: its columns, the first keys of
// which are its primary key.
type accessTable struct {
	name string
	cols []string
	keys int
}

var accessTables = []accessTable{
	{"view_access_users", []string{"user_id", "username", "email", "disabled"}, 1},
	{"view_access_handles", []string{"user_id", "provider", "handle"}, 2},
	{"view_access_groups", []string{"group_name"}, 1},
	{"view_access_members", []string{"group_name", "user_id"}, 2},
	{"view_access_roles", []string{"role"}, 1},
	{"view_access_group_roles", []string{"group_name", "role"}, 2},
	{"view_access_role_permissions", []string{"role", "permission"}, 2},
	{"view_access_permissions", []string{"permission", "namespace"}, 1},
	{"view_access_user_permissions", []string{"user_id", "permission"}, 2},
}

// Tables implements Projection.
func (*Permissions) Tables() []string {
	out := make([]string, len(accessTables))
	for i, t := range accessTables {
		out[i] = t.name
	}
	return out
}

// Open implements Projection: it folds the log's access events up to the
// checkpoint into the view's directory (and into the model too, when the
// model is behind, as it is when the process starts).
func (p *Permissions) Open(ctx context.Context, env Env, checkpoint int64) error {
	// Two directories rather than one shared: the model is read by others
	// while the view's directory runs ahead inside transactions.
	dir, modelDir := dispatch.NewDirectory(), dispatch.NewDirectory()
	dirs := []*access.Directory{dir}
	modelBehind := p.model.Position() < checkpoint
	if modelBehind {
		dirs = append(dirs, modelDir)
	}
	if err := foldLog(ctx, env.Store, checkpoint, dirs...); err != nil {
		return err
	}
	p.dir, p.rows, p.resync = dir, materializeAccess(dir), true
	if modelBehind {
		p.model.replace(modelDir, checkpoint)
	}
	return nil
}

// Apply implements Projection.
func (p *Permissions) Apply(ctx context.Context, tx *Tx, batch Batch) error {
	p.pending.events, p.pending.rows = batch.Events, p.rows
	if len(batch.Events) == 0 && !p.resync {
		return nil
	}
	for _, e := range batch.Events {
		dispatch.FoldAccess(p.dir, e.Payload)
	}
	next := materializeAccess(p.dir)
	for i, t := range accessTables {
		old, now := p.rows[i], next[i]
		for key, row := range old {
			if _, ok := now[key]; ok {
				continue
			}
			where := make([]string, t.keys)
			for k := range t.keys {
				where[k] = fmt.Sprintf("%s = $%d", t.cols[k], k+1)
			}
			if err := tx.Exec(ctx, "DELETE FROM "+t.name+" WHERE "+strings.Join(where, " AND "), row[:t.keys]...); err != nil {
				return err
			}
		}
		var changed [][]any
		for _, key := range slices.Sorted(mapKeys(now)) {
			if prev, ok := old[key]; ok && slices.Equal(prev, now[key]) && !p.resync {
				continue
			}
			changed = append(changed, now[key])
		}
		if err := tx.upsert(ctx, t.name, t.cols, t.keys, changed); err != nil {
			return err
		}
	}
	p.pending.rows = next
	return nil
}

// Committed implements Projection: the model catches up with what was
// committed, skipping what it already holds (after a rebuild of the
// tables it is ahead).
func (p *Permissions) Committed(last int64) {
	p.rows, p.resync = p.pending.rows, false
	from := p.model.Position()
	p.model.mu.Lock()
	for _, e := range p.pending.events {
		if e.Position > from {
			dispatch.FoldAccess(p.model.dir, e.Payload)
		}
	}
	p.model.mu.Unlock()
	p.model.advance(last)
	p.pending.events = nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// accessRows holds, per accessTables entry, the rows by key.
type accessRows map[int]map[string][]any

func (r accessRows) add(table int, row ...any) {
	if r[table] == nil {
		r[table] = map[string][]any{}
	}
	keyParts := make([]string, accessTables[table].keys)
	for i := range keyParts {
		keyParts[i] = row[i].(string)
	}
	r[table][strings.Join(keyParts, "\x00")] = row
}

// materializeAccess derives every permission table row from a directory.
func materializeAccess(dir *access.Directory) accessRows {
	rows := accessRows{}
	for i := range accessTables {
		rows[i] = map[string][]any{}
	}
	for _, u := range dir.Users() {
		rows.add(0, u.ID, u.Username, u.Email, u.Disabled)
		for _, h := range u.Handles {
			rows.add(1, u.ID, h.Provider, h.Handle)
		}
		for _, perm := range dir.PermissionsOf(u.ID) {
			rows.add(8, u.ID, perm)
		}
	}
	for _, g := range dir.Groups() {
		rows.add(2, g)
		for _, member := range dir.GroupMembers(g) {
			rows.add(3, g, member)
		}
		for _, role := range dir.GroupRoles(g) {
			rows.add(5, g, role)
		}
	}
	for _, role := range dir.Roles() {
		rows.add(4, role)
		for _, perm := range dir.RolePermissions(role) {
			rows.add(6, role, perm)
		}
	}
	for _, perm := range dir.Permissions() {
		namespace, _, _ := strings.Cut(perm, ":")
		rows.add(7, perm, namespace)
	}
	return rows
}

// LoadAccess folds the log up to upTo into a fresh model: for a process
// that keeps its own Access next to its own feed.
func LoadAccess(ctx context.Context, store eventstore.Store, upTo int64) (*Access, error) {
	dir, err := LoadDirectory(ctx, store, upTo)
	if err != nil {
		return nil, err
	}
	a := NewAccess()
	a.replace(dir, upTo)
	return a, nil
}
