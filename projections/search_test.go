package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/projections"
)

// searchFixture records two requests, each with one run, and projects them
// with the history (the search reads the history's rows for its filters).
func searchFixture(t *testing.T, src projections.Source) *projections.SearchReader {
	t.Helper()
	request := func(id, user, text, command string) {
		appendTo(t, src, dispatch.Stream(id),
			dispatch.RequestReceived{Adapter: "slack", MessageID: id, Room: "ops", ChatUser: user, Text: text},
			dispatch.IdentityResolved{User: "u-" + user, Username: user},
			dispatch.PipelineParsed{Stages: json.RawMessage(`[{"command":"` + command + `"}]`), Redirects: json.RawMessage("[]")})
	}
	request("q1", "alice", "netcheck 10.0.3.7 --verbose", "ops:netcheck")
	appendTo(t, src, run.Stream("r1"),
		run.RunRequested{RequestID: "q1", Bundle: "ops", Command: "netcheck", Args: []string{"10.0.3.7", "--verbose"}, Invocation: run.Invocation{Username: "alice"}},
		run.OutputChunk{Seq: 0, Stream: run.Stdout, Bytes: []byte("checking routes\npinging 10.0.")},
		// seq 2 is recorded before seq 1: lines count in seq order.
		run.OutputChunk{Seq: 2, Stream: run.Stdout, Bytes: []byte("all Deployments healthy\ntrailing words")},
		run.OutputChunk{Seq: 1, Stream: run.Stderr, Bytes: []byte("3.7 unreachable\n")},
		run.OutputChunk{Seq: 1, Stream: run.Stderr, Bytes: []byte("a redelivery is not indexed\n")},
		run.RunFailed{Reason: "exit status 1"})
	request("q2", "bob", "deploy api", "ops:deploy")
	appendTo(t, src, run.Stream("r2"),
		run.RunRequested{RequestID: "q2", Bundle: "ops", Command: "deploy", Args: []string{"api"}, Invocation: run.Invocation{Username: "bob"}},
		run.OutputChunk{Seq: 0, Stream: run.Stdout, Bytes: []byte("deployed api to 10.0.3.70\x00\xff\n")},
		run.RunSucceeded{})
	catchUp(t, src, projections.NewHistory(), projections.NewSearch())
	return projections.NewSearchReader(projections.DBOf(src))
}

func hitString(h projections.SearchHit) string {
	var b strings.Builder
	for _, f := range h.Snippet {
		if f.Match {
			b.WriteString("[" + f.Text + "]")
		} else {
			b.WriteString(f.Text)
		}
	}
	return fmt.Sprintf("%s/%s %s L%d: %s", h.RequestID, h.RunID, h.Kind, h.Line, b.String())
}

