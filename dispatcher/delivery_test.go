package dispatcher_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/internal/testenv"
)

// fakeChat plays a chat provider whose room keeps what it was given. Its
// script decides, call by call, whether a post lands in the room and what
// the caller is told, so a test can fail a post, lose its answer, or crash
// the process between the post and its record.
type fakeChat struct {
	name   string
	limits chat.Limits
	mu     sync.Mutex
	rooms  map[string][]chat.Part // room → parts posted there, in order
	calls  int
	script func(call int, p chat.Part) (lands bool, err error)
	finds  int
}

func (f *fakeChat) Name() string                                  { return f.name }
func (f *fakeChat) Run(ctx context.Context, _ chat.Handler) error { <-ctx.Done(); return ctx.Err() }
func (f *fakeChat) CanPost(dispatch.Destination) bool             { return true }
func (f *fakeChat) Limits() chat.Limits                           { return f.limits }
func (f *fakeChat) MentionName() string                           { return "logbook" }
func (f *fakeChat) LookupUser(context.Context, string) (chat.User, error) {
	return chat.User{}, chat.ErrUnknownUser
}
func (f *fakeChat) LookupRoom(context.Context, string) (chat.Room, error) {
	return chat.Room{}, chat.ErrUnknownRoom
}

func (f *fakeChat) Post(_ context.Context, to dispatch.Destination, p chat.Part) (string, error) {
	f.mu.Lock()
	f.calls++
	call := f.calls
	script := f.script
	f.mu.Unlock()
	lands, err := true, error(nil)
	if script != nil {
		lands, err = script(call, p)
	}
	if lands {
		f.mu.Lock()
		f.rooms[to.Name] = append(f.rooms[to.Name], p)
		f.mu.Unlock()
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("msg-%s-%d", p.RequestID[:8], p.Index), nil
}

func (f *fakeChat) room(name string) []chat.Part {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]chat.Part(nil), f.rooms[name]...)
}

// findingChat is a fakeChat that can look in its room, as Slack can.
type findingChat struct{ *fakeChat }

func (f findingChat) FindPart(_ context.Context, to dispatch.Destination, p chat.Part, _ time.Time) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finds++
	for _, posted := range f.rooms[to.Name] {
		if posted.RequestID == p.RequestID && posted.Index == p.Index {
			return fmt.Sprintf("msg-%s-%d", p.RequestID[:8], p.Index), true, nil
		}
	}
	return "", false, nil
}

type chatHarness struct {
	store  *sqlite.Store
	d      *dispatcher.Dispatcher
	facts  *dispatcher.Facts
	cancel context.CancelFunc
	done   chan error
}

