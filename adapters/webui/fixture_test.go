package webui_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/adapters/webui"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/internal/testenv"
	"github.com/logbookhq/logbook/projections"
)

// nowhere is a bus that drops what is published: the fixture runs only
// builtins, which run in the dispatcher itself.
type nowhere struct{}

func (nowhere) Publish(string, ...*message.Message) error { return nil }
func (nowhere) Close() error                              { return nil }

// fixture is the web UI over a real SQLite store, with the views and the
// dispatcher running and a bootstrapped admin; bob is a second user with
// a token and no groups.
type fixture struct {
	store      *sqlite.Store
	ui         *webui.UI
	cfg        webui.Config // the UI's, for replicas
	facts      *dispatcher.Facts
	url        string
	adminToken string
	bobToken   string
}

const bobID = "u-bob"

func newFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixtureWith(t, fixtureOptions{})
}

// fixtureOptions change the fixture's UI.
type fixtureOptions struct {
	// sqlSessions keeps the sessions in the store's database, as serve
	// does, rather than in the UI's memory.
	sqlSessions bool
	// now is the UI's clock (time.Now when nil).
	now func() time.Time
}

func newFixtureWith(t testing.TB, opts fixtureOptions) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	facts := dispatcher.NewFacts(dispatch.DefaultBuiltins(), dispatch.Settings{}, nil)
	d, err := dispatcher.New(dispatcher.Config{
		Store: store, Publisher: inProcessBuiltins(t, store, facts, nowhere{}), Facts: facts,
		Checkpoints: dispatcher.SQLCheckpoints{DB: store.WriteDB(), Rebind: sqlstore.RebindQuestion},
		Posters:     map[string]dispatcher.ReplyPoster{"web": dispatcher.Posted{}, "api": dispatcher.Posted{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	views, err := projections.NewRunner(store, projections.Config{}, projections.NewPermissions(), projections.NewHistory(), projections.NewTranscripts(), projections.NewApprovals(), projections.NewAudit(), projections.NewSearch())
	if err != nil {
		t.Fatal(err)
	}
	live := eventstore.NewHub(store, eventstore.HubOptions{})
	done := make(chan error, 3)
	go func() { done <- d.Run(ctx) }()
	go func() { done <- views.Run(ctx) }()
	go func() { done <- live.Run(ctx) }()
	db := projections.DBOf(store)
	cfg := webui.Config{
		Users: facts, Requests: d, History: projections.NewHistoryReader(db), Transcripts: projections.NewTranscriptReader(db),
		Events: store, Views: views, Live: live, Access: facts, Permissions: projections.NewPermissionReader(db), Approvals: projections.NewApprovalReader(db), Search: projections.NewSearchReader(db), Logger: zerolog.Nop(),
		Audit:     projections.NewAuditReader(db),
		Heartbeat: 100 * time.Millisecond, // every stream in the tests carries heartbeats between its events
		Now:       opts.now,
	}
	if opts.sqlSessions {
		cfg.Sessions = webui.SQLSessions{Read: store.DB(), Write: store.WriteDB(), Rebind: sqlstore.RebindQuestion}
	}
	ui, err := webui.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The API beside the UI, as serve mounts them, so browser tests can
	// compare what the pages show with what the API answers.
	api := &httpapi.API{Requests: d, Users: facts, History: projections.NewHistoryReader(db), Transcripts: projections.NewTranscriptReader(db),
		Events: store, Views: views, Live: live, Permissions: projections.NewPermissionReader(db), Approvals: projections.NewApprovalReader(db)}
	mux := http.NewServeMux()
	api.Register(mux)
	mux.Handle("/", ui)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ui.Shutdown() // as serve does: open event streams end, so Close need not wait for them
		srv.Close()
		cancel()
		for range 3 {
			if err := <-done; err != nil && ctx.Err() == nil {
				t.Error(err)
			}
		}
		store.Close()
	})
	f := &fixture{store: store, ui: ui, cfg: cfg, facts: facts, url: srv.URL}
	if f.adminToken, err = dispatcher.Bootstrap(ctx, store); err != nil {
		t.Fatal(err)
	}
	f.bobToken = "lbk_bob_" + strings.Repeat("b", 20)
	f.append(t, access.UserStream(bobID),
		access.UserCreated{User: bobID, Username: "bob"},
		access.TokenIssued{User: bobID, Hash: access.HashToken(f.bobToken)})
	testenv.Eventually(t, "bob's token to be known", func() bool { _, ok := facts.UserForToken(f.bobToken); return ok })
	testenv.Eventually(t, "the admin's token to be known", func() bool { _, ok := facts.UserForToken(f.adminToken); return ok })
	return f
}

// replica serves a second UI on the fixture's store, dispatcher and views,
// as a second server on the same database would, and returns its URL. It
// shares the fixture's sessions when they are in the database; otherwise
// it keeps its own in its memory.
func (f *fixture) replica(t testing.TB) string {
	t.Helper()
	ui, err := webui.New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui)
	t.Cleanup(func() {
		ui.Shutdown()
		srv.Close()
	})
	return srv.URL
}

