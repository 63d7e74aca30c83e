package dispatch

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/bundleconfig"
	"github.com/logbookhq/logbook/domain/run"
)

// The world of these tests: alice (slack U1) is in the ops group, whose role
// may deploy but not to prod; bob (slack U2) holds nothing; carol (slack U3)
// is disabled; dave (slack U4) may deploy to prod.
const opsBundle = `
cog_bundle_version: 4
name: ops
description: Operations
version: "1.2.0"
docker:
  image: acme/ops
  tag: "1.2.0"
permissions:
  - ops:deploy
  - ops:prod
config:
  env:
    - var: OPS_TOKEN
commands:
  deploy:
    executable: /bin/deploy
    description: Deploy a service
    arguments: "<env>"
    options:
      region:
        type: string
        short_flag: r
        description: Where to deploy
    execution:
      timeout: 30s
    rules:
      - must have ops:deploy
      - with arg[0] == 'prod' must have ops:prod
  status:
    executable: /bin/status
    description: Show status
    rules:
      - allow
  list:
    executable: /bin/list
    description: List services
    rules:
      - allow
  locked:
    executable: /bin/locked
    description: Runs only with the argument "never"
    rules:
      - with arg[0] == 'never' allow
`

const webBundle = `
cog_bundle_version: 4
name: web
description: Web things
version: "0.1.0"
docker:
  image: acme/web
  tag: "0.1.0"
commands:
  status:
    executable: /bin/status
    description: Web status
    rules:
      - allow
  page:
    executable: /bin/page
    description: Page someone
    rules:
      - allow
`

const legacyBundle = `
cog_bundle_version: 4
name: legacy
description: Old things
version: "0.0.1"
docker:
  image: acme/legacy
  tag: "0.0.1"
commands:
  purge:
    executable: /bin/purge
    description: Purge
    rules:
      - allow
`

func loadBundle(t testing.TB, text string) *bundle.Bundle {
	t.Helper()
	b, err := bundle.Load([]byte(text))
	if err != nil {
		t.Fatalf("loading test bundle: %v", err)
	}
	return b
}

