package projections

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// PermissionReader answers who is who and who may do what from the
// permission view's tables: for the API's and the web UI's permission
// pages, which read what was committed, not the dispatcher's live model.
type PermissionReader struct{ db DB }

// NewPermissionReader reads the permission view in db.
func NewPermissionReader(db DB) *PermissionReader { return &PermissionReader{db: db} }

// AccessUser is one user with their handles, groups, the roles those
// groups hold, and their effective permissions (none while disabled).
type AccessUser struct {
	ID          string         `json:"id"`
	Username    string         `json:"username"`
	Email       string         `json:"email,omitempty"`
	Disabled    bool           `json:"disabled"`
	Handles     []AccessHandle `json:"handles"`
	Groups      []string       `json:"groups"`
	Roles       []string       `json:"roles"`
	Permissions []string       `json:"permissions"`
}

// AccessHandle is a user's identity on one chat provider.
type AccessHandle struct {
	Provider string `json:"provider"`
	Handle   string `json:"handle"`
}

// AccessGroup is one group: its members by username, and its roles.
type AccessGroup struct {
	Name    string   `json:"name"`
	Members []string `json:"members"`
	Roles   []string `json:"roles"`
}

// AccessRole is one role: the permissions granted to it and the groups
// that hold it.
type AccessRole struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	Groups      []string `json:"groups"`
}

// AccessPermission is one permission: Declared when an installed bundle
// declares it or it is a site permission (a grant of one that is not
// declared gives nothing), and the roles granted it.
type AccessPermission struct {
	Permission string   `json:"permission"`
	Namespace  string   `json:"namespace"`
	Declared   bool     `json:"declared"`
	Roles      []string `json:"roles"`
}

// AccessSnapshot is the whole permission view at one moment, sorted by name.
type AccessSnapshot struct {
	Users       []AccessUser       `json:"users"`
	Groups      []AccessGroup      `json:"groups"`
	Roles       []AccessRole       `json:"roles"`
	Permissions []AccessPermission `json:"permissions"`
}

