package access

import (
	"maps"

	"github.com/logbookhq/logbook/domain"
)

// Group is the state of one group-<name> stream, rebuilt by EvolveGroup. The
// zero value is a group that does not exist yet.
type Group struct {
	name    string
	members map[string]struct{}
	roles   map[string]struct{}
}

func (g Group) exists() bool { return g.name != "" }

// GroupFacts is what deciding a group command needs to know beyond the
// group's own stream.
type GroupFacts interface {
	User(id string) (UserInfo, bool)
	RoleExists(name string) bool
}

// EvolveGroup applies one event of the group's stream. Events of other
// streams and of unknown types leave the state unchanged; the state passed in
// is never modified.
func EvolveGroup(g Group, event domain.Payload) Group {
	switch e := event.(type) {
	case GroupCreated:
		if !g.exists() {
			return Group{name: e.Group}
		}
	case MemberAdded:
		if g.exists() && e.Group == g.name {
			g.members = withKey(g.members, e.User)
		}
	case MemberRemoved:
		if g.exists() && e.Group == g.name {
			g.members = withoutKey(g.members, e.User)
		}
	case RoleGranted:
		if g.exists() && e.Group == g.name {
			g.roles = withKey(g.roles, e.Role)
		}
	case RoleRevoked:
		if g.exists() && e.Group == g.name {
			g.roles = withoutKey(g.roles, e.Role)
		}
	}
	return g
}

// DecideGroup decides a group command against the group's state and the
// facts about users and roles. Adding what is already there and removing
// what is not are no-ops: no events and no error.
func DecideGroup(g Group, cmd GroupCommand, facts GroupFacts) ([]domain.Payload, error) {
	if g.exists() && GroupStream(g.name) != cmd.Stream() {
		return nil, errorf(KindInvalid, "a command for %s was decided against the stream of group %s", cmd.Stream(), g.name)
	}
	if c, ok := cmd.(CreateGroup); ok {
		if err := ValidateGroupName(c.Name); err != nil {
			return nil, err
		}
		if g.exists() {
			return nil, errorf(KindAlreadyExists, "group %s already exists", g.name)
		}
		return []domain.Payload{GroupCreated{Group: c.Name}}, nil
	}
	switch c := cmd.(type) {
	case AddMember:
		return g.addMember(c, facts)
	case RemoveMember:
		return g.removeMember(c, facts)
	case GrantRoleToGroup:
		return g.grantRole(c, facts)
	case RevokeRoleFromGroup:
		return g.revokeRole(c)
	default:
		return nil, errorf(KindInvalid, "unknown group command %T", cmd)
	}
}

func (g Group) addMember(c AddMember, facts GroupFacts) ([]domain.Payload, error) {
	if err := ValidateUserID(c.User); err != nil {
		return nil, err
	}
	if !g.exists() {
		return nil, groupNotFound(c.Group)
	}
	if _, ok := facts.User(c.User); !ok {
		return nil, userNotFound(c.User)
	}
	if _, ok := g.members[c.User]; ok {
		return nil, nil
	}
	return []domain.Payload{MemberAdded{Group: g.name, User: c.User}}, nil
}

func (g Group) removeMember(c RemoveMember, facts GroupFacts) ([]domain.Payload, error) {
	if err := ValidateUserID(c.User); err != nil {
		return nil, err
	}
	if !g.exists() {
		return nil, groupNotFound(c.Group)
	}
	if _, ok := g.members[c.User]; !ok {
		return nil, nil
	}
	if g.name == AdminGroup {
		info, known := facts.User(c.User)
		who := c.User
		if known {
			who = info.name()
		}
		if len(g.members) == 1 {
			return nil, errorf(KindConflict, "user %s is the last member of the %s group; add another admin first", who, AdminGroup)
		}
		others := make([]string, 0, len(g.members))
		for m := range g.members {
			others = append(others, m)
		}
		if known && !info.Disabled && !anyEnabled(facts, others, c.User) {
			return nil, errorf(KindConflict, "user %s is the last enabled member of the %s group; add or enable another admin first", who, AdminGroup)
		}
	}
	return []domain.Payload{MemberRemoved{Group: g.name, User: c.User}}, nil
}

func (g Group) grantRole(c GrantRoleToGroup, facts GroupFacts) ([]domain.Payload, error) {
	if err := ValidateRoleName(c.Role); err != nil {
		return nil, err
	}
	if !g.exists() {
		return nil, groupNotFound(c.Group)
	}
	if !facts.RoleExists(c.Role) {
		return nil, roleNotFound(c.Role)
	}
	if _, ok := g.roles[c.Role]; ok {
		return nil, nil
	}
	return []domain.Payload{RoleGranted{Group: g.name, Role: c.Role}}, nil
}

func (g Group) revokeRole(c RevokeRoleFromGroup) ([]domain.Payload, error) {
	if err := ValidateRoleName(c.Role); err != nil {
		return nil, err
	}
	if !g.exists() {
		return nil, groupNotFound(c.Group)
	}
	if _, ok := g.roles[c.Role]; !ok {
		return nil, nil
	}
	return []domain.Payload{RoleRevoked{Group: g.name, Role: c.Role}}, nil
}

func groupNotFound(name string) *Error {
	return errorf(KindNotFound, "group %s does not exist", name)
}

// withKey and withoutKey copy before writing so that an evolved state never
// shares a map with the state it came from.
func withKey(set map[string]struct{}, key string) map[string]struct{} {
	out := maps.Clone(set)
	if out == nil {
		out = map[string]struct{}{}
	}
	out[key] = struct{}{}
	return out
}

func withoutKey(set map[string]struct{}, key string) map[string]struct{} {
	if _, ok := set[key]; !ok {
		return set
	}
	out := maps.Clone(set)
	delete(out, key)
	return out
}
