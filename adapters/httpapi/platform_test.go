package httpapi_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/dispatcher/admin"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/internal/samplebundle"
	"github.com/logbookhq/logbook/internal/testenv"
	"github.com/logbookhq/logbook/projections"
)

// noExecutor takes run requests and runs nothing: the platform tests use
// builtins only, which run inside the dispatcher.
type noExecutor struct{}

func (noExecutor) Publish(string, ...*message.Message) error { return nil }
func (noExecutor) Close() error                              { return nil }

// platform is the server's composition on a real store, minus executors:
// the views (permissions, history, transcripts), the dispatcher with the
// administration builtins, the bootstrap admin, and the sample bundle.
type platform struct {
	store      projections.Source
	posts      *heldPosts
	requests   *observedRequests
	facts      *dispatcher.Facts
	api        *httpapi.API
	url        string
	adminToken string
	checker    responseChecker // every answer is checked against the OpenAPI document
}

func newPlatform(t *testing.T) *platform { return newPlatformOn(t, openSQLite(t)) }

func newPlatformOn(t *testing.T, store projections.Source) *platform {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	views, err := projections.NewRunner(store, projections.Config{}, projections.NewPermissions(), projections.NewHistory(), projections.NewTranscripts(), projections.NewApprovals(), projections.NewSearch(), projections.NewSources())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 3)
	go func() { done <- views.Run(ctx) }()
	db := projections.DBOf(store)
	adminBuiltins, err := admin.Builtins(admin.Config{Store: store, History: projections.NewHistoryReader(db), Transcripts: projections.NewTranscriptReader(db), Search: projections.NewSearchReader(db), Sources: projections.NewSourcesReader(db)})
	if err != nil {
		t.Fatal(err)
	}
	facts := dispatcher.NewFacts(dispatch.DefaultBuiltins().With(adminBuiltins...), dispatch.Settings{}, nil)
	posts := &heldPosts{}
	rebind := func(q string) string { return q }
	if store.Dialect() == "sqlite" {
		rebind = sqlstore.RebindQuestion
	}
	d, err := dispatcher.New(dispatcher.Config{
		Store: store, Publisher: inProcessBuiltins(t, store, facts, noExecutor{}), Facts: facts,
		Checkpoints: dispatcher.SQLCheckpoints{DB: writeDBOf(store), Rebind: rebind},
		Posters:     map[string]dispatcher.ReplyPoster{"api": posts, dispatch.TriggerAdapter: dispatcher.Posted{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- d.Run(ctx) }()
	token, err := dispatcher.Bootstrap(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dispatcher.InstallBundle(ctx, store, samplebundle.Config, "test"); err != nil {
		t.Fatal(err)
	}
	live := eventstore.NewHub(store, eventstore.HubOptions{})
	go func() { done <- live.Run(ctx) }()
	requests := &observedRequests{Requests: d}
	api := &httpapi.API{
		Requests: requests, Users: facts, History: projections.NewHistoryReader(db), Transcripts: projections.NewTranscriptReader(db),
		Events: store, Views: views, Live: live, Permissions: projections.NewPermissionReader(db), Approvals: projections.NewApprovalReader(db),
		Search:       projections.NewSearchReader(db),
		ReplyTimeout: 10 * time.Second, // a test waiting longer has failed
		Triggers:     &dispatcher.Triggers{Store: store, Vault: testVault(t, store)}, Sources: projections.NewSourcesReader(db),
	}
	srv := httptest.NewServer(httpapi.NewHandler(alwaysReady, func() *httpapi.API { return api }))
	t.Cleanup(func() {
		srv.Close()
		cancel()
		for range 3 {
			if err := <-done; err != nil && ctx.Err() == nil {
				t.Error(err)
			}
		}
		store.Close()
	})
	p := &platform{store: store, posts: posts, requests: requests, facts: facts, api: api, url: srv.URL, adminToken: token}
	testenv.Eventually(t, "the dispatcher to fold the bootstrap and the sample bundle", func() bool {
		return facts.BundleInstalled("toolbox") && p.knows(token)
	})
	return p
}

// heldPosts posts the api's replies at once, or, while held, holds each
// post (and so the dispatcher) until released: what a slow reply looks
// like to whoever waits for it.
type heldPosts struct {
	mu      sync.Mutex
	release chan struct{}
	holding chan string // request ids of the posts being held
}

// hold makes the next posts wait; each one held is announced on the
// returned channel. The returned function releases them all.
func (h *heldPosts) hold() (<-chan string, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.release, h.holding = make(chan struct{}), make(chan string, 16)
	release, holding := h.release, h.holding
	var once sync.Once
	return holding, func() {
		once.Do(func() {
			h.mu.Lock()
			h.release = nil
			h.mu.Unlock()
			close(release)
		})
	}
}

func (h *heldPosts) Post(_ context.Context, requestID string, _ dispatch.Reply) (string, error) {
	h.mu.Lock()
	release, holding := h.release, h.holding
	h.mu.Unlock()
	if release != nil {
		holding <- requestID
		<-release
	}
	return "", nil
}

// observedRequests is the dispatcher as the API uses it, telling a test
// that watches when the API's Receive calls return.
type observedRequests struct {
	httpapi.Requests
	mu       sync.Mutex
	received chan error
}

// watch announces each Receive's outcome from now on.
func (o *observedRequests) watch() <-chan error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.received = make(chan error, 16)
	return o.received
}

func (o *observedRequests) Receive(ctx context.Context, in dispatch.RequestReceived, actor string) (string, error) {
	id, err := o.Requests.Receive(ctx, in, actor)
	o.announce(err)
	return id, err
}

func (o *observedRequests) ReceiveAndWait(ctx, wait context.Context, in dispatch.RequestReceived, actor string) (string, <-chan dispatch.Reply, error) {
	id, replies, err := o.Requests.ReceiveAndWait(ctx, wait, in, actor)
	o.announce(err)
	return id, replies, err
}

func (o *observedRequests) announce(err error) {
	o.mu.Lock()
	received := o.received
	o.mu.Unlock()
	if received != nil {
		received <- err
	}
}

func (p *platform) knows(token string) bool {
	_, ok := p.facts.UserForToken(token)
	return ok
}

// do sends a request and returns the status, headers and body.
func (p *platform) do(t *testing.T, method, path, token string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, p.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	p.checker.check(t, p.url, req, resp.StatusCode, resp.Header, out)
	return resp.StatusCode, resp.Header, out
}

// say issues text as the token's user and waits for the reply.
func (p *platform) say(t *testing.T, token, text string) (string, dispatch.Reply) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"text": text})
	status, _, out := p.do(t, http.MethodPost, "/v1/requests?wait=1", token, body)
	if status != http.StatusOK {
		t.Fatalf("POST /v1/requests %q: %d %s", text, status, out)
	}
	var answer struct {
		RequestID string         `json:"request_id"`
		Reply     dispatch.Reply `json:"reply"`
	}
	if err := json.Unmarshal(out, &answer); err != nil {
		t.Fatal(err)
	}
	if answer.Reply.Failed {
		t.Fatalf("%q failed: %s", text, answer.Reply.Text)
	}
	return answer.RequestID, answer.Reply
}

