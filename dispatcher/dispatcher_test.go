package dispatcher_test

import (
	"context"
	"path/filepath"
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
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/runbus"
	"github.com/logbookhq/logbook/domain/template/render"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/internal/samplebundle"
	"github.com/logbookhq/logbook/internal/testenv"
)

// capture is a publisher that keeps what the dispatcher sends executors.
type capture struct {
	mu     sync.Mutex
	topics []string
	runs   []runbus.RunRequest // the run.requested messages, read as an executor in this process reads them
}

func (c *capture) Publish(topic string, msgs ...*message.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, msg := range msgs {
		c.topics = append(c.topics, topic)
		if topic == runbus.TopicRunRequested {
			req, err := runbus.DecodeRunRequest(msg)
			if err != nil {
				return err
			}
			c.runs = append(c.runs, req)
		}
	}
	return nil
}

func (c *capture) runRequests() []runbus.RunRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.runs)
}

func (c *capture) Close() error { return nil }

type harness struct {
	store *sqlite.Store
	d     *dispatcher.Dispatcher
	facts *dispatcher.Facts
	bus   *capture
	stop  func()
}

func start(t *testing.T, path string) *harness {
	t.Helper()
	return startWith(t, path, sqlstore.Config{})
}

// startWith starts a dispatcher on a store opened with cfg.
func startWith(t *testing.T, path string, cfg sqlstore.Config) *harness {
	t.Helper()
	return startWrapped(t, path, cfg, nil)
}

// startWrapped starts a dispatcher that sees the store through wrap.
func startWrapped(t *testing.T, path string, cfg sqlstore.Config, wrap func(eventstore.Store) eventstore.Store) *harness {
	t.Helper()
	return startWithBuiltins(t, path, cfg, wrap, dispatch.DefaultBuiltins())
}

