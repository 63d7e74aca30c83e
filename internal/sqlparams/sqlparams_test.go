package sqlparams

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestPlaceholdersInOrderBecomeAnonymousAndOthersKeepTheirNumber(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)", "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)"},
		{"UPDATE checkpoints SET position = $1 WHERE name = $2 AND position = $3", "UPDATE checkpoints SET position = ? WHERE name = ? AND position = ?"},
		{"SELECT * FROM t WHERE a = $2 AND b = $1", "SELECT * FROM t WHERE a = ?2 AND b = ?1"},
		{"SELECT * FROM t WHERE a = $1 OR b = $1", "SELECT * FROM t WHERE a = ?1 OR b = ?1"},
		{"SELECT $1, $3", "SELECT ?1, ?3"},
		{"SELECT '$' || $1", "SELECT '$' || ?"},
		{"SELECT $10, $1", "SELECT ?10, ?1"},
		{"SELECT $01, $2", "SELECT ?01, ?2"},
	} {
		if got := ToSQLite(c.in); got != c.want {
			t.Errorf("ToSQLite(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := ToSQLite(c.in); got != c.want { // kept
			t.Errorf("ToSQLite(%q) again = %q, want %q", c.in, got, c.want)
		}
	}
}

var dollar = regexp.MustCompile(`\$(\d+)`)

// Whatever the text, the rewrite binds each parameter where `?N` would:
// it is the `?N` form, or its placeholders are all anonymous and numbering
// them in order gives the `?N` form exactly.
func FuzzToSQLiteBindsAsNumbered(f *testing.F) {
	f.Add("INSERT INTO t VALUES ($1, $2, $3)")
	f.Add("SELECT $2, $1, $2")
	f.Add("$1$2$$3 $0 $01 $99999999999999999999")
	f.Fuzz(func(t *testing.T, query string) {
		if strings.Contains(query, "?") {
			return // the text's own question marks would be counted
		}
		got := rewrite(query)
		numbered := dollar.ReplaceAllStringFunc(query, func(m string) string {
			if _, err := strconv.Atoi(m[1:]); err != nil {
				return m
			}
			return "?" + m[1:]
		})
		if got == numbered {
			return
		}
		k := 0
		renumbered := regexp.MustCompile(`\?`).ReplaceAllStringFunc(got, func(string) string {
			k++
			return "?" + strconv.Itoa(k)
		})
		if renumbered != numbered {
			t.Fatalf("rewrite(%q) = %q, which binds unlike %q", query, got, numbered)
		}
	})
}