func newTestFacts(t testing.TB) *StaticFacts {
	t.Helper()
	dir := access.NewDirectory()
	if err := dir.DeclarePermissions("ops", []string{"ops:deploy", "ops:prod"}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []domain.Payload{
		access.UserCreated{User: "u-alice", Username: "alice", Email: "alice@example.com"},
		access.ChatHandleLinked{User: "u-alice", Provider: "slack", Handle: "U1"},
		access.UserCreated{User: "u-bob", Username: "bob"},
		access.ChatHandleLinked{User: "u-bob", Provider: "slack", Handle: "U2"},
		access.UserCreated{User: "u-carol", Username: "carol"},
		access.ChatHandleLinked{User: "u-carol", Provider: "slack", Handle: "U3"},
		access.UserDisabled{User: "u-carol"},
		access.UserCreated{User: "u-dave", Username: "dave"},
		access.ChatHandleLinked{User: "u-dave", Provider: "slack", Handle: "U4"},
		access.RoleCreated{Role: "deployer"},
		access.PermissionGranted{Role: "deployer", Permission: "ops:deploy"},
		access.RoleCreated{Role: "releaser"},
		access.PermissionGranted{Role: "releaser", Permission: "ops:prod"},
		access.GroupCreated{Group: "ops"},
		access.MemberAdded{Group: "ops", User: "u-alice"},
		access.MemberAdded{Group: "ops", User: "u-dave"},
		access.RoleGranted{Group: "ops", Role: "deployer"},
		access.GroupCreated{Group: "release"},
		access.MemberAdded{Group: "release", User: "u-dave"},
		access.RoleGranted{Group: "release", Role: "releaser"},
	} {
		dir.Apply(e)
	}
	return &StaticFacts{
		Directory: dir,
		Installed: []InstalledBundle{
			{Bundle: loadBundle(t, opsBundle), Enabled: true},
			{Bundle: loadBundle(t, webBundle), Enabled: true},
			{Bundle: loadBundle(t, legacyBundle), Enabled: false},
		},
		UserAliases: map[string]map[string]string{"u-alice": {"st": "ops:status"}},
		SiteAliases: map[string]string{"st": "web:status", "prodstat": "ops:status | echo $body[0]"},
		Unpostable:  []string{"slack room secret"},
		Previous:    map[string]string{"u-alice": "ops:list"},
		Config:      Settings{DefaultLimits: run.Limits{TimeoutMS: 60000, MemoryBytes: 1 << 28}},
		// The ops bundle declares OPS_TOKEN: a secret in its base layer.
		Values: configValues(bundleconfig.SecretSet{Bundle: "ops", Layer: "base", Key: "OPS_TOKEN", Version: 1}),
	}
}

func configValues(events ...domain.Payload) bundleconfig.Values {
	v := bundleconfig.Values{}
	for _, e := range events {
		v.Apply(e)
	}
	return v
}

const testAdapter = "slack"

// received is a request typed by a handle in #general.
func received(handle, text string) RequestReceived {
	return RequestReceived{Adapter: testAdapter, MessageID: "m-" + handle + "-" + text, Room: "general", ChatUser: handle, Text: text}
}

// scenario is a given-when-then test of Decide.
type scenario struct {
	t       *testing.T
	facts   *StaticFacts
	history []domain.Payload
	// last is the decision record saw most recently.
	last Decision
}

func given(t *testing.T, events ...domain.Payload) *scenario {
	t.Helper()
	return &scenario{t: t, facts: newTestFacts(t), history: events}
}

func (s *scenario) withFacts(change func(*StaticFacts)) *scenario {
	change(s.facts)
	return s
}

// when decides trigger against the folded history and checks what every
// decision must satisfy: deciding again gives the same decision, and
// deciding once more after recording it decides nothing.
func (s *scenario) when(trigger domain.Payload) (Decision, error) {
	s.t.Helper()
	r := Fold(s.history)
	d, err := Decide(r, trigger, s.facts)
	again, againErr := Decide(r, trigger, s.facts)
	if !reflect.DeepEqual(d, again) || (err == nil) != (againErr == nil) {
		s.t.Fatalf("Decide is not deterministic:\n%+v\n%+v", d, again)
	}
	if err != nil {
		return d, err
	}
	after, afterStored := Evolve(r, trigger), Evolve(r, trigger)
	for _, e := range d.Request {
		after, afterStored = Evolve(after, e), Evolve(afterStored, stored(s.t, e))
	}
	if !reflect.DeepEqual(after.stages, afterStored.stages) || !reflect.DeepEqual(after.redirects, afterStored.redirects) {
		s.t.Fatalf("the decision's pipeline folds differently as decided and as read back from the log:\n%+v %+v\n%+v %+v",
			after.stages, after.redirects, afterStored.stages, afterStored.redirects)
	}
	if redo, err := Decide(after, trigger, s.facts); err != nil || !redo.IsZero() {
		s.t.Fatalf("deciding the trigger again after recording its decision decided %+v (err %v)", redo, err)
	}
	return d, nil
}

// then is when that must not fail.
func (s *scenario) then(trigger domain.Payload) Decision {
	s.t.Helper()
	d, err := s.when(trigger)
	if err != nil {
		s.t.Fatalf("Decide: %v", err)
	}
	return d
}

// record appends a decision's request events and returns the scenario for
// the next trigger.
func (s *scenario) record(trigger domain.Payload, d Decision) *scenario {
	s.history = append(s.history, trigger)
	for _, e := range d.Request {
		s.history = append(s.history, stored(s.t, e))
	}
	s.last = d
	return s
}

func typesOf(events []domain.Payload) string {
	names := make([]string, len(events))
	for i, e := range events {
		names[i] = e.EventType()
	}
	return strings.Join(names, " ")
}

func find[T domain.Payload](t *testing.T, events []domain.Payload) T {
	t.Helper()
	for _, e := range events {
		if v, ok := e.(T); ok {
			return v
		}
	}
	var zero T
	t.Fatalf("no %s among %s", zero.EventType(), typesOf(events))
	return zero
}

func findAll[T domain.Payload](events []domain.Payload) []T {
	var out []T
	for _, e := range events {
		if v, ok := e.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func succeeded(runID string, value string) RunEvent {
	return RunEvent{RunID: runID, Event: run.RunSucceeded{Result: run.Result{Value: json.RawMessage(value)}}}
}

func wantTypes(t *testing.T, d Decision, want string) {
	t.Helper()
	if got := typesOf(d.Request); got != want {
		t.Fatalf("request events:\n got %s\nwant %s", got, want)
	}
}

func wantReply(t *testing.T, d Decision, contains ...string) Reply {
	t.Helper()
	if d.Reply == nil {
		t.Fatalf("no reply; events %s", typesOf(d.Request))
	}
	for _, c := range contains {
		if !strings.Contains(d.Reply.Text, c) {
			t.Fatalf("reply %q does not contain %q", d.Reply.Text, c)
		}
	}
	return *d.Reply
}

// stored is p as the log gives it back: encoded, and decoded again.
func stored(t *testing.T, p domain.Payload) domain.Payload {
	t.Helper()
	e := domain.MustEncode(p, domain.Metadata{})
	back, err := domain.Decode(domain.RecordedEvent{Type: e.Type, Data: e.Data})
	if err != nil {
		t.Fatalf("decode %s: %v", e.Type, err)
	}
	return back
}