func startWithChat(t *testing.T, path string, provider chat.Provider) *chatHarness {
	t.Helper()
	store, err := sqlite.Open(context.Background(), path, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	facts := dispatcher.NewFacts(dispatch.DefaultBuiltins(), dispatch.Settings{}, nil)
	d, err := dispatcher.New(dispatcher.Config{
		Store: store, Publisher: withBuiltins(t, store, facts, &capture{}), Facts: facts,
		Checkpoints:   dispatcher.SQLCheckpoints{DB: store.WriteDB(), Rebind: sqlstore.RebindQuestion},
		Chat:          map[string]chat.Provider{provider.Name(): provider},
		TranscriptURL: func(runID string) string { return "http://logbook.test/runs/" + runID + "/transcript" },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &chatHarness{store: store, d: d, facts: facts, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- d.Run(ctx) }()
	return h
}

// stop ends the process: the dispatcher and its deliveries stop where they
// are, and the store closes.
func (h *chatHarness) stop(t *testing.T) {
	t.Helper()
	h.cancel()
	if err := <-h.done; err != nil {
		t.Error(err)
	}
	time.Sleep(50 * time.Millisecond) // let deliveries see the end before the store closes
	h.store.Close()
}

func (h *chatHarness) receive(t *testing.T, messageID, room, text string) string {
	t.Helper()
	id, err := h.d.Receive(context.Background(), dispatch.RequestReceived{Adapter: "api", MessageID: messageID, Room: room, ChatUser: "admin", Text: text, Sender: "admin"}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (h *chatHarness) bootstrap(t *testing.T) {
	t.Helper()
	if _, err := dispatcher.Bootstrap(context.Background(), h.store); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the admin to be known", func() bool { _, ok := h.facts.UserByUsername("admin"); return ok })
}

func streamTypes(t *testing.T, store *sqlite.Store, requestID string) ([]string, []domain.Payload) {
	t.Helper()
	events, err := store.ReadStream(context.Background(), dispatch.Stream(requestID), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	var payloads []domain.Payload
	for _, e := range events {
		types = append(types, e.Type)
		p, err := domain.Decode(e)
		if err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, p)
	}
	return types, payloads
}

func count(types []string, want string) int {
	n := 0
	for _, ty := range types {
		if ty == want {
			n++
		}
	}
	return n
}

// A reply of five parts meets a rate limit on part 1, loses the answer to
// part 2 (the provider took it), and the process crashes after part 3 is
// in the room but before it is recorded. After the restart every part is in
// the room exactly once, in order, and the events tell the whole story.
func TestAReplyIsPostedOncePerPartAcrossFailuresAndACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logbook.db")
	fake := &fakeChat{name: "api", limits: chat.Limits{MaxMessageBytes: 10, MaxParts: 10}, rooms: map[string][]chat.Part{}}
	provider := findingChat{fake}
	h := startWithChat(t, path, provider)
	h.bootstrap(t)

	crashed := make(chan struct{})
	fake.script = func(call int, p chat.Part) (bool, error) {
		switch p.Index {
		case 1:
			if call == 2 {
				return false, fmt.Errorf("rate limited: %w", chat.ErrRetry)
			}
		case 2:
			if call == 4 {
				return true, fmt.Errorf("connection reset after the post: %w", chat.ErrRetry)
			}
		case 3:
			if call == 5 {
				h.cancel() // the process dies with the part in the room, unrecorded
				close(crashed)
				return true, context.Canceled
			}
		}
		return true, nil
	}
	// Given a request whose reply takes five parts of at most 10 bytes
	id := h.receive(t, "long-1", "ops", "echo aaaaaaaa bbbbbbbb cccccccc dddddddd eeeeeeee")
	select {
	case <-crashed:
	case <-time.After(10 * time.Second):
		t.Fatalf("the delivery never reached part 3; room = %+v", fake.room("ops"))
	}
	h.stop(t)
	if n := len(fake.room("ops")); n != 4 {
		t.Fatalf("before the restart the room has %d parts, want 4 (0..3)", n)
	}

	// When the process starts again
	fake.script = nil
	h = startWithChat(t, path, provider)
	defer h.stop(t)
	testenv.Eventually(t, "ReplyPosted after the restart", func() bool {
		types, _ := streamTypes(t, h.store, id)
		return count(types, "ReplyPosted") == 1
	})

	// Then every part is in the room once, in order
	room := fake.room("ops")
	var texts []string
	for i, p := range room {
		if p.Index != i || p.Count != 5 {
			t.Fatalf("room = %+v: part %d is %d of %d", room, i, p.Index, p.Count)
		}
		texts = append(texts, strings.TrimSpace(p.Text))
	}
	if got := strings.Join(texts, "|"); got != "aaaaaaaa|bbbbbbbb|cccccccc|dddddddd|eeeeeeee" {
		t.Fatalf("room = %q", got)
	}
	// And the events record one attempt and one post per part, two of them
	// found rather than posted again, and one ReplyPosted
	types, payloads := streamTypes(t, h.store, id)
	if count(types, "ReplyPartAttempted") != 5 || count(types, "ReplyPartPosted") != 5 || count(types, "ReplyPosted") != 1 {
		t.Fatalf("request stream = %v", types)
	}
	found := map[int]bool{}
	for _, p := range payloads {
		if posted, ok := p.(chat.ReplyPartPosted); ok && posted.Found {
			found[posted.Part] = true
		}
	}
	if !found[2] || !found[3] || len(found) != 2 {
		t.Fatalf("parts found instead of posted again = %v, want 2 and 3", found)
	}
}

// A provider that cannot look in the room posts again a part whose post was
// not recorded: the one duplicate delivery.go documents.
func TestAProviderThatCannotLookPostsAnUnrecordedPartAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logbook.db")
	fake := &fakeChat{name: "api", limits: chat.Limits{MaxMessageBytes: 100, MaxParts: 10}, rooms: map[string][]chat.Part{}}
	h := startWithChat(t, path, fake)
	h.bootstrap(t)
	crashed := make(chan struct{})
	fake.script = func(call int, p chat.Part) (bool, error) {
		h.cancel()
		close(crashed)
		return true, context.Canceled
	}
	id := h.receive(t, "irc-1", "ops", "echo once")
	<-crashed
	h.stop(t)
	fake.script = nil
	h = startWithChat(t, path, fake)
	defer h.stop(t)
	testenv.Eventually(t, "ReplyPosted after the restart", func() bool {
		types, _ := streamTypes(t, h.store, id)
		return count(types, "ReplyPosted") == 1
	})
	if room := fake.room("ops"); len(room) != 2 || room[0].Text != "once" || room[1].Text != "once" {
		t.Fatalf("room = %+v, want the one part twice", room)
	}
}

// A room whose posts hang holds up neither decisions nor replies to other
// rooms.
func TestASlowRoomDoesNotBlockOtherRooms(t *testing.T) {
	fake := &fakeChat{name: "api", limits: chat.Limits{MaxMessageBytes: 100, MaxParts: 10}, rooms: map[string][]chat.Part{}}
	h := startWithChat(t, filepath.Join(t.TempDir(), "logbook.db"), fake)
	defer h.stop(t)
	h.bootstrap(t)
	release := make(chan struct{})
	fake.script = func(_ int, p chat.Part) (bool, error) {
		if p.Text == "slow" {
			<-release
		}
		return true, nil
	}
	slowID := h.receive(t, "s-1", "slow", "echo slow")
	testenv.Eventually(t, "the slow post to start", func() bool { fake.mu.Lock(); defer fake.mu.Unlock(); return fake.calls == 1 })
	fastID := h.receive(t, "f-1", "fast", "echo fast")
	select {
	case reply := <-h.d.WaitForReply(t.Context(), fastID):
		if reply.Text != "fast" {
			t.Fatalf("fast reply = %+v", reply)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the fast room waited for the slow one")
	}
	close(release)
	select {
	case <-h.d.WaitForReply(t.Context(), slowID):
	case <-time.After(10 * time.Second):
		t.Fatal("the slow room never got its reply")
	}
}

// A part the provider refuses for good (an unknown channel) is recorded
// failed, and the reply still ends with ReplyPosted instead of being
// retried forever.
func TestAPartRefusedForGoodIsRecordedFailed(t *testing.T) {
	fake := &fakeChat{name: "api", limits: chat.Limits{MaxMessageBytes: 100, MaxParts: 10}, rooms: map[string][]chat.Part{}}
	fake.script = func(int, chat.Part) (bool, error) {
		return false, fmt.Errorf("slack: channel_not_found: %w", chat.ErrUnknownRoom)
	}
	h := startWithChat(t, filepath.Join(t.TempDir(), "logbook.db"), fake)
	defer h.stop(t)
	h.bootstrap(t)
	id := h.receive(t, "gone-1", "gone", "echo hi")
	testenv.Eventually(t, "ReplyPosted", func() bool { types, _ := streamTypes(t, h.store, id); return count(types, "ReplyPosted") == 1 })
	_, payloads := streamTypes(t, h.store, id)
	var failed []chat.ReplyPartFailed
	for _, p := range payloads {
		if f, ok := p.(chat.ReplyPartFailed); ok {
			failed = append(failed, f)
		}
	}
	if len(failed) != 1 || !strings.Contains(failed[0].Error, "channel_not_found") {
		t.Fatalf("failed parts = %+v", failed)
	}
}

// A reply over the provider's MaxParts, on a provider without files, is
// cut, and its last part links the transcript of the request's run.
func TestACutReplyLinksTheTranscriptOfItsRun(t *testing.T) {
	fake := &fakeChat{name: "api", limits: chat.Limits{MaxMessageBytes: 80, MaxParts: 2}, rooms: map[string][]chat.Part{}}
	h := startWithChat(t, filepath.Join(t.TempDir(), "logbook.db"), fake)
	defer h.stop(t)
	h.bootstrap(t)
	id := h.receive(t, "cut-1", "ops", "echo "+strings.Repeat("word ", 100))
	select {
	case <-h.d.WaitForReply(t.Context(), id):
	case <-time.After(10 * time.Second):
		t.Fatal("no reply")
	}
	room := fake.room("ops")
	if len(room) != 2 {
		t.Fatalf("room has %d parts, want MaxParts 2", len(room))
	}
	events, err := h.store.ReadStream(context.Background(), dispatch.Stream(id), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	runID := ""
	for _, e := range events {
		if p, err := domain.Decode(e); err == nil {
			if s, ok := p.(dispatch.StageStarted); ok {
				runID = s.RunID
			}
		}
	}
	link := "http://logbook.test/runs/" + runID + "/transcript"
	if runID == "" || !strings.Contains(room[1].Text, link) || !strings.Contains(room[1].Text, "more bytes") || room[1].Link != link {
		t.Fatalf("last part = %q (link %q), want the cut notice linking %s", room[1].Text, room[1].Link, link)
	}
}
