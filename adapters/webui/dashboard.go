package webui

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/projections"
)

// Dashboard reads the history view's hourly roll-ups
// (projections.HistoryReader serves it): the dashboard sums a few rows
// per hour, however many requests there are.
type Dashboard interface {
	RequestsByHour(ctx context.Context, from, to time.Time, username string) ([]projections.HourCount, error)
	RequestsByUser(ctx context.Context, from, to time.Time, limit int) ([]projections.HourCount, error)
	RunsByCommand(ctx context.Context, from, to time.Time, limit int) ([]projections.HourCount, error)
	DurationsByCommand(ctx context.Context, from, to time.Time, commands []string) ([]projections.CommandDurations, error)
	CountActive(ctx context.Context, statuses []string, username string) (map[string]int64, error)
}

// dashboardRange is a span the dashboard shows, in buckets of one size.
type dashboardRange struct {
	Name    string // as in the address: range=24h
	Label   string
	Buckets int
	Bucket  time.Duration
}

var dashboardRanges = []dashboardRange{
	{Name: "24h", Label: "Last 24 hours", Buckets: 24, Bucket: time.Hour},
	{Name: "7d", Label: "Last 7 days", Buckets: 7, Bucket: 24 * time.Hour},
	{Name: "30d", Label: "Last 30 days", Buckets: 30, Bucket: 24 * time.Hour},
}

// activeStatuses are the statuses of a request that has not ended, as the
// "running now" panel counts them.
var activeStatuses = []string{projections.RequestReceived, projections.RequestAwaitingApproval, projections.RequestQueued, projections.RequestRunning}

// outcomeStatuses are the statuses the outcome chart stacks, in order.
var outcomeStatuses = []string{projections.RequestCompleted, projections.RequestFailed, projections.RequestDenied, projections.RequestRejected,
	projections.RequestUnknownUser, projections.RequestRunning, projections.RequestAwaitingApproval, projections.RequestQueued, projections.RequestReceived}

type dashboardData struct {
	Range   dashboardRange
	Ranges  []dashboardRange
	From    time.Time
	To      time.Time
	OwnOnly bool
	// Totals are the requests of each status in the range, each linked
	// to the history it counts.
	Totals   []statusTotal
	Requests int64
	Outcomes timeChart
	Denials  timeChart
	Commands []barRow
	Users    []barRow
	// Durations are the busiest commands' p50 and p95.
	Durations []durationRow
	// Active counts the requests that have not ended, by status; Running
	// lists the newest of them.
	Active     []statusTotal
	ActiveSum  int64
	Running    []historyRow
	RunningURL string
}

type statusTotal struct {
	Status string
	Count  int64
	URL    string
}

// timeChart is a bar chart over time, drawn in SVG on the server: one
// stacked bar per bucket, each segment linking to the history it counts.
type timeChart struct {
	Title    string
	Width    int
	Left     int // room for the scale
	Wide     bool
	Height   int
	Max      int64
	Segments []segment
	Ticks    []tick
	Empty    bool
}

type segment struct {
	X, Y, W, H float64
	Status     string
	Title      string
	URL        string
}

type tick struct {
	X     float64
	Label string
}

// barRow is a row of a horizontal bar chart: a label linking to its
// history, the count, and the bar's length in percent of the largest.
type barRow struct {
	Label   string
	Count   int64
	Percent float64
	URL     string
}

type durationRow struct {
	Command    string
	URL        string
	Runs       int64
	P50, P95   time.Duration
	P50Percent float64
	P95Percent float64
}

// Chart geometry in SVG user units; the SVG scales to the width of its
// panel (the outcome chart's spans the page, the others' a column), and
// app.css sizes the labels for each.
const (
	chartWidth     = 480
	wideChartWidth = 960
	chartHeight    = 160
	chartTop       = 8
	chartBottom    = 20 // room for the time labels
)

// dashboardTop is how many commands and users the top lists show.
const dashboardTop = 8

