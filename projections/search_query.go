package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrBadSearch is the kind of a search query that cannot be run; the error
// says what is wrong and where.
var ErrBadSearch = errors.New("bad search")

// Limits of a search query.
const (
	MaxSearchQuery  = 256 // bytes
	MaxSearchTokens = 8
	MinSubstring    = 3 // characters: the trigram indexes know nothing shorter
)

// SearchToken is one thing every hit must contain.
type SearchToken struct {
	Text string `json:"text"`
	// Substring: Text anywhere, case-insensitively, inside words too
	// (`10.0.3.7`, `"exit status"`). Otherwise Text is a whole word
	// (letters and digits), or with Prefix a word's beginning (`deplo*`).
	Substring bool `json:"substring,omitempty"`
	Prefix    bool `json:"prefix,omitempty"`
}

// SearchQuery is a parsed query: every token must match.
type SearchQuery struct{ Tokens []SearchToken }

func searchErrorf(column int, format string, args ...any) error {
	return fmt.Errorf("%w: column %d: %s", ErrBadSearch, column, fmt.Sprintf(format, args...))
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// ParseSearchQuery reads a query: words separated by spaces, each a term
// (letters and digits: a whole word, case-insensitively), a prefix
// (`deplo*`) or, when it holds anything else, a substring (`10.0.3.7`,
// `req-42`); a "quoted text" is a substring with its spaces. Every token
// must match. Columns in errors count characters from 1.
func ParseSearchQuery(q string) (SearchQuery, error) {
	if !utf8.ValidString(q) {
		return SearchQuery{}, fmt.Errorf("%w: the query is not valid UTF-8", ErrBadSearch)
	}
	if len(q) > MaxSearchQuery {
		return SearchQuery{}, fmt.Errorf("%w: the query is %d bytes; at most %d", ErrBadSearch, len(q), MaxSearchQuery)
	}
	runes := []rune(q)
	var out SearchQuery
	for i := 0; i < len(runes); {
		r := runes[i]
		switch {
		case unicode.IsSpace(r):
			i++
			continue
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return SearchQuery{}, searchErrorf(i+1, "a control or invisible character (%U) cannot be searched for", r)
		}
		start, quoted := i, r == '"'
		var tok SearchToken
		if quoted {
			end := i + 1
			for end < len(runes) && runes[end] != '"' {
				end++
			}
			if end == len(runes) {
				return SearchQuery{}, searchErrorf(start+1, "the quote is never closed")
			}
			tok = SearchToken{Text: string(runes[i+1 : end]), Substring: true}
			i = end + 1
		} else {
			end := i
			for end < len(runes) && !unicode.IsSpace(runes[end]) && runes[end] != '"' {
				end++
			}
			word := runes[i:end]
			i = end
			tok = SearchToken{Text: string(word)}
			switch {
			case len(word) > 1 && word[len(word)-1] == '*' && allWord(word[:len(word)-1]):
				tok = SearchToken{Text: string(word[:len(word)-1]), Prefix: true}
			case !allWord(word):
				tok.Substring = true
			}
		}
		for j, c := range tok.Text {
			if unicode.IsControl(c) || unicode.Is(unicode.Cf, c) {
				column := start + 1 + utf8.RuneCountInString(tok.Text[:j])
				if quoted {
					column++
				}
				return SearchQuery{}, searchErrorf(column, "a control or invisible character (%U) cannot be searched for", c)
			}
		}
		if tok.Substring && utf8.RuneCountInString(tok.Text) < MinSubstring {
			return SearchQuery{}, searchErrorf(start+1, "%q is too short: text with other characters than letters and digits is found as a substring, which needs at least %d characters", tok.Text, MinSubstring)
		}
		if len(out.Tokens) == MaxSearchTokens {
			return SearchQuery{}, searchErrorf(start+1, "at most %d words or quoted texts", MaxSearchTokens)
		}
		out.Tokens = append(out.Tokens, tok)
	}
	if len(out.Tokens) == 0 {
		return SearchQuery{}, fmt.Errorf("%w: the query is empty; give a word, a prefix such as deplo*, or a substring such as 10.0.3.7", ErrBadSearch)
	}
	return out, nil
}

func allWord(rs []rune) bool {
	for _, r := range rs {
		if !isWordRune(r) {
			return false
		}
	}
	return len(rs) > 0
}

// String writes the query back in its own syntax.
func (q SearchQuery) String() string {
	parts := make([]string, len(q.Tokens))
	for i, t := range q.Tokens {
		switch {
		case t.Prefix:
			parts[i] = t.Text + "*"
		case t.Substring && (strings.ContainsAny(t.Text, " \t") || allWord([]rune(t.Text))):
			parts[i] = `"` + t.Text + `"`
		default:
			parts[i] = t.Text
		}
	}
	return strings.Join(parts, " ")
}

// SearchFilter narrows a search like the history's filters; From and To
// bound when the request was received.
type SearchFilter struct {
	Query    SearchQuery
	Username string
	Command  string // any stage's command, bundle:command
	Status   string // the request's
	Adapter  string
	Room     string
	From, To time.Time
	Limit    int
	Cursor   string
}

// Fragment is a piece of a snippet; Match marks what the query found.
type Fragment struct {
	Text  string `json:"text"`
	Match bool   `json:"match,omitempty"`
}

// SearchHit is one document that matches, with its request's row.
type SearchHit struct {
	Position  int64  `json:"position"`
	RequestID string `json:"request_id"`
	RunID     string `json:"run_id,omitempty"`
	Kind      string `json:"kind"`
	// Line is the output line the match is on (1-based, as in the
	// transcript's #L anchors); 0 for a request's text or a command.
	Line       int64         `json:"line,omitempty"`
	Command    string        `json:"command,omitempty"` // the run's, or the request's commands
	Username   string        `json:"username,omitempty"`
	Adapter    string        `json:"adapter"`
	Room       string        `json:"room"`
	Status     string        `json:"status"` // the request's
	Text       string        `json:"text"`   // the request's
	ReceivedAt sql.NullInt64 `json:"-"`
	// Snippet is the matching line (cut around the first match when it is
	// long), in fragments so a page can mark matches without markup.
	Snippet []Fragment `json:"snippet"`
}

// Received is when the hit's request was received (zero when unknown).
func (h SearchHit) Received() time.Time { return timeOf(h.ReceivedAt) }

// SearchPage is one page of hits, newest first; Next is empty on the last.
type SearchPage struct {
	Hits []SearchHit `json:"hits"`
	Next string      `json:"next,omitempty"`
}

// SearchReader answers searches from the search view, joined with the
// history view's request rows for the filters.
type SearchReader struct{ db DB }

// NewSearchReader reads the search view in db.
func NewSearchReader(db DB) *SearchReader { return &SearchReader{db: db} }

// likePattern is a LIKE pattern finding s anywhere, escaped with '\'.
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}

