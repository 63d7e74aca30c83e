package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSinceReadsTimesAndAges(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 6, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, in string
		want     time.Time
		column   int // of the error; 0 when it parses
	}{
		{"an RFC 3339 time is taken as it is, in UTC", "2026-05-06T10:00:00+02:00", time.Date(2026, 5, 6, 8, 0, 0, 0, time.UTC), 0},
		{"an hour is an hour before now", "1h", now.Add(-time.Hour), 0},
		{"a compound duration counts back", "1h30m", now.Add(-90 * time.Minute), 0},
		{"days count back whole days", "7d", now.AddDate(0, 0, -7), 0},
		{"a date alone is not RFC 3339", "2026-05-06", time.Time{}, 5},
		{"a unitless number is refused at its end", "15", time.Time{}, 3},
		{"a word is refused at its start", "yesterday", time.Time{}, 1},
		{"a negative age is refused", "-1h", time.Time{}, 1},
		{"days must be whole", "1.5d", time.Time{}, 2},
		{"nothing is refused", "", time.Time{}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := historyParseSince(tt.in, now)
			if tt.column != 0 {
				var se *historySinceError
				if !errors.As(err, &se) || se.Column != tt.column || !strings.Contains(err.Error(), "expected") {
					t.Fatalf("%q: %v; want an error at column %d", tt.in, err, tt.column)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("%q = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

// FuzzHistoryParseSince: any text is a time no later than now (for ages)
// or an error with a column inside the text.
func FuzzHistoryParseSince(f *testing.F) {
	f.Add("1h")
	now := time.Date(2026, 5, 6, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := historyParseSince(s, now)
		if err != nil {
			var se *historySinceError
			if !errors.As(err, &se) || se.Column < 1 || se.Column > len(s)+1 {
				t.Fatalf("%q: %v has no column within the text", s, err)
			}
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("%q: %v is not UTC", s, got)
		}
	})
}

// fakeServer answers the CLI's reads and records what it asked.
type fakeServer struct {
	mu    sync.Mutex
	asked []*http.Request
}

func (s *fakeServer) start(t *testing.T, handler http.HandlerFunc) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.asked = append(s.asked, r)
		s.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer lbk_test" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"the token is not valid"}`)
			return
		}
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("LOGBOOK_URL", srv.URL)
	t.Setenv("LOGBOOK_TOKEN", "lbk_test")
}

func (s *fakeServer) last() *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asked[len(s.asked)-1]
}

func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestHistorySendsTheFiltersAndPrintsATable(t *testing.T) {
	var s fakeServer
	s.start(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"requests":[{"request_id":"q1","adapter":"api","room":"api","chat_user":"admin","username":"admin","text":"toolbox:echo hello","status":"completed","received_at":"2026-05-06T12:00:00Z","duration_ms":1500}],"next_cursor":"7"}`)
	})
	out, errOut, err := runCLIOutput(t, "history", "--user", "admin", "--command", "toolbox:echo", "--status", "completed", "--since", "1h", "--limit", "1")
	if err != nil {
		t.Fatal(err)
	}
	q := s.last().URL.Query()
	since, perr := time.Parse(time.RFC3339Nano, q.Get("since"))
	if s.last().URL.Path != "/v1/history" || q.Get("user") != "admin" || q.Get("command") != "toolbox:echo" || q.Get("status") != "completed" ||
		q.Get("limit") != "1" || perr != nil || time.Since(since) < 59*time.Minute || time.Since(since) > 61*time.Minute {
		t.Fatalf("asked %s", s.last().URL)
	}
	if !strings.HasPrefix(out, "REQUEST ") || !strings.Contains(out, "q1") || !strings.Contains(out, "completed") || !strings.Contains(out, "1.5s") {
		t.Fatalf("table:\n%s", out)
	}
	if !strings.Contains(errOut, "--cursor 7") {
		t.Fatalf("the next page is not offered: %q", errOut)
	}

	out, _, err = runCLIOutput(t, "history", "--json")
	if err != nil || !strings.Contains(out, `"next_cursor": "7"`) || !strings.Contains(out, `"request_id": "q1"`) {
		t.Fatalf("--json = %v\n%s", err, out)
	}
}

func TestRunsPrintsExitCodesAndRefusesBadFlagsBeforeAsking(t *testing.T) {
	var s fakeServer
	s.start(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"runs":[{"run_id":"q1-s0-i0","request_id":"q1","command":"toolbox:echo","status":"failed","username":"admin","exit_code":3}]}`)
	})
	out, _, err := runCLIOutput(t, "runs", "--provider", "api")
	if err != nil || s.last().URL.Path != "/v1/runs" || s.last().URL.Query().Get("provider") != "api" ||
		!strings.Contains(out, "q1-s0-i0") || !strings.Contains(out, "failed  3") {
		t.Fatalf("runs = %v, asked %s\n%s", err, s.last().URL, out)
	}
	asked := len(s.asked)
	for _, args := range [][]string{{"runs", "--since", "soon"}, {"runs", "--limit", "0"}, {"history", "--until", "2026"}} {
		if code := exitCode(runCLI(t, args...)); code != 2 {
			t.Fatalf("%v exited %d; want 2", args, code)
		}
	}
	if len(s.asked) != asked {
		t.Fatal("bad flags reached the server")
	}
}

