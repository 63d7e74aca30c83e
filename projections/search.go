package projections

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/run"
)

// Search is the search view: the text of every request, the command and
// arguments of every run and every run's output, as documents for
// full-text search (SQLite FTS5; Postgres tsvector and pg_trgm, see the
// migrations). A document is the text one event brought and is keyed by
// that event's position, so a rebuild keys it the same and positions order
// hits newest first.
//
// Output is indexed in whole lines as it arrives: a chunk's text up to its
// last newline is one document, which starts on a known line; the rest
// waits in view_search_runs for the next chunk or the run's end. A hit
// can so name its line, and a word is never cut by a chunk boundary.
// Output reaches the log redacted (executor.Redactor), so a secret value is
// never indexed; the view indexes the recorded chunks and nothing else.
type Search struct{}

// NewSearch returns the search view.
func NewSearch() *Search { return &Search{} }

// Name implements Projection.
func (*Search) Name() string { return "search" }

// Types implements Projection.
func (*Search) Types() []string {
	return []string{"RequestReceived", "IdentityResolved", "PipelineParsed", "RunRequested", "OutputChunk",
		"RunSucceeded", "RunFailed", "RunTimedOut", "RunCancelled", "RunLost"}
}

// Tables implements Projection. The full-text indexes of SQLite follow
// view_search_docs through its triggers.
func (*Search) Tables() []string { return []string{"view_search_docs", "view_search_runs"} }

// Open implements Projection: the view keeps nothing in memory.
func (*Search) Open(context.Context, Env, int64) error { return nil }

