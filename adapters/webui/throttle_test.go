package webui

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// oneToken knows a single token.
type oneToken struct{ httpapi.Users }

const goodToken = "lbk_the_only_good_one"

func (oneToken) UserForToken(token string) (access.UserInfo, bool) {
	return access.UserInfo{ID: "u-ann", Username: "ann"}, token == goodToken
}
func (oneToken) PermissionsOf(string) []string { return nil }

// lockedBuffer is a log the summary timer writes to from its own goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// warnings are the warning lines written so far.
func (b *lockedBuffer) warnings() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, line := range strings.Split(b.buf.String(), "\n") {
		if strings.Contains(line, `"level":"warn"`) {
			out = append(out, line)
		}
	}
	return out
}

// loginOnly is a UI that can log people in, and nothing more.
// noStore records logins and nothing else.
type noStore struct{ eventstore.Store }

func (noStore) Append(context.Context, string, eventstore.ExpectedVersion, ...domain.NewEvent) (eventstore.AppendResult, error) {
	return eventstore.AppendResult{}, nil
}

func loginOnly(t *testing.T, log *lockedBuffer) *UI {
	t.Helper()
	type noHistory struct{ httpapi.History }
	type noTranscripts struct{ httpapi.Transcripts }
	type noRequests struct{ httpapi.Requests }
	type noFacts struct{ dispatch.Facts }
	type noPermissions struct{ httpapi.PermissionReader }
	type noLive struct{ httpapi.LiveStreams }
	type noDashboard struct{ Dashboard }
	type noAudit struct{ AuditLog }
	ui, err := New(Config{Users: oneToken{}, Requests: noRequests{}, History: noHistory{}, Dashboard: noDashboard{}, Audit: noAudit{}, Transcripts: noTranscripts{},
		Events: noStore{}, Live: noLive{}, Access: noFacts{}, Permissions: noPermissions{}, Logger: zerolog.New(log)})
	if err != nil {
		t.Fatal(err)
	}
	return ui
}

func tryLogin(ui *UI, from, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = from
	rec := httptest.NewRecorder()
	ui.ServeHTTP(rec, req)
	return rec
}

func TestFailedLoginsAreThrottledPerClientAndLoggedAsASummary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log lockedBuffer
		ui := loginOnly(t, &log)
		const attacker, neighbour = "198.51.100.7:40000", "203.0.113.9:50000"

		// When one client sends 300 wrong tokens at once,
		statuses := map[int]int{}
		var retryAfter string
		for i := range 300 {
			rec := tryLogin(ui, attacker, "lbk_guess_"+strings.Repeat("x", i%7))
			statuses[rec.Code]++
			if rec.Code == http.StatusTooManyRequests {
				retryAfter = rec.Header().Get("Retry-After")
			}
		}
		// then the first ten are checked and refused, the rest are throttled
		// with a Retry-After, a good token among them too,
		if statuses[http.StatusUnauthorized] != loginBurst || statuses[http.StatusTooManyRequests] != 300-loginBurst || retryAfter != "6" {
			t.Fatalf("300 wrong tokens were answered %v with Retry-After %q; want %d 401s, then 429s with Retry-After 6", statuses, retryAfter, loginBurst)
		}
		if rec := tryLogin(ui, attacker, goodToken); rec.Code != http.StatusTooManyRequests {
			t.Fatalf("a good token from the throttled client answered %d, want 429 unchecked", rec.Code)
		}
		// another client is not held back,
		if rec := tryLogin(ui, neighbour, "lbk_wrong"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("another client's login answered %d, want 401", rec.Code)
		}
		// and the log has one line so far.
		if lines := log.warnings(); len(lines) != 1 || !strings.Contains(lines[0], "198.51.100.7") {
			t.Fatalf("the log after the flood:\n%s", strings.Join(lines, "\n"))
		}

		// After a minute one line sums up the rest, naming no token.
		time.Sleep(refusalSummaryEvery)
		synctest.Wait()
		lines := log.warnings()
		if len(lines) != 2 || !strings.Contains(lines[1], `"refused":10`) || !strings.Contains(lines[1], `"throttled":291`) || !strings.Contains(lines[1], `"clients":2`) {
			t.Fatalf("the log a minute on:\n%s", strings.Join(lines, "\n"))
		}
		if strings.Contains(strings.Join(lines, ""), "lbk_") {
			t.Fatal("a token reached the log")
		}
		// The throttled client, having waited, logs in.
		if rec := tryLogin(ui, attacker, goodToken); rec.Code != http.StatusSeeOther {
			t.Fatalf("after the wait a good token answered %d, want 303", rec.Code)
		}
		// A quiet minute ends the summaries; the next refusal is written at once.
		time.Sleep(refusalSummaryEvery)
		synctest.Wait()
		tryLogin(ui, neighbour, "lbk_wrong_again")
		if lines := log.warnings(); len(lines) != 3 || !strings.Contains(lines[2], "203.0.113.9") {
			t.Fatalf("the log after a quiet minute and one more refusal:\n%s", strings.Join(lines, "\n"))
		}
	})
}

func TestAClientIsItsAddressAndAnIPv6ClientItsSlash64(t *testing.T) {
	t.Parallel()
	for from, want := range map[string]string{
		"198.51.100.7:40000":          "198.51.100.7",
		"[::ffff:198.51.100.7]:1":     "198.51.100.7",
		"[2001:db8:1:2::1]:443":       "2001:db8:1:2::/64",
		"[2001:db8:1:2:aaaa::9]:8080": "2001:db8:1:2::/64",
		"[fe80::1%eth0]:22":           "fe80::/64",
		"not an address":              "not an address",
	} {
		if got := clientOf(from); got != want {
			t.Errorf("clientOf(%q) = %q, want %q", from, got, want)
		}
	}
}

func TestTheThrottleForgetsClientsWhoseFailuresHaveRefilled(t *testing.T) {
	t.Parallel()
	th := newLoginThrottle()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range maxLoginClients {
		th.failed(fmt.Sprintf("client-%d", i), start)
	}
	// Once every failure has refilled, a new client makes room by
	// forgetting those.
	later := start.Add(loginBurst * loginRefill)
	th.failed("newcomer", later)
	if n := len(th.clients); n != 1 {
		t.Fatalf("the throttle remembers %d clients, want only the newcomer", n)
	}
	// With no client refilled, the table still stays within its bound.
	for i := range maxLoginClients + 5 {
		th.failed(fmt.Sprintf("crowd-%d", i), later)
	}
	if n := len(th.clients); n > maxLoginClients {
		t.Fatalf("the throttle remembers %d clients, over its bound of %d", n, maxLoginClients)
	}
}
