package access

import "github.com/logbookhq/logbook/domain"

// SitePermission is the state of one permission-site:<name> stream, rebuilt
// by EvolveSitePermission. The zero value is a permission not yet created.
type SitePermission struct {
	permission string
}

// EvolveSitePermission applies one event of the permission's stream.
func EvolveSitePermission(s SitePermission, event domain.Payload) SitePermission {
	if e, ok := event.(SitePermissionCreated); ok && s.permission == "" {
		return SitePermission{permission: e.Permission}
	}
	return s
}

// DecideSitePermission decides an operator's command to create a "site:"
// permission. Other namespaces belong to bundles and are refused.
func DecideSitePermission(s SitePermission, cmd SitePermissionCommand) ([]domain.Payload, error) {
	switch c := cmd.(type) {
	case CreateSitePermission:
		name := c.Permission()
		p, err := ParsePermission(name)
		if err != nil {
			return nil, err
		}
		if p.Namespace != SiteNamespace {
			return nil, &Error{Kind: KindInvalid, Column: 1, Message: "permission " + name +
				" is in the " + p.Namespace + " namespace; expected " + SiteNamespace + ":" + p.Name +
				": operators create permissions only in the site namespace, the others belong to bundles"}
		}
		if s.permission != "" && s.permission != name {
			return nil, errorf(KindInvalid, "a command for %s was decided against the stream of permission %s", cmd.Stream(), s.permission)
		}
		if s.permission != "" {
			return nil, errorf(KindAlreadyExists, "permission %s already exists", s.permission)
		}
		return []domain.Payload{SitePermissionCreated{Permission: name}}, nil
	default:
		return nil, errorf(KindInvalid, "unknown site permission command %T", cmd)
	}
}
