package access

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/logbookhq/logbook/domain"
)

// Directory is the read model of who may do what: a fold of every access
// event (Apply) plus the permissions installed bundles declare
// (DeclarePermissions, RetractPermissions). The deciders consult it for
// facts that span aggregates (is this handle taken, does this permission
// exist, who else is an admin), and the permission projection and the
// dispatcher use it to answer PermissionsOf.
//
// A Directory is not safe for concurrent use; its owner serialises Apply and
// the queries. Cross-aggregate checks are as fresh as the Directory the
// decider is given: two commands decided concurrently against the same
// snapshot could, for example, both link one handle. The command handler
// serialises access commands to rule that out.
type Directory struct {
	users      map[string]*userEntry
	byUsername map[string]string     // username → user id
	byHandle   map[ChatHandle]string // → user id
	groups     map[string]*groupEntry
	memberOf   map[string]map[string]struct{} // user id → groups
	roles      map[string]map[string]struct{} // role → granted permissions
	site       map[string]struct{}            // created site: permissions
	declared   map[string]map[string]struct{} // bundle → its permissions
}

type userEntry struct {
	username string
	email    string
	disabled bool
	handles  map[string]string // provider → handle
}

type groupEntry struct {
	members map[string]struct{}
	roles   map[string]struct{}
}

// UserInfo describes one user as the Directory knows them.
type UserInfo struct {
	ID       string
	Username string
	Email    string
	Disabled bool
	Handles  []ChatHandle // sorted by provider
}

func (u UserInfo) name() string {
	if u.Username != "" {
		return u.Username
	}
	return u.ID
}

// ChatHandle is a person's id on one chat provider.
type ChatHandle struct {
	Provider string
	Handle   string
}

// NewDirectory returns an empty Directory: no users, no groups, no roles and
// no permissions.
func NewDirectory() *Directory {
	return &Directory{
		users:      map[string]*userEntry{},
		byUsername: map[string]string{},
		byHandle:   map[ChatHandle]string{},
		groups:     map[string]*groupEntry{},
		memberOf:   map[string]map[string]struct{}{},
		roles:      map[string]map[string]struct{}{},
		site:       map[string]struct{}{},
		declared:   map[string]map[string]struct{}{},
	}
}

// Apply folds one event. Events of other areas are ignored, so the caller
// may feed it the whole log. Like the aggregates' Evolve functions it skips
// events about a user, group or role that was never created, and a second
// creation of the same one, so the Directory agrees with the deciders.
func (d *Directory) Apply(event domain.Payload) {
	switch e := event.(type) {
	case UserCreated:
		if _, ok := d.users[e.User]; ok {
			return
		}
		d.users[e.User] = &userEntry{username: e.Username, email: e.Email, handles: map[string]string{}}
		if _, taken := d.byUsername[e.Username]; !taken {
			d.byUsername[e.Username] = e.User
		}
	case ChatHandleLinked:
		u, ok := d.users[e.User]
		if !ok {
			return
		}
		if old, had := u.handles[e.Provider]; had {
			d.unindexHandle(e.User, ChatHandle{Provider: e.Provider, Handle: old})
		}
		u.handles[e.Provider] = e.Handle
		d.byHandle[ChatHandle{Provider: e.Provider, Handle: e.Handle}] = e.User
	case ChatHandleUnlinked:
		u, ok := d.users[e.User]
		if !ok {
			return
		}
		if old, had := u.handles[e.Provider]; had {
			d.unindexHandle(e.User, ChatHandle{Provider: e.Provider, Handle: old})
			delete(u.handles, e.Provider)
		}
	case UserDisabled:
		if u, ok := d.users[e.User]; ok {
			u.disabled = true
		}
	case UserEnabled:
		if u, ok := d.users[e.User]; ok {
			u.disabled = false
		}
	case GroupCreated:
		if _, ok := d.groups[e.Group]; !ok {
			d.groups[e.Group] = &groupEntry{members: map[string]struct{}{}, roles: map[string]struct{}{}}
		}
	case MemberAdded:
		if g, ok := d.groups[e.Group]; ok {
			g.members[e.User] = struct{}{}
			if d.memberOf[e.User] == nil {
				d.memberOf[e.User] = map[string]struct{}{}
			}
			d.memberOf[e.User][e.Group] = struct{}{}
		}
	case MemberRemoved:
		if g, ok := d.groups[e.Group]; ok {
			delete(g.members, e.User)
			delete(d.memberOf[e.User], e.Group)
			if len(d.memberOf[e.User]) == 0 {
				delete(d.memberOf, e.User)
			}
		}
	case RoleGranted:
		if g, ok := d.groups[e.Group]; ok {
			g.roles[e.Role] = struct{}{}
		}
	case RoleRevoked:
		if g, ok := d.groups[e.Group]; ok {
			delete(g.roles, e.Role)
		}
	case RoleCreated:
		if _, ok := d.roles[e.Role]; !ok {
			d.roles[e.Role] = map[string]struct{}{}
		}
	case PermissionGranted:
		if perms, ok := d.roles[e.Role]; ok {
			perms[e.Permission] = struct{}{}
		}
	case PermissionRevoked:
		if perms, ok := d.roles[e.Role]; ok {
			delete(perms, e.Permission)
		}
	case SitePermissionCreated:
		d.site[e.Permission] = struct{}{}
	}
}

