package webui

import (
	"context"
	"database/sql"
	"slices"

	"github.com/logbookhq/logbook/domain/access"
)

// Directory lists who exists and what they hold, from the permission view.
type Directory interface {
	Users(ctx context.Context) ([]UserEntry, error)
	Groups(ctx context.Context) ([]GroupEntry, error)
	Roles(ctx context.Context) ([]RoleEntry, error)
}

// UserEntry is one user with everything the permission pages show.
type UserEntry struct {
	ID, Username, Email string
	Disabled            bool
	Handles             []access.ChatHandle // by provider
	Groups              []string            // sorted
	Roles               []string            // through their groups, sorted
	Permissions         []string            // effective, sorted
}

// GroupEntry is one group: its members' usernames and its roles.
type GroupEntry struct {
	Name    string
	Members []string
	Roles   []string
}

// RoleEntry is one role: the permissions granted to it and the groups
// holding it.
type RoleEntry struct {
	Name        string
	Permissions []string
	Groups      []string
}

// SQLDirectory reads the permission view's tables (view_access_*), which
// projections.Permissions keeps, in either database.
type SQLDirectory struct {
	DB *sql.DB
}

// rows runs a query without parameters, so one text serves both dialects.
func (d SQLDirectory) rows(ctx context.Context, query string, scan func(*sql.Rows) error) error {
	rows, err := d.DB.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// pairs reads a two-column table into key → sorted values.
func (d SQLDirectory) pairs(ctx context.Context, query string) (map[string][]string, error) {
	out := map[string][]string{}
	err := d.rows(ctx, query, func(rows *sql.Rows) error {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		out[k] = append(out[k], v)
		return nil
	})
	for k := range out {
		slices.Sort(out[k])
	}
	return out, err
}

// Users implements Directory, sorted by username.
func (d SQLDirectory) Users(ctx context.Context) ([]UserEntry, error) {
	var users []UserEntry
	err := d.rows(ctx, "SELECT user_id, username, email, disabled FROM view_access_users ORDER BY username, user_id", func(rows *sql.Rows) error {
		var u UserEntry
		if err := rows.Scan(&u.ID, &u.Username, &u.Email, &u.Disabled); err != nil {
			return err
		}
		users = append(users, u)
		return nil
	})
	if err != nil {
		return nil, err
	}
	handles := map[string][]access.ChatHandle{}
	err = d.rows(ctx, "SELECT user_id, provider, handle FROM view_access_handles ORDER BY user_id, provider", func(rows *sql.Rows) error {
		var id string
		var h access.ChatHandle
		if err := rows.Scan(&id, &h.Provider, &h.Handle); err != nil {
			return err
		}
		handles[id] = append(handles[id], h)
		return nil
	})
	if err != nil {
		return nil, err
	}
	groups, err := d.pairs(ctx, "SELECT user_id, group_name FROM view_access_members")
	if err != nil {
		return nil, err
	}
	roles, err := d.pairs(ctx, `SELECT DISTINCT m.user_id, gr.role FROM view_access_members m
		JOIN view_access_group_roles gr ON gr.group_name = m.group_name`)
	if err != nil {
		return nil, err
	}
	perms, err := d.pairs(ctx, "SELECT user_id, permission FROM view_access_user_permissions")
	if err != nil {
		return nil, err
	}
	for i := range users {
		u := &users[i]
		u.Handles, u.Groups, u.Roles, u.Permissions = handles[u.ID], groups[u.ID], roles[u.ID], perms[u.ID]
	}
	return users, nil
}

// Groups implements Directory, sorted by name; members by username.
func (d SQLDirectory) Groups(ctx context.Context) ([]GroupEntry, error) {
	var groups []GroupEntry
	err := d.rows(ctx, "SELECT group_name FROM view_access_groups ORDER BY group_name", func(rows *sql.Rows) error {
		var g GroupEntry
		if err := rows.Scan(&g.Name); err != nil {
			return err
		}
		groups = append(groups, g)
		return nil
	})
	if err != nil {
		return nil, err
	}
	members, err := d.pairs(ctx, `SELECT m.group_name, COALESCE(u.username, m.user_id) FROM view_access_members m
		LEFT JOIN view_access_users u ON u.user_id = m.user_id`)
	if err != nil {
		return nil, err
	}
	roles, err := d.pairs(ctx, "SELECT group_name, role FROM view_access_group_roles")
	if err != nil {
		return nil, err
	}
	for i := range groups {
		groups[i].Members, groups[i].Roles = members[groups[i].Name], roles[groups[i].Name]
	}
	return groups, nil
}

// Roles implements Directory, sorted by name.
func (d SQLDirectory) Roles(ctx context.Context) ([]RoleEntry, error) {
	var roles []RoleEntry
	err := d.rows(ctx, "SELECT role FROM view_access_roles ORDER BY role", func(rows *sql.Rows) error {
		var r RoleEntry
		if err := rows.Scan(&r.Name); err != nil {
			return err
		}
		roles = append(roles, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	perms, err := d.pairs(ctx, "SELECT role, permission FROM view_access_role_permissions")
	if err != nil {
		return nil, err
	}
	groups, err := d.pairs(ctx, "SELECT role, group_name FROM view_access_group_roles")
	if err != nil {
		return nil, err
	}
	for i := range roles {
		roles[i].Permissions, roles[i].Groups = perms[roles[i].Name], groups[roles[i].Name]
	}
	return roles, nil
}
