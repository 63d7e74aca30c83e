package dispatch

import (
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/eventstore"
)

func selfRegistering(group string) func(*StaticFacts) {
	return func(f *StaticFacts) { f.Config.SelfRegister, f.Config.SelfRegisterGroup = true, group }
}

// applyChanges folds a decision's changes into a copy of the directory, as the
// runner's append followed by the feed would.
func applyChanges(f *StaticFacts, d Decision) {
	for _, c := range d.Changes {
		for _, e := range c.Events {
			f.Directory.Apply(e)
		}
	}
}

func TestSelfRegistrationIsOffByDefault(t *testing.T) {
	t.Parallel()
	d := given(t).then(received("U9", "ops:status"))
	wantTypes(t, d, "IdentityUnknown")
	if len(d.Changes) != 0 {
		t.Fatalf("changes %+v with self-registration off", d.Changes)
	}
	wantReply(t, d, "no Logbook user is linked to your slack handle U9", "!user link USERNAME slack U9")
}

func TestAnUnknownChatUserRegistersWhenConfigured(t *testing.T) {
	t.Parallel()
	t.Run("given no group, the new user is created, linked, and holds nothing", func(t *testing.T) {
		t.Parallel()
		s := given(t).withFacts(selfRegistering(""))
		trigger := received("U9", "ops:deploy staging")
		d := s.then(trigger)
		wantTypes(t, d, "UserRegistered IdentityResolved PipelineParsed PermissionChecked RequestDenied")
		id := SelfRegisteredUserID(RequestID(trigger.Adapter, trigger.MessageID))
		reg := find[UserRegistered](t, d.Request)
		if reg.User != id || reg.Username != "u9" || reg.Adapter != "slack" || reg.ChatUser != "U9" || reg.Group != "" {
			t.Fatalf("registered %+v", reg)
		}
		if resolved := find[IdentityResolved](t, d.Request); resolved.User != id || resolved.Username != "u9" {
			t.Fatalf("resolved %+v, want the new user", resolved)
		}
		if len(d.Changes) != 1 || d.Changes[0].Stream != access.UserStream(id) || d.Changes[0].Expected != eventstore.NoStream {
			t.Fatalf("changes %+v, want the new user's stream, expecting no stream", d.Changes)
		}
		if got := typesOf(d.Changes[0].Events); got != "UserCreated ChatHandleLinked" {
			t.Fatalf("user events %s", got)
		}
		wantReply(t, d, "Welcome: I registered you as Logbook user u9", "no permissions", "missing permission ops:deploy")
	})
	t.Run("given a group that grants a permission, the new user may use it at once", func(t *testing.T) {
		t.Parallel()
		s := given(t).withFacts(selfRegistering("ops"))
		d := s.then(received("U9", "ops:deploy staging"))
		wantTypes(t, d, "UserRegistered IdentityResolved PipelineParsed PermissionChecked StageStarted")
		if len(d.Changes) != 2 || d.Changes[1].Stream != access.GroupStream("ops") {
			t.Fatalf("changes %+v, want the user's stream and the group's", d.Changes)
		}
		added := d.Changes[1].Events[0].(access.MemberAdded)
		if added.Group != "ops" || added.User != find[UserRegistered](t, d.Request).User {
			t.Fatalf("membership %+v", added)
		}
		if len(d.Runs) != 1 || d.Runs[0].Request.Invocation.Username != "u9" {
			t.Fatalf("runs %+v, want one run as u9", d.Runs)
		}
	})
	t.Run("given a group that grants a permission, deny-by-default still holds for the rest", func(t *testing.T) {
		t.Parallel()
		s := given(t).withFacts(selfRegistering("ops"))
		d := s.then(received("U9", "ops:deploy prod"))
		wantTypes(t, d, "UserRegistered IdentityResolved PipelineParsed PermissionChecked RequestDenied")
		wantReply(t, d, "in group ops", "missing permission ops:prod")
	})
	t.Run("given a configured group that does not exist, the user joins none and is told", func(t *testing.T) {
		t.Parallel()
		s := given(t).withFacts(selfRegistering("newcomers"))
		d := s.then(received("U9", "ops:status"))
		if reg := find[UserRegistered](t, d.Request); reg.GroupMissing != "newcomers" || reg.Group != "" {
			t.Fatalf("registered %+v", reg)
		}
		if len(d.Changes) != 1 {
			t.Fatalf("changes %+v, want the user's stream only", d.Changes)
		}
		if len(d.Runs) != 1 {
			t.Fatal("an allowed command did not run")
		}
	})
	t.Run("given a handle whose name is taken, the username is made unique", func(t *testing.T) {
		t.Parallel()
		s := given(t).withFacts(selfRegistering(""))
		d := s.then(received("Alice", "ops:status"))
		if reg := find[UserRegistered](t, d.Request); reg.Username != "alice-2" {
			t.Fatalf("username %q, want alice-2", reg.Username)
		}
	})
	t.Run("given the user registered, the next request resolves to them and registers nobody", func(t *testing.T) {
		t.Parallel()
		s := given(t).withFacts(selfRegistering(""))
		d := s.then(received("U9", "ops:status"))
		applyChanges(s.facts, d)
		next := given(t).withFacts(func(f *StaticFacts) { *f = *s.facts }).then(received("U9", "ops:list"))
		wantTypes(t, next, "IdentityResolved PipelineParsed PermissionChecked StageStarted")
		if len(next.Changes) != 0 {
			t.Fatalf("changes %+v on the second request", next.Changes)
		}
		if resolved := find[IdentityResolved](t, next.Request); resolved.Username != "u9" {
			t.Fatalf("resolved %+v", resolved)
		}
	})
	t.Run("given a handle that cannot be linked, the reply says why", func(t *testing.T) {
		t.Parallel()
		s := given(t).withFacts(selfRegistering(""))
		d := s.then(received("bad handle", "ops:status"))
		unknown := find[IdentityUnknown](t, d.Request)
		if unknown.RegistrationError == "" || len(d.Changes) != 0 {
			t.Fatalf("unknown %+v, changes %+v", unknown, d.Changes)
		}
		wantReply(t, d, "I could not register you myself", "chat handle")
	})
}

func TestUsernamesDerivedFromHandlesAreValidAndUnique(t *testing.T) {
	t.Parallel()
	taken := map[string]bool{"bob": true, "bob-2": true, strings.Repeat("x", 64): true}
	cases := map[string]string{
		"U024BE7LH":             "u024be7lh",
		"Bob":                   "bob-3",
		"Bob[away]":             "bob-away",
		"__Zoë!!":               "zo",
		"!!!":                   "user",
		"a..b":                  "a..b",
		strings.Repeat("X", 80): strings.Repeat("x", 62) + "-2",
	}
	for handle, want := range cases {
		got := UsernameFor(handle, func(name string) bool { return taken[name] })
		if got != want {
			t.Errorf("UsernameFor(%q) = %q, want %q", handle, got, want)
		}
		if err := access.ValidateUsername(got); err != nil {
			t.Errorf("UsernameFor(%q) = %q, which is not a valid username: %v", handle, got, err)
		}
	}
}

func TestAnAuthenticatedSenderIsNeverRegistered(t *testing.T) {
	t.Parallel()
	trigger := received("nobody", "ops:status")
	trigger.Adapter = "api"
	d := given(t).withFacts(selfRegistering("")).then(trigger)
	wantTypes(t, d, "IdentityUnknown")
	if len(d.Changes) != 0 {
		t.Fatalf("changes %+v for an api request", d.Changes)
	}
}