func TestServerRefusalsBecomeExitCodes(t *testing.T) {
	var s fakeServer
	s.start(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":"no run nope"}`)
	})
	_, _, err := runCLIOutput(t, "transcript", "nope")
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "no run nope") {
		t.Fatalf("an unknown run: %v (exit %d); want exit 1 naming it", err, exitCode(err))
	}
	t.Setenv("LOGBOOK_TOKEN", "lbk_wrong")
	_, _, err = runCLIOutput(t, "history")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "LOGBOOK_TOKEN") {
		t.Fatalf("a bad token: %v (exit %d); want exit 2 naming LOGBOOK_TOKEN", err, exitCode(err))
	}
}

func TestTranscriptPrintsTheBytesExactly(t *testing.T) {
	var s fakeServer
	body := "out\x00\xff\r\nno newline at the end"
	s.start(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, body)
	})
	out, _, err := runCLIOutput(t, "transcript", "--stream", "stdout", "r1")
	if err != nil || out != body || s.last().URL.Path != "/v1/runs/r1/transcript" || s.last().URL.Query().Get("stream") != "stdout" {
		t.Fatalf("transcript = %q, %v (asked %s)", out, err, s.last().URL)
	}
	if _, _, err := runCLIOutput(t, "transcript", "--json", "r1"); err != nil || s.last().URL.Query().Get("format") != "chunks" {
		t.Fatalf("--json asked %s (%v)", s.last().URL, err)
	}
	if code := exitCode(runCLI(t, "transcript", "--stream", "stdin", "r1")); code != 2 {
		t.Fatalf("--stream stdin exited %d", code)
	}
}