// ftsString quotes s as an FTS5 string.
func ftsString(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Search lists the documents matching f.Query, newest first. A query with
// a term is driven by the word index (FTS5 walks it newest first and stops
// once a page is full); one of substrings only by the trigram index.
func (s *SearchReader) Search(ctx context.Context, f SearchFilter) (SearchPage, error) {
	page, windowed, err := s.search(ctx, f, true)
	if err == nil && windowed && page.Next == "" {
		// The newest documents held less than a page: the rest is older.
		page, _, err = s.search(ctx, f, false)
	}
	return page, err
}

// search runs one search. With window, a search that Postgres gathers
// from its indexes gathers only from the newest documents where a page
// of its matches is likely (windowed says so): a term in 0.3% of them
// (`web 121`, as `121` is in addresses too) gathered 9,000 documents from
// all over the table for a page of 50.
func (s *SearchReader) search(ctx context.Context, f SearchFilter, window bool) (page SearchPage, windowed bool, err error) {
	if len(f.Query.Tokens) == 0 {
		return SearchPage{}, false, fmt.Errorf("%w: the query is empty", ErrBadSearch)
	}
	var terms, subs []SearchToken
	for _, t := range f.Query.Tokens {
		if t.Substring {
			subs = append(subs, t)
		} else {
			terms = append(terms, t)
		}
	}
	w := &whereClause{cols: "r.", pos: "d.position"}
	var with, from string
	if s.db.Dialect == "postgres" {
		from = " FROM view_search_docs d"
		// What every hit must hold: conditions on view_search_docs'
		// columns, each with one argument; a term each, so the rare ones
		// can drive the search alone.
		var conds []searchCond
		for _, t := range terms {
			// Terms are letters and digits only, so they are safe in a
			// tsquery's text.
			q := strings.ToLower(t.Text)
			if t.Prefix {
				q += ":*"
			}
			conds = append(conds, searchCond{sql: "words @@ to_tsquery('simple', ?)", arg: q})
		}
		for _, t := range subs {
			conds = append(conds, searchCond{sql: `body ILIKE ? ESCAPE '\'`, arg: likePattern(t.Text),
				gatherLike: trigramsAcrossPunctuation, gatherArg: likePattern(acrossPunctuation(t.Text))})
		}
		drive, sample, err := s.rareMatches(ctx, conds)
		if err != nil {
			return SearchPage{}, false, err
		}
		if len(drive) > 0 {
			// Gathered from the indexes first, by the rare conditions
			// only, whatever the planner guesses: it cannot tell how
			// often a substring occurs, nor a word outside its most
			// common ones, and guessing rarely walks every document
			// newest first looking for one that is not there; nor may
			// a common word (`web` of `web 1234`, in every document)
			// take part, since GIN reads its whole list. The rest is
			// checked on what they gathered. The documents whole, not
			// their positions: joined back to the table, a command's
			// filter had Postgres scan it all.
			where := make([]string, 0, len(drive))
			for i, c := range conds {
				if !drive[i] {
					continue
				}
				if c.gatherLike != "" {
					// Its own text holds "?": no placeholder is replaced in it.
					w.args = append(w.args, c.gatherArg)
					where = append(where, fmt.Sprintf(`%s ILIKE $%d ESCAPE '\'`, c.gatherLike, len(w.args)))
				}
				w.args = append(w.args, c.arg)
				where = append(where, strings.ReplaceAll(c.sql, "?", fmt.Sprintf("$%d", len(w.args))))
			}
			if f.Username != "" {
				// The user's documents only: Postgres can AND the index's
				// candidates with (username, position)'s, where an address
				// of common trigrams had 30,000 candidates to check.
				w.args = append(w.args, f.Username)
				where = append(where, fmt.Sprintf("username = $%d", len(w.args)))
			}
			if lower := sample.windowFrom(f.Cursor, pageLimit(f.Limit)); window && lower > 0 {
				w.args = append(w.args, lower)
				where = append(where, fmt.Sprintf("position >= $%d", len(w.args)))
				windowed = true
			}
			with = "WITH m AS MATERIALIZED (SELECT position, request_id, run_id, kind, line, body, username, command, words FROM view_search_docs WHERE " + strings.Join(where, " AND ") + ") "
			from = " FROM m d"
		}
		for i, c := range conds {
			if drive == nil || !drive[i] {
				w.add("d."+c.sql, c.arg)
			}
		}
	} else {
		var ftsTable, ftsMatch string
		if len(terms) > 0 {
			parts := make([]string, len(terms))
			for i, t := range terms {
				parts[i] = ftsString(t.Text)
				if t.Prefix {
					parts[i] += " *"
				}
			}
			from = " FROM view_search_words x JOIN view_search_docs d ON d.position = x.rowid"
			w.pos = "x.rowid"
			ftsTable, ftsMatch = "view_search_words", strings.Join(parts, " AND ")
			w.add("view_search_words MATCH ?", ftsMatch)
			for _, t := range subs {
				w.add(`d.body LIKE ? ESCAPE '\'`, likePattern(t.Text))
			}
		} else {
			match, check, err := s.narrowSubstrings(ctx, subs)
			if err != nil {
				return SearchPage{}, false, err
			}
			parts := make([]string, len(match))
			for i, m := range match {
				parts[i] = ftsString(m)
			}
			from = " FROM view_search_trigrams x JOIN view_search_docs d ON d.position = x.rowid"
			w.pos = "x.rowid"
			ftsTable, ftsMatch = "view_search_trigrams", strings.Join(parts, " AND ")
			w.add("view_search_trigrams MATCH ?", ftsMatch)
			for _, t := range check {
				w.add(`d.body LIKE ? ESCAPE '\'`, likePattern(t.Text))
			}
		}
		if f.Username != "" {
			// A walk of fewer matches than manyMatches costs less than
			// gathering the user's documents first; so does one for a
			// user with more documents than maxUserDocuments, whose hits
			// are frequent.
			var many int
			err := s.db.Read.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT 1 FROM "+ftsTable+" WHERE "+ftsTable+" MATCH ? LIMIT ?)", ftsMatch, manyMatches).Scan(&many)
			if err != nil {
				return SearchPage{}, false, fmt.Errorf("count the matches: %w", err)
			}
			few := false
			if many == manyMatches {
				if few, err = s.fewDocuments(ctx, f.Username); err != nil {
					return SearchPage{}, false, err
				}
			}
			if few {
				// The user's documents, one range of (username,
				// position), so the walk of the index skips every other
				// user's without reading its row. The unary + keeps
				// SQLite from handing the list to FTS5, which would look
				// each one up (some 150 µs each) and sort the hits.
				w.add("+x.rowid IN (SELECT position FROM view_search_docs WHERE username = ?)", f.Username)
			}
		}
	}
	if f.Username != "" {
		// The document's own user, checked before its request is read;
		// on Postgres the planner may walk (username, position) newest
		// first and check each of the user's documents for the words.
		w.add("d.username = ?", f.Username)
	}
	// A document carries its user and command, so it is checked for
	// both before its request is read, and its run is never read.
	if s.db.Dialect == "postgres" {
		from += " JOIN view_history_requests r ON r.request_id = d.request_id"
	} else {
		// In this order (CROSS JOIN keeps it): the walk of the index reads
		// a document, and its request only when the document passed.
		from = strings.Replace(from, " JOIN view_search_docs d", " CROSS JOIN view_search_docs d", 1) +
			" CROSS JOIN view_history_requests r ON r.request_id = d.request_id"
	}
	// The user is the document's own (above), the same as its request's:
	// checked on the request as well, Postgres would take the two for
	// independent, expect almost no hit, and gather every match of the
	// text instead of walking the user's documents.
	w.eq("status", f.Status)
	w.eq("adapter", f.Adapter)
	w.eq("room", f.Room)
	if f.Command != "" {
		// The run's command, or for a request's own text (no run) any
		// stage's (as parsed: a builtin typed bare is its bare name
		// there), both on the document. Both "?" are the one parameter.
		contains := "instr"
		if s.db.Dialect == "postgres" {
			contains = "strpos"
		}
		w.add("(d.command = ? OR d.run_id = '' AND "+contains+"(' ' || d.command || ' ', ' ' || ? || ' ') > 0)", f.Command)
	}
	if !f.From.IsZero() {
		w.add("r.received_at >= ?", f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		w.add("r.received_at < ?", f.To.UnixMicro())
	}
	if err := cursorPosition(w, f.Cursor); err != nil {
		return SearchPage{}, false, err
	}
	limit := pageLimit(f.Limit)
	query := with + "SELECT d.position, d.request_id, d.run_id, d.kind, d.line, d.body, d.command, r.username, r.adapter, r.room, r.status, r.text, r.received_at" +
		from + w.String() + fmt.Sprintf(" ORDER BY %s DESC LIMIT %d", w.position(), limit+1)
	rows, err := s.db.query(ctx, query, w.args...)
	if err != nil {
		return SearchPage{}, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			h    SearchHit
			body string
		)
		if err := rows.Scan(&h.Position, &h.RequestID, &h.RunID, &h.Kind, &h.Line, &body, &h.Command, &h.Username, &h.Adapter, &h.Room, &h.Status, &h.Text, &h.ReceivedAt); err != nil {
			return SearchPage{}, false, err
		}
		offset, snippet := f.Query.Snippet(body)
		if h.Kind == SearchKindOutput {
			h.Line += offset
		}
		h.Snippet = snippet
		page.Hits = append(page.Hits, h)
	}
	if err := rows.Err(); err != nil {
		return SearchPage{}, false, err
	}
	if len(page.Hits) > limit {
		page.Hits = page.Hits[:limit]
		page.Next = strconv.FormatInt(page.Hits[limit-1].Position, 10)
	}
	return page, windowed, nil
}

