package webui_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/webui"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// clock is a settable clock the UI's handlers may read concurrently.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// on is a browser for the server at base holding b's session cookie and
// CSRF token, as a load balancer sending the same person to another
// server makes it.
func (b *browser) on(f *fixture, base string) *browser {
	b.t.Helper()
	other := f.browser(b.t)
	other.base, other.csrf = base, b.csrf
	from, _ := url.Parse(b.base)
	to, _ := url.Parse(base)
	other.c.Jar.SetCookies(to, b.c.Jar.Cookies(from))
	return other
}

// wantLoginAsked checks that path sends the browser to the login form.
func wantLoginAsked(t *testing.T, b *browser, path, why string) {
	t.Helper()
	resp, _ := b.get(path)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("%s: %s answered %d to %q, want the login form", why, path, resp.StatusCode, resp.Header.Get("Location"))
	}
}

func wantPage(t *testing.T, b *browser, path, why string) string {
	t.Helper()
	resp, body := b.get(path)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s answered %d, want the page", why, path, resp.StatusCode)
	}
	return body
}

func sessionRows(t *testing.T, f *fixture, where string, args ...any) int {
	t.Helper()
	var n int
	if err := f.store.DB().QueryRowContext(t.Context(), "SELECT count(*) FROM web_sessions "+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A session opened on one server works on another of the same database,
// with its console's history and its CSRF token; a logout on either ends
// it on both.
func TestASessionOpenedOnOneServerWorksOnAnother(t *testing.T) {
	t.Parallel()
	f := newFixtureWith(t, fixtureOptions{sqlSessions: true})
	otherURL := f.replica(t)
	first := f.login(t, f.adminToken)
	typedFirst := first.say("!echo typed on the first server")

	second := first.on(f, otherURL)
	console := wantPage(t, second, "/console", "the first server's session on the second server")
	if !strings.Contains(console, `data-request="`+typedFirst+`"`) || !strings.Contains(console, "typed on the first server") {
		t.Fatalf("the second server's console does not show the command typed on the first:\n%s", console)
	}
	if csrf := regexpFind(t, console, `name="csrf" value="([^"]+)"`); csrf != first.csrf {
		t.Fatalf("the second server's page carries the CSRF token %q, the first's %q", csrf, first.csrf)
	}
	typedSecond := second.say("!echo typed on the second server")
	console = wantPage(t, first, "/console", "the session back on the first server")
	if !strings.Contains(console, `data-request="`+typedSecond+`"`) {
		t.Fatalf("the first server's console does not show the command typed on the second:\n%s", console)
	}
	if strings.Index(console, typedFirst) > strings.Index(console, typedSecond) {
		t.Fatal("the console lists the commands out of the order they were typed in")
	}

	if resp := second.post("/logout", url.Values{"csrf": {second.csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout on the second server answered %d", resp.StatusCode)
	}
	wantLoginAsked(t, first, "/console", "after a logout on the second server")
	if n := sessionRows(t, f, ""); n != 0 {
		t.Fatalf("%d sessions are stored after the only one logged out", n)
	}
}

// The control: sessions kept in memory are the server's own, so the test
// above shows the database carrying them.
func TestASessionInMemoryIsUnknownToAnotherServer(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	otherURL := f.replica(t)
	first := f.login(t, f.adminToken)
	wantLoginAsked(t, first.on(f, otherURL), "/console", "a session kept in the first server's memory")
}

// The lifetimes hold across servers: use on any server keeps a session
// from going idle; past the idle or the maximum age every server refuses
// it; and a login deletes the sessions that expired, whoever held them.
func TestAnExpiredSessionIsRefusedOnEveryServer(t *testing.T) {
	t.Parallel()
	c := &clock{now: t0}
	f := newFixtureWith(t, fixtureOptions{sqlSessions: true, now: c.Now})
	otherURL := f.replica(t)
	first := f.login(t, f.adminToken)
	second := first.on(f, otherURL)

	c.advance(11 * time.Hour)
	wantPage(t, second, "/console", "11 h after the login")
	c.advance(11 * time.Hour)
	wantPage(t, first, "/console", "11 h after a use on the other server")
	c.advance(12*time.Hour + 2*time.Minute)
	wantLoginAsked(t, second, "/console", "12 h after the last use")
	wantLoginAsked(t, first, "/console", "12 h after the last use")
	if n := sessionRows(t, f, ""); n != 0 {
		t.Fatalf("%d sessions are stored after the only one expired and was refused", n)
	}

	first = f.login(t, f.adminToken)
	second = first.on(f, otherURL)
	for used := time.Duration(0); used+6*time.Hour < 7*24*time.Hour; used += 6 * time.Hour {
		c.advance(6 * time.Hour)
		b := first
		if used%(12*time.Hour) == 0 {
			b = second
		}
		wantPage(t, b, "/console", "within the maximum age")
	}
	c.advance(6*time.Hour + time.Minute)
	wantLoginAsked(t, second, "/console", "past the maximum age of 7 days")

	f.login(t, f.bobToken)
	c.advance(13 * time.Hour)
	if n := sessionRows(t, f, "WHERE user_id = ?1", bobID); n != 1 {
		t.Fatalf("bob holds %d sessions before the sweep, want 1", n)
	}
	f.login(t, f.adminToken) // on the first server: the sweep runs at a login
	if n := sessionRows(t, f, "WHERE user_id = ?1", bobID); n != 0 {
		t.Fatalf("bob's expired session outlived a login's sweep (%d rows)", n)
	}
}

// refusingAppends is a store whose appends fail, as a database that
// refuses writes makes it.
type refusingAppends struct{ eventstore.Store }

func (refusingAppends) Append(context.Context, string, eventstore.ExpectedVersion, ...domain.NewEvent) (eventstore.AppendResult, error) {
	return eventstore.AppendResult{}, errors.New("the database refuses writes")
}

// A login that cannot be recorded in the audit log is refused and leaves
// no session behind.
func TestALoginThatCannotBeRecordedLeavesNoSession(t *testing.T) {
	t.Parallel()
	f := newFixtureWith(t, fixtureOptions{sqlSessions: true})
	cfg := f.cfg
	cfg.Events = refusingAppends{f.store}
	ui, err := webui.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui)
	t.Cleanup(srv.Close)
	b := f.browser(t)
	b.base = srv.URL
	if resp := b.post("/login", url.Values{"token": {f.adminToken}}, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a login that could not be recorded answered %d, want 503", resp.StatusCode)
	}
	if n := sessionRows(t, f, ""); n != 0 {
		t.Fatalf("a refused login left %d sessions", n)
	}
}

// refusingSessions is a session store that cannot store a session.
type refusingSessions struct{ *webui.MemorySessions }

func (refusingSessions) Create(context.Context, webui.StoredSession) error {
	return errors.New("the database refuses writes")
}

// A login whose session cannot be stored is refused, and the audit log
// does not show it.
func TestALoginWhoseSessionCannotBeStoredIsNotInTheAuditLog(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.cfg
	cfg.Sessions = refusingSessions{webui.NewMemorySessions()}
	ui, err := webui.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui)
	t.Cleanup(srv.Close)
	b := f.browser(t)
	b.base = srv.URL
	if resp := b.post("/login", url.Values{"token": {f.bobToken}}, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a login whose session could not be stored answered %d, want 503", resp.StatusCode)
	}
	logins, err := f.store.ReadStream(t.Context(), access.SessionStream(bobID), 0, 10)
	if err != nil || len(logins) != 0 {
		t.Fatalf("the audit log holds %d of bob's logins (%v), want none", len(logins), err)
	}
}