// Empty implements Emptier. On SQLite, deleting the documents one by one
// would have the delete trigger take each one's words out of both
// full-text indexes; instead both are emptied whole ('delete-all') and the
// documents deleted with the trigger set aside, then put back as it was,
// all in the rebuild's transaction. Postgres truncates.
func (*Search) Empty(ctx context.Context, tx *sql.Tx, dialect string) error {
	if dialect != "sqlite" {
		return nil
	}
	var trigger string
	if err := tx.QueryRowContext(ctx, "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'view_search_docs_unindexed'").Scan(&trigger); err != nil {
		return fmt.Errorf("read the delete trigger: %w", err)
	}
	for _, stmt := range []string{
		"INSERT INTO view_search_words (view_search_words) VALUES ('delete-all')",
		"INSERT INTO view_search_trigrams (view_search_trigrams) VALUES ('delete-all')",
		"DROP TRIGGER view_search_docs_unindexed",
		"DELETE FROM view_search_docs",
		trigger,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// Committed implements Projection.
func (*Search) Committed(int64) {}

// Kinds of search documents.
const (
	SearchKindRequest = "request" // the text someone typed
	SearchKindCommand = "command" // a run's command and arguments
	SearchKindOutput  = "output"  // lines a run printed
)

// maxSearchTail bounds the output held back waiting for a newline: a run
// printing a long line, or binary, is indexed in pieces of this size.
const maxSearchTail = 16 << 10

var (
	searchDocCols = []string{"position", "request_id", "run_id", "kind", "line", "body", "username", "command"}
	searchRunCols = []string{"run_id", "request_id", "last_seq", "line", "tail", "pending", "username", "command"}
)

type searchRun struct {
	requestID string
	username  string
	command   string
	lastSeq   int64
	line      int64
	tail      []byte
	pending   map[int64][]byte // chunks recorded ahead of their turn, by seq
	touched   bool
}

// Apply implements Projection.
func (*Search) Apply(ctx context.Context, tx *Tx, batch Batch) error {
	runs, err := loadSearchRuns(ctx, tx, batch.Events)
	if err != nil {
		return err
	}
	var docs [][]any
	var order []string
	// A request's own document waits here, in this batch, for the user
	// its IdentityResolved names and the commands its PipelineParsed
	// does; one written by an earlier batch gets them by an update, found
	// by its key (the RequestReceived's position): a rebuild drops the
	// index by request until it has caught up.
	requestDocs := map[string][]any{}
	var later []searchDocUpdate
	touch := func(id string) *searchRun {
		r, ok := runs[id]
		if !ok {
			r = &searchRun{lastSeq: -1, line: 1}
			runs[id] = r
		}
		if !r.touched {
			r.touched = true
			order = append(order, id)
		}
		return r
	}
	doc := func(e Event, requestID, runID, kind string, line int64, body []byte, username, command string) []any {
		row := []any{e.Position, requestID, runID, kind, line, searchText(body), username, command}
		docs = append(docs, row)
		return row
	}
	const usernameCol, commandCol = 6, 7 // in searchDocCols
	setLater := func(e Event, col int, value string) {
		if row, ok := requestDocs[strings.TrimPrefix(e.Stream, dispatch.StreamPrefix)]; ok {
			row[col] = value
		} else {
			later = append(later, searchDocUpdate{stream: e.Stream, column: searchDocCols[col], value: value})
		}
	}
	for _, e := range batch.Events {
		switch p := e.Payload.(type) {
		case dispatch.RequestReceived:
			id := strings.TrimPrefix(e.Stream, dispatch.StreamPrefix)
			requestDocs[id] = doc(e, id, "", SearchKindRequest, 0, []byte(p.Text), "", "")
		case dispatch.IdentityResolved:
			setLater(e, usernameCol, p.Username)
		case dispatch.PipelineParsed:
			commands, err := stageCommands(p.Stages)
			if err != nil {
				return err
			}
			setLater(e, commandCol, strings.Join(commands, " "))
		case run.RunRequested:
			id := strings.TrimPrefix(e.Stream, run.StreamPrefix)
			r := touch(id)
			r.requestID, r.username, r.command = p.RequestID, p.Invocation.Username, runCommand(p)
			doc(e, p.RequestID, id, SearchKindCommand, 0, []byte(strings.Join(append([]string{p.Bundle + ":" + p.Command}, p.Args...), " ")), r.username, r.command)
		case run.OutputChunk:
			id := strings.TrimPrefix(e.Stream, run.StreamPrefix)
			r := touch(id)
			if _, held := r.pending[p.Seq]; held || p.Seq <= r.lastSeq {
				continue // redelivered: the transcript keeps the first
			}
			if p.Seq > r.lastSeq+1 {
				// Ahead of a chunk not recorded yet: held until the gap
				// fills or the run ends, so lines count in seq order.
				if r.pending == nil {
					r.pending = map[int64][]byte{}
				}
				r.pending[p.Seq] = slices.Clone(p.Bytes)
				continue
			}
			r.lastSeq = p.Seq
			text := append(r.tail, p.Bytes...)
			for next, ok := r.pending[r.lastSeq+1]; ok; next, ok = r.pending[r.lastSeq+1] {
				text = append(text, next...)
				delete(r.pending, r.lastSeq+1)
				r.lastSeq++
			}
			cut := bytes.LastIndexByte(text, '\n') + 1
			if cut == 0 && len(text) > maxSearchTail {
				cut = len(text)
			}
			if cut > 0 {
				doc(e, r.requestID, id, SearchKindOutput, r.line, text[:cut], r.username, r.command)
				r.line += int64(bytes.Count(text[:cut], []byte{'\n'}))
			}
			r.tail = slices.Clone(text[cut:])
		case run.RunSucceeded, run.RunFailed, run.RunTimedOut, run.RunCancelled, run.RunLost:
			id := strings.TrimPrefix(e.Stream, run.StreamPrefix)
			r := touch(id)
			// What never got its chunk before it comes now, in seq order.
			for _, seq := range slices.Sorted(maps.Keys(r.pending)) {
				r.tail = append(r.tail, r.pending[seq]...)
				r.lastSeq = seq
			}
			r.pending = nil
			if len(r.tail) > 0 {
				doc(e, r.requestID, id, SearchKindOutput, r.line, r.tail, r.username, r.command)
				r.line += int64(bytes.Count(r.tail, []byte{'\n'}))
				r.tail = nil
			}
		}
	}
	if err := tx.insertIgnore(ctx, "view_search_docs", searchDocCols, 1, docs); err != nil {
		return err
	}
	for _, u := range later {
		// The request's document is keyed by its RequestReceived's
		// position, read from the log: on SQLite the log is another file
		// than the views, which the views' transaction does not see.
		var position int64
		err := tx.db.Read.QueryRowContext(ctx, tx.db.rebind("SELECT position FROM events WHERE stream_id = $1 AND type = 'RequestReceived'"), u.stream).Scan(&position)
		if errors.Is(err, sql.ErrNoRows) {
			continue // a request recorded without its text has no document
		}
		if err == nil {
			err = tx.Exec(ctx, "UPDATE view_search_docs SET "+u.column+" = $1 WHERE position = $2", u.value, position)
		}
		if err != nil {
			return fmt.Errorf("the %s of %s: %w", u.column, u.stream, err)
		}
	}
	rows := make([][]any, 0, len(order))
	for _, id := range order {
		r := runs[id]
		rows = append(rows, []any{id, r.requestID, r.lastSeq, r.line, nonNil(r.tail), encodePending(r.pending), r.username, r.command})
	}
	return tx.upsert(ctx, "view_search_runs", searchRunCols, 1, rows)
}

// searchDocUpdate sets a column of a request's own document that an
// earlier batch wrote.
type searchDocUpdate struct {
	stream, column, value string
}

// loadSearchRuns reads the stored state of the runs the batch continues.
func loadSearchRuns(ctx context.Context, tx *Tx, events []Event) (map[string]*searchRun, error) {
	ids := map[string]bool{}
	fresh := freshStreams(events)
	for _, e := range events {
		if strings.HasPrefix(e.Stream, run.StreamPrefix) && !fresh[e.Stream] {
			ids[strings.TrimPrefix(e.Stream, run.StreamPrefix)] = true
		}
	}
	runs := make(map[string]*searchRun, len(ids))
	err := inChunks(tx.db, keysOf(ids), func(args []any, in string) error {
		rows, err := tx.Query(ctx, "SELECT run_id, request_id, last_seq, line, tail, pending, username, command FROM view_search_runs WHERE run_id IN ("+in+")", args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id      string
				r       searchRun
				pending []byte
			)
			if err := rows.Scan(&id, &r.requestID, &r.lastSeq, &r.line, &r.tail, &pending, &r.username, &r.command); err != nil {
				return err
			}
			if r.pending, err = decodePending(pending); err != nil {
				return fmt.Errorf("run %s: %w", id, err)
			}
			runs[id] = &r
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("load search runs: %w", err)
	}
	return runs, nil
}

// searchText is output as text both databases store and index: invalid
// UTF-8 and NUL (which Postgres text cannot hold) become U+FFFD, byte for
// byte where lines are concerned, since neither is a newline.
func searchText(b []byte) string {
	if utf8.Valid(b) && bytes.IndexByte(b, 0) < 0 {
		return string(b)
	}
	return strings.ReplaceAll(strings.ToValidUTF8(string(b), "\uFFFD"), "\x00", "\uFFFD")
}

// encodePending writes held chunks as (seq, length, bytes) records in seq
// order: big-endian 8 and 4 bytes, then the bytes.
func encodePending(pending map[int64][]byte) []byte {
	out := []byte{}
	for _, seq := range slices.Sorted(maps.Keys(pending)) {
		out = binary.BigEndian.AppendUint64(out, uint64(seq))
		out = binary.BigEndian.AppendUint32(out, uint32(len(pending[seq])))
		out = append(out, pending[seq]...)
	}
	return out
}

func decodePending(b []byte) (map[int64][]byte, error) {
	if len(b) == 0 {
		return nil, nil
	}
	out := map[int64][]byte{}
	for len(b) > 0 {
		if len(b) < 12 {
			return nil, fmt.Errorf("held chunks cut short")
		}
		seq, n := int64(binary.BigEndian.Uint64(b)), int(binary.BigEndian.Uint32(b[8:]))
		if len(b) < 12+n {
			return nil, fmt.Errorf("held chunk %d cut short", seq)
		}
		out[seq] = b[12 : 12+n]
		b = b[12+n:]
	}
	return out, nil
}