// maxUserDocuments is how many documents a user may have for a search
// filtered to them to gather the user's documents first (on SQLite). Then
// the walk of the full-text index checks each hit against that list and
// reads no row of another user's; otherwise, for a user with more, hits
// are frequent enough that the walk checks each hit's row instead.
// Either way a page reads some tens of thousands of index entries at most.
const maxUserDocuments = 50_000

// manyMatches is how many matches of the text make it worth gathering a
// user's documents before the walk, on SQLite.
const manyMatches = 2000

// fewDocuments reports whether username has at most maxUserDocuments
// documents, counting no further than that.
func (s *SearchReader) fewDocuments(ctx context.Context, username string) (bool, error) {
	var n int
	err := s.db.Read.QueryRowContext(ctx, s.db.rebind("SELECT count(*) FROM (SELECT 1 FROM view_search_docs WHERE username = $1 LIMIT $2)"), username, maxUserDocuments+1).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("count the documents of %s: %w", username, err)
	}
	return n <= maxUserDocuments, nil
}

// How a search on Postgres chooses its plan (rareMatches).
const (
	// matchSample of the newest documents are checked against the query
	// (ILIKE and @@ cost some µs a document):
	matchSample = 2000
	// with fewer hits there (0.4%), it is rare. A walk newest first reads
	// about 50/f documents for a page of 50 when f of them match, and
	// gathering reads f×N: the two cost the same at f = √(50/N), 0.4% at
	// N = 3,000,000 documents (1,000,000 runs). One hit in 500 decided
	// before: `web 4924`, in 360 documents of 2,900,000, had one among
	// the newest 500 and walked them all (1.3 s).
	rareMatchHits = 8
)