// dashboardPage is the home page: what is happening, from the history
// view's roll-ups. Without logbook:read_history it shows the viewer's own
// requests only, and not the run charts, which are everyone's.
func (ui *UI) dashboardPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	p := page{Title: "Dashboard", Section: "dashboard", Viewer: v}
	rng := dashboardRanges[0]
	if name := r.URL.Query().Get("range"); name != "" {
		i := slices.IndexFunc(dashboardRanges, func(d dashboardRange) bool { return d.Name == name })
		if i < 0 {
			ui.fail(w, r, v, http.StatusBadRequest, fmt.Sprintf("The range %q is not one of 24h, 7d, 30d.", name))
			return
		}
		rng = dashboardRanges[i]
	}
	for name := range r.URL.Query() {
		if name != "range" {
			ui.fail(w, r, v, http.StatusBadRequest, fmt.Sprintf("The dashboard takes only range (24h, 7d or 30d), not %q.", name))
			return
		}
	}
	ctx := r.Context()
	if err := ui.catchUp(ctx, "history"); err != nil {
		ui.unavailable(w, r, v, "reading the history view", err)
		return
	}
	data, err := ui.dashboard(ctx, v, rng)
	if err != nil {
		ui.unavailable(w, r, v, "reading the dashboard's numbers", err)
		return
	}
	p.Data = data
	ui.render(w, r, http.StatusOK, "dashboard", p)
}

func (ui *UI) dashboard(ctx context.Context, v *viewer, rng dashboardRange) (dashboardData, error) {
	now := ui.cfg.Now().UTC()
	end := now.Truncate(rng.Bucket).Add(rng.Bucket) // the end of the bucket holding now
	from := end.Add(-time.Duration(rng.Buckets) * rng.Bucket)
	data := dashboardData{Range: rng, Ranges: dashboardRanges, From: from, To: end, OwnOnly: !v.historyReader().ReadsEveryone()}
	own := ""
	if data.OwnOnly {
		own = v.User.Username
	}
	since := from.Format(time.RFC3339)
	link := func(params ...string) string {
		q := url.Values{}
		for i := 0; i+1 < len(params); i += 2 {
			q.Set(params[i], params[i+1])
		}
		return "/history?" + q.Encode()
	}

	hours, err := ui.dashboardReader().RequestsByHour(ctx, from, end, own)
	if err != nil {
		return data, err
	}
	// counts[status][bucket]
	counts := map[string][]int64{}
	for _, s := range outcomeStatuses {
		counts[s] = make([]int64, rng.Buckets)
	}
	for _, h := range hours {
		b := int(h.Hour.Sub(from) / rng.Bucket)
		if b < 0 || b >= rng.Buckets {
			continue
		}
		if _, ok := counts[h.Key]; !ok {
			counts[h.Key] = make([]int64, rng.Buckets)
		}
		counts[h.Key][b] += h.Count
	}
	for _, s := range outcomeStatuses {
		var n int64
		for _, c := range counts[s] {
			n += c
		}
		data.Requests += n
		if n > 0 {
			data.Totals = append(data.Totals, statusTotal{Status: s, Count: n, URL: link("status", s, "since", since)})
		}
	}
	bucketLink := func(status string, b int) string {
		start := from.Add(time.Duration(b) * rng.Bucket)
		return link("status", status, "since", start.Format(time.RFC3339), "until", start.Add(rng.Bucket).Format(time.RFC3339))
	}
	data.Outcomes = newTimeChart("Requests by outcome", wideChartWidth, rng, from, outcomeStatuses, counts, bucketLink)
	data.Denials = newTimeChart("Denied requests", chartWidth, rng, from, []string{projections.RequestDenied}, counts, bucketLink)

	active, err := ui.dashboardReader().CountActive(ctx, activeStatuses, own)
	if err != nil {
		return data, err
	}
	for _, s := range activeStatuses {
		data.ActiveSum += active[s]
		data.Active = append(data.Active, statusTotal{Status: s, Count: active[s], URL: link("status", s)})
	}
	data.RunningURL = link("status", projections.RequestRunning)
	running, err := ui.cfg.History.Requests(ctx, projections.RequestFilter{Status: projections.RequestRunning, Username: own, Limit: 10})
	if err != nil {
		return data, err
	}
	for _, row := range running.Requests {
		data.Running = append(data.Running, historyRow{RequestView: httpapi.NewRequestView(row)})
	}
	if data.OwnOnly {
		return data, nil
	}

	commands, err := ui.dashboardReader().RunsByCommand(ctx, from, end, dashboardTop)
	if err != nil {
		return data, err
	}
	data.Commands = barRows(commands, func(c string) string { return link("command", c, "since", since) })
	users, err := ui.dashboardReader().RequestsByUser(ctx, from, end, dashboardTop)
	if err != nil {
		return data, err
	}
	data.Users = barRows(users, func(u string) string { return link("user", u, "since", since) })
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.Key
	}
	if len(names) > 0 {
		durations, err := ui.dashboardReader().DurationsByCommand(ctx, from, end, names)
		if err != nil {
			return data, err
		}
		var longest time.Duration
		for _, d := range durations {
			longest = max(longest, d.P95)
		}
		// In the order of the top commands, busiest first.
		for _, name := range names {
			i := slices.IndexFunc(durations, func(d projections.CommandDurations) bool { return d.Command == name })
			if i < 0 {
				continue
			}
			d := durations[i]
			data.Durations = append(data.Durations, durationRow{Command: d.Command, URL: link("command", d.Command, "since", since), Runs: d.Runs,
				P50: d.P50, P95: d.P95, P50Percent: percent(int64(d.P50), int64(longest)), P95Percent: percent(int64(d.P95), int64(longest))})
		}
	}
	return data, nil
}

