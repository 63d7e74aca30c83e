// Package sqlparams rewrites the `$N` placeholders the SQL texts share
// between Postgres and SQLite into SQLite's form.
package sqlparams

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ToSQLite rewrites query's `$N` placeholders for SQLite. Where they appear
// once each and in order ($1, $2, ...), they become anonymous `?`;
// otherwise `?N`. SQLite binds an anonymous parameter without looking its
// name up, while for a numbered one modernc's driver asks for the name of
// each, a scan of the statement's parameter list every time: quadratic in
// the parameters of a many-row insert, 2.6% of the server's CPU under
// builtin load (docs/benchmarks.md). The texts are few and used again and
// again, so each rewrite is kept.
func ToSQLite(query string) string {
	if v, ok := rewritten.Load(query); ok {
		return v.(string)
	}
	out := rewrite(query)
	if kept.Load() < maxKept {
		if _, loaded := rewritten.LoadOrStore(query, out); !loaded {
			kept.Add(1)
		}
	}
	return out
}

// maxKept bounds the texts kept, should some caller build texts without
// end.
const maxKept = 10_000

var (
	rewritten sync.Map // query → its SQLite text
	kept      atomic.Int64
)

// placeholder is a `$N` in a query: where it starts and ends, and N.
type placeholder struct {
	start, end, n int
}

func rewrite(query string) string {
	var found []placeholder
	for i := 0; i < len(query); i++ {
		if query[i] != '$' {
			continue
		}
		j := i + 1
		for j < len(query) && query[j] >= '0' && query[j] <= '9' {
			j++
		}
		if j == i+1 {
			continue
		}
		n, err := strconv.Atoi(query[i+1 : j])
		if err != nil {
			continue // too long to be a parameter: left as it is
		}
		found = append(found, placeholder{start: i, end: j, n: n})
		i = j - 1
	}
	if len(found) == 0 {
		return query
	}
	inOrder := true
	for k, p := range found {
		if p.n != k+1 || query[p.start+1:p.end] != strconv.Itoa(p.n) { // $01 stays ?01
			inOrder = false
			break
		}
	}
	var b strings.Builder
	b.Grow(len(query) + len(found))
	last := 0
	for _, p := range found {
		b.WriteString(query[last:p.start])
		b.WriteByte('?')
		if !inOrder {
			b.WriteString(query[p.start+1 : p.end])
		}
		last = p.end
	}
	b.WriteString(query[last:])
	return b.String()
}