// searchCond is a condition on view_search_docs' columns with one
// argument, written "?"; when its matches are gathered first, the index
// finds them by gatherLike ILIKE gatherArg, if gatherLike is set, else by
// sql itself.
type searchCond struct {
	sql                   string
	arg                   any
	gatherLike, gatherArg string
}

// trigramsAcrossPunctuation is the expression of Postgres's trigram
// index (migration 00122): the body with the marks that join the parts of
// addresses, ids, paths and key=value pairs read as q, since pg_trgm reads
// words of letters and digits only, and `10.0.10.188` would be the
// trigrams of `10`, `0` and `188`, in some 21,000 documents of 2,900,000.
// The SQL text must be the index's. Nested replace: translate cost ten
// times as much for each candidate the index gives.
const trigramsAcrossPunctuation = "replace(replace(replace(replace(replace(replace(replace(replace(body, '.', 'q'), ':', 'q'), '=', 'q'), '-', 'q'), '/', 'q'), '_', 'q'), ',', 'q'), '@', 'q')"

// joiningPunctuation is what trigramsAcrossPunctuation reads as q.
const joiningPunctuation = ".:=-/_,@"

// acrossPunctuation reads s as trigramsAcrossPunctuation does.
func acrossPunctuation(s string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(joiningPunctuation, r) {
			return 'q'
		}
		return r
	}, s)
}

