package webui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/projections"
)

// maxShownOutput bounds the output a transcript page renders, and plays
// back; the whole output stays in the store, behind the API and the raw
// download.
const maxShownOutput = 4 << 20

// lineSegment is a piece of one output line from one chunk: its stream and
// when it was printed, so the page marks stderr and plays it back.
type lineSegment struct {
	Text   string
	Stderr bool
	AtMS   int64
	// OwnTime: printed later than its line began, so it carries its
	// time; the others show with their line.
	OwnTime bool
}

// outputLine is one line of the output as printed (both streams in seq
// order), numbered from 1 as the search view numbers them, so `#L12` is
// line 12 of the raw download too.
type outputLine struct {
	N    int64
	AtMS int64 // when its first byte was printed
	// NewTime: AtMS differs from the line before's; the page writes a
	// time only then, and a line without one shows with the one before.
	NewTime  bool
	Segments []lineSegment
	Stderr   bool // every byte of it went to stderr
	// Marker is Cog's `JSON` protocol line: plumbing, hidden on the page.
	Marker bool
	// JSON is the value the lines N to Last printed after the marker,
	// pretty-printed; it is shown at line N instead of them. Folded marks
	// those later lines, which keep only their anchors.
	JSON   string
	Last   int64
	Folded bool
}

type transcriptData struct {
	Run  httpapi.RunView
	Info projections.TranscriptInfo
	// Lines is the output as numbered lines, written by linesHTML; Count
	// is how many.
	Lines template.HTML
	Count int
	// TotalMS is the playback's length: the last chunk's offset; Total
	// says it in seconds.
	TotalMS int64
	Total   string
	// Find is what the page's find box starts with (?q=, as the search
	// page links to a match).
	Find string
	// Cut: the output is over maxShownOutput and the page shows its start.
	Cut bool
}

// transcriptPage shows a run's output as numbered lines, stderr marked,
// Cog's JSON result pretty-printed; a filter shows one stream alone. The
// whole output is in the page once, each piece with the time it was
// printed, so it reads without scripts and transcript.js plays it back by
// showing the pieces as their time comes.
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
	data := transcriptData{Run: httpapi.NewRunView(row.(projections.RunRow)), Find: r.URL.Query().Get("q")}
	info, err := ui.cfg.Transcripts.Info(ctx, id)
	if err != nil && !errors.Is(err, projections.ErrNotFound) {
		ui.unavailable(w, r, v, "reading the transcript", err)
		return
	}
	data.Info = info
	chunks, cut, err := ui.shownChunks(ctx, id)
	if err != nil {
		ui.unavailable(w, r, v, "reading the transcript", err)
		return
	}
	data.Cut = cut
	lines := outputLines(chunks)
	foldCogJSON(lines)
	data.Lines, data.Count = linesHTML(lines), len(lines)
	for _, c := range chunks {
		data.TotalMS = max(data.TotalMS, c.Offset.Milliseconds())
	}
	data.Total = fmt.Sprintf("%.1f s", float64(data.TotalMS)/1000)
	ui.render(w, r, http.StatusOK, "transcript", page{Title: "Transcript of " + id, Section: "history", Viewer: v, Data: data})
}

// shownChunks reads a run's chunks in seq order up to maxShownOutput
// bytes; cut says there were more.
func (ui *UI) shownChunks(ctx context.Context, id string) ([]projections.Chunk, bool, error) {
	var out []projections.Chunk
	shown := 0
	for after := int64(-1); ; {
		chunks, err := ui.cfg.Transcripts.Chunks(ctx, id, after, 1000)
		if err != nil {
			return nil, false, err
		}
		for _, c := range chunks {
			if shown+len(c.Bytes) > maxShownOutput {
				return out, true, nil
			}
			shown += len(c.Bytes)
			out = append(out, c)
		}
		if len(chunks) < 1000 {
			return out, false, nil
		}
		after = chunks[len(chunks)-1].Seq
	}
}