func (f *fixture) append(t testing.TB, stream string, payloads ...domain.Payload) {
	t.Helper()
	events := make([]domain.NewEvent, len(payloads))
	for i, p := range payloads {
		events[i] = domain.MustEncode(p, domain.Metadata{Actor: "test"})
	}
	if _, err := f.store.Append(context.Background(), stream, eventstore.Any, events...); err != nil {
		t.Fatal(err)
	}
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see each answer.
type browser struct {
	t    testing.TB
	base string
	c    *http.Client
	csrf string
}

func (f *fixture) browser(t testing.TB) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: f.url, c: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// login logs in with token and remembers the session's CSRF token.
func (f *fixture) login(t testing.TB, token string) *browser {
	t.Helper()
	b := f.browser(t)
	resp := b.post("/login", url.Values{"token": {token}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login answered %d, want 303", resp.StatusCode)
	}
	_, body := b.get("/console")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the console has no CSRF token:\n%s", body)
	}
	b.csrf = m[1]
	return b
}

func (b *browser) do(req *http.Request) *http.Response {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp
}

// get answers the status and the body.
func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	resp := b.do(req)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) post(path string, form url.Values, header http.Header) *http.Response {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp := b.do(req)
	b.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// say types text in the console as a script does, and returns the
// request id.
func (b *browser) say(text string) string {
	b.t.Helper()
	resp := b.post("/console", url.Values{"text": {text}}, http.Header{"X-Csrf-Token": {b.csrf}, "Accept": {"application/json"}})
	if resp.StatusCode != http.StatusAccepted {
		body, _ := io.ReadAll(resp.Body)
		b.t.Fatalf("POST /console answered %d: %s", resp.StatusCode, body)
	}
	var out struct {
		RequestID string `json:"request_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.RequestID == "" {
		b.t.Fatalf("POST /console answered %+v (%v)", out, err)
	}
	return out.RequestID
}

type sse struct {
	Event string
	Data  map[string]any
}

// follow reads a request's event stream to its end.
func (b *browser) follow(requestID string) []sse {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.base+"/console/requests/"+requestID+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp := b.do(req)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("the event stream answered %d", resp.StatusCode)
	}
	var out []sse
	var cur sse
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			cur.Event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &cur.Data); err != nil {
				b.t.Fatalf("event %s has data %q: %v", cur.Event, line, err)
			}
		case line == "" && cur.Event != "": // a comment line has no event
			out = append(out, cur)
			cur = sse{}
		}
	}
	return out
}

func regexpFind(t testing.TB, s, pattern string) string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %s in:\n%s", pattern, s)
	}
	return m[1]
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// stream opens a request's event stream and hands each event over as it
// arrives; the channel closes when the stream ends.
func (b *browser) stream(requestID string) <-chan sse {
	b.t.Helper()
	return b.streamPath("/console/requests/" + requestID + "/events")
}

// streamPath opens an event stream at path.
func (b *browser) streamPath(path string) <-chan sse {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp := b.do(req)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("the event stream answered %d", resp.StatusCode)
	}
	out := make(chan sse, 16)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		var cur sse
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				cur.Event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &cur.Data)
			case line == "" && cur.Event != "":
				out <- cur
				cur = sse{}
			}
		}
	}()
	return out
}

func next(t testing.TB, events <-chan sse) sse {
	t.Helper()
	select {
	case e, ok := <-events:
		if !ok {
			t.Fatal("the event stream ended early")
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return sse{}
}

// inProcessBuiltins runs builtin runs on a builtin executor over store and
// facts, as serve's router does, and hands other messages to next.
func inProcessBuiltins(t testing.TB, store eventstore.Store, facts *dispatcher.Facts, next message.Publisher) message.Publisher {
	t.Helper()
	b, err := executor.NewBuiltinExecutor(executor.BuiltinConfig{Store: store, Builtins: facts.Builtins(), Facts: facts, Recorded: facts.ApplyRecorded})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	return executor.InProcessBuiltins{Executor: b, Next: next}
}