// searchSample is what rareMatches read of the newest documents.
type searchSample struct {
	docs           int   // read (matchSample, or all there are)
	hits           int   // matching every condition
	driveHits      int   // matching the conditions that drive the gathering, the fewest of them
	oldest, newest int64 // their positions
}

// windowedHits is how many of the sample must match each condition that
// drives a gathering for it to be windowed: with fewer (under 0.1%, some
// 3,000 documents), the index alone finds them fast, and the window's
// range of positions, which Postgres reads as a bitmap of its own to AND
// with the index's, costs more than it saves (`web 744`: 40 to 55 ms
// windowed).
const windowedHits = 2

// windowFrom is the lowest position of the newest documents likely to
// hold four pages of a search's matches, below cursor (a position, or the
// newest when empty), at the rate of the sample's hits; 0 when the sample
// cannot tell (no hit, or every document read).
func (s searchSample) windowFrom(cursor string, limit int) int64 {
	if s.hits == 0 || s.driveHits < windowedHits || s.docs < matchSample {
		return 0
	}
	upper := s.newest + 1
	if cursor != "" {
		p, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil {
			return 0 // the search itself says what is wrong with it
		}
		upper = p
	}
	perDoc := float64(s.newest-s.oldest) / float64(s.docs-1) // positions between documents
	docs := 4 * float64(limit+1) * float64(s.docs) / float64(s.hits)
	return max(upper-int64(docs*perDoc), 0)
}

