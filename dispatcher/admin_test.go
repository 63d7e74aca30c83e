package dispatcher_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/dispatcher/admin"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/internal/samplebundle"
	"github.com/logbookhq/logbook/internal/testenv"
	"github.com/logbookhq/logbook/projections"
)

// startAdmin is start with the administration builtins (and history and
// transcript over the store's views, kept current by a projection runner)
// and a bootstrapped admin.
func startAdmin(t *testing.T) *harness {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	db := projections.DBOf(store)
	adminBuiltins, err := admin.Builtins(admin.Config{
		Store: store, History: projections.NewHistoryReader(db), Transcripts: projections.NewTranscriptReader(db),
	})
	if err != nil {
		t.Fatal(err)
	}
	facts := dispatcher.NewFacts(dispatch.DefaultBuiltins().With(adminBuiltins...), dispatch.Settings{}, nil)
	bus := &capture{}
	d, err := dispatcher.New(dispatcher.Config{
		Store: store, Publisher: withBuiltins(t, store, facts, bus), Facts: facts,
		Checkpoints: dispatcher.SQLCheckpoints{DB: store.WriteDB(), Rebind: sqlstore.RebindQuestion},
		Posters:     map[string]dispatcher.ReplyPoster{"api": dispatcher.Posted{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	views, err := projections.NewRunner(store, projections.Config{}, projections.NewHistory(), projections.NewTranscripts())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- d.Run(ctx) }()
	go func() { done <- views.Run(ctx) }()
	h := &harness{store: store, d: d, facts: facts, bus: bus}
	h.stop = func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil && ctx.Err() == nil {
				t.Error(err)
			}
		}
		store.Close()
	}
	t.Cleanup(h.stop)
	if _, err := dispatcher.Bootstrap(context.Background(), store); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the admin to be known", func() bool { _, ok := facts.UserByUsername("admin"); return ok })
	return h
}

var messageSeq atomic.Int64

// as sends text as user and returns the reply.
func (h *harness) as(t *testing.T, user, text string) dispatch.Reply {
	t.Helper()
	return h.say(t, fmt.Sprintf("admin-%d", messageSeq.Add(1)), user, text)
}

// must sends text and fails the test unless the request completed.
func (h *harness) must(t *testing.T, user, text string) string {
	t.Helper()
	reply := h.as(t, user, text)
	if reply.Failed {
		t.Fatalf("%s: %q failed: %s", user, text, reply.Text)
	}
	return reply.Text
}

func TestAdministrationCommandsRecordEventsAndAnswerClearly(t *testing.T) {
	h := startAdmin(t)
	steps := []struct {
		name, user, text string
		failed           bool
		mention          string
	}{
		{"an admin creates a user", "admin", "user create bob --email=bob@example.com", false, "Created user bob"},
		{"creating a user whose name is taken is refused", "admin", "user create bob", true, "already taken"},
		{"a user name that breaks the naming rules is refused", "admin", "user create 'b o b'", true, "username"},
		{"--email without an equals sign is explained", "admin", "user create carol --email carol@example.com", true, "--email=VALUE"},
		{"an admin links a chat handle", "admin", "user link bob slack U42", false, "Linked U42 on slack to bob"},
		{"the handle cannot go to a second user", "admin", "user create carol", false, "Created user carol"},
		{"a taken handle is refused with its owner", "admin", "user link carol slack U42", true, "bob"},
		{"a group is created", "admin", "group create devs", false, "Created group devs"},
		{"a member is added", "admin", "group add devs bob", false, "Added bob to devs"},
		{"adding an unknown user names them", "admin", "group add devs zed", true, "no user named zed"},
		{"a role is created", "admin", "role create shouters", false, "Created role shouters"},
		{"a permission that does not exist cannot be granted", "admin", "role grant shouters site:deploy", true, "site:deploy"},
		{"a site permission is created", "admin", "permission create site:deploy", false, "Created permission site:deploy"},
		{"then it can be granted", "admin", "role grant shouters site:deploy", false, "Granted site:deploy to role shouters"},
		{"the role is granted to the group", "admin", "group grant devs shouters", false, "Granted role shouters to group devs"},
		{"the group list shows members and roles", "admin", "group list devs", false, "devs: members bob; roles shouters"},
		{"the role list shows permissions", "admin", "role list shouters", false, "shouters: site:deploy"},
		{"the user list shows handles and groups", "admin", "user list", false, "bob <bob@example.com>; handles: slack: U42; groups: devs"},
		{"the permission list has the builtin and site permissions", "admin", "permission list", false, "logbook:manage_users"},
		{"a user without manage_users is denied", "bob", "user list", true, "logbook:manage_users"},
		{"a user without manage_roles cannot grant roles to groups", "bob", "group grant devs shouters", true, "logbook:manage_roles"},
		{"the last admin cannot be removed from the admin group", "admin", "group remove admin admin", true, "admin"},
		{"a user is disabled", "admin", "user disable carol", false, "Disabled carol"},
		{"a disabled user is denied everything", "carol", "echo hi", true, "disabled"},
		{"and enabled again", "admin", "user enable carol", false, "Enabled carol"},
		{"an unknown subcommand gets the usage", "admin", "user frobnicate", true, "usage: user create NAME"},
		{"unlinking frees the handle", "admin", "user unlink bob slack", false, "Unlinked bob's slack handle"},
		{"so it can be linked to someone else", "admin", "user link carol slack U42", false, "Linked U42 on slack to carol"},
	}
	for _, s := range steps {
		reply := h.as(t, s.user, s.text)
		if reply.Failed != s.failed || !strings.Contains(reply.Text, s.mention) {
			t.Fatalf("%s: %s ran %q: failed=%v, reply %q; want failed=%v mentioning %q", s.name, s.user, s.text, reply.Failed, reply.Text, s.failed, s.mention)
		}
	}
	// The decisions are events in the access streams, as any other change.
	types := eventTypes(t, h, "group-devs")
	if want := "GroupCreated MemberAdded RoleGranted"; strings.Join(types, " ") != want {
		t.Fatalf("group-devs = %v, want %s", types, want)
	}
}

func eventTypes(t *testing.T, h *harness, stream string) []string {
	t.Helper()
	events, err := h.store.ReadStream(context.Background(), stream, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	return types
}

// A grant is in force for the very next request: the dispatcher folds the
// grant's events from the feed before it decides anything appended later,
// so no sleep or wait separates the grant from its use.
func TestAGrantTakesEffectForTheVeryNextRequest(t *testing.T) {
	h := startAdmin(t)
	for _, text := range []string{"user create bob", "group create ops", "group add ops bob", "role create user-admins"} {
		h.must(t, "admin", text)
	}
	if reply := h.as(t, "bob", "user list"); !reply.Failed || !strings.Contains(reply.Text, "missing permission logbook:manage_users") {
		t.Fatalf("before the grant bob was not denied: %+v", reply)
	}
	h.must(t, "admin", "role grant user-admins logbook:manage_users")
	h.must(t, "admin", "group grant ops user-admins")
	if reply := h.as(t, "bob", "user list"); reply.Failed || !strings.Contains(reply.Text, "bob") {
		t.Fatalf("the request right after the grant was not allowed: %+v", reply)
	}
	h.must(t, "admin", "group revoke ops user-admins")
	if reply := h.as(t, "bob", "user list"); !reply.Failed {
		t.Fatalf("the request right after the revoke was allowed: %+v", reply)
	}
}

var tokenPattern = regexp.MustCompile(`lbk_[A-Za-z0-9_-]{43}`)

// A token is shown once in the reply and never recorded: the log holds its
// hash, and the run's recorded output a placeholder.
func TestAnIssuedTokenIsInTheReplyOnlyAndWorks(t *testing.T) {
	h := startAdmin(t)
	h.must(t, "admin", "user create bob")
	text := h.must(t, "admin", "user token bob --note=ci")
	token := tokenPattern.FindString(text)
	if token == "" {
		t.Fatalf("the reply has no token: %q", text)
	}
	testenv.Eventually(t, "the token to authenticate bob", func() bool {
		u, ok := h.facts.UserForToken(token)
		return ok && u.Username == "bob"
	})
	events, err := h.store.ReadAll(context.Background(), 1, 100000)
	if err != nil {
		t.Fatal(err)
	}
	placeholders, renderedPlaceholders := 0, 0
	for _, e := range events {
		if strings.Contains(string(e.Data), token) || strings.Contains(string(e.RawMetadata), token) {
			t.Fatalf("the token is recorded at position %d (%s %s)", e.Position, e.Stream, e.Type)
		}
		if strings.Contains(string(e.Data), "[secret:") {
			placeholders++
			if e.Type == (dispatch.ReplyPosted{}).EventType() {
				renderedPlaceholders++
			}
		}
	}
	if placeholders == 0 {
		t.Fatal("no recorded output carries the placeholder the reply replaced")
	}
	if renderedPlaceholders == 0 {
		t.Fatal("the reply's record does not keep its rendered text with the placeholder")
	}
	if other := tokenPattern.FindString(h.must(t, "admin", "user token bob")); other == "" || other == token {
		t.Fatalf("a second token %q is not a new one", other)
	}
}

func TestAliasesExpandForTheirOwnerAndTheSite(t *testing.T) {
	h := startAdmin(t)
	h.must(t, "admin", "user create bob")
	steps := []struct {
		name, user, text string
		failed           bool
		mention          string
	}{
		{"anyone may create their own alias", "bob", "alias create hi 'echo hello from bob'", false, "Created your alias hi"},
		{"the alias runs its pipeline", "bob", "hi", false, "hello from bob"},
		{"extra words follow the expansion", "bob", "hi again", false, "hello from bob again"},
		{"another user does not have it", "admin", "hi", true, "no command hi"},
		{"a site alias needs logbook:admin", "bob", "alias create --site hi 'echo site'", true, "logbook:admin"},
		{"an admin creates a site alias", "admin", "alias create --site hi 'echo site hello'", false, "Created the site alias hi"},
		{"the site alias serves everyone else", "admin", "hi", false, "site hello"},
		{"a user's own alias wins over the site's", "bob", "hi", false, "hello from bob"},
		{"a second alias of the same name is refused", "bob", "alias create hi 'echo x'", true, "exists already"},
		{"a name that is not a word is refused with its column", "bob", "alias create 'h:i' 'echo x'", true, "column 2"},
		{"a builtin name cannot be hidden", "bob", "alias create echo 'echo x'", true, "builtin"},
		{"a pipeline that does not parse is refused", "bob", `alias create bad 'echo "open'`, true, "does not parse"},
		{"the list shows both", "bob", "alias list", false, "hi (yours): echo hello from bob\nhi (site): echo site hello"},
		{"deleting falls back to the site alias", "bob", "alias delete hi", false, "Deleted your alias hi"},
		{"now the site alias answers bob", "bob", "hi", false, "site hello"},
		{"deleting what is not there says so", "bob", "alias delete hi", true, "does not exist"},
	}
	for _, s := range steps {
		reply := h.as(t, s.user, s.text)
		if reply.Failed != s.failed || !strings.Contains(reply.Text, s.mention) {
			t.Fatalf("%s: %s ran %q: failed=%v, reply %q; want failed=%v mentioning %q", s.name, s.user, s.text, reply.Failed, reply.Text, s.failed, s.mention)
		}
	}
	if types := eventTypes(t, h, dispatch.AliasStream(dispatch.SiteAliasOwner)); strings.Join(types, " ") != "AliasCreated" {
		t.Fatalf("site alias stream = %v", types)
	}
}

func TestBundlesAreInstalledEnabledAndDisabledFromChat(t *testing.T) {
	h := startAdmin(t)
	config := base64.StdEncoding.EncodeToString(samplebundle.Config)
	greedy := base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(samplebundle.Config), "pids: 32", "pids: 2000", 1)))
	steps := []struct {
		name, text string
		failed     bool
		mention    string
	}{
		{"nothing is installed at first", "bundle list", false, "No bundles are installed"},
		{"a config that does not load is refused", "bundle install 'name: x'", true, "does not load"},
		{"a config asking for more pids than the site allows is refused", "bundle install --base64=" + greedy, true, "execution.pids: 2000 is above this site's maximum of 1024 processes"},
		{"a config installs from base64", "bundle install --base64=" + config, false, "Installed and enabled bundle toolbox 0.1.0"},
		{"installing the same version again only enables it", "bundle install --base64=" + config, false, "already enabled"},
		{"the list shows the version and the relay group", "bundle list", false, "toolbox: enabled 0.1.0; installed 0.1.0; relay group default"},
		{"a bundle is assigned to a relay group", "bundle assign toolbox prod", false, "run in relay group prod"},
		{"assigning it again says so", "bundle assign toolbox prod", false, "already runs in relay group prod"},
		{"a relay group name is checked", "bundle assign toolbox Prod.EU", true, `relay group "Prod.EU"`},
		{"an unknown bundle cannot be assigned", "bundle assign nope prod", true, "no bundle named nope"},
		{"the list shows its group", "bundle list", false, "relay group prod"},
		{"unassigning sends it back to the default group", "bundle unassign toolbox", false, "left relay group prod"},
		{"its commands run", "which wc", false, "toolbox:wc"},
		{"a bundle is disabled", "bundle disable toolbox", false, "Disabled bundle toolbox"},
		{"its commands no longer run", "toolbox:wc", true, "disabled"},
		{"an installed version is enabled by name", "bundle install toolbox 0.1.0", false, "Enabled bundle toolbox 0.1.0"},
		{"a version never installed cannot be enabled", "bundle enable toolbox 9.9", true, "not installed"},
		{"disabling an unknown bundle says so", "bundle disable nope", true, "no bundle named nope"},
	}
	for _, s := range steps {
		reply := h.as(t, "admin", s.text)
		if reply.Failed != s.failed || !strings.Contains(reply.Text, s.mention) {
			t.Fatalf("%s: %q: failed=%v, reply %q; want failed=%v mentioning %q", s.name, s.text, reply.Failed, reply.Text, s.failed, s.mention)
		}
	}
	if got := strings.Join(eventTypes(t, h, "bundle-toolbox"), " "); !strings.Contains(got, "BundleAssigned BundleUnassigned") {
		t.Fatalf("bundle stream: %s", got)
	}
	changed := strings.Replace(string(samplebundle.Config), "Small commands", "Other commands", 1)
	reply := h.as(t, "admin", "bundle install --base64="+base64.StdEncoding.EncodeToString([]byte(changed)))
	if !reply.Failed || !strings.Contains(reply.Text, "new version") {
		t.Fatalf("a changed config under an installed version was not refused: %+v", reply)
	}
}

