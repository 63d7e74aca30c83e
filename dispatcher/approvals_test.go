package dispatcher_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/runbus"
	"github.com/logbookhq/logbook/internal/testenv"
)

// relConfig is a bundle whose prod command needs an approval from
// rel:approver (two for db) and that runs at most one command per user at
// once, a queued request waiting up to a minute.
const relConfig = `cog_bundle_version: 4
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
execution:
  concurrency: {user: 1}
  queue: 1m
commands:
  prod:
    executable: /bin/prod
    rules:
      - must have rel:run with approval from rel:approver
      - with arg[0] == 'db' must have rel:run with 2 approvals from rel:approver
  status:
    executable: /bin/status
    rules:
      - allow
`

// runs keeps the container runs the dispatcher publishes.
type runs struct {
	mu  sync.Mutex
	ids []string
}

func (r *runs) Publish(topic string, msgs ...*message.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		if topic != runbus.TopicRunRequested {
			continue
		}
		if req, err := runbus.DecodeRunRequest(m); err == nil {
			r.ids = append(r.ids, req.RunID)
		}
	}
	return nil
}

func (r *runs) Close() error { return nil }

func (r *runs) published() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

type approvalHarness struct {
	store *sqlite.Store
	d     *dispatcher.Dispatcher
	facts *dispatcher.Facts
	runs  *runs
	chat  *fakeChat
	stop  func()
}

// startApprovals runs a dispatcher on the SQLite file at path with a chat
// provider named slack, the rel bundle, and alice and erin (rel:run),
// bob and dave (rel:approver) and frank (nothing), each with a slack
// handle of their name. Setting up twice on one file is a no-op.
func startApprovals(t *testing.T, path string, settings dispatch.Settings) *approvalHarness {
	t.Helper()
	return startApprovalsVia(t, path, settings, nil, nil)
}

// startApprovalsVia is startApprovals with the dispatcher seeing the store
// through wrap; with restarts set, a Run that ends with an error is run
// again at once, as the server's supervisor would, and counted.
func startApprovalsVia(t *testing.T, path string, settings dispatch.Settings, wrap func(eventstore.Store) eventstore.Store, restarts *atomic.Int64) *approvalHarness {
	t.Helper()
	store, err := sqlite.Open(context.Background(), path, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var seen eventstore.Store = store
	if wrap != nil {
		seen = wrap(store)
	}
	fake := &fakeChat{name: "slack", limits: chat.Limits{MaxMessageBytes: 4000, MaxParts: 4}, rooms: map[string][]chat.Part{}}
	facts := dispatcher.NewFacts(dispatch.DefaultBuiltins(), settings, func(adapter string, to dispatch.Destination) bool { return adapter == "slack" })
	published := &runs{}
	d, err := dispatcher.New(dispatcher.Config{
		Store: seen, Publisher: withBuiltins(t, store, facts, published), Facts: facts,
		Checkpoints: dispatcher.SQLCheckpoints{DB: store.WriteDB(), Rebind: sqlstore.RebindQuestion},
		Posters:     map[string]dispatcher.ReplyPoster{"api": dispatcher.Posted{}},
		Chat:        map[string]chat.Provider{"slack": fake},
	})
	if err != nil {
		t.Fatal(err)
	}
	setUpRel(t, store)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		for {
			err := d.Run(ctx)
			if err == nil || ctx.Err() != nil || restarts == nil {
				done <- err
				return
			}
			restarts.Add(1)
		}
	}()
	h := &approvalHarness{store: store, d: d, facts: facts, runs: published, chat: fake}
	stopped := false
	h.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		store.Close()
	}
	t.Cleanup(h.stop)
	testenv.Eventually(t, "the approvers to be known", func() bool { return len(facts.Holders("rel:approver")) == 2 })
	return h
}