// outputLines splits the chunks, in seq order, into lines. A line's
// segments hold its text without the newline that ends it: each line is a
// block of its own on the page, so the page's text is the output again.
// A character cut by a chunk boundary is put together again with the rest
// of its stream, so it shows as itself, not as two U+FFFD.
func outputLines(chunks []projections.Chunk) []outputLine {
	var lines []outputLine
	open := false
	add := func(text string, stderr bool, at int64) {
		for text != "" {
			piece := text
			if i := strings.IndexByte(text, '\n'); i >= 0 {
				piece = text[:i+1]
			}
			text = text[len(piece):]
			if !open {
				newTime := len(lines) == 0 || lines[len(lines)-1].AtMS != at
				lines = append(lines, outputLine{N: int64(len(lines) + 1), AtMS: at, NewTime: newTime, Stderr: true})
				open = true
			}
			l := &lines[len(lines)-1]
			open = !strings.HasSuffix(piece, "\n")
			if piece = strings.TrimSuffix(piece, "\n"); piece != "" || len(l.Segments) == 0 {
				l.Segments = append(l.Segments, lineSegment{Text: piece, Stderr: stderr, AtMS: at, OwnTime: at != l.AtMS})
			}
			l.Stderr = l.Stderr && stderr
		}
	}
	held := map[string][]byte{} // a stream's cut character, until its next chunk
	lastAt := map[string]int64{}
	for _, c := range chunks {
		b := append(held[c.Stream], c.Bytes...)
		whole := wholeRunes(b)
		held[c.Stream] = bytes.Clone(b[whole:])
		lastAt[c.Stream] = c.Offset.Milliseconds()
		add(displayText(b[:whole]), c.Stream == string(run.Stderr), c.Offset.Milliseconds())
	}
	for _, stream := range []string{string(run.Stdout), string(run.Stderr)} {
		add(displayText(held[stream]), stream == string(run.Stderr), lastAt[stream])
	}
	return lines
}

// wholeRunes is how much of b holds whole characters: all of it, but for
// the start of a UTF-8 sequence cut short at its end.
func wholeRunes(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}

// text is the line as printed, without its newline.
func (l outputLine) text() string {
	var b strings.Builder
	for _, s := range l.Segments {
		b.WriteString(s.Text)
	}
	return b.String()
}

// cogProtocolLine is a Cog protocol line that may sit inside a JSON
// result without being part of it (domain/run reads them so too).
func cogProtocolLine(s string) bool {
	return strings.HasPrefix(s, "COGCMD_") || strings.HasPrefix(s, "COG_TEMPLATE:")
}

// foldCogJSON hides Cog's `JSON` marker line and shows the value after it
// pretty-printed: the stdout lines after the marker, protocol lines aside,
// when together they are one JSON value. Output that is not Cog's, or
// whose value does not parse (cut short), is left as printed.
func foldCogJSON(lines []outputLine) {
	marker := -1
	for i, l := range lines {
		if !l.Stderr && strings.TrimSpace(l.text()) == "JSON" {
			marker = i
			break
		}
	}
	if marker < 0 {
		return
	}
	var value []int
	var raw bytes.Buffer
	for i := marker + 1; i < len(lines); i++ {
		l := lines[i]
		if l.Stderr || cogProtocolLine(l.text()) {
			continue
		}
		for _, s := range l.Segments {
			if s.Stderr {
				return // interleaved with stderr: left as printed
			}
		}
		value = append(value, i)
		raw.WriteString(l.text() + "\n")
	}
	var pretty bytes.Buffer
	if len(value) == 0 || json.Indent(&pretty, bytes.TrimSpace(raw.Bytes()), "", "  ") != nil {
		return
	}
	lines[marker].Marker = true
	first := &lines[value[0]]
	first.JSON, first.Last = pretty.String(), lines[value[len(value)-1]].N
	for _, i := range value[1:] {
		lines[i].Folded = true
	}
}

