package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/projections"
)

// Transcripts is what the API reads of the transcript view.
type Transcripts interface {
	Info(ctx context.Context, runID string) (projections.TranscriptInfo, error)
	Chunks(ctx context.Context, runID string, afterSeq int64, limit int) ([]projections.Chunk, error)
	WriteOutput(ctx context.Context, w io.Writer, runID, stream string) (int64, error)
}

// ChunkView is one piece of a run's output: Bytes are exact (base64 in
// JSON), OffsetMS counts from the run's start.
type ChunkView struct {
	Seq      int64     `json:"seq"`
	Stream   string    `json:"stream"`
	OffsetMS int64     `json:"offset_ms"`
	At       time.Time `json:"at"`
	Bytes    []byte    `json:"bytes"`
}

// TranscriptView answers GET /v1/runs/{id}/transcript?format=chunks.
type TranscriptView struct {
	RunID             string      `json:"run_id"`
	StartedAt         *time.Time  `json:"started_at,omitempty"`
	Truncated         bool        `json:"truncated"`
	TruncatedLimit    int64       `json:"truncated_limit_bytes,omitempty"`
	TruncatedAfterSeq int64       `json:"truncated_after_seq,omitempty"`
	Chunks            []ChunkView `json:"chunks"`
}

// TranscriptEnd is the last event of a followed transcript: how the run ended.
type TranscriptEnd struct {
	RunID  string `json:"run_id"`
	Status string `json:"status"` // as in the history view: succeeded, failed, timed_out, cancelled, lost
}

// Server-Sent Event names of a followed transcript.
const (
	SSEChunk = "chunk"
	SSEEnd   = "end"
)

func (a *API) getTranscript(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if !a.servesHistory(w) {
		return
	}
	id := r.PathValue("id")
	tq, err := parseTranscriptQuery(r.URL.Query())
	if writeParamError(w, err) {
		return
	}
	lastSeq := int64(-1)
	if raw := r.Header.Get("Last-Event-ID"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < -1 {
			writeJSON(w, http.StatusBadRequest, apiError{"header Last-Event-ID: " + strconv.Quote(raw) + " is not a chunk seq this API sent"})
			return
		}
		lastSeq = n
	}
	ctx := r.Context()
	if !a.readable(w, r, user, "run", id, RunOwner) {
		return
	}
	if tq.Follow {
		a.followTranscript(w, r, id, tq.Stream, lastSeq)
		return
	}
	if err := a.catchUp(ctx, "transcripts"); err != nil {
		unavailable(w, "the transcript view", err)
		return
	}
	info, err := a.Transcripts.Info(ctx, id)
	if err != nil && !errors.Is(err, projections.ErrNotFound) {
		unavailable(w, "reading the transcript", err)
		return
	}
	if !tq.Chunks {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if info.Truncated {
			w.Header().Set("X-Logbook-Truncated", strconv.FormatInt(info.TruncatedLimit, 10))
		}
		// The bytes go out as they are read; an error after the first write
		// can only cut the body short.
		_, _ = a.Transcripts.WriteOutput(ctx, w, id, tq.Stream)
		return
	}
	a.writeChunks(ctx, w, info, tq.Stream)
}

// writeChunks streams a TranscriptView, a page of chunks at a time.
func (a *API) writeChunks(ctx context.Context, w http.ResponseWriter, info projections.TranscriptInfo, stream string) {
	head := TranscriptView{RunID: info.RunID, StartedAt: timePtr(info.StartedAt), Truncated: info.Truncated,
		TruncatedLimit: info.TruncatedLimit, TruncatedAfterSeq: info.TruncatedAfterSeq}
	first, err := a.Transcripts.Chunks(ctx, info.RunID, -1, 1000)
	if err != nil {
		unavailable(w, "reading the transcript", err)
		return
	}
	opening, _ := json.Marshal(head)
	// Replace the empty list's closing `null}` with an open array.
	opening = append(opening[:len(opening)-len(`null}`)], '[')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	buf := opening
	wrote := false
	for page := first; len(page) > 0; {
		for _, c := range page {
			if stream != "" && c.Stream != stream {
				continue
			}
			if wrote {
				buf = append(buf, ',')
			}
			wrote = true
			line, _ := json.Marshal(chunkView(c))
			buf = append(buf, line...)
		}
		if _, err := w.Write(buf); err != nil {
			return
		}
		buf = buf[:0]
		if page, err = a.Transcripts.Chunks(ctx, info.RunID, page[len(page)-1].Seq, 1000); err != nil {
			return
		}
	}
	_, _ = w.Write(append(buf, "]}\n"...))
}

