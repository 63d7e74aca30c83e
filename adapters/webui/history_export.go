package webui

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/projections"
)

// exportColumns are the CSV export's columns: the JSON names of the API's
// request rows (httpapi.RequestView), in the order GET /v1/history writes
// them.
var exportColumns = []string{"request_id", "position", "adapter", "message_id", "room", "chat_user", "text", "thread", "user_id", "username",
	"commands", "status", "reason", "runs", "received_at", "ended_at", "duration_ms"}

// exportPage is the rows read from the view at a time while exporting.
const exportPage = 500

// historyExport writes every request the filters select (from the cursor,
// when given, to the oldest), as CSV (/history.csv) or as JSON
// (/history.json, the API's {"requests": [...]}). Each CSV row is made
// from the row's JSON encoding, so the two say the same thing: a field the
// JSON leaves out is an empty cell, a number is written as the JSON writes
// it, and a time is the JSON's RFC 3339 text. Rows stream out page by
// page, so an export of any size holds one page in memory.
func (ui *UI) historyExport(w http.ResponseWriter, r *http.Request, v *viewer) {
	hq, data, status := ui.historyFilters(r, v)
	if status != http.StatusOK {
		http.Error(w, strings.Join(data.Errors, "\n"), status)
		return
	}
	ctx := r.Context()
	if err := ui.catchUp(ctx, "history"); err != nil {
		ui.unavailable(w, r, v, "reading the history view", err)
		return
	}
	asCSV := strings.HasSuffix(r.URL.Path, ".csv")
	f := hq.filter()
	f.Limit = exportPage
	first, err := ui.cfg.History.Requests(ctx, f)
	if errors.Is(err, projections.ErrBadCursor) {
		http.Error(w, "The filter cursor: "+err.Error()+".", http.StatusBadRequest)
		return
	}
	if err != nil {
		ui.unavailable(w, r, v, "reading the history", err)
		return
	}
	name := "logbook-history-" + ui.cfg.Now().UTC().Format("20060102T150405Z")
	w.Header().Set("Cache-Control", "no-store")
	var out rowWriter
	if asCSV {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		out = newCSVRows(w)
	} else {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.json"`)
		out = &jsonRows{w: w}
	}
	written := 0
	for page := first; ; {
		for _, row := range page.Requests {
			encoded, err := json.Marshal(httpapi.NewRequestView(row))
			if err == nil {
				err = out.row(encoded)
			}
			if err != nil {
				ui.cfg.Logger.Warn().Err(err).Str("user", v.User.Username).Msg("exporting the history: the download broke off")
				return
			}
			written++
		}
		if page.Next == "" {
			break
		}
		f.Cursor = page.Next
		if page, err = ui.cfg.History.Requests(ctx, f); err != nil {
			// The answer has begun; all that is left is to cut it short,
			// which the client sees as a broken download.
			ui.cfg.Logger.Error().Err(err).Str("user", v.User.Username).Int("rows", written).Msg("exporting the history")
			panic(http.ErrAbortHandler)
		}
	}
	if err := out.end(); err != nil {
		return
	}
	ui.cfg.Logger.Info().Str("user", v.User.Username).Int("rows", written).Bool("csv", asCSV).Msg("history exported")
}

// rowWriter writes an export's rows, each given as its JSON.
type rowWriter interface {
	row(encoded []byte) error
	end() error
}

type jsonRows struct {
	w     http.ResponseWriter
	begun bool
}

func (j *jsonRows) row(encoded []byte) error {
	prefix := ",\n"
	if !j.begun {
		prefix, j.begun = "{\"requests\":[\n", true
	}
	_, err := j.w.Write(append([]byte(prefix), encoded...))
	return err
}

func (j *jsonRows) end() error {
	closing := "\n]}\n"
	if !j.begun {
		closing = "{\"requests\":[]}\n"
	}
	_, err := j.w.Write([]byte(closing))
	return err
}

type csvRows struct {
	c *csv.Writer
}

func newCSVRows(w http.ResponseWriter) *csvRows {
	c := csv.NewWriter(w)
	_ = c.Write(exportColumns) // an error shows at the first row's Flush
	return &csvRows{c: c}
}

func (c *csvRows) row(encoded []byte) error {
	cells, err := csvCells(encoded)
	if err != nil {
		return err
	}
	if err := c.c.Write(cells); err != nil {
		return err
	}
	c.c.Flush()
	return c.c.Error()
}

func (c *csvRows) end() error {
	c.c.Flush()
	return c.c.Error()
}

// csvCells are a row's CSV cells from its JSON: strings as they are,
// numbers as their JSON literal, a missing field empty.
func csvCells(encoded []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(encoded))
	dec.UseNumber()
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil {
		return nil, err
	}
	cells := make([]string, len(exportColumns))
	for i, col := range exportColumns {
		switch v := fields[col].(type) {
		case nil:
		case string:
			cells[i] = v
		case json.Number:
			cells[i] = v.String()
		default:
			return nil, fmt.Errorf("export: field %s is a %T, which a CSV cell cannot hold", col, v)
		}
	}
	return cells, nil
}

