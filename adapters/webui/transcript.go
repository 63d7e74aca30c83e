package webui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/projections"
)

// maxShownOutput bounds the output a transcript page renders, and plays
// back; the whole output stays in the store and behind the API.
const maxShownOutput = 4 << 20

type transcriptData struct {
	Run                      httpapi.RunView
	Info                     projections.TranscriptInfo
	Combined, Stdout, Stderr string
	// Cut: the output is over maxShownOutput and the page shows its start.
	Cut bool
}

// limitedBuffer keeps the first n bytes written and notes the rest.
type limitedBuffer struct {
	buf bytes.Buffer
	n   int
	cut bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.n - l.buf.Len(); len(p) > room {
		l.buf.Write(p[:max(0, room)])
		l.cut = true
		return len(p), nil
	}
	return l.buf.Write(p)
}

// transcriptPage shows a run's output: both streams as printed, and each
// apart. The whole output is in the page, so it reads without scripts;
// transcript.js plays it back with its original timing.
func (ui *UI) transcriptPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	id := r.PathValue("id")
	if !ui.readable(w, r, v, "run", id, httpapi.RunOwner) {
		return
	}
	row, ok := ui.historyRow(w, r, v, "run "+id, func(ctx context.Context) (any, error) { return ui.cfg.History.Run(ctx, id) })
	if !ok {
		return
	}
	ctx := r.Context()
	if err := ui.catchUp(ctx, "transcripts"); err != nil {
		ui.unavailable(w, r, v, "reading the transcript view", err)
		return
	}
	data := transcriptData{Run: httpapi.NewRunView(row.(projections.RunRow))}
	info, err := ui.cfg.Transcripts.Info(ctx, id)
	if err != nil && !errors.Is(err, projections.ErrNotFound) {
		ui.unavailable(w, r, v, "reading the transcript", err)
		return
	}
	data.Info = info
	for _, part := range []struct {
		stream string
		into   *string
	}{{"", &data.Combined}, {string(run.Stdout), &data.Stdout}, {string(run.Stderr), &data.Stderr}} {
		out := &limitedBuffer{n: maxShownOutput}
		if _, err := ui.cfg.Transcripts.WriteOutput(ctx, out, id, part.stream); err != nil {
			ui.unavailable(w, r, v, "reading the transcript", err)
			return
		}
		*part.into = displayText(out.buf.Bytes())
		data.Cut = data.Cut || out.cut
	}
	ui.render(w, r, http.StatusOK, "transcript", page{Title: "Transcript of " + id, Section: "history", Viewer: v, Data: data})
}

// playbackChunk is one chunk as transcript.js plays it.
type playbackChunk struct {
	Seq      int64  `json:"seq"`
	Stream   string `json:"stream"`
	OffsetMS int64  `json:"offset_ms"`
	Text     string `json:"text"`
}

type playback struct {
	RunID  string          `json:"run_id"`
	Cut    bool            `json:"cut"`
	Chunks []playbackChunk `json:"chunks"`
}

// transcriptChunks answers transcript.js: the chunks with their offsets
// from the run's start, up to maxShownOutput bytes.
func (ui *UI) transcriptChunks(w http.ResponseWriter, r *http.Request, v *viewer) {
	id := r.PathValue("id")
	ctx := r.Context()
	ok, err := ui.mayRead(ctx, v, id, httpapi.RunOwner)
	if err != nil {
		http.Error(w, "reading the event store: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	if !ok {
		http.Error(w, "no run "+id, http.StatusNotFound)
		return
	}
	if err := ui.catchUp(ctx, "transcripts"); err != nil {
		http.Error(w, "reading the transcript view: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	out := playback{RunID: id, Chunks: []playbackChunk{}}
	shown := 0
	for after := int64(-1); ; {
		chunks, err := ui.cfg.Transcripts.Chunks(ctx, id, after, 1000)
		if err != nil {
			http.Error(w, "reading the transcript: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		for _, c := range chunks {
			if shown+len(c.Bytes) > maxShownOutput {
				out.Cut = true
				break
			}
			shown += len(c.Bytes)
			out.Chunks = append(out.Chunks, playbackChunk{Seq: c.Seq, Stream: c.Stream, OffsetMS: c.Offset.Milliseconds(), Text: displayText(c.Bytes)})
		}
		if out.Cut || len(chunks) < 1000 {
			break
		}
		after = chunks[len(chunks)-1].Seq
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}