func TestSearchFindsTermsAndSubstringsInTextArgumentsAndOutput(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		ctx := context.Background()
		src := open(t)
		reader := searchFixture(t, src)
		search := func(t *testing.T, q string, f projections.SearchFilter) []string {
			t.Helper()
			query, err := projections.ParseSearchQuery(q)
			if err != nil {
				t.Fatal(err)
			}
			f.Query = query
			page, err := reader.Search(ctx, f)
			if err != nil {
				t.Fatalf("search %q: %v", q, err)
			}
			var out []string
			for _, h := range page.Hits {
				out = append(out, hitString(h))
			}
			return out
		}
		for _, tc := range []struct {
			name, query string
			filter      projections.SearchFilter
			want        []string
		}{
			{"a substring is found in output, arguments and text, newest first; a line split across chunks is whole", "10.0.3.7", projections.SearchFilter{}, []string{
				"q2/r2 output L1: deployed api to [10.0.3.7]0\uFFFD\uFFFD",
				"q1/r1 output L2: pinging [10.0.3.7] unreachable",
				"q1/r1 command L0: ops:netcheck [10.0.3.7] --verbose",
				"q1/ request L0: netcheck [10.0.3.7] --verbose",
			}},
			{"a term is a whole word, in any case, on the line it is on", "deployments", projections.SearchFilter{}, []string{
				"q1/r1 output L3: all [Deployments] healthy",
			}},
			{"a prefix matches the words it begins", "deploy*", projections.SearchFilter{}, []string{
				"q2/r2 output L1: [deployed] api to 10.0.3.70\uFFFD\uFFFD",
				"q2/r2 command L0: ops:[deploy] api",
				"q2/ request L0: [deploy] api",
				"q1/r1 output L3: all [Deployments] healthy",
			}},
			{"every token must match", `api "to 10.0"`, projections.SearchFilter{}, []string{
				"q2/r2 output L1: deployed [api] [to 10.0].3.70\uFFFD\uFFFD",
			}},
			{"a term between punctuation is a word of its own", "70", projections.SearchFilter{}, []string{
				"q2/r2 output L1: deployed api to 10.0.3.[70]\uFFFD\uFFFD",
			}},
			{"the output left without a newline is indexed when the run ends", "trailing", projections.SearchFilter{}, []string{
				"q1/r1 output L4: [trailing] words",
			}},
			{"a redelivered chunk is not indexed", "redelivery", projections.SearchFilter{}, nil},
			{"the user filter", "10.0.3.7", projections.SearchFilter{Username: "bob"}, []string{
				"q2/r2 output L1: deployed api to [10.0.3.7]0\uFFFD\uFFFD",
			}},
			{"the command filter", "10.0.3.7", projections.SearchFilter{Command: "ops:netcheck", Limit: 2}, []string{
				"q1/r1 output L2: pinging [10.0.3.7] unreachable",
				"q1/r1 command L0: ops:netcheck [10.0.3.7] --verbose",
			}},
			{"the status filter", "api", projections.SearchFilter{Status: projections.RequestFailed}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got := search(t, tc.query, tc.filter)
				if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
					t.Fatalf("search %q:\n%s\nwant:\n%s", tc.query, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
				}
			})
		}
		t.Run("a rebuild empties the full-text indexes with the documents", func(t *testing.T) {
			runner, err := projections.NewRunner(src, projections.Config{}, projections.NewHistory(), projections.NewSearch())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := runner.Rebuild(ctx, nil, nil); err != nil {
				t.Fatal(err)
			}
			if src.Dialect() == "sqlite" {
				// Each full-text index matches its documents exactly.
				for _, fts := range []string{"view_search_words", "view_search_trigrams"} {
					if _, err := src.DB().ExecContext(ctx, "INSERT INTO "+fts+" ("+fts+", rank) VALUES ('integrity-check', 1)"); err != nil {
						t.Fatalf("%s after a rebuild: %v", fts, err)
					}
				}
			}
			got := search(t, "deploy*", projections.SearchFilter{})
			if len(got) != 4 || got[0] != "q2/r2 output L1: [deployed] api to 10.0.3.70\uFFFD\uFFFD" {
				t.Fatalf("after a rebuild: %v", got)
			}
		})
		t.Run("pages follow the cursor", func(t *testing.T) {
			query, _ := projections.ParseSearchQuery("10.0.3.7")
			first, err := reader.Search(ctx, projections.SearchFilter{Query: query, Limit: 3})
			if err != nil || len(first.Hits) != 3 || first.Next == "" {
				t.Fatalf("first page %+v, %v", first, err)
			}
			second, err := reader.Search(ctx, projections.SearchFilter{Query: query, Limit: 3, Cursor: first.Next})
			if err != nil || len(second.Hits) != 1 || second.Next != "" || second.Hits[0].Kind != projections.SearchKindRequest {
				t.Fatalf("second page %+v, %v", second, err)
			}
			if _, err := reader.Search(ctx, projections.SearchFilter{Query: query, Cursor: "x"}); !errors.Is(err, projections.ErrBadCursor) {
				t.Fatalf("a bad cursor: %v", err)
			}
		})
	})
}