// linesHTML writes the lines as the page shows them: a block per line
// with its anchor (id L<n>, a link to itself whose number CSS shows), its
// time where it changes (data-t), and its text, escaped, with stderr and
// later pieces in spans of their own. The template engine wrote the same
// markup about four times slower, through reflection, for every piece of
// a long transcript; everything written here from output goes through
// html.EscapeString, and the rest is numbers.
func linesHTML(lines []outputLine) template.HTML {
	var b strings.Builder
	b.Grow(len(lines) * 128)
	for _, l := range lines {
		n := strconv.FormatInt(l.N, 10)
		b.WriteString(`<div class="line`)
		if l.Marker {
			b.WriteString(" marker")
		}
		if l.Folded {
			b.WriteString(" folded")
		}
		if l.Stderr {
			b.WriteString(" err-line")
		}
		b.WriteString(`" id="L` + n + `"`)
		if l.NewTime {
			b.WriteString(` data-t="` + strconv.FormatInt(l.AtMS, 10) + `"`)
		}
		label := n
		if l.JSON != "" && l.Last != l.N {
			label += "–" + strconv.FormatInt(l.Last, 10)
		}
		b.WriteString(`><a class="ln" href="#L` + n + `" data-n="` + label + `"></a>`)
		switch {
		case l.JSON != "":
			b.WriteString(`<span class="tx json">` + html.EscapeString(l.JSON) + `</span>`)
		case !l.Folded:
			b.WriteString(`<span class="tx">`)
			for _, s := range l.Segments {
				if !s.Stderr && !s.OwnTime {
					b.WriteString(html.EscapeString(s.Text))
					continue
				}
				b.WriteString("<span")
				if s.OwnTime {
					b.WriteString(` data-t="` + strconv.FormatInt(s.AtMS, 10) + `"`)
				}
				if s.Stderr {
					b.WriteString(` class="stderr"`)
				}
				b.WriteString(">" + html.EscapeString(s.Text) + "</span>")
			}
			b.WriteString("</span>")
		}
		b.WriteString("</div>")
	}
	return template.HTML(b.String()) //nolint:gosec // every piece of output above is escaped
}

// playbackChunk is one chunk as the console plays it.
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

// transcriptChunks answers scripts: the chunks with their offsets from the
// run's start, up to maxShownOutput bytes.
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
	chunks, cut, err := ui.shownChunks(ctx, id)
	if err != nil {
		http.Error(w, "reading the transcript: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	out := playback{RunID: id, Cut: cut, Chunks: []playbackChunk{}}
	for _, c := range chunks {
		out.Chunks = append(out.Chunks, playbackChunk{Seq: c.Seq, Stream: c.Stream, OffsetMS: c.Offset.Milliseconds(), Text: displayText(c.Bytes)})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

// transcriptRaw downloads a run's output, the exact bytes as printed
// (both streams in seq order, or ?stream= one), however long it is.
func (ui *UI) transcriptRaw(w http.ResponseWriter, r *http.Request, v *viewer) {
	id := r.PathValue("id")
	stream := r.URL.Query().Get("stream")
	if stream != "" && stream != string(run.Stdout) && stream != string(run.Stderr) {
		ui.fail(w, r, v, http.StatusBadRequest, "The stream "+strconv.Quote(stream)+" is not stdout or stderr.")
		return
	}
	if !ui.readable(w, r, v, "run", id, httpapi.RunOwner) {
		return
	}
	ctx := r.Context()
	if err := ui.catchUp(ctx, "transcripts"); err != nil {
		ui.unavailable(w, r, v, "reading the transcript view", err)
		return
	}
	h := w.Header()
	// Bytes as printed, never rendered: an attachment, not a page.
	h.Set("Content-Type", "application/octet-stream")
	name := "run-" + safeFileName(id)
	if stream != "" {
		name += "-" + stream
	}
	h.Set("Content-Disposition", `attachment; filename="`+name+`.txt"`)
	h.Set("Cache-Control", "no-store")
	if _, err := ui.cfg.Transcripts.WriteOutput(ctx, w, id, stream); err != nil {
		ui.cfg.Logger.Error().Err(err).Str("run_id", id).Msg("downloading a transcript")
	}
}

// safeFileName keeps letters, digits, '-' and '_' of an id for a file name.
func safeFileName(id string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, id)
}
