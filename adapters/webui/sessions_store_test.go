package webui_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/postgres"
	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/adapters/webui"
	"github.com/logbookhq/logbook/internal/testenv"
	"github.com/logbookhq/logbook/projections"
)

// databases runs test on a fresh SQLite file and on a fresh Postgres
// schema (see internal/testenv for when a missing Postgres skips or
// fails). Each call of open opens the test's database anew, with pools of
// its own, as another server on it would.
func databases(t *testing.T, test func(t *testing.T, open func() projections.Source)) {
	t.Run("on SQLite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "logbook.db")
		test(t, func() projections.Source {
			s, err := sqlite.Open(context.Background(), path, sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
	t.Run("on Postgres", func(t *testing.T) {
		t.Parallel()
		url := testenv.PostgresSchema(t)
		test(t, func() projections.Source {
			s, err := postgres.Open(context.Background(), url, sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
}

func sqlSessionsOf(src projections.Source) webui.SQLSessions {
	rebind := func(q string) string { return q }
	if src.Dialect() == "sqlite" {
		rebind = sqlstore.RebindQuestion
	}
	return webui.SQLSessions{Read: src.DB(), Write: src.(interface{ WriteDB() *sql.DB }).WriteDB(), Rebind: rebind}
}

// t0 is a time the stores keep exactly (to the microsecond).
var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

func newStoredSession(id, user string, at time.Time) webui.StoredSession {
	return webui.StoredSession{ID: id, User: user, Token: "lbk_token_of_" + id, CSRF: "csrf-of-" + id, Created: at, Seen: at}
}

// Both stores keep what a session needs, bound its scrollback and each
// user's sessions, and delete what expired.
func TestSessionStoresKeepSessionsTheirScrollbackAndTheirBounds(t *testing.T) {
	t.Parallel()
	t.Run("in memory", func(t *testing.T) {
		t.Parallel()
		testSessionStore(t, webui.NewMemorySessions())
	})
	databases(t, func(t *testing.T, open func() projections.Source) {
		testSessionStore(t, sqlSessionsOf(open()))
	})
}

func testSessionStore(t *testing.T, store webui.SessionStore) {
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	load := func(id string) (webui.StoredSession, bool) {
		t.Helper()
		s, ok, err := store.Load(ctx, id)
		must(err)
		return s, ok
	}

	a := newStoredSession("cookie-a", "u-1", t0)
	must(store.Create(ctx, a))
	got, ok := load(a.ID)
	if !ok || got.ID != a.ID || got.User != a.User || got.Token != a.Token || got.CSRF != a.CSRF || !got.Created.Equal(t0) || !got.Seen.Equal(t0) {
		t.Fatalf("loaded %+v (%v), want %+v", got, ok, a)
	}
	if _, ok := load("cookie-unknown"); ok {
		t.Fatal("a cookie never issued loaded a session")
	}

	must(store.Touch(ctx, a.ID, t0.Add(2*time.Minute)))
	must(store.Touch(ctx, a.ID, t0.Add(time.Minute))) // a slower server's touch
	if got, _ := load(a.ID); !got.Seen.Equal(t0.Add(2 * time.Minute)) {
		t.Fatalf("seen is %v after touches at +2m and +1m, want +2m", got.Seen)
	}

	var dropped []string
	for i := range webui.MaxScrollback + 2 {
		d, err := store.Remember(ctx, a.ID, webui.ConsoleCommand{RequestID: fmt.Sprintf("r%d", i), Text: fmt.Sprintf("!echo %d", i), At: t0.Add(time.Duration(i) * time.Second)})
		must(err)
		dropped = append(dropped, d...)
	}
	if !slices.Equal(dropped, []string{"r0", "r1"}) {
		t.Fatalf("dropped %v after %d commands, want [r0 r1]", dropped, webui.MaxScrollback+2)
	}
	scroll, err := store.Scrollback(ctx, a.ID)
	must(err)
	if len(scroll) != webui.MaxScrollback {
		t.Fatalf("the scrollback holds %d commands, want %d", len(scroll), webui.MaxScrollback)
	}
	for i, c := range scroll {
		n := i + 2
		if c.RequestID != fmt.Sprintf("r%d", n) || c.Text != fmt.Sprintf("!echo %d", n) || !c.At.Equal(t0.Add(time.Duration(n)*time.Second)) {
			t.Fatalf("command %d of the scrollback is %+v, want r%d typed at +%ds", i, c, n, n)
		}
	}
	if d, err := store.Remember(ctx, "cookie-unknown", webui.ConsoleCommand{RequestID: "r-x", Text: "!echo x", At: t0}); err != nil || d != nil {
		t.Fatalf("remembering for no session answered %v, %v", d, err)
	}
	if s, err := store.Scrollback(ctx, "cookie-unknown"); err != nil || len(s) != 0 {
		t.Fatalf("no session has a scrollback of %v (%v)", s, err)
	}

	must(store.Delete(ctx, a.ID))
	if _, ok := load(a.ID); ok {
		t.Fatal("a deleted session still loads")
	}
	if s, err := store.Scrollback(ctx, a.ID); err != nil || len(s) != 0 {
		t.Fatalf("a deleted session's scrollback is %v (%v)", s, err)
	}

	idle := newStoredSession("cookie-idle", "u-1", t0)
	old := newStoredSession("cookie-old", "u-1", t0)
	old.Seen = t0.Add(10 * time.Hour)
	fresh := newStoredSession("cookie-fresh", "u-1", t0.Add(10*time.Hour))
	for _, s := range []webui.StoredSession{idle, old, fresh} {
		must(store.Create(ctx, s))
	}
	_, err = store.Remember(ctx, idle.ID, webui.ConsoleCommand{RequestID: "r-idle", Text: "!echo idle", At: t0})
	must(err)
	if n, err := store.Expire(ctx, t0.Add(time.Hour), t0.Add(-time.Hour)); err != nil || n != 1 {
		t.Fatalf("expiring those unused for an hour deleted %d (%v), want 1", n, err)
	}
	if _, ok := load(idle.ID); ok {
		t.Fatal("an idle session outlived Expire")
	}
	if n, err := store.Expire(ctx, t0, t0.Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("expiring those created before t0+1s deleted %d (%v), want 1", n, err)
	}
	if _, ok := load(old.ID); ok {
		t.Fatal("a session past its maximum age outlived Expire")
	}
	if _, ok := load(fresh.ID); !ok {
		t.Fatal("Expire deleted a live session")
	}

	// One user's logins past the bound end that user's least recently
	// seen sessions, and nobody else's.
	for i := range webui.MaxSessionsPerUser + 1 {
		must(store.Create(ctx, newStoredSession(fmt.Sprintf("cookie-u2-%d", i), "u-2", t0.Add(time.Duration(i)*time.Minute))))
	}
	if _, ok := load("cookie-u2-0"); ok {
		t.Fatalf("the least recently seen of %d sessions of one user survived", webui.MaxSessionsPerUser+1)
	}
	for _, id := range []string{"cookie-u2-1", fmt.Sprintf("cookie-u2-%d", webui.MaxSessionsPerUser), fresh.ID} {
		if _, ok := load(id); !ok {
			t.Fatalf("session %s was ended by another's login", id)
		}
	}
}

// A session stored through one server's pools is read, added to and ended
// through another's.
func TestSQLSessionsAreSharedByTheServersOfADatabase(t *testing.T) {
	t.Parallel()
	databases(t, func(t *testing.T, open func() projections.Source) {
		ctx := t.Context()
		one, other := sqlSessionsOf(open()), sqlSessionsOf(open())
		s := newStoredSession("cookie-shared", "u-1", t0)
		if err := one.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		got, ok, err := other.Load(ctx, s.ID)
		if err != nil || !ok || got.Token != s.Token || got.CSRF != s.CSRF {
			t.Fatalf("the other server loaded %+v, %v, %v", got, ok, err)
		}
		if _, err := other.Remember(ctx, s.ID, webui.ConsoleCommand{RequestID: "r-1", Text: "!echo there", At: t0}); err != nil {
			t.Fatal(err)
		}
		if scroll, err := one.Scrollback(ctx, s.ID); err != nil || len(scroll) != 1 || scroll[0].Text != "!echo there" {
			t.Fatalf("the first server reads the scrollback %+v (%v)", scroll, err)
		}
		if err := other.Delete(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := one.Load(ctx, s.ID); ok || err != nil {
			t.Fatalf("a session ended on the other server still loads on the first: %v, %v", ok, err)
		}
	})
}

// The tables hold neither the cookie nor the token, the CSRF token or the
// commands typed, in any common encoding; a sealed value moved to another
// column does not open; and nothing of an ended session stays behind.
func TestSQLSessionsKeepNeitherTheCookieNorTheTokenInTheClear(t *testing.T) {
	t.Parallel()
	databases(t, func(t *testing.T, open func() projections.Source) {
		ctx := t.Context()
		src := open()
		store := sqlSessionsOf(src)
		s := webui.StoredSession{ID: "cookie-Qx7vN2pLm9", User: "u-1", Token: "lbk_TokenThatLogsIn42", CSRF: "csrf-Zr8wK3", Created: t0, Seen: t0}
		const typed = "!echo TypedInTheConsole"
		if err := store.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Remember(ctx, s.ID, webui.ConsoleCommand{RequestID: "r-1", Text: typed, At: t0}); err != nil {
			t.Fatal(err)
		}
		cells := rawCells(t, src.DB(), "web_sessions")
		cells = append(cells, rawCells(t, src.DB(), "web_session_commands")...)
		for _, secret := range []string{s.ID, s.Token, s.CSRF, typed} {
			for _, form := range encodings(secret) {
				for _, cell := range cells {
					if bytes.Contains(cell, form) {
						t.Fatalf("a cell holds %q (as %q)", secret, form)
					}
				}
			}
		}

		if _, err := store.Write.ExecContext(ctx, store.Rebind("UPDATE web_sessions SET sealed_token = sealed_csrf")); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := store.Load(ctx, s.ID); ok || err != nil {
			t.Fatalf("a session whose sealed CSRF token was put in the token's place loaded: %+v, %v", got, err)
		}

		if err := store.Delete(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"web_sessions", "web_session_commands"} {
			if rows := rawCells(t, src.DB(), table); len(rows) != 0 {
				t.Fatalf("%s holds %d cells after the only session ended", table, len(rows))
			}
		}
	})
}

// rawCells reads every cell of table as bytes.
func rawCells(t *testing.T, db *sql.DB, table string) [][]byte {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SELECT * FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				out = append(out, slices.Clone(v))
			default:
				out = append(out, fmt.Appendf(nil, "%v", v))
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// encodings is a secret as it might show in a cell.
func encodings(secret string) [][]byte {
	b := []byte(secret)
	return [][]byte{
		b,
		[]byte(hex.EncodeToString(b)),
		[]byte(base64.StdEncoding.EncodeToString(b)),
		[]byte(base64.RawURLEncoding.EncodeToString(b)),
	}
}

// BenchmarkSQLSessions times what a session costs the database: Load is
// the read of every page view, Remember the write of every console
// command (with the scrollback at its bound, so each drops the oldest).
func BenchmarkSQLSessions(b *testing.B) {
	opens := map[string]func(b *testing.B) projections.Source{
		"SQLite": func(b *testing.B) projections.Source {
			s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "logbook.db"), sqlstore.Config{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		},
		"Postgres": func(b *testing.B) projections.Source {
			s, err := postgres.Open(context.Background(), testenv.PostgresSchema(b), sqlstore.Config{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		},
	}
	for _, dialect := range []string{"SQLite", "Postgres"} {
		b.Run(dialect, func(b *testing.B) {
			ctx := b.Context()
			store := sqlSessionsOf(opens[dialect](b))
			s := newStoredSession("cookie-bench", "u-1", t0)
			if err := store.Create(ctx, s); err != nil {
				b.Fatal(err)
			}
			for i := range webui.MaxScrollback {
				if _, err := store.Remember(ctx, s.ID, webui.ConsoleCommand{RequestID: fmt.Sprintf("r%d", i), Text: "!echo hello", At: t0}); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("Load", func(b *testing.B) {
				for b.Loop() {
					if _, ok, err := store.Load(ctx, s.ID); err != nil || !ok {
						b.Fatalf("load: %v, %v", ok, err)
					}
				}
			})
			b.Run("Remember", func(b *testing.B) {
				i := 0
				for b.Loop() {
					i++
					if _, err := store.Remember(ctx, s.ID, webui.ConsoleCommand{RequestID: fmt.Sprintf("b%d", i), Text: "!echo hello", At: t0}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("Scrollback", func(b *testing.B) {
				for b.Loop() {
					if c, err := store.Scrollback(ctx, s.ID); err != nil || len(c) != webui.MaxScrollback {
						b.Fatalf("scrollback of %d: %v", len(c), err)
					}
				}
			})
		})
	}
}
