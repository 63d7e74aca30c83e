package projections

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/logbookhq/logbook/domain/run"
)

// Transcripts is the transcript view: every output chunk of every run, with
// its seq, stream and time, and each run's start, so a run's output can be
// reassembled byte for byte and replayed with its timing.
type Transcripts struct{}

// NewTranscripts returns the transcript view.
func NewTranscripts() *Transcripts { return &Transcripts{} }

// Name implements Projection.
func (*Transcripts) Name() string { return "transcripts" }

// Types implements Projection.
func (*Transcripts) Types() []string {
	return []string{"RunRequested", "ContainerStarted", "OutputChunk", "OutputTruncated"}
}

// Tables implements Projection.
func (*Transcripts) Tables() []string {
	return []string{"view_transcript_chunks", "view_transcript_runs"}
}

// Open implements Projection: the view keeps nothing in memory.
func (*Transcripts) Open(context.Context, Env, int64) error { return nil }

// Committed implements Projection.
func (*Transcripts) Committed(int64) {}

var (
	transcriptChunkCols = []string{"run_id", "seq", "stream", "bytes", "at", "position"}
	transcriptRunCols   = []string{"run_id", "started_at", "truncated_limit", "truncated_after_seq"}
)

type transcriptRun struct {
	startedAt, limit, afterSeq sql.NullInt64
	touched                    bool // to be written by this batch
}