func setUpRel(t *testing.T, store eventstore.Store) {
	t.Helper()
	b, err := bundle.Load([]byte(relConfig))
	if err != nil {
		t.Fatal(err)
	}
	appendOnce := func(stream string, ps ...domain.Payload) {
		events := make([]domain.NewEvent, len(ps))
		for i, p := range ps {
			events[i] = domain.MustEncode(p, domain.Metadata{Actor: "test"})
			events[i].ID = dispatch.DerivedID(dispatch.DerivedID([16]byte{}, stream, 0), "setup", i)
		}
		if _, err := store.Append(context.Background(), stream, eventstore.Any, events...); err != nil {
			t.Fatal(err)
		}
	}
	appendOnce(bundle.Stream("rel"),
		bundle.BundleInstalled{Name: "rel", Version: "2.0.0", Config: relConfig, Permissions: b.Permissions},
		bundle.BundleEnabled{Name: "rel", Version: "2.0.0"})
	for _, u := range []string{"alice", "bob", "dave", "erin", "frank"} {
		appendOnce(access.UserStream("u-"+u), access.UserCreated{User: "u-" + u, Username: u}, access.ChatHandleLinked{User: "u-" + u, Provider: "slack", Handle: u})
	}
	appendOnce(access.RoleStream("rel-runner"), access.RoleCreated{Role: "rel-runner"}, access.PermissionGranted{Role: "rel-runner", Permission: "rel:run"})
	appendOnce(access.RoleStream("rel-approver"), access.RoleCreated{Role: "rel-approver"}, access.PermissionGranted{Role: "rel-approver", Permission: "rel:approver"})
	appendOnce(access.GroupStream("runners"), access.GroupCreated{Group: "runners"}, access.MemberAdded{Group: "runners", User: "u-alice"},
		access.MemberAdded{Group: "runners", User: "u-erin"}, access.RoleGranted{Group: "runners", Role: "rel-runner"})
	appendOnce(access.GroupStream("approvers"), access.GroupCreated{Group: "approvers"}, access.MemberAdded{Group: "approvers", User: "u-bob"},
		access.MemberAdded{Group: "approvers", User: "u-dave"}, access.RoleGranted{Group: "approvers", Role: "rel-approver"})
}