func TestHistoryAndTranscriptAreBuiltins(t *testing.T) {
	h := startAdmin(t)
	h.must(t, "admin", "user create bob")
	h.must(t, "bob", "echo first words")
	// Waited for as the admin, looking at bob's requests alone: each look
	// is a request of its own, and bob's would push his first out of his
	// last five while the view catches up.
	testenv.Eventually(t, "bob's request in the history view", func() bool {
		return strings.Contains(h.as(t, "admin", "history --user=bob --limit=100").Text, "echo first words")
	})
	if text := h.must(t, "bob", "history --limit=5"); !strings.Contains(text, "echo first words") || !strings.Contains(text, "of bob") {
		t.Fatalf("bob's history = %q", text)
	}
	if reply := h.as(t, "bob", "history --user=admin"); !reply.Failed || !strings.Contains(reply.Text, "logbook:read_history") {
		t.Fatalf("bob read admin's history: %+v", reply)
	}
	if text := h.must(t, "admin", "history --user=bob --limit=1"); !strings.Contains(text, "The last 1 requests of bob") {
		t.Fatalf("an admin's history of bob = %q", text)
	}
	if reply := h.as(t, "admin", "history --limit=0"); !reply.Failed || !strings.Contains(reply.Text, "1 to 100") {
		t.Fatalf("a bad limit was accepted: %+v", reply)
	}
	unknown := h.as(t, "bob", "transcript nope")
	if !unknown.Failed || !strings.Contains(unknown.Text, "no run nope") {
		t.Fatalf("an unknown run: %+v", unknown)
	}
	// Another user's run reads as one that does not exist.
	h.must(t, "admin", "echo the admin words")
	db := projections.DBOf(h.store)
	var adminRun string
	testenv.Eventually(t, "admin's run and its output in the views", func() bool {
		page, err := projections.NewHistoryReader(db).Runs(context.Background(), projections.RunFilter{Username: "admin", Command: "logbook:echo", Limit: 1})
		if err != nil || len(page.Runs) != 1 {
			return false
		}
		adminRun = page.Runs[0].RunID
		out, err := projections.NewTranscriptReader(db).Output(context.Background(), adminRun, "")
		return err == nil && strings.Contains(string(out), "the admin words")
	})
	if text := h.must(t, "admin", "transcript "+adminRun); !strings.Contains(text, "the admin words") {
		t.Fatalf("the admin's own transcript = %q", text)
	}
	reply := h.as(t, "bob", "transcript "+adminRun)
	if !reply.Failed || !strings.Contains(reply.Text, "there is no run "+adminRun+" in the history") || strings.Contains(reply.Text, "admin") {
		t.Fatalf("bob reading admin's run %s got %q; want it answered as the unknown run was: %q", adminRun, reply.Text, unknown.Text)
	}
}

// The events the builtins record decode with this build's registry.
func TestAliasEventsAreRegistered(t *testing.T) {
	t.Parallel()
	for _, p := range []domain.Payload{dispatch.AliasCreated{Owner: "site", Name: "x", Pipeline: "echo"}, dispatch.AliasDeleted{Owner: "site", Name: "x"}} {
		e, err := domain.Encode(p, domain.Metadata{})
		if err != nil {
			t.Fatal(err)
		}
		back, err := domain.Decode(domain.RecordedEvent{Type: e.Type, Data: e.Data})
		if err != nil || back != p {
			t.Fatalf("decode %s = %#v, %v", e.Type, back, err)
		}
	}
}