func TestParseSearchQuerySaysWhatIsWrongAndWhere(t *testing.T) {
	for _, tc := range []struct{ query, want string }{
		{"", "the query is empty"},
		{"   ", "the query is empty"},
		{`ok "open`, `column 4: the quote is never closed`},
		{"a.", `column 1: "a." is too short`},
		{`x "a	b"`, "column 5: a control or invisible character (U+0009)"},
		{`x "a"`, `column 3: "a" is too short`},
		{"a\u202eb", "column 2: a control or invisible character (U+202E)"},
		{"a b c d e f g h i", "column 17: at most 8 words"},
		{strings.Repeat("a", 300), "the query is 300 bytes"},
		{"\xff", "not valid UTF-8"},
	} {
		_, err := projections.ParseSearchQuery(tc.query)
		if !errors.Is(err, projections.ErrBadSearch) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSearchQuery(%q) = %v, want an error with %q", tc.query, err, tc.want)
		}
	}
	q, err := projections.ParseSearchQuery(`Error deplo* 10.0.3.7 "exit status"`)
	if err != nil {
		t.Fatal(err)
	}
	want := []projections.SearchToken{{Text: "Error"}, {Text: "deplo", Prefix: true}, {Text: "10.0.3.7", Substring: true}, {Text: "exit status", Substring: true}}
	if fmt.Sprint(q.Tokens) != fmt.Sprint(want) {
		t.Fatalf("tokens %v, want %v", q.Tokens, want)
	}
	if q.String() != `Error deplo* 10.0.3.7 "exit status"` {
		t.Fatalf("String() = %q", q.String())
	}
}

// FuzzParseSearchQuery: any input parses or is refused as ErrBadSearch;
// a parsed query reads back to itself, and its snippets of any text are
// pieces of that text, in order.
func FuzzParseSearchQuery(f *testing.F) {
	for _, seed := range []string{"10.0.3.7", `deploy* "exit status" api`, `"unclosed`, "a\u202eb", "ü*", "**", `""`, "x y z"} {
		f.Add(seed, "deployed api to 10.0.3.7\nexit status 1")
	}
	f.Fuzz(func(t *testing.T, query, text string) {
		q, err := projections.ParseSearchQuery(query)
		if err != nil {
			if !errors.Is(err, projections.ErrBadSearch) {
				t.Fatalf("ParseSearchQuery(%q) = %v, not ErrBadSearch", query, err)
			}
			return
		}
		again, err := projections.ParseSearchQuery(q.String())
		if err != nil || fmt.Sprint(again.Tokens) != fmt.Sprint(q.Tokens) {
			t.Fatalf("%q reads back as %q: %v, %v", query, q.String(), again.Tokens, err)
		}
		line, fragments := q.Snippet(text)
		var joined strings.Builder
		for _, fr := range fragments {
			if fr.Text != "…" {
				joined.WriteString(fr.Text)
			}
		}
		lines := strings.Split(text, "\n")
		if line < 0 || int(line) >= len(lines) || !strings.Contains(lines[line], joined.String()) {
			t.Fatalf("snippet %q is not in line %d of %q", joined.String(), line, text)
		}
		if utf8.ValidString(text) && !utf8.ValidString(joined.String()) {
			t.Fatalf("snippet %q cuts a character", joined.String())
		}
	})
}

