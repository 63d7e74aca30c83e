package access

import (
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/logbookhq/logbook/domain"
)

// The model test drives random command sequences over a tiny world, deciding
// each command as a command handler would (stream history plus Directory),
// and checks after every step that the invariants hold whatever the order.

var (
	modelUsers     = []string{"u-a", "u-b", "u-c"}
	modelUsernames = []string{"ann", "ben", "cat", "ann"}
	modelProviders = []string{"slack", "irc"}
	modelHandles   = []string{"H1", "H2", "H3"}
	modelGroups    = []string{AdminGroup, "ops"}
	modelRoles     = []string{"r1", "r2"}
	modelPerms     = []string{"deploy:prod", "deploy:staging", "site:x", "site:y", "nope:z"}
	modelBundle    = []string{"deploy:prod", "deploy:staging"}
)

// modelCommand turns three bytes into a command, or into a bundle change
// applied straight to the directory (returned as nil).
func modelCommand(dir *Directory, op, a, b byte) Command {
	user := modelUsers[int(a)%len(modelUsers)]
	group := modelGroups[int(a)%len(modelGroups)]
	role := modelRoles[int(a)%len(modelRoles)]
	switch op % 16 {
	case 0:
		return CreateUser{ID: user, Username: modelUsernames[int(b)%len(modelUsernames)]}
	case 1:
		return LinkChatHandle{User: user, Provider: modelProviders[int(b)%2], Handle: modelHandles[int(b>>1)%len(modelHandles)]}
	case 2:
		return UnlinkChatHandle{User: user, Provider: modelProviders[int(b)%2]}
	case 3:
		return DisableUser{User: user}
	case 4:
		return EnableUser{User: user}
	case 5:
		return CreateGroup{Name: group}
	case 6:
		return AddMember{Group: group, User: modelUsers[int(b)%len(modelUsers)]}
	case 7:
		return RemoveMember{Group: group, User: modelUsers[int(b)%len(modelUsers)]}
	case 8:
		return GrantRoleToGroup{Group: group, Role: modelRoles[int(b)%len(modelRoles)]}
	case 9:
		return RevokeRoleFromGroup{Group: group, Role: modelRoles[int(b)%len(modelRoles)]}
	case 10:
		return CreateRole{Name: role}
	case 11:
		return GrantPermission{Role: role, Permission: modelPerms[int(b)%len(modelPerms)]}
	case 12:
		return RevokePermission{Role: role, Permission: modelPerms[int(b)%len(modelPerms)]}
	case 13:
		return CreateSitePermission{Name: []string{"x", "site:y"}[int(a)%2]}
	case 14:
		var declared []string
		for i, p := range modelBundle {
			if a&(1<<i) != 0 {
				declared = append(declared, p)
			}
		}
		if err := dir.DeclarePermissions("deploy", declared); err != nil {
			panic(err)
		}
	default:
		dir.RetractPermissions("deploy")
	}
	return nil
}

func runModel(t *testing.T, program []byte) {
	t.Helper()
	dir := NewDirectory()
	streams := map[string][]domain.Payload{}
	for i := 0; i+2 < len(program); i += 3 {
		cmd := modelCommand(dir, program[i], program[i+1], program[i+2])
		if cmd == nil {
			continue
		}
		adminsBefore, enabledBefore := adminCounts(dir)
		existedBefore := map[string]bool{}
		for _, p := range modelPerms {
			existedBefore[p] = dir.PermissionExists(p)
		}

		evs, err := Decide(streams[cmd.Stream()], cmd, dir)
		if err != nil {
			if KindOf(err) == 0 || evs != nil {
				t.Fatalf("step %d %#v: error %v of no kind or with events %v", i/3, cmd, err, evs)
			}
			continue
		}
		for _, e := range evs {
			if ev, ok := e.(Event); !ok || ev.Stream() != cmd.Stream() {
				t.Fatalf("step %d %#v: event %#v for another stream", i/3, cmd, e)
			}
			if g, ok := e.(PermissionGranted); ok && !existedBefore[g.Permission] {
				t.Fatalf("step %d: granted %s, which did not exist", i/3, g.Permission)
			}
			streams[cmd.Stream()] = append(streams[cmd.Stream()], e)
			dir.Apply(e)
		}

		if len(evs) > 0 {
			again, err := Decide(streams[cmd.Stream()], cmd, dir)
			switch {
			case isCreate(cmd) && KindOf(err) != KindAlreadyExists:
				t.Fatalf("step %d: repeating %#v gave %v, %v; want already exists", i/3, cmd, again, err)
			case !isCreate(cmd) && (err != nil || len(again) != 0):
				t.Fatalf("step %d: repeating %#v gave %v, %v; want a no-op", i/3, cmd, again, err)
			}
		}

		adminsAfter, enabledAfter := adminCounts(dir)
		if adminsBefore > 0 && adminsAfter == 0 {
			t.Fatalf("step %d: %#v removed the last admin", i/3, cmd)
		}
		if enabledBefore > 0 && enabledAfter == 0 {
			t.Fatalf("step %d: %#v left no enabled admin", i/3, cmd)
		}
		checkDirectoryInvariants(t, dir, streams)
	}
}