// rareMatches counts the documents matching each of conds, and all of
// them, among the newest matchSample. With fewer than rareMatchHits for
// all, a search is best gathered from the indexes (GIN of words, pg_trgm)
// whole, and drive says by which conditions: those rare on their own, or
// all when none is. Otherwise drive is nil: the search walks the
// documents newest first until a page is full.
func (s *SearchReader) rareMatches(ctx context.Context, conds []searchCond) (drive []bool, sample searchSample, err error) {
	counts := make([]string, len(conds)+1)
	all := make([]string, len(conds))
	args := make([]any, len(conds))
	for i, c := range conds {
		all[i] = strings.ReplaceAll(c.sql, "?", fmt.Sprintf("$%d", i+1))
		counts[i] = "count(*) FILTER (WHERE " + all[i] + ")"
		args[i] = c.arg
	}
	counts[len(conds)] = "count(*) FILTER (WHERE " + strings.Join(all, " AND ") + ")"
	n := make([]int, len(counts))
	dest := []any{&sample.docs, &sample.oldest, &sample.newest}
	for i := range n {
		dest = append(dest, &n[i])
	}
	err = s.db.Read.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*), COALESCE(min(position), 0), COALESCE(max(position), 0), %s FROM (SELECT position, body, words FROM view_search_docs ORDER BY position DESC LIMIT %d) s", strings.Join(counts, ", "), matchSample), args...).Scan(dest...)
	if err != nil {
		return nil, sample, fmt.Errorf("sample the search documents: %w", err)
	}
	sample.hits = n[len(conds)]
	if sample.hits >= rareMatchHits {
		return nil, sample, nil
	}
	drive = make([]bool, len(conds))
	some := false
	for i := range conds {
		drive[i] = n[i] < rareMatchHits
		some = some || drive[i]
	}
	sample.driveHits = sample.docs
	for i := range drive {
		drive[i] = drive[i] || !some
		if drive[i] {
			sample.driveHits = min(sample.driveHits, n[i])
		}
	}
	return drive, sample, nil
}

// How a substring search finds its candidates on SQLite (narrowSubstrings).
const (
	// trigramSample hits of a trigram, newest first, tell how common it is:
	trigramSample = 64
	// it is common when they are all among the newest trigramSample /
	// commonTrigramShare documents, that is in about 5% of them or more.
	commonTrigramShare = 0.05
	// maxSampledTrigrams bounds the lookups a query costs; a query with
	// more distinct trigrams is matched whole.
	maxSampledTrigrams = 48
)

// narrowSubstrings chooses what the trigram index matches for substrings
// (on SQLite) and what the rows are then checked against with LIKE. FTS5
// reads the whole list of documents of every trigram of a phrase, and in
// `trace=3fa2b1` `tra`, `rac`, `ace` and `ce=` are in every document of
// some outputs. So each substring is matched by its runs of trigrams that
// are not common (`3fa2b1`; `.17.` and `.25` of `10.0.17.251`), each a
// phrase, and checked whole with LIKE; a
// substring all of common trigrams is checked with LIKE only, when another
// one has a narrower window. The LIKE check is exact for ASCII text, which
// alone is narrowed; on a small view (fewer documents than a sample shows)
// nothing is.
func (s *SearchReader) narrowSubstrings(ctx context.Context, subs []SearchToken) (match []string, check []SearchToken, err error) {
	whole := func() ([]string, []SearchToken, error) {
		match := make([]string, len(subs))
		for i, t := range subs {
			match[i] = t.Text
		}
		return match, nil, nil
	}
	trigrams := map[string]bool{} // lower-case trigram: common
	for _, t := range subs {
		if !isASCII(t.Text) {
			return whole()
		}
		for i := 0; i+3 <= len(t.Text); i++ {
			trigrams[strings.ToLower(t.Text[i:i+3])] = false
		}
	}
	if len(trigrams) > maxSampledTrigrams {
		return whole()
	}
	var newest int64 // the oldest of the newest documents a common trigram fills
	err = s.db.Read.QueryRowContext(ctx, "SELECT position FROM view_search_docs ORDER BY position DESC LIMIT 1 OFFSET ?", int(trigramSample/commonTrigramShare)-1).Scan(&newest)
	if errors.Is(err, sql.ErrNoRows) {
		return whole()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("sample the search documents: %w", err)
	}
	for tri := range trigrams {
		var last int64
		err := s.db.Read.QueryRowContext(ctx, "SELECT rowid FROM view_search_trigrams WHERE view_search_trigrams MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?", ftsString(tri), trigramSample-1).Scan(&last)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, nil, fmt.Errorf("sample trigram %q: %w", tri, err)
		default:
			trigrams[tri] = last >= newest
		}
	}
	var allCommon []SearchToken
	for _, t := range subs {
		// Every run of trigrams none of which is common, each a phrase.
		var runs []string
		start := -1
		for i := 0; i+3 <= len(t.Text)+1; i++ {
			common := i+3 > len(t.Text) || trigrams[strings.ToLower(t.Text[i:i+3])]
			switch {
			case !common && start < 0:
				start = i
			case common && start >= 0:
				runs = append(runs, t.Text[start:i+2])
				start = -1
			}
		}
		switch {
		case len(runs) == 0:
			allCommon = append(allCommon, t)
		case len(runs) == 1 && runs[0] == t.Text:
			match = append(match, t.Text)
		default:
			match = append(match, runs...)
			check = append(check, t)
		}
	}
	if len(match) == 0 {
		// Every trigram is common: any page fills at once.
		return whole()
	}
	return match, append(check, allCommon...), nil
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// snippetWidth is how much of a long line a snippet shows, in bytes.
const snippetWidth = 240

