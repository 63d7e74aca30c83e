package access

import "github.com/logbookhq/logbook/domain"

// Role is the state of one role-<name> stream, rebuilt by EvolveRole. The
// zero value is a role that does not exist yet.
type Role struct {
	name        string
	permissions map[string]struct{}
}

func (r Role) exists() bool { return r.name != "" }

// RoleFacts is what deciding a role command needs to know beyond the role's
// own stream: which permissions bundles and operators have declared.
type RoleFacts interface {
	PermissionExists(permission string) bool
}

// EvolveRole applies one event of the role's stream. Events of other streams
// and of unknown types leave the state unchanged; the state passed in is
// never modified.
func EvolveRole(r Role, event domain.Payload) Role {
	switch e := event.(type) {
	case RoleCreated:
		if !r.exists() {
			return Role{name: e.Role}
		}
	case PermissionGranted:
		if r.exists() && e.Role == r.name {
			r.permissions = withKey(r.permissions, e.Permission)
		}
	case PermissionRevoked:
		if r.exists() && e.Role == r.name {
			r.permissions = withoutKey(r.permissions, e.Permission)
		}
	}
	return r
}

// DecideRole decides a role command against the role's state and the
// permission catalog. Granting a granted permission and revoking one that is
// not granted are no-ops: no events and no error.
func DecideRole(r Role, cmd RoleCommand, facts RoleFacts) ([]domain.Payload, error) {
	if r.exists() && RoleStream(r.name) != cmd.Stream() {
		return nil, errorf(KindInvalid, "a command for %s was decided against the stream of role %s", cmd.Stream(), r.name)
	}
	if c, ok := cmd.(CreateRole); ok {
		if err := ValidateRoleName(c.Name); err != nil {
			return nil, err
		}
		if r.exists() {
			return nil, errorf(KindAlreadyExists, "role %s already exists", r.name)
		}
		return []domain.Payload{RoleCreated{Role: c.Name}}, nil
	}
	switch c := cmd.(type) {
	case GrantPermission:
		if _, err := ParsePermission(c.Permission); err != nil {
			return nil, err
		}
		if !r.exists() {
			return nil, roleNotFound(c.Role)
		}
		if !facts.PermissionExists(c.Permission) {
			return nil, permissionNotFound(c.Permission)
		}
		if _, ok := r.permissions[c.Permission]; ok {
			return nil, nil
		}
		return []domain.Payload{PermissionGranted{Role: r.name, Permission: c.Permission}}, nil
	case RevokePermission:
		if _, err := ParsePermission(c.Permission); err != nil {
			return nil, err
		}
		if !r.exists() {
			return nil, roleNotFound(c.Role)
		}
		if _, ok := r.permissions[c.Permission]; !ok {
			return nil, nil
		}
		return []domain.Payload{PermissionRevoked{Role: r.name, Permission: c.Permission}}, nil
	default:
		return nil, errorf(KindInvalid, "unknown role command %T", cmd)
	}
}

func roleNotFound(name string) *Error {
	return errorf(KindNotFound, "role %s does not exist", name)
}

func permissionNotFound(permission string) *Error {
	p, _ := ParsePermission(permission)
	if p.Namespace == SiteNamespace {
		return errorf(KindNotFound, "permission %s does not exist; create it as a site permission first", permission)
	}
	return errorf(KindNotFound, "permission %s does not exist: no installed bundle named %s declares it", permission, p.Namespace)
}