var issuedToken = regexp.MustCompile(`lbk_[A-Za-z0-9_-]{43}`)

// addUser creates name through the API as the admin and returns their token.
func (p *platform) addUser(t *testing.T, name string) string {
	t.Helper()
	p.say(t, p.adminToken, "user create "+name)
	_, reply := p.say(t, p.adminToken, "user token "+name)
	token := issuedToken.FindString(reply.Text)
	if token == "" {
		t.Fatalf("user token %s gave no token: %q", name, reply.Text)
	}
	testenv.Eventually(t, name+"'s token to be known", func() bool { return p.knows(token) })
	return token
}

func contains(list []string, want string) bool {
	for _, s := range list {
		if s == want {
			return true
		}
	}
	return false
}

func mustJSON[T any](t *testing.T, status int, body []byte) T {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	return v
}

// getJSON GETs path and decodes a 200 answer.
func getJSON[T any](t *testing.T, p *platform, path, token string) T {
	t.Helper()
	status, _, body := p.do(t, http.MethodGet, path, token, nil)
	return mustJSON[T](t, status, body)
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

// writeDBOf is the pool a store writes the log and its own tables
// through (the dispatcher's checkpoint, secrets), which a
// projections.Source does not name.
func writeDBOf(src projections.Source) *sql.DB {
	return src.(interface{ WriteDB() *sql.DB }).WriteDB()
}
