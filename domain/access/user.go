package access

import (
	"maps"
	"slices"

	"github.com/logbookhq/logbook/domain"
)

// AdminGroup is the group whose members administer Logbook. Its last member
// cannot be removed, and its last enabled member cannot be removed or
// disabled, so an installation can never lock itself out.
const AdminGroup = "admin"

// User is the state of one user-<id> stream, rebuilt by EvolveUser. The zero
// value is a user that does not exist yet.
type User struct {
	id       string
	username string
	disabled bool
	handles  map[string]string // provider → handle
}

func (u User) exists() bool { return u.id != "" }

// UserFacts is what deciding a user command needs to know beyond the user's
// own stream. *Directory provides it; so can any read model.
type UserFacts interface {
	User(id string) (UserInfo, bool)
	UserByUsername(username string) (UserInfo, bool)
	UserByHandle(provider, handle string) (UserInfo, bool)
	GroupMembers(group string) []string
}

// EvolveUser applies one event of the user's stream. Events of other streams
// and of unknown types leave the state unchanged; the state passed in is
// never modified.
func EvolveUser(u User, event domain.Payload) User {
	switch e := event.(type) {
	case UserCreated:
		if !u.exists() {
			return User{id: e.User, username: e.Username}
		}
	case ChatHandleLinked:
		if u.exists() && e.User == u.id {
			u.handles = maps.Clone(u.handles)
			if u.handles == nil {
				u.handles = map[string]string{}
			}
			u.handles[e.Provider] = e.Handle
		}
	case ChatHandleUnlinked:
		if u.exists() && e.User == u.id {
			u.handles = maps.Clone(u.handles)
			delete(u.handles, e.Provider)
		}
	case UserDisabled:
		if u.exists() && e.User == u.id {
			u.disabled = true
		}
	case UserEnabled:
		if u.exists() && e.User == u.id {
			u.disabled = false
		}
	}
	return u
}

// DecideUser decides a user command against the user's state and the facts
// about other users. Adding what is already there and removing what is not
// are no-ops: no events and no error.
func DecideUser(u User, cmd UserCommand, facts UserFacts) ([]domain.Payload, error) {
	if u.exists() && UserStream(u.id) != cmd.Stream() {
		return nil, errorf(KindInvalid, "a command for %s was decided against the stream of user %s", cmd.Stream(), u.username)
	}
	switch c := cmd.(type) {
	case CreateUser:
		return u.create(c, facts)
	case LinkChatHandle:
		return u.linkHandle(c, facts)
	case UnlinkChatHandle:
		return u.unlinkHandle(c)
	case DisableUser:
		return u.disable(c, facts)
	case EnableUser:
		return u.enable(c)
	default:
		return nil, errorf(KindInvalid, "unknown user command %T", cmd)
	}
}

func (u User) create(c CreateUser, facts UserFacts) ([]domain.Payload, error) {
	if err := ValidateUserID(c.ID); err != nil {
		return nil, err
	}
	if err := ValidateUsername(c.Username); err != nil {
		return nil, err
	}
	if c.Email != "" {
		if err := ValidateEmail(c.Email); err != nil {
			return nil, err
		}
	}
	if u.exists() {
		return nil, errorf(KindAlreadyExists, "user %s already exists with username %s", u.id, u.username)
	}
	if other, ok := facts.UserByUsername(c.Username); ok && other.ID != c.ID {
		return nil, errorf(KindAlreadyExists, "username %s is already taken by user %s", c.Username, other.ID)
	}
	return []domain.Payload{UserCreated{User: c.ID, Username: c.Username, Email: c.Email}}, nil
}

func (u User) linkHandle(c LinkChatHandle, facts UserFacts) ([]domain.Payload, error) {
	if err := ValidateLinkableProvider(c.Provider); err != nil {
		return nil, err
	}
	if err := ValidateHandle(c.Handle); err != nil {
		return nil, err
	}
	if !u.exists() {
		return nil, userNotFound(c.User)
	}
	if current, ok := u.handles[c.Provider]; ok {
		if current == c.Handle {
			return nil, nil
		}
		return nil, errorf(KindConflict, "user %s already has handle %s on %s; unlink it before linking %s",
			u.username, current, c.Provider, c.Handle)
	}
	if owner, ok := facts.UserByHandle(c.Provider, c.Handle); ok && owner.ID != u.id {
		return nil, errorf(KindConflict, "handle %s on %s is already linked to user %s", c.Handle, c.Provider, owner.name())
	}
	return []domain.Payload{ChatHandleLinked{User: u.id, Provider: c.Provider, Handle: c.Handle}}, nil
}

func (u User) unlinkHandle(c UnlinkChatHandle) ([]domain.Payload, error) {
	if err := ValidateProvider(c.Provider); err != nil {
		return nil, err
	}
	if !u.exists() {
		return nil, userNotFound(c.User)
	}
	handle, ok := u.handles[c.Provider]
	if !ok {
		return nil, nil
	}
	return []domain.Payload{ChatHandleUnlinked{User: u.id, Provider: c.Provider, Handle: handle}}, nil
}

func (u User) disable(c DisableUser, facts UserFacts) ([]domain.Payload, error) {
	if !u.exists() {
		return nil, userNotFound(c.User)
	}
	if u.disabled {
		return nil, nil
	}
	admins := facts.GroupMembers(AdminGroup)
	if slices.Contains(admins, u.id) && !anyEnabled(facts, admins, u.id) {
		return nil, errorf(KindConflict, "user %s is the last enabled member of the %s group; add or enable another admin first",
			u.username, AdminGroup)
	}
	return []domain.Payload{UserDisabled{User: u.id}}, nil
}

func (u User) enable(c EnableUser) ([]domain.Payload, error) {
	if !u.exists() {
		return nil, userNotFound(c.User)
	}
	if !u.disabled {
		return nil, nil
	}
	return []domain.Payload{UserEnabled{User: u.id}}, nil
}

type userLookup interface {
	User(id string) (UserInfo, bool)
}

func userNotFound(id string) *Error {
	return errorf(KindNotFound, "user %s does not exist", id)
}

// anyEnabled reports whether some member other than except is a known,
// enabled user.
func anyEnabled(facts userLookup, members []string, except string) bool {
	for _, m := range members {
		if m == except {
			continue
		}
		if info, ok := facts.User(m); ok && !info.Disabled {
			return true
		}
	}
	return false
}