// unindexHandle drops a handle from the index only if it points at user, so
// that a stale unlink cannot free a handle someone else holds.
func (d *Directory) unindexHandle(user string, h ChatHandle) {
	if d.byHandle[h] == user {
		delete(d.byHandle, h)
	}
}

// DeclarePermissions records the permissions a bundle declares, replacing
// whatever an earlier version of the bundle declared. The projection that
// folds BundleInstalled (domain/bundle owns that event) calls it with the
// installed config's permissions; RetractPermissions undoes it when the
// bundle is removed.
//
// A bundle may declare permissions only in its own namespace, and no bundle
// may be named "site". Permissions that break these rules or are malformed
// are skipped and reported in the returned error (kind invalid); the valid
// ones are still recorded, so one bad entry does not hide a bundle's others.
func (d *Directory) DeclarePermissions(bundle string, permissions []string) error {
	if err := checkName("bundle name", bundle, bundle, 0); err != nil {
		return err
	}
	if bundle == SiteNamespace {
		return errorf(KindInvalid, "bundle name %s is reserved for operator-made permissions", bundle)
	}
	set := map[string]struct{}{}
	var problems []error
	for _, perm := range permissions {
		p, err := ParsePermission(perm)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if p.Namespace != bundle {
			problems = append(problems, &Error{Kind: KindInvalid, Column: 1, Message: fmt.Sprintf(
				"bundle %s declares permission %s outside its namespace; expected %s:%s", bundle, perm, bundle, p.Name)})
			continue
		}
		set[perm] = struct{}{}
	}
	d.declared[bundle] = set
	return errors.Join(problems...)
}

// RetractPermissions forgets the permissions of a removed bundle. Roles keep
// their grants of them (the grant events still stand) but the grants confer
// nothing while the permissions do not exist; installing the bundle again
// brings them back.
func (d *Directory) RetractPermissions(bundle string) {
	delete(d.declared, bundle)
}

// PermissionExists reports whether an installed bundle declares the
// permission or an operator created it as a site permission.
func (d *Directory) PermissionExists(permission string) bool {
	namespace, _, ok := strings.Cut(permission, ":")
	if !ok {
		return false
	}
	if namespace == SiteNamespace {
		_, exists := d.site[permission]
		return exists
	}
	_, exists := d.declared[namespace][permission]
	return exists
}

// Permissions lists every existing permission, sorted.
func (d *Directory) Permissions() []string {
	all := slices.Collect(maps.Keys(d.site))
	for _, perms := range d.declared {
		all = slices.AppendSeq(all, maps.Keys(perms))
	}
	slices.Sort(all)
	return all
}