// say sends text from user's slack handle in #ops and returns the request id.
func (h *approvalHarness) say(t *testing.T, messageID, user, text string) string {
	t.Helper()
	id, err := h.d.Receive(context.Background(), dispatch.RequestReceived{Adapter: "slack", MessageID: messageID, Room: "ops", ChatUser: user, Text: text}, "slack")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// until waits for the request's stream to hold an event of type want, and
// returns the stream's types.
func (h *approvalHarness) until(t *testing.T, id, want string) []string {
	t.Helper()
	var types []string
	testenv.Eventually(t, id[:8]+" to record "+want, func() bool {
		types, _ = streamTypes(t, h.store, id)
		return slices.Contains(types, want)
	})
	return types
}

// textsIn are the texts posted in a room of the fake Slack, each with its
// attachments' (Slack's error template puts the problem there).
func (h *approvalHarness) textsIn(room string) []string {
	var out []string
	for _, p := range h.chat.room(room) {
		text := p.Text
		for _, a := range p.Attachments {
			text += "\n" + a.Title + "\n" + a.Text
		}
		out = append(out, text)
	}
	return out
}

func TestAnApprovedRequestRunsOnceApprovedAndNotBefore(t *testing.T) {
	h := startApprovals(t, t.TempDir()+"/logbook.db", dispatch.Settings{})
	id := h.say(t, "m1", "alice", "rel:prod web")
	types := h.until(t, id, "ApprovalRequested")
	if slices.Contains(types, "StageStarted") || len(h.runs.published()) != 0 {
		t.Fatalf("ran before approval: %v %v", types, h.runs.published())
	}
	testenv.Eventually(t, "the approval request in #ops and in the approvers' room", func() bool {
		return len(h.chat.room("ops")) == 1 && len(h.chat.room("rel-approvals")) == 1
	})
	notice := h.chat.room("rel-approvals")[0]
	if notice.Approval != id || notice.Notice == "" || !strings.Contains(notice.Text, "alice asks to run: rel:prod web") || !strings.Contains(notice.Text, "!approve "+id[:8]) {
		t.Fatalf("notice %+v", notice)
	}

	// alice's own approval is refused, and recorded nowhere but her request.
	own := h.say(t, "m2", "alice", "approve "+id[:8])
	h.until(t, own, "ReplyPosted")
	if texts := h.textsIn("ops"); !strings.Contains(texts[len(texts)-1], "is your own; someone else must approve it") {
		t.Fatalf("ops: %q", texts)
	}
	bob := h.say(t, "m3", "bob", "approve "+id[:8]+" ship it")
	types = h.until(t, id, "StageStarted")
	if want := []string{"ApprovalAnswered", "ApprovalGranted", "RequestApproved", "StageStarted"}; !containsInOrder(types, want) {
		t.Fatalf("request stream %v lacks %v in order", types, want)
	}
	h.until(t, bob, "ReplyPosted")
	testenv.Eventually(t, "the run published", func() bool { return len(h.runs.published()) == 1 })
	if got := h.runs.published()[0]; got != dispatch.RunID(id, 0, 0) {
		t.Fatalf("published %s", got)
	}
	if got := h.facts.PendingApprovals(); len(got) != 0 {
		t.Fatalf("still pending: %+v", got)
	}
}

func containsInOrder(types, want []string) bool {
	i := 0
	for _, ty := range types {
		if i < len(want) && ty == want[i] {
			i++
		}
	}
	return i == len(want)
}

func TestARejectedRequestIsDeniedWithTheApproversReason(t *testing.T) {
	h := startApprovals(t, t.TempDir()+"/logbook.db", dispatch.Settings{})
	id := h.say(t, "m1", "alice", "rel:prod db")
	h.until(t, id, "ApprovalRequested")
	h.say(t, "m2", "bob", "approve "+id)
	h.until(t, id, "ApprovalGranted")
	h.say(t, "m3", "dave", `reject `+id+` "not during the freeze"`)
	h.until(t, id, "ReplyPosted")
	testenv.EventuallyWithin(t, 5*time.Second, "the denial in #ops", func() bool {
		return slices.ContainsFunc(h.textsIn("ops"), func(s string) bool { return strings.Contains(s, "dave rejected it: not during the freeze") })
	})
	if len(h.runs.published()) != 0 {
		t.Fatalf("a rejected request ran: %v", h.runs.published())
	}
}

func TestAnUnansweredRequestExpiresWithAReply(t *testing.T) {
	h := startApprovals(t, t.TempDir()+"/logbook.db", dispatch.Settings{ApprovalTTL: time.Millisecond})
	id := h.say(t, "m1", "alice", "rel:prod web")
	types := h.until(t, id, "ApprovalExpired")
	if !containsInOrder(types, []string{"ApprovalRequested", "ApprovalExpired", "RequestDenied"}) {
		t.Fatalf("stream %v", types)
	}
	h.until(t, id, "ReplyPosted")
	late := h.say(t, "m2", "bob", "approve "+id)
	h.until(t, late, "ReplyPosted")
	if texts := h.textsIn("ops"); !strings.Contains(texts[len(texts)-1], "no request waiting for approval has the id") {
		t.Fatalf("ops: %q", texts)
	}
}

// The dispatcher stops after the last approval is recorded and before it
// is decided; the restarted one decides it, and one restarted again
// decides nothing new: the run is requested once.
func TestACrashBetweenTheLastApprovalAndTheRunRunsItOnce(t *testing.T) {
	path := t.TempDir() + "/logbook.db"
	h := startApprovals(t, path, dispatch.Settings{})
	id := h.say(t, "m1", "alice", "rel:prod web")
	h.until(t, id, "ApprovalRequested")
	h.stop()
	// The approve builtin's record, made while no dispatcher runs.
	store, err := sqlite.Open(context.Background(), path, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	answer := domain.MustEncode(dispatch.ApprovalAnswered{Verdict: dispatch.VerdictApprove, User: "u-bob", Username: "bob", At: time.Now().UTC(), Via: "crash-run-s0-i0", Room: "ops"}, domain.Metadata{Actor: "bob"})
	if _, err := store.Append(context.Background(), dispatch.Stream(id), eventstore.Any, answer); err != nil {
		t.Fatal(err)
	}
	store.Close()

	h = startApprovals(t, path, dispatch.Settings{})
	h.until(t, id, "StageStarted")
	runID := dispatch.RunID(id, 0, 0)
	testenv.Eventually(t, "the run published", func() bool { return len(h.runs.published()) > 0 })
	// Resuming publishes a run that has not ended again, and a second
	// restart does so once more: the executors skip a run they run or
	// that ended. What counts is that it was requested once.
	h.stop()
	h = startApprovals(t, path, dispatch.Settings{})
	testenv.Eventually(t, "the running run published again", func() bool { return len(h.runs.published()) > 0 })
	for _, published := range h.runs.published() {
		if published != runID {
			t.Fatalf("published %s", published)
		}
	}
	types, _ := streamTypes(t, h.store, id)
	if n := count(types, "StageStarted"); n != 1 || count(types, "ApprovalGranted") != 1 || count(types, "RequestApproved") != 1 {
		t.Fatalf("stream %v", types)
	}
	events, err := h.store.ReadStream(context.Background(), run.Stream(runID), 0, 10)
	if err != nil || len(events) != 1 || events[0].Type != "RunRequested" {
		t.Fatalf("run stream: %d events, %v", len(events), err)
	}
}

// erin may run one rel command at once: her second request waits for the
// first run to end, then starts.
func TestARequestOverAQuotaWaitsForTheRunBeforeIt(t *testing.T) {
	h := startApprovals(t, t.TempDir()+"/logbook.db", dispatch.Settings{})
	first := h.say(t, "m1", "erin", "rel:status")
	h.until(t, first, "StageStarted")
	second := h.say(t, "m2", "erin", "rel:status")
	types := h.until(t, second, "QuotaWaiting")
	if slices.Contains(types, "StageStarted") {
		t.Fatalf("the second started over the quota: %v", types)
	}
	other := h.say(t, "m3", "alice", "rel:status")
	h.until(t, other, "StageStarted") // another user is not held up
	ended := domain.MustEncode(run.RunSucceeded{}, domain.Metadata{Actor: "executor"})
	if _, err := h.store.Append(context.Background(), run.Stream(dispatch.RunID(first, 0, 0)), eventstore.Exact(0), ended); err != nil {
		t.Fatal(err)
	}
	types = h.until(t, second, "StageStarted")
	if !containsInOrder(types, []string{"QuotaWaiting", "QuotaAdmitted", "StageStarted"}) {
		t.Fatalf("stream %v", types)
	}
}

func TestARequestOverAQuotaWithoutAQueueIsDeniedNamingIt(t *testing.T) {
	site, err := bundle.ParseQuotaOverrides("rel.queue=0s")
	if err != nil {
		t.Fatal(err)
	}
	h := startApprovals(t, t.TempDir()+"/logbook.db", dispatch.Settings{Quotas: site})
	first := h.say(t, "m1", "erin", "rel:status")
	h.until(t, first, "StageStarted")
	second := h.say(t, "m2", "erin", "rel:status")
	types := h.until(t, second, "ReplyPosted")
	if !containsInOrder(types, []string{"QuotaExceeded", "RequestDenied"}) {
		t.Fatalf("stream %v", types)
	}
	testenv.Eventually(t, "the reply naming the quota", func() bool {
		return slices.ContainsFunc(h.textsIn("ops"), func(s string) bool { return strings.Contains(s, "over a quota: rel allows 1 run per user at once") })
	})
}

// A restart while a request awaits approval posts its approval request
// again only where it was not posted: the first thing the restarted
// dispatcher posts in #ops is the approval's outcome, not the request.
func TestARestartDoesNotPostTheApprovalRequestAgain(t *testing.T) {
	path := t.TempDir() + "/logbook.db"
	h := startApprovals(t, path, dispatch.Settings{})
	id := h.say(t, "m1", "alice", "rel:prod web")
	testenv.Eventually(t, "the approval request posted", func() bool {
		types, _ := streamTypes(t, h.store, id)
		return count(types, "ReplyPartPosted") == 2
	})
	h.stop()
	h = startApprovals(t, path, dispatch.Settings{})
	h.say(t, "m2", "bob", "approve "+id)
	testenv.Eventually(t, "bob's reply in #ops", func() bool { return len(h.chat.room("ops")) > 0 })
	if first := h.chat.room("ops")[0]; first.Notice != "" || !strings.Contains(first.Text, "Approved request "+id[:8]) {
		t.Fatalf("the first post after the restart: %+v", first)
	}
}

// An answer recorded after its request expired, was answered and was
// forgotten (the approve builtin judged it while it still waited) is
// judged all the same: refused, in the request's chain.
// failingRead fails one read of a request stream, the one armed, as a
// database that drops its connection does.
type failingRead struct {
	eventstore.Store
	stream string
	limit  atomic.Int64 // the read's limit; 0: disarmed
}

func (f *failingRead) ReadStream(ctx context.Context, stream string, from int64, limit int) ([]domain.RecordedEvent, error) {
	if stream == f.stream && from == 0 && f.limit.CompareAndSwap(int64(limit), 0) {
		return nil, errors.New("the database went away")
	}
	return f.Store.ReadStream(ctx, stream, from, limit)
}

// A late answer whose judgement the store did not take (its read failed)
// is judged when the dispatcher runs again: the failure held the
// checkpoint before it, and the restart's resume judges it.
func TestALateAnswerJudgedWhileTheStoreFailsIsJudgedOnTheRestart(t *testing.T) {
	// Given a request that ended and was forgotten, and a store whose read
	// of it for the judgement of a late answer fails
	failing := &failingRead{}
	var restarts atomic.Int64
	h := startApprovalsVia(t, t.TempDir()+"/logbook.db", dispatch.Settings{ApprovalTTL: time.Millisecond}, func(s eventstore.Store) eventstore.Store {
		failing.Store = s
		return failing
	}, &restarts)
	id := h.say(t, "m1", "alice", "rel:prod web")
	h.until(t, id, "ReplyPosted")
	before, _ := streamTypes(t, h.store, id)
	failing.stream = dispatch.Stream(id)
	failing.limit.Store(int64(len(before) + 1)) // the answer's version is len(before)

	// When a late answer is recorded
	late := domain.MustEncode(dispatch.ApprovalAnswered{Verdict: dispatch.VerdictApprove, User: "u-bob", Username: "bob", At: time.Now().UTC(), Via: "late-run-s0-i0", Room: "ops"}, domain.Metadata{Actor: "bob"})
	if _, err := h.store.Append(context.Background(), dispatch.Stream(id), eventstore.Any, late); err != nil {
		t.Fatal(err)
	}

	// Then the dispatcher's loop failed on it and ran again, and the answer
	// is refused on the record all the same
	types := h.until(t, id, "ApprovalRefused")
	if failing.limit.Load() != 0 || restarts.Load() == 0 {
		t.Fatalf("the read failed: %v, restarts: %d; the test did not exercise the failure", failing.limit.Load() == 0, restarts.Load())
	}
	if slices.Contains(types, "StageStarted") {
		t.Fatalf("a late answer started the request: %v", types)
	}
}

func TestALateAnswerToAForgottenRequestIsRefusedOnTheRecord(t *testing.T) {
	h := startApprovals(t, t.TempDir()+"/logbook.db", dispatch.Settings{ApprovalTTL: time.Millisecond})
	id := h.say(t, "m1", "alice", "rel:prod web")
	h.until(t, id, "ReplyPosted")
	late := domain.MustEncode(dispatch.ApprovalAnswered{Verdict: dispatch.VerdictApprove, User: "u-bob", Username: "bob", At: time.Now().UTC(), Via: "late-run-s0-i0", Room: "ops"}, domain.Metadata{Actor: "bob"})
	if _, err := h.store.Append(context.Background(), dispatch.Stream(id), eventstore.Any, late); err != nil {
		t.Fatal(err)
	}
	types := h.until(t, id, "ApprovalRefused")
	if slices.Contains(types, "StageStarted") || slices.Contains(types, "ApprovalGranted") {
		t.Fatalf("a late answer started the request: %v", types)
	}
	_, payloads := streamTypes(t, h.store, id)
	for _, p := range payloads {
		if r, ok := p.(dispatch.ApprovalRefused); ok && !strings.Contains(r.Reason, "expired") {
			t.Fatalf("refused for %q", r.Reason)
		}
	}
}
