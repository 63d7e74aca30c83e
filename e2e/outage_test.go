package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite" // to lock the server's SQLite file from outside

	"github.com/logbookhq/logbook/internal/testenv"
)

// load sends `echo` requests with ?wait=1 from several clients until
// stopped, and remembers how each one was answered.
type load struct {
	number   int64        // in every message id: loads of one server never share ids
	addr     atomic.Value // string: the server's address, which a restart changes
	token    string
	stop     chan struct{}
	wg       sync.WaitGroup
	answered atomic.Int64 // 200 with a reply

	mu       sync.Mutex
	outcomes map[string]string // message id → "200", "202", "503", "error: ..."
	replies  map[string]string // message id → reply text (200)
}

// loads numbers the loads of this test binary.
var loads atomic.Int64

func startLoad(t *testing.T, addr, token string, clients int) *load {
	l := &load{number: loads.Add(1), token: token, stop: make(chan struct{}), outcomes: map[string]string{}, replies: map[string]string{}}
	l.addr.Store(addr)
	client := &http.Client{Timeout: 90 * time.Second}
	for c := range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				id := fmt.Sprintf("load%d-%d-%d", l.number, c, i)
				body, _ := json.Marshal(map[string]string{"text": "echo marker-" + id, "message_id": id})
				req, _ := http.NewRequest(http.MethodPost, "http://"+l.addr.Load().(string)+"/v1/requests?wait=1", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				outcome, reply := "", ""
				if err != nil {
					outcome = "error: " + err.Error()
					time.Sleep(50 * time.Millisecond) // the server is restarting its connection: do not spin
				} else {
					var answer struct {
						Reply *struct {
							Text string `json:"text"`
						} `json:"reply"`
					}
					raw, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					outcome = fmt.Sprint(resp.StatusCode)
					if json.Unmarshal(raw, &answer) == nil && answer.Reply != nil {
						reply = answer.Reply.Text
					}
					if resp.StatusCode == http.StatusServiceUnavailable {
						time.Sleep(50 * time.Millisecond)
					}
				}
				l.mu.Lock()
				l.outcomes[id], l.replies[id] = outcome, reply
				l.mu.Unlock()
				if outcome == "200" {
					l.answered.Add(1)
				}
			}
		}()
	}
	return l
}

// waitAnswered waits until n more requests than now were answered.
func (l *load) waitAnswered(t *testing.T, n int64, what string) {
	t.Helper()
	target := l.answered.Load() + n
	testenv.EventuallyWithin(t, 90*time.Second, what, func() bool { return l.answered.Load() >= target })
}

func (l *load) finish() {
	close(l.stop)
	l.wg.Wait()
}

// readyWatch polls /readyz and remembers the answers in order, collapsed.
type readyWatch struct {
	addr atomic.Value // string
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	seen []int
}

func watchReady(addr string) *readyWatch {
	w := &readyWatch{stop: make(chan struct{}), done: make(chan struct{})}
	w.addr.Store(addr)
	go func() {
		defer close(w.done)
		client := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			code := 0
			if resp, err := client.Get("http://" + w.addr.Load().(string) + "/readyz"); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code = resp.StatusCode
			}
			w.mu.Lock()
			if len(w.seen) == 0 || w.seen[len(w.seen)-1] != code {
				w.seen = append(w.seen, code)
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// last is the latest answer seen.
func (w *readyWatch) last() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.seen) == 0 {
		return 0
	}
	return w.seen[len(w.seen)-1]
}

func (w *readyWatch) finish() []int {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}

// outage is one way to take the database (or the server) away under load:
// it returns the server that serves afterwards.
type outage func(t *testing.T, s *server) *server

