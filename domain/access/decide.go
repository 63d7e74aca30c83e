package access

import "github.com/logbookhq/logbook/domain"

// Facts is everything any access decider may need to know beyond the
// aggregate's own stream. *Directory implements it.
type Facts interface {
	UserFacts
	GroupFacts
	RoleFacts
}

var _ Facts = (*Directory)(nil)

// Decide folds history, the events already in cmd.Stream(), into the right
// aggregate and decides cmd against it. It is what a command handler calls
// between loading a stream and appending to it with the stream's version as
// the expected version. Every returned event is an Event whose Stream() is
// cmd.Stream(). No events and no error means the command changes nothing.
func Decide(history []domain.Payload, cmd Command, facts Facts) ([]domain.Payload, error) {
	switch c := cmd.(type) {
	case UserCommand:
		var u User
		for _, e := range history {
			u = EvolveUser(u, e)
		}
		return DecideUser(u, c, facts)
	case GroupCommand:
		var g Group
		for _, e := range history {
			g = EvolveGroup(g, e)
		}
		return DecideGroup(g, c, facts)
	case RoleCommand:
		var r Role
		for _, e := range history {
			r = EvolveRole(r, e)
		}
		return DecideRole(r, c, facts)
	case SitePermissionCommand:
		var s SitePermission
		for _, e := range history {
			s = EvolveSitePermission(s, e)
		}
		return DecideSitePermission(s, c)
	default:
		return nil, errorf(KindInvalid, "unknown access command %T", cmd)
	}
}