// Given more documents than a sample of a trigram reads, where every one
// holds "trace=" and each its own id, a substring search matches only the
// rare part of the text in the trigram index (on SQLite) and checks the
// rest with LIKE; the hits are those of the whole text, in any case. A
// user's search gathers the user's documents first, and pages the same.
func TestSearchOfSubstringsWithCommonTrigramsAndOfOneUsersDocuments(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		ctx := context.Background()
		src := open(t)
		const docs = 2100 // more than a user's search walks without gathering the user's documents
		request := func(id, user string) {
			appendTo(t, src, dispatch.Stream(id),
				dispatch.RequestReceived{Adapter: "slack", MessageID: id, Room: "ops", ChatUser: user, Text: "trace " + id},
				dispatch.IdentityResolved{User: "u-" + user, Username: user},
				dispatch.PipelineParsed{Stages: json.RawMessage(`[{"command":"ops:trace"}]`), Redirects: json.RawMessage("[]")})
		}
		request("q1", "alice")
		request("q2", "bob")
		chunks := []domain.Payload{run.RunRequested{RequestID: "q1", Bundle: "ops", Command: "trace", Invocation: run.Invocation{Username: "alice"}}}
		for i := range docs {
			// Ids of 8 hex digits; every 100th line is bob's, below.
			chunks = append(chunks, run.OutputChunk{Seq: int64(i), Stream: run.Stdout, Bytes: fmt.Appendf(nil, "span trace=%08x ok\n", uint32(i)*2654435761)})
		}
		appendTo(t, src, run.Stream("r1"), append(chunks, run.RunSucceeded{})...)
		var bobs []domain.Payload
		bobs = append(bobs, run.RunRequested{RequestID: "q2", Bundle: "ops", Command: "trace", Invocation: run.Invocation{Username: "bob"}})
		for i := range docs / 100 {
			bobs = append(bobs, run.OutputChunk{Seq: int64(i), Stream: run.Stdout, Bytes: fmt.Appendf(nil, "span trace=%08x bob\n", uint32(i))})
		}
		// The id alone, without "trace=", is no hit for "trace=<id>".
		bobs = append(bobs, run.OutputChunk{Seq: int64(docs / 100), Stream: run.Stdout, Bytes: []byte("id=00000007 only\n")}, run.RunSucceeded{})
		appendTo(t, src, run.Stream("r2"), bobs...)
		catchUp(t, src, projections.NewHistory(), projections.NewSearch())
		reader := projections.NewSearchReader(projections.DBOf(src))

		search := func(t *testing.T, q string, f projections.SearchFilter) (lines []string, pages int) {
			t.Helper()
			query, err := projections.ParseSearchQuery(q)
			if err != nil {
				t.Fatal(err)
			}
			f.Query = query
			for {
				page, err := reader.Search(ctx, f)
				if err != nil {
					t.Fatalf("search %q: %v", q, err)
				}
				pages++
				for _, h := range page.Hits {
					lines = append(lines, hitString(h))
				}
				if page.Next == "" {
					return lines, pages
				}
				f.Cursor = page.Next
			}
		}
		line := uint32(700)
		id := fmt.Sprintf("%08x", line*2654435761)
		for _, q := range []string{"trace=" + id, "TRACE=" + strings.ToUpper(id), `"span trace=` + id + `"`} {
			got, _ := search(t, q, projections.SearchFilter{})
			if len(got) != 1 || !strings.HasPrefix(got[0], "q1/r1 output L701: ") || !strings.Contains(got[0], id+"]") {
				t.Fatalf("search %q: %q, want line 701 of r1", q, got)
			}
		}
		if got, _ := search(t, "trace=00000007", projections.SearchFilter{}); len(got) != 1 || got[0] != "q2/r2 output L8: span [trace=00000007] bob" {
			t.Fatalf("trace=00000007: %q", got)
		}
		if src.Dialect() == "sqlite" {
			match, check, err := reader.NarrowSubstrings(ctx, []projections.SearchToken{{Text: "trace=" + id, Substring: true}})
			if err != nil {
				t.Fatal(err)
			}
			if len(match) != 1 || strings.Contains(match[0], "tra") || !strings.HasSuffix(id, strings.TrimPrefix(match[0], "=")) && !strings.Contains(id, match[0]) ||
				len(check) != 1 || check[0].Text != "trace="+id {
				t.Fatalf("narrowed to match %q, check %+v; want the id's part of the text matched and the whole checked", match, check)
			}
		}
		// Bob's 21 lines, 4 a page, newest first; alice's never.
		got, pages := search(t, "span", projections.SearchFilter{Username: "bob", Limit: 4})
		if len(got) != docs/100 || pages != 6 || got[0] != "q2/r2 output L21: [span] trace=00000014 bob" || got[len(got)-1] != "q2/r2 output L1: [span] trace=00000000 bob" {
			t.Fatalf("bob's spans in %d pages: %q", pages, got)
		}
		if got, _ := search(t, "trace=", projections.SearchFilter{Username: "bob", Limit: 100}); len(got) != docs/100 {
			t.Fatalf("bob's trace= substrings: %d hits, want %d", len(got), docs/100)
		}
		if got, _ := search(t, "bob", projections.SearchFilter{Username: "alice"}); len(got) != 0 {
			t.Fatalf("alice's bob: %q", got)
		}
	})
}

