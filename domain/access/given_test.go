package access

import (
	"reflect"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain"
)

// scenario is a given-when-then test of one command: given past events (of
// any stream) and the permissions bundles declare, when a command is
// decided, then these events or this error.
type scenario struct {
	t       *testing.T
	events  []domain.Payload
	bundles map[string][]string
}

func given(t *testing.T, events ...domain.Payload) *scenario {
	t.Helper()
	return &scenario{t: t, events: events}
}

// withBundles declares bundle permissions as if BundleInstalled had been
// folded.
func (s *scenario) withBundles(bundles map[string][]string) *scenario {
	s.bundles = bundles
	return s
}

type outcome struct {
	t      *testing.T
	cmd    Command
	events []domain.Payload
	err    error
}

func (s *scenario) when(cmd Command) *outcome {
	s.t.Helper()
	dir := NewDirectory()
	for bundle, perms := range s.bundles {
		if err := dir.DeclarePermissions(bundle, perms); err != nil {
			s.t.Fatalf("declaring bundle %s: %v", bundle, err)
		}
	}
	var history []domain.Payload
	for _, e := range s.events {
		dir.Apply(e)
		ev, ok := e.(Event)
		if !ok {
			s.t.Fatalf("given event %T is not an access Event", e)
		}
		if ev.Stream() == cmd.Stream() {
			history = append(history, e)
		}
	}
	events, err := Decide(history, cmd, dir)
	again, againErr := Decide(history, cmd, dir)
	if !reflect.DeepEqual(events, again) || (err == nil) != (againErr == nil) {
		s.t.Fatalf("deciding %#v twice gave different answers: %v, %v then %v, %v", cmd, events, err, again, againErr)
	}
	for _, e := range events {
		if ev, ok := e.(Event); !ok || ev.Stream() != cmd.Stream() {
			s.t.Fatalf("command for %s produced %#v, which belongs to another stream", cmd.Stream(), e)
		}
	}
	return &outcome{t: s.t, cmd: cmd, events: events, err: err}
}

// then asserts the command succeeded with exactly these events; none means
// the command was a no-op.
func (o *outcome) then(want ...domain.Payload) {
	o.t.Helper()
	if o.err != nil {
		o.t.Fatalf("when %#v: unexpected error: %v", o.cmd, o.err)
	}
	if len(want) == 0 && len(o.events) == 0 {
		return
	}
	if !reflect.DeepEqual(o.events, want) {
		o.t.Fatalf("when %#v:\n got events %#v\nwant events %#v", o.cmd, o.events, want)
	}
}

// thenError asserts the command failed with an access error of this kind
// whose sentence contains msg.
func (o *outcome) thenError(kind ErrorKind, msg string) {
	o.t.Helper()
	if o.err == nil {
		o.t.Fatalf("when %#v: got events %#v, want a %s error", o.cmd, o.events, kind)
	}
	if o.events != nil {
		o.t.Fatalf("when %#v: got events %#v alongside error %v", o.cmd, o.events, o.err)
	}
	if got := KindOf(o.err); got != kind {
		o.t.Fatalf("when %#v: got %s error %q, want kind %s", o.cmd, got, o.err, kind)
	}
	if !strings.Contains(o.err.Error(), msg) {
		o.t.Fatalf("when %#v: error %q does not say %q", o.cmd, o.err, msg)
	}
}

// gwt is one row of a given-when-then table.
type gwt struct {
	name    string
	bundles map[string][]string
	given   []domain.Payload
	when    Command
	then    []domain.Payload // empty with err 0: the command is a no-op
	err     ErrorKind
	msg     string // part of the error's sentence
}

func runScenarios(t *testing.T, cases []gwt) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := given(t, c.given...).withBundles(c.bundles).when(c.when)
			if c.err != 0 {
				o.thenError(c.err, c.msg)
				return
			}
			o.then(c.then...)
		})
	}
}

// events concatenates histories so fixtures compose: events(alice, bob).
func events(parts ...[]domain.Payload) []domain.Payload {
	var out []domain.Payload
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func evs(e ...domain.Payload) []domain.Payload { return e }

// Fixtures: a small world to state scenarios in.
var (
	alice = evs(UserCreated{User: "u-alice", Username: "alice", Email: "alice@example.com"})
	bob   = evs(UserCreated{User: "u-bob", Username: "bob"})
	carol = evs(UserCreated{User: "u-carol", Username: "carol"})

	aliceOnSlack = evs(ChatHandleLinked{User: "u-alice", Provider: "slack", Handle: "U123"})

	adminGroup = evs(GroupCreated{Group: AdminGroup})
	opsGroup   = evs(GroupCreated{Group: "ops"})

	deployerRole = evs(RoleCreated{Role: "deployer"})

	deployBundle = map[string][]string{"deploy": {"deploy:prod", "deploy:staging"}}
)

func member(group, user string) []domain.Payload {
	return evs(MemberAdded{Group: group, User: user})
}

func disabled(user string) []domain.Payload { return evs(UserDisabled{User: user}) }