func TestFollowingResumesAfterADroppedConnectionAndStopsAtTheEnd(t *testing.T) {
	var s fakeServer
	var mu sync.Mutex
	connections := 0
	s.start(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		connections++
		n := connections
		mu.Unlock()
		if r.URL.Query().Get("follow") != "1" {
			t.Errorf("follow asked %s", r.URL)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		if n == 1 {
			// Two chunks, then the connection drops without an end.
			fmt.Fprint(w, "id: 0\nevent: chunk\ndata: {\"seq\":0,\"stream\":\"stdout\",\"bytes\":\"MQo=\"}\n\n")
			fmt.Fprint(w, "id: 1\nevent: chunk\ndata: {\"seq\":1,\"stream\":\"stdout\",\"bytes\":\"Mgo=\"}\n\n")
			return
		}
		if got := r.Header.Get("Last-Event-ID"); got != "1" {
			t.Errorf("reconnected with Last-Event-ID %q; want 1", got)
		}
		fmt.Fprint(w, ": a comment is ignored\n\nid: 2\nevent: chunk\ndata: {\"seq\":2,\"stream\":\"stdout\",\"bytes\":\"Mwo=\"}\n\n")
		fmt.Fprint(w, "event: end\ndata: {\"run_id\":\"r1\",\"status\":\"failed\"}\n\n")
		fmt.Fprint(w, "id: 3\nevent: chunk\ndata: {\"seq\":3,\"stream\":\"stdout\",\"bytes\":\"NAo=\"}\n\n")
	})
	out, errOut, err := runCLIOutput(t, "transcript", "--follow", "r1")
	if err != nil || out != "1\n2\n3\n" || connections != 2 || !strings.Contains(errOut, "r1 ended: failed") {
		t.Fatalf("follow = %q, %v after %d connections; stderr %q", out, err, connections, errOut)
	}
}

// A room holding a newline forged a row, and text holding ESC [2J cleared
// the terminal: `history` escapes them.
func TestHistoryEscapesWhatPeopleTyped(t *testing.T) {
	var s fakeServer
	s.start(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"requests":[{"request_id":"q1","adapter":"api","room":"ops\nq2  2026-05-06T12:00:00Z  admin","chat_user":"bob","username":"bob","text":"echo \u001b[2Jgone","status":"completed","received_at":"2026-05-06T12:00:00Z"}]}`)
	})
	out, _, err := runCLIOutput(t, "history")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out, "\n"); n != 2 || strings.ContainsRune(out, '\x1b') || !strings.Contains(out, `ops\nq2`) || !strings.Contains(out, `echo \x1b[2Jgone`) {
		t.Fatalf("history printed %d lines:\n%q", n, out)
	}
}

func TestSearchSendsTheQueryAndFiltersAndPrintsATable(t *testing.T) {
	var s fakeServer
	s.start(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"query":"10.0.3.7 \"exit status\"","hits":[{"position":9,"request_id":"q1","run_id":"r1","kind":"output","line":12,"command":"toolbox:sh","username":"ann","adapter":"web","room":"console","status":"completed","text":"sh","received_at":"2026-05-06T12:00:00Z","snippet":[{"text":"ping "},{"text":"10.0.3.7","match":true},{"text":"\u001b[31m"}]}],"next_cursor":"9"}`)
	})
	out, errOut, err := runCLIOutput(t, "search", "10.0.3.7", "exit status", "--user", "ann", "--since", "7d")
	if err != nil {
		t.Fatal(err)
	}
	q := s.last().URL.Query()
	if s.last().URL.Path != "/v1/search" || q.Get("q") != `10.0.3.7 "exit status"` || q.Get("user") != "ann" || q.Get("since") == "" {
		t.Fatalf("asked %s", s.last().URL)
	}
	if !strings.HasPrefix(out, "RECEIVED ") || !strings.Contains(out, "r1") || !strings.Contains(out, " 12 ") || !strings.Contains(out, `ping 10.0.3.7\x1b[31m`) {
		t.Fatalf("table (the escape must be escaped):\n%s", out)
	}
	if !strings.Contains(errOut, "--cursor 9") {
		t.Fatalf("the next page is not offered: %q", errOut)
	}
	out, _, err = runCLIOutput(t, "search", "10.0.3.7", "--json")
	if err != nil || !strings.Contains(out, `"next_cursor": "9"`) || !strings.Contains(out, `"line": 12`) {
		t.Fatalf("search --json = %s, %v", out, err)
	}
	// A query that cannot parse is refused before the server is asked.
	asked := len(s.asked)
	_, _, err = runCLIOutput(t, "search", "a.")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "too short") || len(s.asked) != asked {
		t.Fatalf("search a. = %v after %d requests", err, len(s.asked)-asked)
	}
}