// Snapshot reads every permission table in one read-only transaction, so
// the answer is one consistent state of the view.
func (r *PermissionReader) Snapshot(ctx context.Context) (AccessSnapshot, error) {
	tx, err := r.db.Read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return AccessSnapshot{}, err
	}
	defer func() { _ = tx.Rollback() }()
	// strings3 reads rows of n (at most 3) text columns.
	strings3 := func(query string, n int) ([][3]string, error) {
		rows, err := tx.QueryContext(ctx, query)
		if err != nil {
			return nil, fmt.Errorf("reading the permission view: %w", err)
		}
		defer rows.Close()
		var out [][3]string
		for rows.Next() {
			var p [3]string
			targets := []any{&p[0], &p[1], &p[2]}
			if err := rows.Scan(targets[:n]...); err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		return out, rows.Err()
	}

	users := map[string]*AccessUser{} // by id
	rows, err := tx.QueryContext(ctx, "SELECT user_id, username, email, disabled FROM view_access_users")
	if err != nil {
		return AccessSnapshot{}, fmt.Errorf("reading the permission view: %w", err)
	}
	for rows.Next() {
		u := &AccessUser{Handles: []AccessHandle{}, Groups: []string{}, Roles: []string{}, Permissions: []string{}}
		if err := rows.Scan(&u.ID, &u.Username, &u.Email, &u.Disabled); err != nil {
			rows.Close()
			return AccessSnapshot{}, err
		}
		users[u.ID] = u
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return AccessSnapshot{}, err
	}
	groups := map[string]*AccessGroup{}
	roles := map[string]*AccessRole{}
	perms := map[string]*AccessPermission{}
	role := func(name string) *AccessRole {
		if roles[name] == nil {
			roles[name] = &AccessRole{Name: name, Permissions: []string{}, Groups: []string{}}
		}
		return roles[name]
	}
	group := func(name string) *AccessGroup {
		if groups[name] == nil {
			groups[name] = &AccessGroup{Name: name, Members: []string{}, Roles: []string{}}
		}
		return groups[name]
	}
	perm := func(name string) *AccessPermission {
		if perms[name] == nil {
			namespace, _, _ := strings.Cut(name, ":")
			perms[name] = &AccessPermission{Permission: name, Namespace: namespace, Roles: []string{}}
		}
		return perms[name]
	}

	steps := []struct {
		query string
		apply func(a, b string)
	}{
		{"SELECT group_name, '' FROM view_access_groups", func(g, _ string) { group(g) }},
		{"SELECT role, '' FROM view_access_roles", func(name, _ string) { role(name) }},
		{"SELECT permission, namespace FROM view_access_permissions", func(p, _ string) { perm(p).Declared = true }},
		{"SELECT group_name, user_id FROM view_access_members", func(g, id string) {
			name := id
			if u := users[id]; u != nil {
				name = u.Username
				u.Groups = append(u.Groups, g)
			}
			group(g).Members = append(group(g).Members, name)
		}},
		{"SELECT group_name, role FROM view_access_group_roles", func(g, name string) {
			group(g).Roles = append(group(g).Roles, name)
			role(name).Groups = append(role(name).Groups, g)
		}},
		{"SELECT role, permission FROM view_access_role_permissions", func(name, p string) {
			role(name).Permissions = append(role(name).Permissions, p)
			perm(p).Roles = append(perm(p).Roles, name)
		}},
		{"SELECT user_id, permission FROM view_access_user_permissions", func(id, p string) {
			if u := users[id]; u != nil {
				u.Permissions = append(u.Permissions, p)
			}
		}},
	}
	for _, step := range steps {
		got, err := strings3(step.query, 2)
		if err != nil {
			return AccessSnapshot{}, err
		}
		for _, p := range got {
			step.apply(p[0], p[1])
		}
	}
	handles, err := strings3("SELECT user_id, provider, handle FROM view_access_handles", 3)
	if err != nil {
		return AccessSnapshot{}, err
	}
	for _, h := range handles {
		if u := users[h[0]]; u != nil {
			u.Handles = append(u.Handles, AccessHandle{Provider: h[1], Handle: h[2]})
		}
	}

	var snap AccessSnapshot
	for _, u := range users {
		slices.SortFunc(u.Handles, func(a, b AccessHandle) int { return strings.Compare(a.Provider, b.Provider) })
		slices.Sort(u.Groups)
		slices.Sort(u.Permissions)
		seen := map[string]bool{}
		for _, g := range u.Groups {
			if gr := groups[g]; gr != nil {
				for _, name := range gr.Roles {
					seen[name] = true
				}
			}
		}
		u.Roles = slices.Sorted(maps.Keys(seen))
		if u.Roles == nil {
			u.Roles = []string{}
		}
		snap.Users = append(snap.Users, *u)
	}
	slices.SortFunc(snap.Users, func(a, b AccessUser) int { return strings.Compare(a.Username, b.Username) })
	for _, name := range slices.Sorted(maps.Keys(groups)) {
		g := groups[name]
		slices.Sort(g.Members)
		slices.Sort(g.Roles)
		snap.Groups = append(snap.Groups, *g)
	}
	for _, name := range slices.Sorted(maps.Keys(roles)) {
		rl := roles[name]
		slices.Sort(rl.Permissions)
		slices.Sort(rl.Groups)
		snap.Roles = append(snap.Roles, *rl)
	}
	for _, name := range slices.Sorted(maps.Keys(perms)) {
		p := perms[name]
		slices.Sort(p.Roles)
		snap.Permissions = append(snap.Permissions, *p)
	}
	if snap.Users == nil {
		snap.Users = []AccessUser{}
	}
	if snap.Groups == nil {
		snap.Groups = []AccessGroup{}
	}
	if snap.Roles == nil {
		snap.Roles = []AccessRole{}
	}
	if snap.Permissions == nil {
		snap.Permissions = []AccessPermission{}
	}
	return snap, nil
}
