package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/projections"
)

func init() { registerBench(newBenchHTTPCmd) }

// httpLoadResult is one constant-rate run of `logbook bench http`.
type httpLoadResult struct {
	Rate       int     `json:"rate"`
	Seconds    float64 `json:"seconds"`
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	Throughput float64 `json:"throughput_per_s"`
	P50Ms      float64 `json:"p50_ms"`
	P90Ms      float64 `json:"p90_ms"`
	P99Ms      float64 `json:"p99_ms"`
	P999Ms     float64 `json:"p999_ms"`
	MaxMs      float64 `json:"max_ms"`
	// FirstError is one error seen, for the reader to know what failed.
	FirstError string `json:"first_error,omitempty"`
}

// httpBenchReport is what the command prints.
type httpBenchReport struct {
	URL     string           `json:"url"`
	Targets int              `json:"targets"`
	Runs    []httpLoadResult `json:"runs"`
	// MaxRate is, with --find-max, the highest rate whose p99 stayed
	// under the target with no errors; 0 when even the first step missed.
	MaxRate     int     `json:"max_rate,omitempty"`
	P99TargetMs float64 `json:"p99_target_ms,omitempty"`
}

func newBenchHTTPCmd() *cobra.Command {
	var (
		rate, startRate, step, maxRate int
		duration, stepDuration         time.Duration
		p99Target                      time.Duration
		findMax, asJSON                bool
		filters                        []string
	)
	cmd := &cobra.Command{
		Use:   "http",
		Short: "Load a running server's GET /v1/history at a constant rate (open loop) and report latency percentiles",
		Long: `Send filtered pages of 50 of GET /v1/history to the server at LOGBOOK_URL
with LOGBOOK_TOKEN, at a constant --rate for --duration. The load is open
loop: each request is sent at its scheduled time whether or not earlier
ones have been answered, and its latency counts from that scheduled time,
so a slow server cannot slow the load down and hide its own queueing.

The targets are built first (not measured): the filters (user, command,
status, provider, room, time ranges) take values seen in the server's own
history, each first page and a few deeper pages by cursor.

--find-max steps the rate up from --start-rate by --step (each step lasting
--step-duration) until a step's p99 reaches --p99 or a request fails, and
reports the highest rate that stayed under it. Run it from a process other
than the server's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cc, err := loadClientConfig()
			if err != nil {
				return exitWith(2, "%v", err)
			}
			if rate < 1 || startRate < 1 || step < 1 || maxRate < startRate || duration <= 0 || stepDuration <= 0 || p99Target <= 0 {
				return exitWith(2, "--rate, --start-rate and --step must be at least 1, --max-rate at least --start-rate, and the durations and --p99 positive")
			}
			client := newLoadClient()
			ctx := cmd.Context()
			targets, err := historyTargets(ctx, client, cc, filters)
			if err != nil {
				return err
			}
			report := httpBenchReport{URL: cc.URL, Targets: len(targets)}
			measure := func(rate int, d time.Duration) httpLoadResult {
				return runOpenLoop(ctx, client, cc.URL, cc.Token, targets, rate, d)
			}
			if findMax {
				report.P99TargetMs = ms(p99Target)
				report.MaxRate, report.Runs = findMaxRate(ctx, startRate, step, maxRate, p99Target, func(r int) httpLoadResult {
					res := measure(r, stepDuration)
					if !asJSON {
						fmt.Fprintf(cmd.ErrOrStderr(), "%d req/s: p99 %.2f ms, %d errors\n", r, res.P99Ms, res.Errors)
					}
					return res
				})
			} else {
				report.Runs = []httpLoadResult{measure(rate, duration)}
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), report)
			}
			t := newTable(cmd.OutOrStdout(), "rate/s", "seconds", "requests", "errors", "done/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms")
			for _, r := range report.Runs {
				t.Row(r.Rate, fmt.Sprintf("%.1f", r.Seconds), r.Requests, r.Errors, fmt.Sprintf("%.0f", r.Throughput),
					fmt.Sprintf("%.2f", r.P50Ms), fmt.Sprintf("%.2f", r.P90Ms), fmt.Sprintf("%.2f", r.P99Ms), fmt.Sprintf("%.2f", r.P999Ms), fmt.Sprintf("%.2f", r.MaxMs))
			}
			t.Flush()
			for _, r := range report.Runs {
				if r.FirstError != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "at %d/s, first error: %s\n", r.Rate, r.FirstError)
				}
			}
			if findMax {
				fmt.Fprintf(cmd.OutOrStdout(), "highest rate with p99 under %v and no errors: %d req/s (%d targets)\n", p99Target, report.MaxRate, report.Targets)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&rate, "rate", 500, "requests per second")
	f.DurationVar(&duration, "duration", 30*time.Second, "how long to send at --rate")
	f.BoolVar(&findMax, "find-max", false, "step the rate up and report the highest with p99 under --p99")
	f.IntVar(&startRate, "start-rate", 250, "with --find-max: the first rate")
	f.IntVar(&step, "step", 250, "with --find-max: how much each step adds")
	f.IntVar(&maxRate, "max-rate", 20000, "with --find-max: the rate to stop at")
	f.DurationVar(&stepDuration, "step-duration", 10*time.Second, "with --find-max: how long each step lasts")
	f.DurationVar(&p99Target, "p99", 10*time.Millisecond, "with --find-max: the p99 a rate must stay under")
	f.StringSliceVar(&filters, "filters", allHistoryFilters, "the filter kinds the targets use: "+strings.Join(allHistoryFilters, ", ")+" (none: no filter)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// newLoadClient keeps enough idle connections that a burst never waits
// for a new handshake more than once per connection.
func newLoadClient() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        4096,
			MaxIdleConnsPerHost: 4096,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// allHistoryFilters are the kinds of target historyTargets can build.
var allHistoryFilters = []string{"none", "user", "command", "status", "provider", "room", "user+status", "since"}

// historyTargets builds the request paths: filters of the kinds named,
// with values seen in the history, as first pages and as deeper pages by
// cursor.
func historyTargets(ctx context.Context, client *http.Client, cc clientConfig, kinds []string) ([]string, error) {
	for _, k := range kinds {
		if !slices.Contains(allHistoryFilters, k) {
			return nil, exitWith(2, "--filters: %q is not one of %s", k, strings.Join(allHistoryFilters, ", "))
		}
	}
	type row struct {
		Username string `json:"username"`
		Commands string `json:"commands"`
		Status   string `json:"status"`
		Adapter  string `json:"adapter"`
		Room     string `json:"room"`
	}
	var page struct {
		Requests   []row  `json:"requests"`
		NextCursor string `json:"next_cursor"`
	}
	if err := getJSONFrom(ctx, client, cc, "/v1/history?limit=200", &page); err != nil {
		return nil, err
	}
	if len(page.Requests) == 0 {
		return nil, fmt.Errorf("%s has no history to page through: seed it first (logbook bench seed, see docs/benchmarks.md)", cc.URL)
	}
	values := map[string][]string{}
	add := func(param, v string) {
		if v != "" && !slices.Contains(values[param], v) && len(values[param]) < 8 {
			values[param] = append(values[param], v)
		}
	}
	for _, r := range page.Requests {
		add("user", r.Username)
		if fields := splitFields(r.Commands); len(fields) > 0 {
			add("command", fields[0])
		}
		add("status", r.Status)
		add("provider", r.Adapter)
		add("room", r.Room)
	}
	now := time.Now().UTC()
	var queries []url.Values
	if slices.Contains(kinds, "none") {
		queries = append(queries, url.Values{})
	}
	for _, param := range []string{"user", "command", "status", "provider", "room"} {
		if !slices.Contains(kinds, param) {
			continue
		}
		for _, v := range values[param] {
			queries = append(queries, url.Values{param: {v}})
		}
	}
	if slices.Contains(kinds, "user+status") {
		for i, user := range values["user"] {
			if status := values["status"]; len(status) > 0 {
				queries = append(queries, url.Values{"user": {user}, "status": {status[i%len(status)]}})
			}
		}
	}
	if slices.Contains(kinds, "since") {
		for _, back := range []time.Duration{time.Hour, 24 * time.Hour, 30 * 24 * time.Hour} {
			queries = append(queries, url.Values{"since": {now.Add(-back).Format(time.RFC3339)}})
		}
	}
	if len(queries) == 0 {
		return nil, exitWith(2, "--filters names no kind of target")
	}
	var targets []string
	for _, q := range queries {
		q.Set("limit", "50")
		targets = append(targets, "/v1/history?"+q.Encode())
		// Two pages deeper, by the cursors the server hands out.
		for range 2 {
			var p struct {
				NextCursor string `json:"next_cursor"`
			}
			if err := getJSONFrom(ctx, client, cc, targets[len(targets)-1], &p); err != nil {
				return nil, err
			}
			if p.NextCursor == "" {
				break
			}
			q.Set("cursor", p.NextCursor)
			targets = append(targets, "/v1/history?"+q.Encode())
		}
	}
	return targets, nil
}

func splitFields(s string) []string {
	var out []string
	start := -1
	for i, c := range s + " " {
		switch {
		case c == ' ' && start >= 0:
			out = append(out, s[start:i])
			start = -1
		case c != ' ' && start < 0:
			start = i
		}
	}
	return out
}

func getJSONFrom(ctx context.Context, client *http.Client, cc clientConfig, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cc.URL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+cc.Token)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return json.Unmarshal(body, out)
}

// runOpenLoop sends rate requests per second for d, each at its scheduled
// time on its own goroutine, never waiting for earlier answers; a
// request's latency runs from when it was due to when its body was read.
func runOpenLoop(ctx context.Context, client *http.Client, baseURL, token string, targets []string, rate int, d time.Duration) httpLoadResult {
	total := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	latencies := make([]time.Duration, total)
	failed := make([]bool, total)
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr string
	)
	fail := func(i int, msg string) {
		failed[i] = true
		errMu.Lock()
		if firstErr == "" {
			firstErr = msg
		}
		errMu.Unlock()
	}
	start := time.Now()
	pick := rand.New(rand.NewPCG(uint64(rate), uint64(total)))
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			total = i
			break
		}
		target := baseURL + targets[pick.IntN(len(targets))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
			if err != nil {
				fail(i, err.Error())
				return
			}
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				latencies[i] = time.Since(due)
				fail(i, err.Error())
				return
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			latencies[i] = time.Since(due)
			if err != nil {
				fail(i, err.Error())
			} else if resp.StatusCode != http.StatusOK {
				fail(i, fmt.Sprintf("%s: status %d", target, resp.StatusCode))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	res := summarizeLoad(rate, latencies[:total], failed[:total], elapsed)
	res.FirstError = firstErr
	return res
}

// summarizeLoad computes the percentiles, over every request, failed ones
// included (a failure is not faster for having failed).
func summarizeLoad(rate int, latencies []time.Duration, failed []bool, elapsed time.Duration) httpLoadResult {
	res := httpLoadResult{Rate: rate, Seconds: elapsed.Seconds(), Requests: len(latencies)}
	for _, f := range failed {
		if f {
			res.Errors++
		}
	}
	if len(latencies) == 0 {
		return res
	}
	sorted := slices.Clone(latencies)
	slices.Sort(sorted)
	res.Throughput = float64(len(sorted)-res.Errors) / elapsed.Seconds()
	res.P50Ms = ms(percentile(sorted, 0.50))
	res.P90Ms = ms(percentile(sorted, 0.90))
	res.P99Ms = ms(percentile(sorted, 0.99))
	res.P999Ms = ms(percentile(sorted, 0.999))
	res.MaxMs = ms(sorted[len(sorted)-1])
	return res
}

// percentile is the nearest-rank percentile of sorted (ascending).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p*float64(len(sorted)) + 0.999999999)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// findMaxRate measures start, start+step, ... up to limit, stopping at the
// first rate whose p99 is at or over target or that had errors, and
// returns the last rate that passed (0 if none) and every measurement.
func findMaxRate(ctx context.Context, start, step, limit int, target time.Duration, measure func(rate int) httpLoadResult) (int, []httpLoadResult) {
	best := 0
	var runs []httpLoadResult
	for r := start; r <= limit && ctx.Err() == nil; r += step {
		res := measure(r)
		runs = append(runs, res)
		if res.Errors > 0 || res.P99Ms >= ms(target) {
			break
		}
		best = r
		// Let the server drain between steps.
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return best, runs
}

func init() { registerBench(newBenchTokenCmd) }

// newBenchTokenCmd issues a token for a user of a seeded database, whose
// users (made by `bench seed`) have none, so that `bench http` can read
// it through a server: the seed's own admin role keeps `serve` from
// bootstrapping one.
func newBenchTokenCmd() *cobra.Command {
	var database, username string
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Issue an API token for a user of a database seeded by `bench seed` (for `bench http`)",
		Long: `Append a TokenIssued for --user (default: the first user of the
permission view) to the store at --database, and print the token. Only its
SHA-256 is recorded. Meant for bench databases: a real server issues
tokens with "user token NAME".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if database == "" {
				return exitWith(2, "--database is required: the URL the seed wrote to")
			}
			ctx := cmd.Context()
			store, _, err := openStore(ctx, database, "", existingStore)
			if err != nil {
				return redactErr(err, database)
			}
			defer store.Close()
			snap, err := projections.NewPermissionReader(projections.DBOf(store)).Snapshot(ctx)
			if err != nil {
				return err
			}
			var user *projections.AccessUser
			for i, u := range snap.Users {
				if (username == "" && !u.Disabled) || u.Username == username {
					user = &snap.Users[i]
					break
				}
			}
			if user == nil {
				return exitWith(1, "no user %q in the permission view of %s (seed it, or rebuild the views)", username, database)
			}
			token, hash := access.NewToken()
			event := domain.MustEncode(access.TokenIssued{User: user.ID, Hash: hash, Note: "bench http"}, domain.Metadata{Actor: "bench"})
			if _, err := store.Append(ctx, access.UserStream(user.ID), eventstore.Any, event); err != nil {
				return fmt.Errorf("issue a token for %s: %w", user.Username, err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), token)
			return nil
		},
	}
	cmd.Flags().StringVar(&database, "database", "", "the seeded database's URL")
	cmd.Flags().StringVar(&username, "user", "", "the user (default: the first enabled one)")
	return cmd
}