func (ui *UI) dashboardReader() Dashboard { return ui.cfg.Dashboard }

func percent(n, of int64) float64 {
	if of <= 0 {
		return 0
	}
	return float64(n) * 100 / float64(of)
}

func barRows(counts []projections.HourCount, link func(string) string) []barRow {
	var most int64
	for _, c := range counts {
		most = max(most, c.Count)
	}
	out := make([]barRow, len(counts))
	for i, c := range counts {
		out[i] = barRow{Label: c.Key, Count: c.Count, Percent: percent(c.Count, most), URL: link(c.Key)}
	}
	return out
}

// newTimeChart lays out stacked bars, one per bucket, of the statuses'
// counts (counts[status][bucket]).
func newTimeChart(title string, width int, rng dashboardRange, from time.Time, statuses []string, counts map[string][]int64, link func(string, int) string) timeChart {
	c := timeChart{Title: title, Width: width, Left: width / 12, Wide: width > chartWidth, Height: chartHeight, Empty: true}
	for b := range rng.Buckets {
		var total int64
		for _, s := range statuses {
			total += counts[s][b]
		}
		c.Max = max(c.Max, total)
	}
	if c.Max == 0 {
		return c
	}
	c.Empty = false
	plot := float64(chartHeight - chartTop - chartBottom)
	slot := float64(width-c.Left) / float64(rng.Buckets)
	for b := range rng.Buckets {
		x := float64(c.Left) + float64(b)*slot
		y := float64(chartHeight - chartBottom)
		start := from.Add(time.Duration(b) * rng.Bucket)
		for _, s := range statuses {
			n := counts[s][b]
			if n == 0 {
				continue
			}
			h := plot * float64(n) / float64(c.Max)
			y -= h
			c.Segments = append(c.Segments, segment{X: x + slot*0.1, Y: y, W: slot * 0.8, H: h, Status: s, URL: link(s, b),
				Title: fmt.Sprintf("%d %s, %s", n, s, bucketLabel(rng, start))})
		}
		every := 6
		if rng.Bucket >= 24*time.Hour {
			every = max(1, rng.Buckets/7)
		}
		if b%every == 0 {
			c.Ticks = append(c.Ticks, tick{X: x + slot/2, Label: tickLabel(rng, start)})
		}
	}
	return c
}

func tickLabel(rng dashboardRange, t time.Time) string {
	if rng.Bucket < 24*time.Hour {
		return t.Format("15:04")
	}
	return t.Format("Jan 2")
}

func bucketLabel(rng dashboardRange, t time.Time) string {
	if rng.Bucket < 24*time.Hour {
		return t.Format("Jan 2 15:04") + "–" + t.Add(rng.Bucket).Format("15:04") + " UTC"
	}
	return t.Format("Mon Jan 2") + " (UTC)"
}

// humanDuration shows a percentile as people read it.
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	default:
		return d.Round(time.Second).String()
	}
}