// startWithBuiltins starts a dispatcher with the builtins given.
func startWithBuiltins(t *testing.T, path string, cfg sqlstore.Config, wrap func(eventstore.Store) eventstore.Store, builtins dispatch.Builtins) *harness {
	t.Helper()
	store, err := sqlite.Open(context.Background(), path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var seen eventstore.Store = store
	if wrap != nil {
		seen = wrap(store)
	}
	facts := dispatcher.NewFacts(builtins, dispatch.Settings{}, nil)
	bus := &capture{}
	d, err := dispatcher.New(dispatcher.Config{
		Store: seen, Publisher: withBuiltins(t, store, facts, bus), Facts: facts,
		Checkpoints: dispatcher.SQLCheckpoints{DB: store.WriteDB(), Rebind: sqlstore.RebindQuestion},
		Posters:     map[string]dispatcher.ReplyPoster{"api": dispatcher.Posted{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	h := &harness{store: store, d: d, facts: facts, bus: bus}
	h.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		store.Close()
	}
	return h
}

// startWithSampleBundle runs a dispatcher over seen (store, or a wrapper
// of it) until the test ends, with the admin bootstrapped and the sample
// bundle installed; configure, when set, adjusts its configuration.
func startWithSampleBundle(t *testing.T, store *sqlite.Store, seen eventstore.Store, configure func(*dispatcher.Config)) *dispatcher.Dispatcher {
	t.Helper()
	ctx := context.Background()
	facts := dispatcher.NewFacts(dispatch.DefaultBuiltins(), dispatch.Settings{}, nil)
	cfg := dispatcher.Config{
		Store: seen, Publisher: withBuiltins(t, store, facts, &capture{}), Facts: facts,
		Checkpoints: dispatcher.SQLCheckpoints{DB: store.WriteDB(), Rebind: sqlstore.RebindQuestion},
		Posters:     map[string]dispatcher.ReplyPoster{"api": dispatcher.Posted{}},
	}
	if configure != nil {
		configure(&cfg)
	}
	d, err := dispatcher.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	running, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(running) }()
	t.Cleanup(func() { stop(); <-done; store.Close() })
	if _, err := dispatcher.Bootstrap(ctx, store); err != nil {
		t.Fatal(err)
	}
	if _, err := dispatcher.InstallBundle(ctx, store, samplebundle.Config, "test"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the admin and the sample bundle", func() bool {
		_, ok := facts.UserByUsername("admin")
		return ok && facts.BundleInstalled("toolbox")
	})
	return d
}

// apiRequestID is the id of the api request user sends with messageID.
func apiRequestID(user, messageID string) string {
	return dispatch.RequestReceived{Adapter: "api", MessageID: messageID, Sender: user}.ID()
}

func (h *harness) say(t *testing.T, messageID, user, text string) dispatch.Reply {
	t.Helper()
	id := apiRequestID(user, messageID)
	wait := h.d.WaitForReply(t.Context(), id)
	if _, err := h.d.Receive(context.Background(), dispatch.RequestReceived{Adapter: "api", MessageID: messageID, Room: "api", ChatUser: user, Text: text, Sender: user}, user); err != nil {
		t.Fatal(err)
	}
	select {
	case reply := <-wait:
		return reply
	case <-time.After(10 * time.Second):
		t.Fatalf("no reply to %q within 10s", text)
		return dispatch.Reply{}
	}
}

func TestABuiltinRequestIsAnsweredAndRecordedEndToEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logbook.db")
	h := start(t, path)
	defer h.stop()
	token, err := dispatcher.Bootstrap(context.Background(), h.store)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the admin to be known", func() bool { _, ok := h.facts.UserForToken(token); return ok })

	reply := h.say(t, "m-1", "admin", "echo hello world")
	if reply.Failed || strings.TrimSpace(reply.Text) != "hello world" {
		t.Fatalf("reply = %+v, want hello world", reply)
	}
	id := apiRequestID("admin", "m-1")
	testenv.Eventually(t, "ReplyPosted", func() bool {
		events, _ := h.store.ReadStream(context.Background(), dispatch.Stream(id), 0, 100)
		return len(events) > 0 && events[len(events)-1].Type == "ReplyPosted"
	})
	events, err := h.store.ReadStream(context.Background(), dispatch.Stream(id), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	want := "RequestReceived IdentityResolved PipelineParsed PermissionChecked StageStarted RequestCompleted ReplyPosted"
	if strings.Join(types, " ") != want {
		t.Fatalf("request stream = %v, want %s", types, want)
	}
	if h.bus.topics != nil {
		t.Fatalf("a builtin was published to executors: %v", h.bus.topics)
	}
	report, err := eventstore.Verify(context.Background(), h.store, nil)
	if err != nil || !report.OK {
		t.Fatalf("verify = %+v, %v", report, err)
	}
}

// impureEcho is echo as a builtin that is not pure: the builtin executor
// runs it, after the decision's commit, as it runs a builtin that reads
// the store.
func impureEcho() dispatch.Builtin {
	b, err := dispatch.NewBuiltin("relay", "Repeats its arguments, from the builtin executor.", "relay TEXT...", []string{"allow"}, dispatch.DefaultBuiltins()["echo"].Run)
	if err != nil {
		panic(err)
	}
	return b
}

// tickingClock moves on at each read: every commit reads the clock once,
// so commits are told apart by their events' time.
func tickingClock() func() time.Time {
	var ticks atomic.Int64
	return func() time.Time { return time.Unix(1_800_000_000+ticks.Add(1), 0) }
}

// An api reply is posted by recording it, so its ReplyPosted goes in the
// commit of the decision that ends the request (one commit fewer per
// request), and the caller is handed the reply once that commit is made.
func TestAnAPIReplyIsRecordedInTheCommitThatEndsTheRequest(t *testing.T) {
	h := startWithBuiltins(t, filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{Now: tickingClock()}, nil, dispatch.DefaultBuiltins().With(impureEcho()))
	defer h.stop()
	token, err := dispatcher.Bootstrap(context.Background(), h.store)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the admin to be known", func() bool { _, ok := h.facts.UserForToken(token); return ok })

	if reply := h.say(t, "m-1", "admin", "relay one commit"); strings.TrimSpace(reply.Text) != "one commit" {
		t.Fatalf("reply = %+v", reply)
	}
	events, err := h.store.ReadStream(context.Background(), dispatch.Stream(apiRequestID("admin", "m-1")), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := len(events)
	if n < 3 || events[n-2].Type != "RequestCompleted" || events[n-1].Type != "ReplyPosted" {
		t.Fatalf("the request's stream when its reply was handed over ends %v, want RequestCompleted ReplyPosted", typesOf(events))
	}
	if !events[n-1].RecordedAt.Equal(events[n-2].RecordedAt) {
		t.Fatalf("ReplyPosted recorded at %s, RequestCompleted at %s: two commits", events[n-1].RecordedAt, events[n-2].RecordedAt)
	}
	if events[n-3].RecordedAt.Equal(events[n-2].RecordedAt) {
		t.Fatalf("%s and RequestCompleted share a commit: the clock does not tell commits apart", events[n-3].Type)
	}
}

// A request of pure builtins (echo, a pipeline of them) is decided to
// its end as it is received: its runs' output and ends, its completion and
// its reply go in the commit that records it, and the builtin executor is
// handed nothing.
func TestARequestOfPureBuiltinsTakesOneCommit(t *testing.T) {
	// Given a dispatcher whose store's clock tells commits apart
	path := filepath.Join(t.TempDir(), "logbook.db")
	h := startWithBuiltins(t, path, sqlstore.Config{Now: tickingClock()}, nil, dispatch.DefaultBuiltins())
	token, err := dispatcher.Bootstrap(context.Background(), h.store)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the admin to be known", func() bool { _, ok := h.facts.UserForToken(token); return ok })
	before, _, err := h.store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	// When a pipeline of two echoes arrives
	if reply := h.say(t, "pure-1", "admin", "echo first | echo second"); strings.TrimSpace(reply.Text) != "second" {
		t.Fatalf("reply = %q", reply.Text)
	}

	// Then everything it recorded shares one commit: the request's
	// events, both runs' RunRequested, output and end
	events, err := h.store.ReadAll(context.Background(), before+1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for _, e := range events {
		types[e.Type]++
		if !e.RecordedAt.Equal(events[0].RecordedAt) {
			t.Errorf("%s in %s at %s, not in the request's one commit (%s)", e.Type, e.Stream, e.RecordedAt, events[0].RecordedAt)
		}
	}
	for typ, want := range map[string]int{"RequestReceived": 1, "RunRequested": 2, "RunSucceeded": 2, "StageStarted": 2, "RequestCompleted": 1, "ReplyPosted": 1} {
		if types[typ] != want {
			t.Errorf("%d %s recorded, want %d (all: %v)", types[typ], typ, want, typesOf(events))
		}
	}
	// And the builtin executor was handed no run
	h.bus.mu.Lock()
	topics := slices.Clone(h.bus.topics)
	h.bus.mu.Unlock()
	if len(topics) != 0 {
		t.Errorf("published %v, want nothing", topics)
	}

	// And a dispatcher that starts again on this log, from before the
	// request, decides nothing more and answers the next one
	h.stop()
	rewind(t, path, before)
	again := startWithBuiltins(t, path, sqlstore.Config{}, nil, dispatch.DefaultBuiltins())
	defer again.stop()
	if reply := again.say(t, "pure-2", "admin", "echo after"); strings.TrimSpace(reply.Text) != "after" {
		t.Fatalf("reply after the restart = %q", reply.Text)
	}
	for _, typ := range []string{"RequestCompleted", "ReplyPosted", "RunSucceeded"} {
		if n := countType(t, again.store, typ); n != map[string]int{"RequestCompleted": 2, "ReplyPosted": 2, "RunSucceeded": 3}[typ] {
			t.Errorf("%d %s in the log after the restart", n, typ)
		}
	}
}

func typesOf(events []domain.RecordedEvent) []string {
	types := make([]string, len(events))
	for i, e := range events {
		types[i] = e.Type
	}
	return types
}

// streamReads counts the reads of request streams a dispatcher makes.
type streamReads struct {
	eventstore.Store
	n atomic.Int64
}

func (s *streamReads) ReadStream(ctx context.Context, stream string, from int64, limit int) ([]domain.RecordedEvent, error) {
	if strings.HasPrefix(stream, dispatch.StreamPrefix) {
		s.n.Add(1)
	}
	return s.Store.ReadStream(ctx, stream, from, limit)
}

// A new request waited for is not looked up in the log (it cannot have a
// reply yet) and gets its reply once posted; the same message again gets
// the posted reply at once, from the log; a refused request has nothing
// to wait on.
func TestReceiveAndWaitReadsTheLogOnlyForARetry(t *testing.T) {
	reads := &streamReads{}
	h := startWrapped(t, filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{}, func(s eventstore.Store) eventstore.Store {
		reads.Store = s
		return reads
	})
	defer h.stop()
	token, err := dispatcher.Bootstrap(context.Background(), h.store)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the admin to be known", func() bool { _, ok := h.facts.UserForToken(token); return ok })
	in := dispatch.RequestReceived{Adapter: "api", MessageID: "m-wait", Room: "api", ChatUser: "admin", Text: "echo waited", Sender: "admin"}

	before := reads.n.Load()
	id, replies, err := h.d.ReceiveAndWait(t.Context(), t.Context(), in, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if reply := <-replies; strings.TrimSpace(reply.Text) != "waited" {
		t.Fatalf("reply = %+v", reply)
	}
	if n := reads.n.Load() - before; n != 0 {
		t.Fatalf("a new request's wait read request streams %d times, want none", n)
	}

	again, replies, err := h.d.ReceiveAndWait(t.Context(), t.Context(), in, "admin")
	if err != nil || again != id {
		t.Fatalf("the same message again = %s, %v; want %s", again, err, id)
	}
	select {
	case reply := <-replies:
		if strings.TrimSpace(reply.Text) != "waited" {
			t.Fatalf("the retry's reply = %+v", reply)
		}
	default:
		t.Fatal("the retry of an answered request was not handed its reply at once")
	}

	taken := in
	taken.Sender, taken.ChatUser = "mallory", "mallory"
	if _, replies, err := h.d.ReceiveAndWait(t.Context(), t.Context(), taken, "admin"); err == nil || replies != nil {
		t.Fatalf("a request naming another sender than its actor = %v, %v; want refused, with nothing to wait on", replies, err)
	}
}

// A caller that starts waiting once the reply is posted gets it rendered
// for its adapter, as the caller waiting before did.
func TestAReplyPostedBeforeTheWaitIsHandedOverRendered(t *testing.T) {
	h := start(t, filepath.Join(t.TempDir(), "logbook.db"))
	defer h.stop()
	if _, err := dispatcher.Bootstrap(context.Background(), h.store); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the admin to be known", func() bool { _, ok := h.facts.UserByUsername("admin"); return ok })
	first := h.say(t, "late-wait", "admin", "echo 'hello <world>'")
	id := apiRequestID("admin", "late-wait")
	testenv.Eventually(t, "ReplyPosted", func() bool {
		events, _ := h.store.ReadStream(context.Background(), dispatch.Stream(id), 0, 100)
		return len(events) > 0 && events[len(events)-1].Type == "ReplyPosted"
	})
	select {
	case late := <-h.d.WaitForReply(t.Context(), id):
		if late.Rendered == nil || late.Rendered.Format != render.FormatText || late.Rendered.Text != "hello <world>" || late.Rendered.Text != first.Rendered.Text {
			t.Fatalf("the late caller got %+v, want the reply rendered as the first caller got it (%+v)", late.Rendered, first.Rendered)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reply for a request whose reply is posted")
	}
}

func TestBadRequestsGetAClearRecordedReply(t *testing.T) {
	h := start(t, filepath.Join(t.TempDir(), "logbook.db"))
	defer h.stop()
	if _, err := dispatcher.Bootstrap(context.Background(), h.store); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the admin to be known", func() bool { _, ok := h.facts.UserByUsername("admin"); return ok })
	cases := []struct {
		name, user, text, mention string
	}{
		{"an unknown command suggests the closest name", "admin", "ehco hi", "echo"},
		{"a pipeline that does not parse says the column", "admin", `echo "unterminated`, "column"},
		{"an unknown user is told how to get access", "mallory", "echo hi", "admin"},
		{"a request over 16 KiB is refused", "admin", "echo " + strings.Repeat("x", 17<<10), "16"},
		{"a redirect to a room the bot cannot post in is refused before anything runs", "admin", "echo hi > #ops", "cannot post to #ops"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reply := h.say(t, "bad-"+string(rune('a'+i)), c.user, c.text)
			if !reply.Failed || !strings.Contains(reply.Text, c.mention) {
				t.Fatalf("reply = %+v, want a failure mentioning %q", reply, c.mention)
			}
		})
	}
}

// A run request says "just requested" (runbus.RunRequest.JustRequested),
// so that an executor in this process need not read the run's stream,
// only when the commit it follows created that stream; published again
// after a restart, it does not.
func TestARunRequestIsMarkedJustRequestedOnlyAfterTheCommitThatCreatedItsStream(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logbook.db")
	h := start(t, path)
	if _, err := dispatcher.Bootstrap(context.Background(), h.store); err != nil {
		t.Fatal(err)
	}
	if _, err := dispatcher.InstallBundle(context.Background(), h.store, samplebundle.Config, "test"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the sample bundle", func() bool { return h.facts.BundleInstalled("toolbox") })

	// Given a request for a container's run, decided and published
	if _, err := h.d.Receive(context.Background(), dispatch.RequestReceived{Adapter: "api", MessageID: "marked", Room: "api", ChatUser: "admin", Text: "toolbox:echo hi", Sender: "admin"}, "admin"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the run published", func() bool { return len(h.bus.runRequests()) > 0 })
	runs := h.bus.runRequests()
	if len(runs) != 1 {
		t.Fatalf("published %d run requests, want 1", len(runs))
	}
	// Then the first to handle it may skip the read, and only the first
	if !runs[0].TakeJustRequested() {
		t.Fatal("the run request of a run whose stream was just created is not marked")
	}
	if runs[0].TakeJustRequested() {
		t.Fatal("the mark was taken twice")
	}
	h.stop()

	// When the dispatcher starts again with the run not ended, and has
	// folded the whole log
	h = start(t, path)
	defer h.stop()
	head := countEvents2(t, h.store)
	testenv.Eventually(t, "the log folded and the run published again", func() bool {
		return h.d.Position() >= head && len(h.bus.runRequests()) > 0
	})

	// Then no request published again is marked: the stream may hold more
	// than its RunRequested (deciding again from an older checkpoint may
	// publish it twice, each unmarked)
	for _, again := range h.bus.runRequests() {
		if again.RunID != runs[0].RunID {
			t.Fatalf("published run %s again, want %s", again.RunID, runs[0].RunID)
		}
		if again.TakeJustRequested() {
			t.Fatal("a run request published again after a restart is marked just requested")
		}
	}
}

// A restarted dispatcher resumes from its checkpoint: it neither decides
// old requests again nor misses new ones.
func TestARestartedDispatcherResumesFromItsCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logbook.db")
	h := start(t, path)
	if _, err := dispatcher.Bootstrap(context.Background(), h.store); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the admin to be known", func() bool { _, ok := h.facts.UserByUsername("admin"); return ok })
	h.say(t, "r-1", "admin", "echo first")
	h.stop()
	before := countEvents(t, path)

	h = start(t, path)
	defer h.stop()
	reply := h.say(t, "r-2", "admin", "echo second")
	if strings.TrimSpace(reply.Text) != "second" {
		t.Fatalf("reply after restart = %+v", reply)
	}
	testenv.Eventually(t, "the second request's events", func() bool { return countEvents2(t, h.store) >= before+10 })
	if got := countEvents2(t, h.store); got != before+10 {
		events, _ := h.store.ReadAll(context.Background(), before+1, 100)
		for _, e := range events {
			t.Logf("%d %s %s", e.Position, e.Stream, e.Type)
		}
		t.Fatalf("after a restart and one request the log grew by %d events, want 10 (no decision repeated)", got-before)
	}
}

func countEvents(t *testing.T, path string) int64 {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return countEvents2(t, s)
}

func countEvents2(t *testing.T, s eventstore.Store) int64 {
	t.Helper()
	head, _, err := s.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return head
}

// withBuiltins is a publisher that runs builtin runs on a builtin executor
// over store and facts (as serve's router does) and hands every other
// message to next; the executor is shut down when the test ends.
func withBuiltins(t *testing.T, store eventstore.Store, facts *dispatcher.Facts, next message.Publisher) message.Publisher {
	t.Helper()
	b, err := executor.NewBuiltinExecutor(executor.BuiltinConfig{Store: store, Builtins: facts.Builtins(), Facts: facts, Recorded: facts.ApplyRecorded})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	return executor.InProcessBuiltins{Executor: b, Next: next}
}
