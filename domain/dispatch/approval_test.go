package dispatch

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/pipeline"
	"github.com/logbookhq/logbook/domain/rules"
)

// The approval world adds the rel bundle to the test world: alice (U1) and
// erin (U5) may run rel:prod; alice, bob (U2) and dave (U4) hold
// rel:approver; frank (U6) holds nothing. rel:prod db needs two approvals,
// rel:prod web one, anything else none.
const relBundle = `
cog_bundle_version: 4
name: rel
description: Releases
version: "2.0.0"
docker:
  image: acme/rel
  tag: "2.0.0"
permissions:
  - rel:run
  - rel:approver
approvals:
  room: rel-approvals
commands:
  prod:
    executable: /bin/prod
    rules:
      - must have rel:run
      - with arg[0] == 'db' must have rel:run with 2 approvals from rel:approver
      - with arg[0] == 'web' must have rel:run with approval from rel:approver
  list:
    executable: /bin/list
    rules:
      - allow
`

// t0 is when the approval world's requests arrive.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func relFacts(t testing.TB) *StaticFacts {
	t.Helper()
	f := newTestFacts(t)
	if err := f.Directory.DeclarePermissions("rel", []string{"rel:run", "rel:approver"}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []domain.Payload{
		access.UserCreated{User: "u-erin", Username: "erin"},
		access.ChatHandleLinked{User: "u-erin", Provider: "slack", Handle: "U5"},
		access.UserCreated{User: "u-frank", Username: "frank"},
		access.ChatHandleLinked{User: "u-frank", Provider: "slack", Handle: "U6"},
		access.RoleCreated{Role: "rel-runner"},
		access.PermissionGranted{Role: "rel-runner", Permission: "rel:run"},
		access.RoleCreated{Role: "rel-approver"},
		access.PermissionGranted{Role: "rel-approver", Permission: "rel:approver"},
		access.GroupCreated{Group: "rel-runners"},
		access.MemberAdded{Group: "rel-runners", User: "u-alice"},
		access.MemberAdded{Group: "rel-runners", User: "u-erin"},
		access.RoleGranted{Group: "rel-runners", Role: "rel-runner"},
		access.GroupCreated{Group: "rel-approvers"},
		access.MemberAdded{Group: "rel-approvers", User: "u-alice"},
		access.MemberAdded{Group: "rel-approvers", User: "u-bob"},
		access.MemberAdded{Group: "rel-approvers", User: "u-dave"},
		access.RoleGranted{Group: "rel-approvers", Role: "rel-approver"},
	} {
		f.Directory.Apply(e)
	}
	f.Installed = append(f.Installed, InstalledBundle{Bundle: loadBundle(t, relBundle), Enabled: true})
	f.Clock = t0
	return f
}

// givenApproval is a scenario in the approval world.
func givenApproval(t *testing.T) *scenario {
	t.Helper()
	return &scenario{t: t, facts: relFacts(t)}
}

// users of the approval world by name: id and handle.
var relUsers = map[string][2]string{
	"alice": {"u-alice", "U1"}, "bob": {"u-bob", "U2"}, "dave": {"u-dave", "U4"},
	"erin": {"u-erin", "U5"}, "frank": {"u-frank", "U6"},
}

// answerBy is username's answer, given at, carried by run via.
func answerBy(username string, v Verdict, at time.Time, via string) ApprovalAnswered {
	return ApprovalAnswered{Verdict: v, User: relUsers[username][0], Username: username, Reason: username + " says so", At: at, Via: via, Room: "general"}
}

// awaiting is an approval-world scenario whose request, typed by alice,
// awaits approval; it returns the request id.
func awaiting(t *testing.T, text string) (*scenario, string) {
	t.Helper()
	s := givenApproval(t)
	trigger := received("U1", text)
	d := s.then(trigger)
	wantTypes(t, d, "IdentityResolved PipelineParsed PermissionChecked ApprovalRequested")
	s.record(trigger, d)
	return s, trigger.ID()
}