// User returns the user with the given id.
func (d *Directory) User(id string) (UserInfo, bool) {
	u, ok := d.users[id]
	if !ok {
		return UserInfo{}, false
	}
	info := UserInfo{ID: id, Username: u.username, Email: u.email, Disabled: u.disabled}
	for _, provider := range slices.Sorted(maps.Keys(u.handles)) {
		info.Handles = append(info.Handles, ChatHandle{Provider: provider, Handle: u.handles[provider]})
	}
	return info, true
}

// UserByUsername returns the user with the given username.
func (d *Directory) UserByUsername(username string) (UserInfo, bool) {
	id, ok := d.byUsername[username]
	if !ok {
		return UserInfo{}, false
	}
	return d.User(id)
}

// UserByHandle resolves a chat identity to a user: how the dispatcher turns
// "U024BE7LH on slack" into a person. Handles match exactly.
func (d *Directory) UserByHandle(provider, handle string) (UserInfo, bool) {
	id, ok := d.byHandle[ChatHandle{Provider: provider, Handle: handle}]
	if !ok {
		return UserInfo{}, false
	}
	return d.User(id)
}

// Users lists every user, sorted by username.
func (d *Directory) Users() []UserInfo {
	out := make([]UserInfo, 0, len(d.users))
	for id := range d.users {
		info, _ := d.User(id)
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b UserInfo) int {
		if c := strings.Compare(a.Username, b.Username); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// IsDisabled reports whether the user exists and is disabled. An unknown
// user is not disabled, but has no permissions either.
func (d *Directory) IsDisabled(user string) bool {
	u, ok := d.users[user]
	return ok && u.disabled
}

// GroupExists reports whether the group was created.
func (d *Directory) GroupExists(group string) bool {
	_, ok := d.groups[group]
	return ok
}

// Groups lists every group, sorted.
func (d *Directory) Groups() []string { return slices.Sorted(maps.Keys(d.groups)) }

// GroupMembers lists the user ids in a group, sorted; nil for an unknown
// group.
func (d *Directory) GroupMembers(group string) []string {
	g, ok := d.groups[group]
	if !ok {
		return nil
	}
	return slices.Sorted(maps.Keys(g.members))
}

// GroupRoles lists the roles granted to a group, sorted.
func (d *Directory) GroupRoles(group string) []string {
	g, ok := d.groups[group]
	if !ok {
		return nil
	}
	return slices.Sorted(maps.Keys(g.roles))
}

// GroupsOf lists the groups a user belongs to, sorted.
func (d *Directory) GroupsOf(user string) []string {
	return slices.Sorted(maps.Keys(d.memberOf[user]))
}

// RoleExists reports whether the role was created.
func (d *Directory) RoleExists(role string) bool {
	_, ok := d.roles[role]
	return ok
}

// Roles lists every role, sorted.
func (d *Directory) Roles() []string { return slices.Sorted(maps.Keys(d.roles)) }

// RolePermissions lists the permissions granted to a role, sorted, including
// grants of permissions whose bundle has since been removed (they confer
// nothing until it is installed again).
func (d *Directory) RolePermissions(role string) []string {
	return slices.Sorted(maps.Keys(d.roles[role]))
}

// PermissionsOf is what a user may do: the existing permissions of every
// role granted to every group the user is in, sorted and without
// duplicates. A disabled or unknown user has none.
func (d *Directory) PermissionsOf(user string) []string {
	u, ok := d.users[user]
	if !ok || u.disabled {
		return nil
	}
	set := map[string]struct{}{}
	for group := range d.memberOf[user] {
		for role := range d.groups[group].roles {
			for perm := range d.roles[role] {
				if d.PermissionExists(perm) {
					set[perm] = struct{}{}
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// HasPermission reports whether PermissionsOf(user) contains permission.
func (d *Directory) HasPermission(user, permission string) bool {
	u, ok := d.users[user]
	if !ok || u.disabled || !d.PermissionExists(permission) {
		return false
	}
	for group := range d.memberOf[user] {
		for role := range d.groups[group].roles {
			if _, granted := d.roles[role][permission]; granted {
				return true
			}
		}
	}
	return false
}
