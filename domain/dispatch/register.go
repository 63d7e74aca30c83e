package dispatch

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// UserRegistered records that a request from an unknown chat user created
// its Logbook user (Settings.SelfRegister): the user, with the handle
// linked, is created in the same atomic append, and the request goes on as
// that user. Group is the group the user was added to ("" for none);
// GroupMissing names a configured group that does not exist, so the user
// was added to none.
type UserRegistered struct {
	User         string `json:"user"`
	Username     string `json:"username"`
	Adapter      string `json:"adapter"`
	ChatUser     string `json:"chat_user"`
	Group        string `json:"group,omitempty"`
	GroupMissing string `json:"group_missing,omitempty"`
}

func (UserRegistered) EventType() string { return "UserRegistered" }

func init() { domain.Register[UserRegistered]() }

// AuthenticatedAdapters are the providers whose requests carry the Logbook
// username the caller authenticated as (an API token, a web session)
// instead of a chat handle: their senders are never registered.
var AuthenticatedAdapters = map[string]bool{"api": true, "web": true, TriggerAdapter: true, ScheduleAdapter: true}

// The providers of requests no person typed: a trigger's HTTP call and a
// schedule's tick. Their ChatUser is the username they run as, and their
// Sender names the trigger or schedule ("trigger:NAME").
const (
	TriggerAdapter  = "trigger"
	ScheduleAdapter = "schedule"
)

// SelfRegisteredUserID is the id of the user a request registers, derived
// from the request, so deciding the request again registers the same user.
func SelfRegisteredUserID(requestID string) string {
	return uuid.NewSHA1(requestNamespace, []byte("self-registered/"+requestID)).String()
}

// UsernameFor derives a username from a chat handle: lowercased, with each
// run of characters a username cannot hold replaced by one '-', trimmed to
// start and end with a letter or digit, at most access.MaxNameLength long,
// "user" when nothing is left; then made unique with "-2", "-3", ... while
// taken says the name is in use.
func UsernameFor(handle string, taken func(string) bool) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(handle) {
		switch {
		case (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' || r == '.':
			b.WriteRune(r)
			dash = false
		case !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	base := trimToAlnum(b.String())
	if len(base) > access.MaxNameLength {
		base = trimToAlnum(base[:access.MaxNameLength])
	}
	if base == "" {
		base = "user"
	}
	name := base
	for n := 2; taken(name); n++ {
		suffix := "-" + strconv.Itoa(n)
		name = trimToAlnum(base[:min(len(base), access.MaxNameLength-len(suffix))]) + suffix
	}
	return name
}

func trimToAlnum(s string) string {
	isAlnum := func(r rune) bool { return (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') }
	return strings.TrimRightFunc(strings.TrimLeftFunc(s, func(r rune) bool { return !isAlnum(r) }), func(r rune) bool { return !isAlnum(r) })
}

// GroupPermissions is what membership of group grants in dir: the existing
// permissions of its roles, sorted; ok is false when there is no such group.
func GroupPermissions(dir *access.Directory, group string) ([]string, bool) {
	if !dir.GroupExists(group) {
		return nil, false
	}
	set := map[string]bool{}
	for _, role := range dir.GroupRoles(group) {
		for _, perm := range dir.RolePermissions(role) {
			if dir.PermissionExists(perm) {
				set[perm] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set)), true
}

// registration is what self-registering an unknown sender decides.
type registration struct {
	event   UserRegistered
	changes []Change
	user    access.UserInfo
	perms   []string
}

// registerFacts answers the user decider's questions for a user that does
// not exist yet: the id is new, and only usernames and handles are taken.
type registerFacts struct{ Facts }

func (registerFacts) User(string) (access.UserInfo, bool) { return access.UserInfo{}, false }
func (registerFacts) GroupMembers(string) []string        { return nil }

// selfRegister decides the registration of the request's unknown sender
// with the access user decider: a user named after the handle, the handle
// linked, membership of the configured group. ok is false when
// self-registration is off; err says why the user could not be created.
func selfRegister(r Request, facts Facts) (registration, bool, error) {
	settings := facts.Settings()
	if !settings.SelfRegister || AuthenticatedAdapters[r.received.Adapter] {
		return registration{}, false, nil
	}
	rec := r.received
	id := SelfRegisteredUserID(r.id)
	username := UsernameFor(rec.ChatUser, func(name string) bool { _, taken := facts.UserByUsername(name); return taken })
	uf := registerFacts{facts}
	created, err := access.DecideUser(access.User{}, access.CreateUser{ID: id, Username: username}, uf)
	if err != nil {
		return registration{}, true, err
	}
	var user access.User
	for _, e := range created {
		user = access.EvolveUser(user, e)
	}
	linked, err := access.DecideUser(user, access.LinkChatHandle{User: id, Provider: rec.Adapter, Handle: rec.ChatUser}, uf)
	if err != nil {
		return registration{}, true, err
	}
	reg := registration{
		event:   UserRegistered{User: id, Username: username, Adapter: rec.Adapter, ChatUser: rec.ChatUser},
		changes: []Change{{Stream: access.UserStream(id), Expected: eventstore.NoStream, Events: append(created, linked...)}},
		user:    access.UserInfo{ID: id, Username: username},
	}
	if group := settings.SelfRegisterGroup; group != "" {
		perms, exists := facts.GroupPermissions(group)
		if !exists {
			reg.event.GroupMissing = group
			return reg, true, nil
		}
		// Groups are never deleted and the user is new, so the membership
		// holds whatever else the group's stream records meanwhile.
		reg.changes = append(reg.changes, Change{Stream: access.GroupStream(group), Expected: eventstore.Any,
			Events: []domain.Payload{access.MemberAdded{Group: group, User: id}}})
		reg.event.Group, reg.perms = group, perms
	}
	return reg, true, nil
}

// registrationNotice is the line a reply to a registering request starts with.
func registrationNotice(e UserRegistered) string {
	text := fmt.Sprintf("Welcome: I registered you as Logbook user %s, linked to your %s handle %s", e.Username, e.Adapter, e.ChatUser)
	switch {
	case e.Group != "":
		text += ", in group " + e.Group + "."
	case e.GroupMissing != "":
		text += fmt.Sprintf("; the group %s that new users join does not exist, so you are in none: ask an admin for access.", e.GroupMissing)
	default:
		text += "; you hold no permissions until an admin grants you some."
	}
	return text
}