func TestARequestWhoseRuleAsksForApprovalRunsNothingAndRecordsWhatItNeeds(t *testing.T) {
	t.Parallel()
	s := givenApproval(t)
	trigger := received("U1", "rel:prod db --force")
	d := s.then(trigger)
	wantTypes(t, d, "IdentityResolved PipelineParsed PermissionChecked ApprovalRequested")
	if len(d.Runs) != 0 || d.Reply != nil {
		t.Fatalf("ran %v, replied %+v", d.Runs, d.Reply)
	}
	check := find[PermissionChecked](t, d.Request)
	if !check.Granted || !reflect.DeepEqual(check.Approvals, []rules.Approval{{Count: 2, Permission: "rel:approver"}}) {
		t.Fatalf("check %+v", check)
	}
	got := find[ApprovalRequested](t, d.Request)
	want := ApprovalRequested{
		Requirements:  []ApprovalRequirement{{Permission: "rel:approver", Needed: 2, Stages: []int{0}}},
		Stages:        []ApprovedStage{{Stage: 0, Command: "rel:prod", Version: "2.0.0"}},
		Text:          "rel:prod db --force",
		Requester:     "u-alice",
		RequesterName: "alice",
		Approvers:     []string{"bob", "dave"},
		ExpiresAt:     t0.Add(DefaultApprovalTTL),
		Notify: []NoticeTarget{
			{Adapter: "slack", To: Destination{Kind: pipeline.DestinationRoom, Name: "general"}},
			{Adapter: "slack", To: Destination{Kind: pipeline.DestinationRoom, Name: "rel-approvals"}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ApprovalRequested\n got %+v\nwant %+v", got, want)
	}
	if len(d.Notices) != 2 {
		t.Fatalf("notices %+v", d.Notices)
	}
	id := trigger.ID()
	for i, n := range d.Notices {
		if n.Reply.Approval != id || n.Reply.To[0] != want.Notify[i].To || !strings.Contains(n.Reply.Text, "alice asks to run: rel:prod db --force") ||
			!strings.Contains(n.Reply.Text, "It needs 2 approvals from rel:approver before 12:15:00 UTC (bob, dave may approve)") ||
			!strings.Contains(n.Reply.Text, "!approve "+id[:8]) {
			t.Fatalf("notice %d: %+v", i, n)
		}
	}
	if d.Notices[0].Key == d.Notices[1].Key {
		t.Fatalf("two notices share the key %q", d.Notices[0].Key)
	}
	s.record(trigger, d)
	if st := Fold(s.history).Status(); st != StatusAwaitingApproval {
		t.Fatalf("status %s", st)
	}
}

func TestWhenAnyStageNeedsApprovalNoStageRuns(t *testing.T) {
	t.Parallel()
	s := givenApproval(t)
	trigger := received("U1", "rel:list | rel:prod web | echo done")
	d := s.then(trigger)
	wantTypes(t, d, "IdentityResolved PipelineParsed PermissionChecked PermissionChecked PermissionChecked ApprovalRequested")
	if len(d.Runs) != 0 {
		t.Fatalf("the first stage started before the second was approved: %+v", d.Runs)
	}
	if reqs := find[ApprovalRequested](t, d.Request).Requirements; !reflect.DeepEqual(reqs, []ApprovalRequirement{{Permission: "rel:approver", Needed: 1, Stages: []int{1}}}) {
		t.Fatalf("requirements %+v", reqs)
	}
}

func TestAnApiRequestsApprovalIsPostedOnlyToAnApproversRoomOnAChatProvider(t *testing.T) {
	t.Parallel()
	onSlack := strings.Replace(relBundle, "  room: rel-approvals\n", "  room: rel-approvals\n  provider: slack\n", 1)
	cases := []struct {
		name   string
		bundle string
		want   []NoticeTarget
	}{
		{"the approvers' room on the request's provider: nowhere", relBundle, nil},
		{"the approvers' room on slack: there", onSlack, []NoticeTarget{{Adapter: "slack", To: Destination{Kind: pipeline.DestinationRoom, Name: "rel-approvals"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := givenApproval(t).withFacts(func(f *StaticFacts) {
				f.Directory.Apply(access.ChatHandleLinked{User: "u-alice", Provider: "api", Handle: "alice"})
				f.Installed[len(f.Installed)-1] = InstalledBundle{Bundle: loadBundle(t, tc.bundle), Enabled: true}
			})
			in := RequestReceived{Adapter: "api", MessageID: "m1", Room: "api", ChatUser: "alice", Text: "rel:prod web", Sender: "alice"}
			d := s.then(in)
			if got := find[ApprovalRequested](t, d.Request).Notify; !reflect.DeepEqual(got, tc.want) || len(d.Notices) != len(tc.want) {
				t.Fatalf("posted to %+v, notices %+v", got, d.Notices)
			}
		})
	}
}

func TestARequestTooFewPeopleCouldApproveIsDeniedAtOnce(t *testing.T) {
	t.Parallel()
	s := givenApproval(t).withFacts(func(f *StaticFacts) { f.Directory.Apply(access.MemberRemoved{Group: "rel-approvers", User: "u-dave"}) })
	d := s.then(received("U1", "rel:prod db"))
	wantTypes(t, d, "IdentityResolved PipelineParsed PermissionChecked RequestDenied")
	wantReply(t, d, "stage 1 (rel:prod) needs 2 approvals from rel:approver, and only bob holds it besides you")
}

func TestTheRequesterCannotApproveTheirOwnRequest(t *testing.T) {
	t.Parallel()
	s, _ := awaiting(t, "rel:prod web")
	d := s.then(answerBy("alice", VerdictApprove, t0.Add(time.Minute), "a1"))
	wantTypes(t, d, "ApprovalRefused")
	if r := find[ApprovalRefused](t, d.Request); !strings.Contains(r.Reason, "is your own; someone else must approve it") || r.User != "u-alice" {
		t.Fatalf("refusal %+v", r)
	}
	if len(d.Runs) != 0 || d.Reply != nil {
		t.Fatalf("decision %+v", d)
	}
}

func TestAnApproverWithoutThePermissionIsRefused(t *testing.T) {
	t.Parallel()
	s, _ := awaiting(t, "rel:prod web")
	d := s.then(answerBy("frank", VerdictApprove, t0.Add(time.Minute), "a1"))
	wantTypes(t, d, "ApprovalRefused")
	if r := find[ApprovalRefused](t, d.Request); !strings.Contains(r.Reason, "needs rel:approver, which you do not hold") {
		t.Fatalf("refusal %+v", r)
	}
	s.record(answerBy("frank", VerdictApprove, t0.Add(time.Minute), "a1"), d)
	if st := Fold(s.history).Status(); st != StatusAwaitingApproval {
		t.Fatalf("status %s after a refused answer", st)
	}
}

func TestAnApproverWhoLostThePermissionBeforeApprovingIsRefused(t *testing.T) {
	t.Parallel()
	s, _ := awaiting(t, "rel:prod web")
	if got := find[ApprovalRequested](t, s.last.Request).Approvers; !slices.Contains(got, "bob") {
		t.Fatalf("bob was not an approver when asked: %v", got)
	}
	s.withFacts(func(f *StaticFacts) { f.Directory.Apply(access.MemberRemoved{Group: "rel-approvers", User: "u-bob"}) })
	d := s.then(answerBy("bob", VerdictApprove, t0.Add(time.Minute), "a1"))
	wantTypes(t, d, "ApprovalRefused")
	if r := find[ApprovalRefused](t, d.Request); !strings.Contains(r.Reason, "which you do not hold") {
		t.Fatalf("refusal %+v", r)
	}
}

func TestADisabledApproverIsRefused(t *testing.T) {
	t.Parallel()
	s, _ := awaiting(t, "rel:prod web")
	s.withFacts(func(f *StaticFacts) { f.Directory.Apply(access.UserDisabled{User: "u-bob"}) })
	wantTypes(t, s.then(answerBy("bob", VerdictApprove, t0.Add(time.Minute), "a1")), "ApprovalRefused")
}

func TestOnePersonApprovingTwiceCountsOnce(t *testing.T) {
	t.Parallel()
	s, _ := awaiting(t, "rel:prod db")
	first := answerBy("bob", VerdictApprove, t0.Add(time.Minute), "a1")
	d := s.then(first)
	wantTypes(t, d, "ApprovalGranted")
	if g := find[ApprovalGranted](t, d.Request); g.User != "u-bob" || !reflect.DeepEqual(g.Permissions, []string{"rel:approver"}) || g.Reason != "bob says so" {
		t.Fatalf("granted %+v", g)
	}
	s.record(first, d)
	d = s.then(answerBy("bob", VerdictApprove, t0.Add(2*time.Minute), "a2"))
	wantTypes(t, d, "ApprovalRefused")
	if r := find[ApprovalRefused](t, d.Request); !strings.Contains(r.Reason, "one person counts once; it needs 1 of 2 approvals from rel:approver") {
		t.Fatalf("refusal %+v", r)
	}
	if len(d.Runs) != 0 {
		t.Fatal("a second approval by the same person started the request")
	}
	s.record(answerBy("bob", VerdictApprove, t0.Add(2*time.Minute), "a2"), d)
	if a := Fold(s.history).Approval(); a.Count("rel:approver") != 1 || a.Met() {
		t.Fatalf("count %d", a.Count("rel:approver"))
	}
}

func TestNApprovalsOfMApproversStartTheRequest(t *testing.T) {
	t.Parallel()
	s, id := awaiting(t, "rel:prod db")
	bob := answerBy("bob", VerdictApprove, t0.Add(time.Minute), "a1")
	s.record(bob, s.then(bob))
	if st := Fold(s.history).Status(); st != StatusAwaitingApproval {
		t.Fatalf("status %s after one of two approvals", st)
	}
	dave := answerBy("dave", VerdictApprove, t0.Add(2*time.Minute), "a2")
	d := s.then(dave)
	wantTypes(t, d, "ApprovalGranted RequestApproved StageStarted")
	if got := find[RequestApproved](t, d.Request).Approvers; !reflect.DeepEqual(got, []string{"bob", "dave"}) {
		t.Fatalf("approvers %v", got)
	}
	if len(d.Runs) != 1 || d.Runs[0].RunID != RunID(id, 0, 0) || !reflect.DeepEqual(d.Runs[0].Request.Args, []string{"db"}) {
		t.Fatalf("runs %+v", d.Runs)
	}
	s.record(dave, d)
	r := Fold(s.history)
	if r.Status() != StatusRunning || r.Approval().State != ApprovalStateApproved {
		t.Fatalf("status %s, approval %s", r.Status(), r.Approval().State)
	}
	late := answerBy("alice", VerdictApprove, t0.Add(3*time.Minute), "a3")
	if d := s.then(late); typesOf(d.Request) != "ApprovalRefused" || len(d.Runs) != 0 {
		t.Fatalf("an answer after the approval decided %s %+v", typesOf(d.Request), d.Runs)
	}
}

func TestRejectionByOneApproverEndsTheRequest(t *testing.T) {
	t.Parallel()
	s, _ := awaiting(t, "rel:prod db")
	bob := answerBy("bob", VerdictApprove, t0.Add(time.Minute), "a1")
	s.record(bob, s.then(bob))
	no := answerBy("dave", VerdictReject, t0.Add(2*time.Minute), "a2")
	no.Reason = "not during the freeze"
	d := s.then(no)
	wantTypes(t, d, "ApprovalRejected RequestDenied")
	reply := wantReply(t, d, "Denied: dave rejected it: not during the freeze")
	if !reply.Failed || len(d.Runs) != 0 {
		t.Fatalf("reply %+v runs %+v", reply, d.Runs)
	}
	s.record(no, d)
	if a := Fold(s.history).Approval(); a.State != ApprovalStateRejected || a.Rejected.Username != "dave" {
		t.Fatalf("approval %+v", a)
	}
}

func TestAnUnansweredRequestExpires(t *testing.T) {
	t.Parallel()
	s, _ := awaiting(t, "rel:prod db")
	bob := answerBy("bob", VerdictApprove, t0.Add(time.Minute), "a1")
	s.record(bob, s.then(bob))
	if d := s.then(ApprovalTimedOut{At: t0.Add(DefaultApprovalTTL - time.Second)}); !d.IsZero() {
		t.Fatalf("a timer that fired early decided %s", typesOf(d.Request))
	}
	expiry := ApprovalTimedOut{At: t0.Add(DefaultApprovalTTL)}
	d := s.then(expiry)
	wantTypes(t, d, "ApprovalExpired RequestDenied")
	wantReply(t, d, "Denied: it needed 2 approvals from rel:approver by 12:15:00 UTC and had 1 of 2 approvals from rel:approver")
	s.record(expiry, d)
	if a := Fold(s.history).Approval(); a.State != ApprovalStateExpired {
		t.Fatalf("approval %s", a.State)
	}
}

func TestTheApprovalTTLComesFromTheSettings(t *testing.T) {
	t.Parallel()
	s := givenApproval(t).withFacts(func(f *StaticFacts) { f.Config.ApprovalTTL = 2 * time.Minute })
	if got := find[ApprovalRequested](t, s.then(received("U1", "rel:prod web")).Request).ExpiresAt; !got.Equal(t0.Add(2 * time.Minute)) {
		t.Fatalf("expires at %s", got)
	}
}

func TestAnApprovalAfterTheRequestExpiredIsRefused(t *testing.T) {
	t.Parallel()
	t.Run("after the expiry was recorded", func(t *testing.T) {
		t.Parallel()
		s, _ := awaiting(t, "rel:prod web")
		expiry := ApprovalTimedOut{At: t0.Add(DefaultApprovalTTL)}
		s.record(expiry, s.then(expiry))
		d := s.then(answerBy("bob", VerdictApprove, t0.Add(DefaultApprovalTTL+time.Second), "a1"))
		wantTypes(t, d, "ApprovalRefused")
		if r := find[ApprovalRefused](t, d.Request); !strings.Contains(r.Reason, "expired at 12:15:00 UTC") || len(d.Runs) != 0 {
			t.Fatalf("refusal %+v", r)
		}
	})
	t.Run("given after the deadline, before the runner's timer fired", func(t *testing.T) {
		t.Parallel()
		s, _ := awaiting(t, "rel:prod web")
		d := s.then(answerBy("bob", VerdictApprove, t0.Add(DefaultApprovalTTL), "a1"))
		wantTypes(t, d, "ApprovalRefused")
		if len(d.Runs) != 0 {
			t.Fatal("a late approval started the request")
		}
	})
}

func TestACrashBetweenTheLastApprovalAndItsDecisionRunsTheRequestOnce(t *testing.T) {
	t.Parallel()
	s, id := awaiting(t, "rel:prod web")
	last := answerBy("bob", VerdictApprove, t0.Add(time.Minute), "a1")
	// The answer is recorded; the runner crashed before deciding it.
	s.history = append(s.history, last)
	r := Fold(s.history)
	if got := r.Unjudged(); !reflect.DeepEqual(got, []ApprovalAnswered{last}) {
		t.Fatalf("after the crash, unjudged %+v", got)
	}
	// On recovery the runner decides it; when checks that deciding again,
	// and once more after recording, start nothing new.
	d := s.then(last)
	wantTypes(t, d, "ApprovalGranted RequestApproved StageStarted")
	if len(d.Runs) != 1 || d.Runs[0].RunID != RunID(id, 0, 0) {
		t.Fatalf("runs %+v", d.Runs)
	}
	s.history = append(s.history, d.Request...)
	r = Fold(s.history)
	if len(r.Unjudged()) != 0 || len(r.Runs()) != 1 {
		t.Fatalf("unjudged %+v, runs %+v", r.Unjudged(), r.Runs())
	}
	for _, again := range []domain.Payload{last, answerBy("dave", VerdictApprove, t0.Add(2*time.Minute), "a2")} {
		if d, err := Decide(r, again, s.facts); err != nil || len(d.Runs) != 0 {
			t.Fatalf("%s after the approval started %+v (%v)", again.EventType(), d.Runs, err)
		}
	}
}

func TestTwoRequestsWithIdenticalTextAreApprovedSeparately(t *testing.T) {
	t.Parallel()
	first, firstID := awaiting(t, "rel:prod web")
	second, secondID := awaiting(t, "rel:prod web")
	second.history[0] = RequestReceived{Adapter: testAdapter, MessageID: "another message", Room: "general", ChatUser: "U1", Text: "rel:prod web"}
	secondID = second.history[0].(RequestReceived).ID()
	if firstID == secondID {
		t.Fatal("the two requests share an id")
	}
	bob := answerBy("bob", VerdictApprove, t0.Add(time.Minute), "a1")
	d := first.then(bob)
	wantTypes(t, d, "ApprovalGranted RequestApproved StageStarted")
	first.record(bob, d)
	if st := Fold(second.history).Status(); st != StatusAwaitingApproval {
		t.Fatalf("approving the first request moved the second to %s", st)
	}
	if got := Fold(second.history).Approval().Count("rel:approver"); got != 0 {
		t.Fatalf("the second request counts %d approvals", got)
	}
}

func TestRerunsAndAliasesAskForApprovalAgain(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, text string
		facts      func(*StaticFacts)
		expanded   string
	}{
		{"!! of an approved request", "!!", func(f *StaticFacts) { f.Previous["u-alice"] = "rel:prod db" }, "rel:prod db"},
		{"a user's alias", "ship", func(f *StaticFacts) { f.UserAliases["u-alice"]["ship"] = "rel:prod web" }, "rel:prod web"},
		{"a site alias", "shipdb", func(f *StaticFacts) { f.SiteAliases["shipdb"] = "rel:prod db" }, "rel:prod db"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := givenApproval(t).withFacts(tc.facts)
			d := s.then(received("U1", tc.text))
			wantTypes(t, d, "IdentityResolved PipelineParsed PermissionChecked ApprovalRequested")
			if got := find[ApprovalRequested](t, d.Request).Text; got != tc.expanded {
				t.Fatalf("the approvers are asked about %q, want what runs, %q", got, tc.expanded)
			}
		})
	}
}

func TestAnApprovedRequestRunsOnlyWhatWasApproved(t *testing.T) {
	t.Parallel()
	newer := strings.NewReplacer(`version: "2.0.0"`, `version: "2.1.0"`).Replace(relBundle)
	cases := []struct {
		name   string
		change func(*StaticFacts)
		want   string
	}{
		{"the bundle was upgraded while it waited", func(f *StaticFacts) {
			f.Installed[len(f.Installed)-1] = InstalledBundle{Bundle: loadBundle(t, newer), Enabled: true}
		}, "stage 1 (rel:prod) was approved as rel:prod 2.0.0, and it is rel:prod 2.1.0 now; run the request again"},
		{"the bundle was disabled", func(f *StaticFacts) { f.Installed[len(f.Installed)-1].Enabled = false },
			"stage 1 (rel:prod) was approved, but it cannot run now: the bundle rel is disabled"},
		{"the requester lost the permission to run it", func(f *StaticFacts) {
			f.Directory.Apply(access.MemberRemoved{Group: "rel-runners", User: "u-alice"})
		}, "stage 1 (rel:prod) was approved, but you may no longer run it: missing permission rel:run"},
		{"the requester was disabled", func(f *StaticFacts) { f.Directory.Apply(access.UserDisabled{User: "u-alice"}) },
			"your Logbook user alice is no longer enabled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _ := awaiting(t, "rel:prod web")
			s.withFacts(tc.change)
			d := s.then(answerBy("bob", VerdictApprove, t0.Add(time.Minute), "a1"))
			wantTypes(t, d, "ApprovalGranted RequestApproved RequestDenied")
			wantReply(t, d, tc.want)
			if len(d.Runs) != 0 {
				t.Fatalf("runs %+v", d.Runs)
			}
		})
	}
}

func TestABoundInvocationNeedingMoreApprovalThanGrantedFails(t *testing.T) {
	t.Parallel()
	s := givenApproval(t)
	trigger := received("U1", "rel:list | rel:prod $name")
	d := s.then(trigger)
	// Unbound, $name matches neither db nor web: nothing asks for approval.
	wantTypes(t, d, "IdentityResolved PipelineParsed PermissionChecked PermissionChecked StageStarted")
	s.record(trigger, d)
	d = s.then(succeeded(RunID(trigger.ID(), 0, 0), `[{"name":"api"},{"name":"db"}]`))
	wantTypes(t, d, "InvocationChecked InvocationChecked RequestFailed")
	wantReply(t, d, "invocation 2 needs 2 approvals from rel:approver with its bound arguments")
	if len(d.Runs) != 0 {
		t.Fatalf("runs %+v", d.Runs)
	}
}

func TestTheRequestDeadlineWaitsWhileTheRequestAwaitsApproval(t *testing.T) {
	t.Parallel()
	s, _ := awaiting(t, "rel:prod web")
	if d := s.then(RequestTimedOut{At: t0.Add(DefaultRequestTimeout)}); !d.IsZero() {
		t.Fatalf("the request deadline ended a request awaiting approval: %s", typesOf(d.Request))
	}
}

func TestApprovalNoticesAreRenderedFromTheRequestAlone(t *testing.T) {
	t.Parallel()
	s, _ := awaiting(t, "rel:prod web")
	r := Fold(s.history)
	if got := r.ApprovalNotices(); !reflect.DeepEqual(got, s.last.Notices) {
		t.Fatalf("notices from the log\n%+v\ndiffer from the decision's\n%+v", got, s.last.Notices)
	}
	bob := answerBy("bob", VerdictApprove, t0.Add(time.Minute), "a1")
	s.record(bob, s.then(bob))
	if got := Fold(s.history).ApprovalNotices(); got != nil {
		t.Fatalf("an approved request still has notices %+v", got)
	}
}

func TestAnswerTextReachesTheBuiltinAsOneReason(t *testing.T) {
	t.Parallel()
	for _, reason := range []string{"", "looks good", `say "yes" | to $HOME > \now`, "line one\nline two", "${x} and $y"} {
		text := AnswerText(VerdictReject, "0190abcd-0000-7000-8000-000000000000", reason)
		p, err := pipeline.Parse(text)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if len(p.Stages) != 1 || len(p.Redirects) != 0 || p.Stages[0].NeedsBinding() {
			t.Fatalf("%q parses to %+v", text, p)
		}
		args := p.Stages[0].Args
		got := ""
		if len(args) > 1 {
			got = fmt.Sprint(args[1].Literal())
		}
		if got != reason || len(args) > 2 {
			t.Fatalf("%q: reason %q, want %q", text, got, reason)
		}
	}
}

// TestRandomWalksThroughApprovalsKeepTheInvariants drives requests that
// need approval with random answers (any user, either verdict, at any
// time, repeated), expiries, quota checks and run outcomes, recording
// every decision, and checks that nothing runs before RequestApproved,
// that a request that asked for approval runs only once approved by
// enough others, and that it ends once with one reply.
func TestRandomWalksThroughApprovalsKeepTheInvariants(t *testing.T) {
	t.Parallel()
	texts := []string{"rel:prod db", "rel:prod web", "rel:list | rel:prod web", "rel:prod web | echo $x", "rel:prod api", "rel:list | rel:prod $name"}
	handles := []string{"U1", "U5", "U2"}
	usernames := []string{"alice", "bob", "dave", "erin", "frank"}
	seen := map[string]int{}
	for seed := range uint64(400) {
		rng := rand.New(rand.NewPCG(seed, 13))
		facts := relFacts(t)
		trigger := RequestReceived{Adapter: testAdapter, MessageID: fmt.Sprint("m", seed), Room: "general",
			ChatUser: handles[rng.IntN(len(handles))], Text: texts[rng.IntN(len(texts))]}
		var history []domain.Payload
		var pending []domain.Payload
		replies, ends := 0, 0
		step := func(tr domain.Payload) {
			r := Fold(history)
			d, err := Decide(r, tr, facts)
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			if again, _ := Decide(r, tr, facts); !reflect.DeepEqual(d, again) {
				t.Fatalf("seed %d: not deterministic for %T", seed, tr)
			}
			history = append(history, tr)
			history = append(history, d.Request...)
			after := Fold(history)
			if len(d.Runs) > 0 && after.Approval().State != ApprovalStateNone {
				a := after.Approval()
				if a.State != ApprovalStateApproved || !a.Met() {
					t.Fatalf("seed %d: runs started with the approval %s", seed, a.State)
				}
				for _, g := range a.Granted {
					if g.User == a.Requested.Requester {
						t.Fatalf("seed %d: the requester's own approval counted", seed)
					}
				}
			}
			for _, e := range d.Request {
				switch e.(type) {
				case IdentityUnknown, PipelineRejected, RequestDenied, RequestCompleted, RequestFailed:
					ends++
				}
			}
			if d.Reply != nil {
				replies++
			}
			for _, s := range d.Runs {
				pending = append(pending, RunEvent{RunID: s.RunID, Event: randomOutcome(rng)})
			}
		}
		step(trigger)
		for i := 0; i < 40 && !Fold(history).Status().Ended(); i++ {
			at := t0.Add(time.Duration(rng.IntN(20)) * time.Minute)
			switch k := rng.IntN(10); {
			case k < 5:
				v := VerdictApprove
				if rng.IntN(6) == 0 {
					v = VerdictReject
				}
				step(answerBy(usernames[rng.IntN(len(usernames))], v, at, fmt.Sprint("via", rng.IntN(8))))
			case k == 5:
				step(ApprovalTimedOut{At: at})
			case k == 6:
				facts.Clock = at
				step(QuotaCheck{At: at})
			case len(pending) > 0:
				j := rng.IntN(len(pending))
				step(pending[j])
				pending = append(pending[:j], pending[j+1:]...)
			}
		}
		final := Fold(history)
		seen[string(final.Approval().State)+"/"+string(final.Status())]++
		if ends > 1 || replies > 1 || replies != ends {
			t.Fatalf("seed %d (%q by %s): %d ends and %d replies, status %s", seed, trigger.Text, trigger.ChatUser, ends, replies, final.Status())
		}
	}
	for _, want := range []string{"approved/completed", "rejected/denied", "expired/denied", "pending/awaiting_approval", "/completed"} {
		if seen[want] == 0 {
			t.Errorf("no walk ended %s: %v", want, seen)
		}
	}
}
