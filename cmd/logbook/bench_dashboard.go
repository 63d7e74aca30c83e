package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/projections"
)

func init() { registerBench(newBenchDashboardCmd) }

// benchDashboardResult is one range's measurement.
type benchDashboardResult struct {
	Store     string  `json:"store"`
	Range     string  `json:"range"`
	Requests  int64   `json:"requests_in_range"`
	Rounds    int     `json:"rounds"`
	P50Ms     float64 `json:"page_queries_p50_ms"`
	P99Ms     float64 `json:"page_queries_p99_ms"`
	ScanMs    float64 `json:"baseline_scan_ms"`
	SpeedupX  float64 `json:"speedup"`
	OpenMs    float64 `json:"open_and_migrate_ms"`
	RollupRow int64   `json:"rollup_rows"`
}

func newBenchDashboardCmd() *cobra.Command {
	var (
		database string
		rounds   int
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Time the dashboard's queries over the views of a seeded database, against scanning the history rows",
		Long: `Opens --database (migrating it, which backfills the history roll-ups
of a database built before them), then, for each of the dashboard's ranges
(24h, 7d, 30d), times --rounds times every query the dashboard page makes
(requests by hour and status, requests not ended, the running ones, top
commands and users, duration percentiles of the top commands), and once the
baseline: the same counts by GROUP BY over the history rows themselves.
Seed the database first: logbook bench seed --database URL --runs 1000000.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if database == "" {
				return exitWith(2, "--database is required: a database seeded with logbook bench seed")
			}
			if rounds < 1 {
				return exitWith(2, "--rounds must be at least 1")
			}
			opened := time.Now()
			store, name, err := openStore(cmd.Context(), database, "", existingStore)
			if err != nil {
				return redactErr(err, database)
			}
			defer store.Close()
			openMs := float64(time.Since(opened).Microseconds()) / 1000
			results, err := benchDashboard(cmd.Context(), store, rounds)
			if err != nil {
				return err
			}
			for i := range results {
				results[i].Store, results[i].OpenMs = strings.Fields(name)[0], openMs
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), results)
			}
			t := newTable(cmd.OutOrStdout(), "store", "range", "requests", "roll-up rows", "rounds", "p50 ms", "p99 ms", "scan ms", "speed-up")
			for _, r := range results {
				t.Row(r.Store, r.Range, r.Requests, r.RollupRow, r.Rounds, fmt.Sprintf("%.2f", r.P50Ms), fmt.Sprintf("%.2f", r.P99Ms),
					fmt.Sprintf("%.1f", r.ScanMs), fmt.Sprintf("%.0f×", r.SpeedupX))
			}
			return t.Flush()
		},
	}
	cmd.Flags().StringVar(&database, "database", "", "postgres:// URL or sqlite:///path of a seeded database")
	cmd.Flags().IntVar(&rounds, "rounds", 200, "times to run each range's queries")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// benchDashboard times the dashboard's queries per range. The ranges end
// at the end of the current hour, as the page's do.
func benchDashboard(ctx context.Context, store projections.Source, rounds int) ([]benchDashboardResult, error) {
	h := projections.NewHistoryReader(projections.DBOf(store))
	active := []string{projections.RequestReceived, projections.RequestAwaitingApproval, projections.RequestQueued, projections.RequestRunning}
	var rollupRows int64
	if err := store.DB().QueryRowContext(ctx, "SELECT (SELECT count(*) FROM view_history_request_hours) + (SELECT count(*) FROM view_history_run_hours)").Scan(&rollupRows); err != nil {
		return nil, err
	}
	end := time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	var out []benchDashboardResult
	for _, rng := range []struct {
		name string
		span time.Duration
	}{{"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}} {
		from := end.Add(-rng.span)
		page := func() (int64, error) {
			hours, err := h.RequestsByHour(ctx, from, end, "")
			if err != nil {
				return 0, err
			}
			var requests int64
			for _, c := range hours {
				requests += c.Count
			}
			if _, err := h.CountActive(ctx, active, ""); err != nil {
				return 0, err
			}
			if _, err := h.Requests(ctx, projections.RequestFilter{Status: projections.RequestRunning, Limit: 10}); err != nil {
				return 0, err
			}
			commands, err := h.RunsByCommand(ctx, from, end, 8)
			if err != nil {
				return 0, err
			}
			if _, err := h.RequestsByUser(ctx, from, end, 8); err != nil {
				return 0, err
			}
			names := make([]string, len(commands))
			for i, c := range commands {
				names[i] = c.Key
			}
			_, err = h.DurationsByCommand(ctx, from, end, names)
			return requests, err
		}
		res := benchDashboardResult{Range: rng.name, Rounds: rounds, RollupRow: rollupRows}
		latencies := make([]time.Duration, 0, rounds)
		for range rounds {
			began := time.Now()
			n, err := page()
			if err != nil {
				return nil, err
			}
			latencies = append(latencies, time.Since(began))
			res.Requests = n
		}
		slices.Sort(latencies)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		res.P50Ms, res.P99Ms = ms(latencies[len(latencies)/2]), ms(latencies[min(len(latencies)-1, len(latencies)*99/100)])
		// The baseline: the same counts straight from the history rows.
		began := time.Now()
		for _, q := range []string{
			"SELECT status, count(*) FROM view_history_requests WHERE received_at >= $1 AND received_at < $2 GROUP BY status",
			"SELECT username, count(*) AS n FROM view_history_requests WHERE received_at >= $1 AND received_at < $2 GROUP BY username ORDER BY n DESC LIMIT 8",
			"SELECT command, count(*) AS n FROM view_history_runs WHERE requested_at >= $1 AND requested_at < $2 GROUP BY command ORDER BY n DESC LIMIT 8",
		} {
			if err := drainQuery(ctx, store, q, from.UnixMicro(), end.UnixMicro()); err != nil {
				return nil, err
			}
		}
		res.ScanMs = ms(time.Since(began))
		if res.P50Ms > 0 {
			res.SpeedupX = res.ScanMs / res.P50Ms
		}
		out = append(out, res)
	}
	return out, nil
}

// drainQuery runs a query written with $n placeholders and reads every row.
func drainQuery(ctx context.Context, store projections.Source, query string, args ...any) error {
	if store.Dialect() == "sqlite" {
		query = strings.NewReplacer("$1", "?1", "$2", "?2").Replace(query)
	}
	rows, err := store.DB().QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}