// maxLiveRows bounds the requests one live history stream follows: a
// page's worth.
const maxLiveRows = historyPageSize

// historyEvents streams, as Server-Sent Events, the history rows of the
// requests named (request=ID, repeated) each time one of them changes,
// until all have ended: event "row" carries {request_id, html, active},
// the row as the page renders it. The hub hands over each request's
// events and its runs' (added as their stages start); each change is read
// from the history view once the view has applied it.
func (ui *UI) historyEvents(w http.ResponseWriter, r *http.Request, v *viewer) {
	ids := r.URL.Query()["request"]
	if len(ids) == 0 || len(ids) > maxLiveRows {
		http.Error(w, fmt.Sprintf("name from 1 to %d requests to follow, as request=ID", maxLiveRows), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(ui.streams, cancel)()
	slices.Sort(ids)
	ids = slices.Compact(ids)
	streams := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, err := uuid.Parse(id); err != nil {
			http.Error(w, "no request "+id, http.StatusNotFound)
			return
		}
		ok, err := ui.mayRead(ctx, v, id, httpapi.RequestOwner)
		if err != nil {
			http.Error(w, "reading the event store: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if !ok {
			http.Error(w, "no request "+id, http.StatusNotFound)
			return
		}
		streams = append(streams, dispatch.Stream(id))
	}
	// What the store held before the subscription is in the first rows
	// sent; the stored events the subscription hands over first only add
	// the runs to follow.
	head, _, err := ui.cfg.Events.Head(ctx)
	if err != nil {
		http.Error(w, "reading the event store: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	sub, err := ui.cfg.Live.Subscribe(ctx, streams...)
	if err != nil {
		http.Error(w, "following the requests: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer sub.Close()
	stream, ok := ui.openStream(ctx, cancel, w)
	if !ok {
		return
	}
	defer stream.close()
	// Each request is sent once at the start (it may have changed since
	// the page was rendered), then after each of its events.
	active := map[string]bool{}
	for _, id := range ids {
		active[id] = true
		if err := ui.sendRow(ctx, stream, id, active, head); err != nil {
			return
		}
	}
	runOf := map[string]string{} // run stream -> request id
	for e, err := range sub.Events(ctx) {
		if err != nil || len(active) == 0 { // every row has ended
			break
		}
		id := strings.TrimPrefix(e.Stream, dispatch.StreamPrefix)
		if runID, ok := startedRun(e); ok {
			runOf[run.Stream(runID)] = id
			sub.Add(run.Stream(runID))
		}
		if req, ok := runOf[e.Stream]; ok {
			id = req
		}
		if !active[id] || !changesRow(e) || e.Position <= head {
			continue
		}
		if err := ui.sendRow(ctx, stream, id, active, e.Position); err != nil || len(active) == 0 {
			break
		}
	}
	if len(active) == 0 {
		_ = stream.send([]sseMessage{{Event: eventEnd, Data: struct{}{}}})
	}
}

// changesRow reports whether an event changes what a history row shows;
// output does not.
func changesRow(e domain.RecordedEvent) bool {
	return e.Type != (run.OutputChunk{}).EventType()
}

type liveRow struct {
	RequestID string `json:"request_id"`
	HTML      string `json:"html"`
	Active    bool   `json:"active"`
}

// liveRowWait bounds the wait for the history view to apply an event
// before the row is read as the view has it (the next event reads again).
const liveRowWait = 3 * time.Second

// sendRow reads a request's row once the history view has applied
// position, renders it as the page does and sends it; a request that has
// ended leaves active.
func (ui *UI) sendRow(ctx context.Context, stream *eventStream, id string, active map[string]bool, position int64) error {
	if ui.cfg.Views != nil {
		wait, cancel := context.WithTimeout(ctx, liveRowWait)
		err := ui.cfg.Views.WaitFor(wait, "history", position)
		cancel()
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	row, err := ui.cfg.History.Request(ctx, id)
	if errors.Is(err, projections.ErrNotFound) {
		return nil // the view has not seen it yet; its next event reads again
	}
	if err != nil {
		return err
	}
	hr, err := ui.historyRowOf(ctx, row)
	if err != nil {
		return err
	}
	var html strings.Builder
	if err := ui.pages["history"].ExecuteTemplate(&html, "history-row", hr); err != nil {
		return err
	}
	if !hr.Active() {
		delete(active, id)
	}
	return stream.send([]sseMessage{{Event: "row", Data: liveRow{RequestID: id, HTML: html.String(), Active: hr.Active()}}})
}
