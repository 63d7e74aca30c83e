package access

import "github.com/logbookhq/logbook/domain"

// Stream ids. Users are keyed by an immutable id so a username could one day
// change without moving the stream; groups and roles by their name.
func UserStream(id string) string                   { return "user-" + id }
func GroupStream(name string) string                { return "group-" + name }
func RoleStream(name string) string                 { return "role-" + name }
func SitePermissionStream(permission string) string { return "permission-" + permission }

// Event is an access event: a payload that knows which stream it belongs to,
// so a command handler appends it to the right stream and a fold can route
// it without the envelope.
type Event interface {
	domain.Payload
	Stream() string
}

// UserCreated starts a user-<id> stream.
type UserCreated struct {
	User     string `json:"user"`
	Username string `json:"username"`
	Email    string `json:"email,omitempty"`
}

// ChatHandleLinked says the person behind Handle on Provider is User.
type ChatHandleLinked struct {
	User     string `json:"user"`
	Provider string `json:"provider"`
	Handle   string `json:"handle"`
}

// ChatHandleUnlinked frees the handle; it carries the handle so a fold never
// needs the user's earlier events to know what was freed.
type ChatHandleUnlinked struct {
	User     string `json:"user"`
	Provider string `json:"provider"`
	Handle   string `json:"handle"`
}

// UserDisabled: from now on the user is denied everything.
type UserDisabled struct {
	User string `json:"user"`
}

// UserEnabled lifts UserDisabled; the user's grants apply again.
type UserEnabled struct {
	User string `json:"user"`
}

// GroupCreated starts a group-<name> stream.
type GroupCreated struct {
	Group string `json:"group"`
}

// MemberAdded puts a user in a group.
type MemberAdded struct {
	Group string `json:"group"`
	User  string `json:"user"`
}

// MemberRemoved takes a user out of a group.
type MemberRemoved struct {
	Group string `json:"group"`
	User  string `json:"user"`
}

// RoleGranted gives a role to every member of a group.
type RoleGranted struct {
	Group string `json:"group"`
	Role  string `json:"role"`
}

// RoleRevoked takes a role from a group.
type RoleRevoked struct {
	Group string `json:"group"`
	Role  string `json:"role"`
}

// RoleCreated starts a role-<name> stream.
type RoleCreated struct {
	Role string `json:"role"`
}

// PermissionGranted adds a permission to a role.
type PermissionGranted struct {
	Role       string `json:"role"`
	Permission string `json:"permission"`
}

// PermissionRevoked removes a permission from a role.
type PermissionRevoked struct {
	Role       string `json:"role"`
	Permission string `json:"permission"`
}

// SitePermissionCreated records an operator-made "site:" permission in its
// own permission-site:<name> stream.
type SitePermissionCreated struct {
	Permission string `json:"permission"`
}

func (UserCreated) EventType() string           { return "UserCreated" }
func (ChatHandleLinked) EventType() string      { return "ChatHandleLinked" }
func (ChatHandleUnlinked) EventType() string    { return "ChatHandleUnlinked" }
func (UserDisabled) EventType() string          { return "UserDisabled" }
func (UserEnabled) EventType() string           { return "UserEnabled" }
func (GroupCreated) EventType() string          { return "GroupCreated" }
func (MemberAdded) EventType() string           { return "MemberAdded" }
func (MemberRemoved) EventType() string         { return "MemberRemoved" }
func (RoleGranted) EventType() string           { return "RoleGranted" }
func (RoleRevoked) EventType() string           { return "RoleRevoked" }
func (RoleCreated) EventType() string           { return "RoleCreated" }
func (PermissionGranted) EventType() string     { return "PermissionGranted" }
func (PermissionRevoked) EventType() string     { return "PermissionRevoked" }
func (SitePermissionCreated) EventType() string { return "SitePermissionCreated" }

func (e UserCreated) Stream() string           { return UserStream(e.User) }
func (e ChatHandleLinked) Stream() string      { return UserStream(e.User) }
func (e ChatHandleUnlinked) Stream() string    { return UserStream(e.User) }
func (e UserDisabled) Stream() string          { return UserStream(e.User) }
func (e UserEnabled) Stream() string           { return UserStream(e.User) }
func (e GroupCreated) Stream() string          { return GroupStream(e.Group) }
func (e MemberAdded) Stream() string           { return GroupStream(e.Group) }
func (e MemberRemoved) Stream() string         { return GroupStream(e.Group) }
func (e RoleGranted) Stream() string           { return GroupStream(e.Group) }
func (e RoleRevoked) Stream() string           { return GroupStream(e.Group) }
func (e RoleCreated) Stream() string           { return RoleStream(e.Role) }
func (e PermissionGranted) Stream() string     { return RoleStream(e.Role) }
func (e PermissionRevoked) Stream() string     { return RoleStream(e.Role) }
func (e SitePermissionCreated) Stream() string { return SitePermissionStream(e.Permission) }

func init() {
	domain.Register[UserCreated]()
	domain.Register[ChatHandleLinked]()
	domain.Register[ChatHandleUnlinked]()
	domain.Register[UserDisabled]()
	domain.Register[UserEnabled]()
	domain.Register[GroupCreated]()
	domain.Register[MemberAdded]()
	domain.Register[MemberRemoved]()
	domain.Register[RoleGranted]()
	domain.Register[RoleRevoked]()
	domain.Register[RoleCreated]()
	domain.Register[PermissionGranted]()
	domain.Register[PermissionRevoked]()
	domain.Register[SitePermissionCreated]()
}