// Given a request of two stages that both print a word, a search for it
// with one stage's command finds that stage's output only (and the
// request's own text, which names both).
func TestSearchWithACommandFindsThatStagesOutputNotTheOthers(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		ctx := context.Background()
		src := open(t)
		appendTo(t, src, dispatch.Stream("q1"),
			dispatch.RequestReceived{Adapter: "slack", MessageID: "q1", Room: "ops", ChatUser: "alice", Text: "probe alpha | notify"},
			dispatch.IdentityResolved{User: "u-alice", Username: "alice"},
			dispatch.PipelineParsed{Stages: json.RawMessage(`[{"command":"ops:probe"},{"command":"ops:notify"}]`), Redirects: json.RawMessage("[]")})
		for i, c := range []string{"probe", "notify"} {
			appendTo(t, src, run.Stream("r"+c),
				run.RunRequested{RequestID: "q1", Stage: i, Bundle: "ops", Command: c},
				run.OutputChunk{Seq: 0, Stream: run.Stdout, Bytes: []byte(c + " saw alpha\n")},
				run.RunSucceeded{})
		}
		catchUp(t, src, projections.NewHistory(), projections.NewSearch())
		query, err := projections.ParseSearchQuery("alpha")
		if err != nil {
			t.Fatal(err)
		}
		page, err := projections.NewSearchReader(projections.DBOf(src)).Search(ctx, projections.SearchFilter{Query: query, Command: "ops:notify"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range page.Hits {
			got = append(got, hitString(h))
		}
		want := []string{"q1/rnotify output L1: notify saw [alpha]", "q1/ request L0: probe [alpha] | notify"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("alpha in ops:notify:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// Given a request whose identity is resolved and whose pipeline is parsed
// in a later batch than the one that indexed its text, a search filtered
// to its user, or to one of its commands, finds the text: the document
// gets both when they come.
func TestSearchOfAUserOrCommandFindsARequestResolvedInALaterBatch(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		ctx := context.Background()
		src := open(t)
		appendTo(t, src, dispatch.Stream("q1"),
			dispatch.RequestReceived{Adapter: "slack", MessageID: "q1", Room: "ops", ChatUser: "carol", Text: "rotate keys"})
		catchUp(t, src, projections.NewHistory(), projections.NewSearch())
		query, err := projections.ParseSearchQuery("rotate")
		if err != nil {
			t.Fatal(err)
		}
		reader := projections.NewSearchReader(projections.DBOf(src))
		page, err := reader.Search(ctx, projections.SearchFilter{Query: query, Username: "carol"})
		if err != nil || len(page.Hits) != 0 {
			t.Fatalf("before the identity: %+v, %v; want no hit", page.Hits, err)
		}
		appendTo(t, src, dispatch.Stream("q1"), dispatch.IdentityResolved{User: "u-carol", Username: "carol"},
			dispatch.PipelineParsed{Stages: json.RawMessage(`[{"command":"vault:rotate"},{"command":"ops:notify"}]`), Redirects: json.RawMessage("[]")})
		catchUp(t, src, projections.NewHistory(), projections.NewSearch())
		for _, f := range []projections.SearchFilter{{Username: "carol"}, {Command: "ops:notify"}, {Command: "vault:rotate", Username: "carol"}} {
			f.Query = query
			page, err = reader.Search(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Hits) != 1 || page.Hits[0].RequestID != "q1" || page.Hits[0].Username != "carol" || page.Hits[0].Command != "vault:rotate ops:notify" {
				t.Fatalf("after the identity and the parse, %+v: %+v; want q1's text", f, page.Hits)
			}
		}
		f := projections.SearchFilter{Query: query, Command: "ops:rotate"}
		if page, err = reader.Search(ctx, f); err != nil || len(page.Hits) != 0 {
			t.Fatalf("another command: %+v, %v; want no hit", page.Hits, err)
		}
	})
}

// Given 6,000 documents, 7 of the newest 2,000 and 5 of the oldest 1,000
// holding a word, a search for it one hit a page (which Postgres gathers
// from the newest documents first, where the sample says a few pages lie)
// pages through all 12 newest first: when the documents below a page's
// cursor that the sample points to hold less than a page, the search
// gathers from all of them.
func TestSearchPagesThroughMatchesOlderThanTheNewestDocuments(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		ctx := context.Background()
		src := open(t)
		appendTo(t, src, dispatch.Stream("q1"),
			dispatch.RequestReceived{Adapter: "slack", MessageID: "q1", Room: "ops", ChatUser: "alice", Text: "scan"},
			dispatch.IdentityResolved{User: "u-alice", Username: "alice"})
		const docs = 6000
		chunks := []domain.Payload{run.RunRequested{RequestID: "q1", Bundle: "ops", Command: "scan", Invocation: run.Invocation{Username: "alice"}}}
		var want []string
		for i := range docs {
			word := "hay"
			if i < 1000 && i%200 == 0 || i > 4000 && (i-4000)%285 == 0 {
				word = "needle"
				want = append([]string{fmt.Sprintf("q1/r1 output L%d: line %d [needle]", i+1, i)}, want...)
			}
			chunks = append(chunks, run.OutputChunk{Seq: int64(i), Stream: run.Stdout, Bytes: fmt.Appendf(nil, "line %d %s\n", i, word)})
		}
		appendTo(t, src, run.Stream("r1"), append(chunks, run.RunSucceeded{})...)
		catchUp(t, src, projections.NewHistory(), projections.NewSearch())
		if len(want) != 12 {
			t.Fatalf("the fixture has %d needles, want 12", len(want))
		}
		reader := projections.NewSearchReader(projections.DBOf(src))
		query, err := projections.ParseSearchQuery("needle")
		if err != nil {
			t.Fatal(err)
		}
		f := projections.SearchFilter{Query: query, Limit: 1}
		var got []string
		for {
			page, err := reader.Search(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range page.Hits {
				got = append(got, hitString(h))
			}
			if page.Next == "" {
				break
			}
			f.Cursor = page.Next
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("pages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// Postgres's trigram index reads the marks that join ids and addresses as q; a
// substring is read the same way in Go to be found by it.
func TestSubstringsAreReadAcrossPunctuationAsTheTrigramIndexReadsThem(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		if open(t).Dialect() != "postgres" {
			t.Skip("the index of substrings across punctuation is Postgres's")
		}
		src := open(t)
		var text strings.Builder
		for c := rune(0x21); c < 0x7f; c++ {
			text.WriteRune(c)
		}
		text.WriteString(" 10.0.10.188 trace=3fa2b1 é…")
		var indexed string
		err := src.DB().QueryRowContext(context.Background(), "SELECT "+projections.TrigramsAcrossPunctuation+" FROM (SELECT $1::text AS body) s", text.String()).Scan(&indexed)
		if err != nil {
			t.Fatal(err)
		}
		if got := projections.AcrossPunctuation(text.String()); got != indexed {
			t.Fatalf("Go reads %q, the index %q", got, indexed)
		}
		if !strings.Contains(indexed, " 10q0q10q188 traceq3fa2b1 é…") {
			t.Fatalf("indexed %q", indexed)
		}
	})
}