// loadTranscriptRuns reads, in a few statements, the stored rows of the
// runs whose start or truncation the batch changes.
func loadTranscriptRuns(ctx context.Context, tx *Tx, events []Event) (map[string]*transcriptRun, error) {
	ids := map[string]bool{}
	fresh := freshStreams(events)
	for _, e := range events {
		if e.Type != "OutputChunk" && !fresh[e.Stream] {
			ids[strings.TrimPrefix(e.Stream, run.StreamPrefix)] = true
		}
	}
	runs := make(map[string]*transcriptRun, len(ids))
	err := inChunks(tx.db, keysOf(ids), func(args []any, in string) error {
		rows, err := tx.Query(ctx, "SELECT run_id, started_at, truncated_limit, truncated_after_seq FROM view_transcript_runs WHERE run_id IN ("+in+")", args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id string
				r  transcriptRun
			)
			if err := rows.Scan(&id, &r.startedAt, &r.limit, &r.afterSeq); err != nil {
				return err
			}
			runs[id] = &r
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("load transcript runs: %w", err)
	}
	return runs, nil
}

// Apply implements Projection. A chunk whose seq is already stored (a
// redelivered chunk) keeps the first one. A run starts when its container
// starts (as recorded); until then, when it was requested.
func (*Transcripts) Apply(ctx context.Context, tx *Tx, batch Batch) error {
	var chunks [][]any
	seen := map[string]bool{}
	runs, err := loadTranscriptRuns(ctx, tx, batch.Events)
	if err != nil {
		return err
	}
	var order []string
	touch := func(id string) *transcriptRun {
		r, ok := runs[id]
		if !ok {
			r = &transcriptRun{}
			runs[id] = r
		}
		if !r.touched {
			r.touched = true
			order = append(order, id)
		}
		return r
	}
	for _, e := range batch.Events {
		id := strings.TrimPrefix(e.Stream, run.StreamPrefix)
		switch p := e.Payload.(type) {
		case run.OutputChunk:
			key := fmt.Sprintf("%s\x00%d", id, p.Seq)
			if seen[key] {
				continue
			}
			seen[key] = true
			stream := string(p.Stream)
			chunks = append(chunks, []any{id, p.Seq, stream, nonNil(p.Bytes), p.At.UnixMicro(), e.Position})
		case run.RunRequested:
			r := touch(id)
			if !r.startedAt.Valid {
				r.startedAt = micros(e.RecordedAt)
			}
		case run.ContainerStarted:
			touch(id).startedAt = micros(e.RecordedAt)
		case run.OutputTruncated:
			r := touch(id)
			r.limit = sql.NullInt64{Int64: p.LimitBytes, Valid: true}
			r.afterSeq = sql.NullInt64{Int64: p.AfterSeq, Valid: true}
		}
	}
	if err := tx.insertIgnore(ctx, "view_transcript_chunks", transcriptChunkCols, 2, chunks); err != nil {
		return err
	}
	rows := make([][]any, 0, len(order))
	for _, id := range order {
		r := runs[id]
		rows = append(rows, []any{id, r.startedAt, r.limit, r.afterSeq})
	}
	return tx.upsert(ctx, "view_transcript_runs", transcriptRunCols, 1, rows)
}

// nonNil keeps an empty chunk an empty value rather than NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Chunk is one piece of a run's output.
type Chunk struct {
	Seq    int64         `json:"seq"`
	Stream string        `json:"stream"`
	Bytes  []byte        `json:"bytes"`
	At     time.Time     `json:"at"`
	Offset time.Duration `json:"offset_ns"` // since the run started; never negative
}

// TranscriptInfo describes a run's transcript.
type TranscriptInfo struct {
	RunID     string    `json:"run_id"`
	StartedAt time.Time `json:"started_at"`
	// Truncated is set when the run printed more than its output cap;
	// TruncatedAfterSeq is the last chunk kept (-1 when none).
	Truncated         bool  `json:"truncated"`
	TruncatedLimit    int64 `json:"truncated_limit_bytes,omitempty"`
	TruncatedAfterSeq int64 `json:"truncated_after_seq,omitempty"`
}

// ErrNotFound is the kind of a query for something the view does not hold.
var ErrNotFound = errors.New("not found")

// TranscriptReader answers transcript queries from the view's tables.
type TranscriptReader struct{ db DB }

// NewTranscriptReader reads the transcript view in db.
func NewTranscriptReader(db DB) *TranscriptReader { return &TranscriptReader{db: db} }

// Info returns what the view knows of a run's transcript.
func (t *TranscriptReader) Info(ctx context.Context, runID string) (TranscriptInfo, error) {
	info := TranscriptInfo{RunID: runID}
	var started, limit, after sql.NullInt64
	err := t.db.Read.QueryRowContext(ctx, t.db.rebind(
		"SELECT started_at, truncated_limit, truncated_after_seq FROM view_transcript_runs WHERE run_id = $1"), runID).Scan(&started, &limit, &after)
	if errors.Is(err, sql.ErrNoRows) {
		return info, fmt.Errorf("%w: no transcript for run %s", ErrNotFound, runID)
	}
	if err != nil {
		return info, err
	}
	info.StartedAt = timeOf(started)
	info.Truncated, info.TruncatedLimit, info.TruncatedAfterSeq = limit.Valid, limit.Int64, after.Int64
	return info, nil
}

// Chunks returns up to limit chunks of a run with seq > afterSeq, in seq
// order (afterSeq -1 starts at the beginning); page on with the last seq.
// Offsets count from the run's start, or from its first chunk when the view
// has no start for it.
func (t *TranscriptReader) Chunks(ctx context.Context, runID string, afterSeq int64, limit int) ([]Chunk, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := t.db.query(ctx, `
		SELECT c.seq, c.stream, c.bytes, c.at,
			COALESCE(r.started_at, (SELECT MIN(f.at) FROM view_transcript_chunks f WHERE f.run_id = c.run_id))
		FROM view_transcript_chunks c LEFT JOIN view_transcript_runs r ON r.run_id = c.run_id
		WHERE c.run_id = $1 AND c.seq > $2
		ORDER BY c.seq LIMIT $3`, runID, afterSeq, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Chunk
	for rows.Next() {
		var (
			c         Chunk
			at, start int64
		)
		if err := rows.Scan(&c.Seq, &c.Stream, &c.Bytes, &at, &start); err != nil {
			return nil, err
		}
		c.At = time.UnixMicro(at).UTC()
		c.Offset = max(0, time.Duration(at-start)*time.Microsecond)
		out = append(out, c)
	}
	return out, rows.Err()
}

// WriteOutput writes a run's output, the chunks' bytes in seq order,
// exactly as the command printed them: stream "stdout" or "stderr" for one
// stream, "" for both interleaved as produced. It streams, so a large
// transcript is never held in memory whole.
func (t *TranscriptReader) WriteOutput(ctx context.Context, w io.Writer, runID, stream string) (int64, error) {
	if stream != "" && stream != string(run.Stdout) && stream != string(run.Stderr) {
		return 0, fmt.Errorf("stream %q is not stdout, stderr or empty for both", stream)
	}
	rows, err := t.db.query(ctx, `
		SELECT bytes FROM view_transcript_chunks
		WHERE run_id = $1 AND ($2 = '' OR stream = $2)
		ORDER BY seq`, runID, stream)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var total int64
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return total, err
		}
		n, err := w.Write(b)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, rows.Err()
}

// Output returns a run's output (see WriteOutput) as one slice.
func (t *TranscriptReader) Output(ctx context.Context, runID, stream string) ([]byte, error) {
	var buf bytes.Buffer
	_, err := t.WriteOutput(ctx, &buf, runID, stream)
	return buf.Bytes(), err
}