func isCreate(cmd Command) bool {
	switch cmd.(type) {
	case CreateUser, CreateGroup, CreateRole, CreateSitePermission:
		return true
	}
	return false
}

func adminCounts(dir *Directory) (members, enabled int) {
	for _, id := range dir.GroupMembers(AdminGroup) {
		members++
		if u, ok := dir.User(id); ok && !u.Disabled {
			enabled++
		}
	}
	return members, enabled
}

func checkDirectoryInvariants(t *testing.T, dir *Directory, streams map[string][]domain.Payload) {
	t.Helper()
	owners := map[ChatHandle]string{}
	usernames := map[string]bool{}
	for _, u := range dir.Users() {
		if usernames[u.Username] {
			t.Fatalf("username %s is used twice", u.Username)
		}
		usernames[u.Username] = true
		providers := map[string]bool{}
		for _, h := range u.Handles {
			if providers[h.Provider] {
				t.Fatalf("user %s has two handles on %s", u.ID, h.Provider)
			}
			providers[h.Provider] = true
			if other, taken := owners[h]; taken {
				t.Fatalf("handle %v belongs to both %s and %s", h, other, u.ID)
			}
			owners[h] = u.ID
			if got, ok := dir.UserByHandle(h.Provider, h.Handle); !ok || got.ID != u.ID {
				t.Fatalf("handle %v does not resolve to its owner %s", h, u.ID)
			}
		}
		perms := dir.PermissionsOf(u.ID)
		if u.Disabled && len(perms) != 0 {
			t.Fatalf("disabled user %s has permissions %v", u.ID, perms)
		}
		for _, p := range perms {
			if !dir.PermissionExists(p) || !dir.HasPermission(u.ID, p) {
				t.Fatalf("user %s holds %s, which does not exist or HasPermission denies", u.ID, p)
			}
		}

		// The aggregate rebuilt from its stream agrees with the read model.
		var state User
		for _, e := range streams[UserStream(u.ID)] {
			state = EvolveUser(state, e)
		}
		fromDir := map[string]string{}
		for _, h := range u.Handles {
			fromDir[h.Provider] = h.Handle
		}
		if state.disabled != u.Disabled || !maps.Equal(state.handles, fromDir) {
			t.Fatalf("user %s: stream says disabled=%v handles=%v, directory says %v %v",
				u.ID, state.disabled, state.handles, u.Disabled, fromDir)
		}
	}
	for _, name := range dir.Groups() {
		var g Group
		for _, e := range streams[GroupStream(name)] {
			g = EvolveGroup(g, e)
		}
		fromStream := slices.Sorted(maps.Keys(g.members))
		if fromDir := dir.GroupMembers(name); !reflect.DeepEqual(fromStream, fromDir) && len(fromStream)+len(fromDir) > 0 {
			t.Fatalf("group %s: stream members %v, directory %v", name, fromStream, fromDir)
		}
	}
}

func TestRandomCommandSequencesKeepTheInvariants(t *testing.T) {
	t.Parallel()
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 0x10cb00c))
		program := make([]byte, 3*300)
		for i := range program {
			program[i] = byte(rng.Uint32())
		}
		runModel(t, program)
	}
}

// bootstrap is a program that builds a working world: users, an admin
// group with members, a role with a bundle permission; the fuzzer mutates it.
var bootstrap = []byte{
	0, 0, 0, 0, 1, 1, 0, 2, 2, // three users
	5, 0, 0, 5, 1, 0, // admin and ops
	6, 0, 0, 6, 0, 1, 6, 1, 2, // a and b in admin, c in ops
	14, 3, 0, 10, 0, 0, 11, 0, 0, // deploy bundle, role r1 with deploy:prod
	8, 0, 0, 8, 1, 0, // r1 to admin and ops
	1, 0, 0, 1, 1, 0, // a and b try to link the same slack handle
	3, 0, 0, 3, 1, 0, 7, 0, 0, 7, 0, 1, // disable both admins, remove both
	15, 0, 0, 13, 0, 0, 11, 1, 2, // retract, site:x, r2 grants site:x
}

func FuzzAccessCommands(f *testing.F) {
	f.Add(bootstrap)
	f.Add([]byte{0, 0, 0, 1, 0, 0, 2, 0, 0})
	f.Fuzz(func(t *testing.T, program []byte) {
		if len(program) > 3*500 {
			program = program[:3*500]
		}
		runModel(t, program)
	})
}
