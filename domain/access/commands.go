package access

import "strings"

// Command is a request to change one access aggregate. Stream names the
// stream whose history the command is decided against and to which its
// events are appended. The set of commands is closed: only this package's
// types implement it.
type Command interface {
	Stream() string
	isCommand()
}

// UserCommand is a Command decided by DecideUser.
type UserCommand interface {
	Command
	isUserCommand()
}

// GroupCommand is a Command decided by DecideGroup.
type GroupCommand interface {
	Command
	isGroupCommand()
}

// RoleCommand is a Command decided by DecideRole.
type RoleCommand interface {
	Command
	isRoleCommand()
}

// SitePermissionCommand is a Command decided by DecideSitePermission.
type SitePermissionCommand interface {
	Command
	isSitePermissionCommand()
}

// CreateUser creates a user. ID is immutable and names the stream; Username is
// what people see and must be unique; Email is optional.
type CreateUser struct {
	ID       string
	Username string
	Email    string
}

// LinkChatHandle says the person behind Handle on Provider is User. A user has
// at most one handle per provider and a handle belongs to at most one user.
type LinkChatHandle struct {
	User     string
	Provider string
	Handle   string
}

// UnlinkChatHandle removes the user's handle on Provider.
type UnlinkChatHandle struct {
	User     string
	Provider string
}

// DisableUser denies the user everything until EnableUser.
type DisableUser struct {
	User string
}

// EnableUser restores a disabled user's grants.
type EnableUser struct {
	User string
}

// CreateGroup creates a group.
type CreateGroup struct {
	Name string
}

// AddMember puts an existing user in a group.
type AddMember struct {
	Group string
	User  string
}

// RemoveMember takes a user out of a group.
type RemoveMember struct {
	Group string
	User  string
}

// GrantRoleToGroup gives an existing role to a group.
type GrantRoleToGroup struct {
	Group string
	Role  string
}

// RevokeRoleFromGroup takes a role from a group.
type RevokeRoleFromGroup struct {
	Group string
	Role  string
}

// CreateRole creates a role.
type CreateRole struct {
	Name string
}

// GrantPermission adds an existing permission to a role.
type GrantPermission struct {
	Role       string
	Permission string
}

// RevokePermission removes a permission from a role.
type RevokePermission struct {
	Role       string
	Permission string
}

// CreateSitePermission creates an operator-made permission. Name is either
// "site:deploy" or just "deploy"; the site namespace is implied.
type CreateSitePermission struct {
	Name string
}

// Permission is the full name the command creates, "site:" included.
func (c CreateSitePermission) Permission() string {
	if strings.Contains(c.Name, ":") {
		return c.Name
	}
	return SiteNamespace + ":" + c.Name
}

func (c CreateUser) Stream() string           { return UserStream(c.ID) }
func (c LinkChatHandle) Stream() string       { return UserStream(c.User) }
func (c UnlinkChatHandle) Stream() string     { return UserStream(c.User) }
func (c DisableUser) Stream() string          { return UserStream(c.User) }
func (c EnableUser) Stream() string           { return UserStream(c.User) }
func (c CreateGroup) Stream() string          { return GroupStream(c.Name) }
func (c AddMember) Stream() string            { return GroupStream(c.Group) }
func (c RemoveMember) Stream() string         { return GroupStream(c.Group) }
func (c GrantRoleToGroup) Stream() string     { return GroupStream(c.Group) }
func (c RevokeRoleFromGroup) Stream() string  { return GroupStream(c.Group) }
func (c CreateRole) Stream() string           { return RoleStream(c.Name) }
func (c GrantPermission) Stream() string      { return RoleStream(c.Role) }
func (c RevokePermission) Stream() string     { return RoleStream(c.Role) }
func (c CreateSitePermission) Stream() string { return SitePermissionStream(c.Permission()) }

func (CreateUser) isCommand()           {}
func (LinkChatHandle) isCommand()       {}
func (UnlinkChatHandle) isCommand()     {}
func (DisableUser) isCommand()          {}
func (EnableUser) isCommand()           {}
func (CreateGroup) isCommand()          {}
func (AddMember) isCommand()            {}
func (RemoveMember) isCommand()         {}
func (GrantRoleToGroup) isCommand()     {}
func (RevokeRoleFromGroup) isCommand()  {}
func (CreateRole) isCommand()           {}
func (GrantPermission) isCommand()      {}
func (RevokePermission) isCommand()     {}
func (CreateSitePermission) isCommand() {}

func (CreateUser) isUserCommand()                     {}
func (LinkChatHandle) isUserCommand()                 {}
func (UnlinkChatHandle) isUserCommand()               {}
func (DisableUser) isUserCommand()                    {}
func (EnableUser) isUserCommand()                     {}
func (CreateGroup) isGroupCommand()                   {}
func (AddMember) isGroupCommand()                     {}
func (RemoveMember) isGroupCommand()                  {}
func (GrantRoleToGroup) isGroupCommand()              {}
func (RevokeRoleFromGroup) isGroupCommand()           {}
func (CreateRole) isRoleCommand()                     {}
func (GrantPermission) isRoleCommand()                {}
func (RevokePermission) isRoleCommand()               {}
func (CreateSitePermission) isSitePermissionCommand() {}