// TestTheServerHealsAfterAnOutage runs `logbook serve` under load, and
// takes the database away: a real restart of a Postgres cluster
// (pg_ctlcluster), a cut of the network between server and Postgres (a
// proxy), and a SQLite file locked by another process for longer than the
// store waits; and kills the server itself with SIGKILL, starting it
// again. Afterwards:
// /readyz went 503 (or away) and back to 200 with no restart of Logbook
// for the database outages; every request that was recorded is decided
// and answered exactly once, a 200 carrying its own reply; and the views
// catch up.
func TestTheServerHealsAfterAnOutage(t *testing.T) {
	type setup func(t *testing.T) (dbURL string, take outage)
	cases := map[string]setup{
		"pg_ctlcluster restart": func(t *testing.T) (string, outage) {
			pg := testenv.NewPostgresOutage(t)
			return pg.URL, func(t *testing.T, s *server) *server { pg.Restart(t); return s }
		},
		"the connection cut for 2s": func(t *testing.T) (string, outage) {
			direct := testenv.PostgresSchema(t)
			u, err := url.Parse(direct)
			if err != nil {
				t.Fatal(err)
			}
			target := u.Host
			if u.Port() == "" {
				target += ":5432"
			}
			proxy := testenv.NewProxy(t, target, true)
			return strings.Replace(direct, target, proxy.Addr(), 1), func(t *testing.T, s *server) *server {
				proxy.Cut()
				time.Sleep(2 * time.Second) // the length of the outage
				proxy.Restore()
				return s
			}
		},
		"the SQLite file locked for 15s by another process": func(t *testing.T) (string, outage) {
			path := filepath.Join(t.TempDir(), "logbook.db")
			return "sqlite://" + path, func(t *testing.T, s *server) *server {
				// Longer than the store's busy timeout (10s): writes first
				// wait, then fail, and the server must get past both.
				db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(30000)")
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				conn, err := db.Conn(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
					t.Fatal(err)
				}
				time.Sleep(15 * time.Second) // the length of the outage
				if _, err := conn.ExecContext(context.Background(), "COMMIT"); err != nil {
					t.Fatal(err)
				}
				return s
			}
		},
		"kill -9 of the server": func(t *testing.T) (string, outage) {
			dbURL := testenv.PostgresSchema(t)
			return dbURL, func(t *testing.T, s *server) *server {
				if err := s.cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				<-s.exited
				again := startServer(t, "LOGBOOK_DATABASE_URL="+dbURL, "LOGBOOK_RUNTIME=process")
				again.waitReady(t)
				return again
			}
		},
	}
	for name, prepare := range cases {
		t.Run(name, func(t *testing.T) {
			dbURL, take := prepare(t)
			env := []string{"LOGBOOK_DATABASE_URL=" + dbURL}
			s := startServer(t, append(env, "LOGBOOK_RUNTIME=process")...)
			s.waitReady(t)
			admin := s.token(t)

			ready := watchReady(s.addr)
			l := startLoad(t, s.addr, admin, 8)
			l.waitAnswered(t, 20, "requests answered before the outage")
			s = take(t, s)
			l.addr.Store(s.addr)
			ready.addr.Store(s.addr)
			l.waitAnswered(t, 20, "requests answered after the outage")
			l.finish()
			// Every part comes back on its own, each after its backoff.
			testenv.EventuallyWithin(t, 60*time.Second, "/readyz 200 again", func() bool { return ready.last() == http.StatusOK })
			seen := ready.finish()
			t.Logf("/readyz answered, in order: %v", seen)
			// A locked SQLite file still answers reads, so the server may
			// stay ready through it (its writes wait, then retry); the
			// other outages take every part's database away.
			sqliteLock := strings.HasPrefix(name, "the SQLite file")
			if i := max(indexOf(seen, http.StatusServiceUnavailable), indexOf(seen, 0)); (i < 0 && !sqliteLock) || indexOf(seen[max(i, 0):], http.StatusOK) < 0 {
				t.Errorf("/readyz went %v; want 503 (or no answer) during the outage and 200 after", seen)
			}

			// Every recorded request ends with exactly one reply.
			var events []envelope
			testenv.EventuallyWithin(t, 90*time.Second, "every recorded request answered", func() bool {
				events = storedEvents(t, env)
				return len(unansweredRequests(events)) == 0
			})
			replies := map[string]int{}
			received := 0
			for _, e := range events {
				switch e.Type {
				case "ReplyPosted":
					replies[e.Stream]++
				case "RequestReceived":
					received++
				}
			}
			for stream, n := range replies {
				if n != 1 {
					t.Errorf("%s has %d ReplyPosted, want 1", stream, n)
				}
			}
			l.mu.Lock()
			counts := map[string]int{}
			for id, outcome := range l.outcomes {
				key := outcome
				if strings.HasPrefix(outcome, "error") {
					key = "error"
				}
				counts[key]++
				if outcome == "200" && !strings.Contains(l.replies[id], "marker-"+id) {
					t.Errorf("%s was answered %q, not its own reply", id, l.replies[id])
				}
			}
			l.mu.Unlock()
			t.Logf("outcomes %v; %d requests recorded, all answered once", counts, received)

			waitViewsAtHead(t, env)
		})
	}
}

func indexOf(list []int, v int) int {
	for i, x := range list {
		if x == v {
			return i
		}
	}
	return -1
}

// unansweredRequests lists the request streams with a RequestReceived and
// no ReplyPosted.
func unansweredRequests(events []envelope) []string {
	received, replied := map[string]bool{}, map[string]bool{}
	for _, e := range events {
		switch e.Type {
		case "RequestReceived":
			received[e.Stream] = true
		case "ReplyPosted":
			replied[e.Stream] = true
		}
	}
	var out []string
	for s := range received {
		if !replied[s] {
			out = append(out, s)
		}
	}
	return out
}

// waitViewsAtHead waits until every view has applied the whole log.
func waitViewsAtHead(t *testing.T, env []string) {
	t.Helper()
	testenv.EventuallyWithin(t, 60*time.Second, "the views at the head", func() bool {
		cmd := exec.Command(binary, "projections", "status", "--json")
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			return false
		}
		var status []struct {
			Behind int64 `json:"behind"`
		}
		if json.Unmarshal(out, &status) != nil || len(status) == 0 {
			return false
		}
		for _, st := range status {
			if st.Behind != 0 {
				return false
			}
		}
		return true
	})
}