func chunkView(c projections.Chunk) ChunkView {
	return ChunkView{Seq: c.Seq, Stream: c.Stream, OffsetMS: c.Offset.Milliseconds(), At: c.At, Bytes: c.Bytes}
}

// followTranscript sends the run's chunks as Server-Sent Events, in seq
// order, from the store itself: first what is stored, then each chunk as it
// is appended (the hub hands the run's events over; nothing polls), until
// the run ends; the last event says how it ended. A chunk's id is its seq,
// so a client that reconnects with Last-Event-ID resumes after it.
func (a *API) followTranscript(w http.ResponseWriter, r *http.Request, runID, stream string, lastSeq int64) {
	ctx := r.Context()
	if a.Live == nil {
		writeJSON(w, http.StatusNotImplemented, apiError{"this server does not follow transcripts"})
		return
	}
	sub, err := a.Live.Subscribe(ctx, run.Stream(runID))
	if err != nil {
		unavailable(w, "following the transcript", err)
		return
	}
	defer sub.Close()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	f := &transcriptFollower{runID: runID, stream: stream, next: lastSeq + 1, pending: map[int64]run.OutputChunk{}}
	send := func(event string, id string, v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		msg := "event: " + event + "\n"
		if id != "" {
			msg = "id: " + id + "\n" + msg
		}
		if _, err := io.WriteString(w, msg+"data: "+string(data)+"\n\n"); err != nil {
			return err
		}
		return rc.Flush()
	}
	emit := func(chunks []ChunkView) error {
		for _, c := range chunks {
			if err := send(SSEChunk, strconv.FormatInt(c.Seq, 10), c); err != nil {
				return err
			}
		}
		return nil
	}
	for e, err := range sub.Events(ctx) {
		if err != nil {
			return
		}
		chunks, err := f.apply(e)
		if err != nil || emit(chunks) != nil {
			return
		}
		if f.status != "" {
			if emit(f.drain()) == nil {
				_ = send(SSEEnd, "", TranscriptEnd{RunID: runID, Status: f.status})
			}
			return
		}
	}
}

// transcriptFollower folds a run's events into chunks ready to send: in
// seq order, each once, from next on, of one stream or both.
type transcriptFollower struct {
	runID   string
	stream  string
	next    int64
	pending map[int64]run.OutputChunk
	start   time.Time
	status  string
}

// apply takes one event of the run and returns the chunks now ready.
func (f *transcriptFollower) apply(e domain.RecordedEvent) ([]ChunkView, error) {
	p, err := domain.Decode(e)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", f.runID, err)
	}
	switch p := p.(type) {
	case run.RunRequested:
		if f.start.IsZero() {
			f.start = e.RecordedAt
		}
	case run.ContainerStarted:
		f.start = e.RecordedAt
	case run.OutputChunk:
		if p.Seq >= f.next {
			if _, seen := f.pending[p.Seq]; !seen {
				f.pending[p.Seq] = p
			}
		}
	default:
		if s := projections.TerminalRunStatus(p); s != "" && f.status == "" {
			f.status = s
		}
	}
	var ready []ChunkView
	for {
		c, ok := f.pending[f.next]
		if !ok {
			return ready, nil
		}
		delete(f.pending, f.next)
		f.next++
		ready = f.keep(ready, c)
	}
}

// drain returns what is still held back behind a missing seq, in order:
// the run has ended, so nothing will fill the gap.
func (f *transcriptFollower) drain() []ChunkView {
	seqs := make([]int64, 0, len(f.pending))
	for s := range f.pending {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	var out []ChunkView
	for _, s := range seqs {
		out = f.keep(out, f.pending[s])
		delete(f.pending, s)
	}
	return out
}

func (f *transcriptFollower) keep(out []ChunkView, c run.OutputChunk) []ChunkView {
	if f.stream != "" && string(c.Stream) != f.stream {
		return out
	}
	start := f.start
	if start.IsZero() {
		start = c.At
	}
	return append(out, ChunkView{Seq: c.Seq, Stream: string(c.Stream), OffsetMS: max(0, c.At.Sub(start).Milliseconds()), At: c.At.UTC(), Bytes: c.Bytes})
}