var wordPattern = regexp.MustCompile(`[\p{L}\p{N}]+`)

// Matches returns the byte ranges of text where the query's tokens match,
// in order and not overlapping: the same rules the indexes apply (whole
// words or prefixes for terms, case-insensitive substrings otherwise).
func (q SearchQuery) Matches(text string) [][2]int { return q.matcher()(text) }

// matcher compiles the query's substrings once, for matching many lines.
func (q SearchQuery) matcher() func(text string) [][2]int {
	substrings := make([]*regexp.Regexp, 0, len(q.Tokens))
	var terms []SearchToken
	for _, t := range q.Tokens {
		if t.Substring {
			substrings = append(substrings, regexp.MustCompile(`(?i)`+regexp.QuoteMeta(t.Text)))
		} else {
			terms = append(terms, t)
		}
	}
	return func(text string) [][2]int {
		var out [][2]int
		for _, re := range substrings {
			for _, m := range re.FindAllStringIndex(text, -1) {
				out = append(out, [2]int{m[0], m[1]})
			}
		}
		if len(terms) > 0 {
			for _, m := range wordPattern.FindAllStringIndex(text, -1) {
				word := text[m[0]:m[1]]
				for _, t := range terms {
					if strings.EqualFold(word, t.Text) || t.Prefix && len(word) >= len(t.Text) && strings.EqualFold(word[:len(t.Text)], t.Text) {
						out = append(out, [2]int{m[0], m[1]})
						break
					}
				}
			}
		}
		slices.SortFunc(out, func(a, b [2]int) int { return a[0] - b[0] })
		// Merged, so fragments never overlap.
		merged := out[:0]
		for _, m := range out {
			if n := len(merged); n > 0 && m[0] <= merged[n-1][1] {
				merged[n-1][1] = max(merged[n-1][1], m[1])
				continue
			}
			merged = append(merged, m)
		}
		return merged
	}
}

// Snippet finds the first line of body that matches and returns its
// offset in lines and the line in fragments, cut to about snippetWidth
// bytes around its first match. A body with no match (the index and this
// reading of it differ, as for a word the databases split otherwise)
// shows its first line.
func (q SearchQuery) Snippet(body string) (int64, []Fragment) {
	lines := strings.Split(body, "\n")
	match := q.matcher()
	at, matches := 0, [][2]int(nil)
	for i, line := range lines {
		if m := match(line); len(m) > 0 {
			at, matches = i, m
			break
		}
	}
	line := strings.TrimRight(lines[at], "\r")
	start, end := 0, len(line)
	if len(line) > snippetWidth {
		first := 0
		if len(matches) > 0 {
			first = matches[0][0]
		}
		start = max(0, first-snippetWidth/3)
		end = min(len(line), start+snippetWidth)
		for start > 0 && !utf8.RuneStart(line[start]) {
			start--
		}
		for end < len(line) && !utf8.RuneStart(line[end]) {
			end++
		}
	}
	var out []Fragment
	if start > 0 {
		out = append(out, Fragment{Text: "…"})
	}
	pos := start
	for _, m := range matches {
		a, b := max(m[0], start), min(m[1], end)
		if a >= b {
			continue
		}
		if a > pos {
			out = append(out, Fragment{Text: line[pos:a]})
		}
		out = append(out, Fragment{Text: line[a:b], Match: true})
		pos = b
	}
	if pos < end {
		out = append(out, Fragment{Text: line[pos:end]})
	}
	if end < len(line) {
		out = append(out, Fragment{Text: "…"})
	}
	return int64(at), out
}
