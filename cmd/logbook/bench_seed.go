package main

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/projections"
	"github.com/logbookhq/logbook/projections/projectionstest"
)

func init() { registerBench(newBenchSeedCmd) }

// benchSeedResult is one `logbook bench seed` measurement.
type benchSeedResult struct {
	Store            string  `json:"store"`
	Runs             int64   `json:"runs"`
	Events           int64   `json:"events"`
	AppendSeconds    float64 `json:"append_seconds"`
	AppendPerSec     float64 `json:"append_events_per_s"`
	ProjectSeconds   float64 `json:"projection_seconds"`
	ProjectPerSec    float64 `json:"projection_events_per_s"`
	Queries          int     `json:"queries"`
	QueryP50Ms       float64 `json:"query_p50_ms"`
	QueryP99Ms       float64 `json:"query_p99_ms"`
	QueryMaxMs       float64 `json:"query_max_ms"`
	AverageRowsFound float64 `json:"average_rows_per_page"`
	// Searches over the search view: terms (whole words of the output's
	// vocabulary and rarer host names) and substrings (addresses and
	// pieces of trace ids), pages of 50 as GET /v1/search asks for.
	Searches           int     `json:"searches"`
	SearchTermP50Ms    float64 `json:"search_term_p50_ms"`
	SearchTermP99Ms    float64 `json:"search_term_p99_ms"`
	SearchSubstringP50 float64 `json:"search_substring_p50_ms"`
	SearchSubstringP99 float64 `json:"search_substring_p99_ms"`
	SearchAverageHits  float64 `json:"search_average_hits_per_page"`
	// SlowestSearches are the ten slowest, to tell what the tail is.
	SlowestSearches []timedSearch `json:"slowest_searches"`
}

// timedSearch is one search of the benchmark: its query, filter and page.
type timedSearch struct {
	Ms      float64 `json:"ms"`
	Query   string  `json:"query"`
	User    string  `json:"user,omitempty"`
	Command string  `json:"command,omitempty"`
	Page    int     `json:"page"`
	Hits    int     `json:"hits"`
}

func newBenchSeedCmd() *cobra.Command {
	var (
		database  string
		runs      int64
		producers int
		queries   int
		asJSON    bool
		queryOnly bool
	)
	cmd := &cobra.Command{
		Use:   "seed",
		Short: "Seed a history of N runs through the Store, project it, and time filtered history pages",
		Long: `Append realistic request and run events (identity, parse, permission
checks, a container per stage, output chunks, outcomes) for --runs runs
through the real Store from --producers goroutines; rebuild every view over
them and report both rates; then time --queries history page queries (50
rows) over random filters, pages deep, and as many searches (terms and
substrings of the seeded output), and report p50/p99.
Without --database it uses a fresh SQLite file in a temporary directory. With a
postgres:// URL it works in a fresh schema that it drops afterwards, unless the
URL names one with search_path=.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if queryOnly && database == "" {
				return exitWith(2, "--query-only needs --database: the store whose views to query")
			}
			if runs < 1 || producers < 1 || queries < 1 {
				return exitWith(2, "--runs, --producers and --queries must be at least 1")
			}
			url, cleanup, err := benchStoreTarget(cmd.Context(), database)
			if err != nil {
				return err
			}
			defer cleanup()
			mode := createStore
			if queryOnly {
				mode = existingStore
			}
			store, name, err := openStore(cmd.Context(), url, "", mode)
			if err != nil {
				return redactErr(err, url)
			}
			defer store.Close()
			seed := benchSeed
			if queryOnly {
				seed = benchQueryOnly
			}
			res, err := seed(cmd.Context(), store, runs, producers, queries)
			if err != nil {
				return err
			}
			res.Store = strings.Fields(name)[0]
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			t := newTable(cmd.OutOrStdout(), "store", "runs", "events", "append events/s", "projection events/s", "queries", "p50 ms", "p99 ms", "max ms",
				"searches", "term p99 ms", "substring p99 ms")
			t.Row(res.Store, res.Runs, res.Events, fmt.Sprintf("%.0f", res.AppendPerSec), fmt.Sprintf("%.0f", res.ProjectPerSec),
				res.Queries, fmt.Sprintf("%.2f", res.QueryP50Ms), fmt.Sprintf("%.2f", res.QueryP99Ms), fmt.Sprintf("%.2f", res.QueryMaxMs),
				res.Searches, fmt.Sprintf("%.2f", res.SearchTermP99Ms), fmt.Sprintf("%.2f", res.SearchSubstringP99))
			return t.Flush()
		},
	}
	cmd.Flags().StringVar(&database, "database", "", "postgres:// URL, sqlite:///path, or empty for a temporary SQLite file")
	cmd.Flags().Int64Var(&runs, "runs", 1_000_000, "runs to seed")
	cmd.Flags().IntVar(&producers, "producers", 128, "concurrent appenders (many, so group commits stay large)")
	cmd.Flags().IntVar(&queries, "queries", 2000, "history page queries to time")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.Flags().BoolVar(&queryOnly, "query-only", false, "seed and project nothing: time the queries over the views already in --database")
	return cmd
}

// benchQueryOnly times the queries over a store seeded before.
func benchQueryOnly(ctx context.Context, store projections.Source, _ int64, _, queries int) (benchSeedResult, error) {
	res := benchSeedResult{Queries: queries}
	head, _, err := store.Head(ctx)
	if err != nil {
		return res, err
	}
	res.Events = head
	if err := store.DB().QueryRowContext(ctx, "SELECT count(*) FROM view_history_runs").Scan(&res.Runs); err != nil {
		return res, err
	}
	if err := timeQueries(ctx, store, queries, &res); err != nil {
		return res, err
	}
	return res, timeSearches(ctx, store, queries, &res)
}

func benchSeed(ctx context.Context, store projections.Source, runs int64, producers, queries int) (benchSeedResult, error) {
	res := benchSeedResult{Queries: queries}
	setup := projectionstest.NewWorkload(1, 200)
	if err := projectionstest.AppendAll(ctx, store, setup.Setup()); err != nil {
		return res, err
	}
	var (
		seeded atomic.Int64
		wg     sync.WaitGroup
		errs   = make(chan error, producers)
	)
	start := time.Now()
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := projectionstest.NewWorkload(uint64(1000+p), 200)
			w.MaxChunks = 2
			w.TextOutput = true
			for seeded.Load() < runs {
				appends := w.Request()
				for _, a := range appends {
					if strings.HasPrefix(a.Stream, run.StreamPrefix) {
						seeded.Add(1)
					}
				}
				if err := projectionstest.AppendAll(ctx, store, appends); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return res, err
	}
	res.AppendSeconds = time.Since(start).Seconds()
	head, _, err := store.Head(ctx)
	if err != nil {
		return res, err
	}
	res.Runs, res.Events = seeded.Load(), head
	res.AppendPerSec = float64(head) / res.AppendSeconds

	runner, err := projections.NewRunner(store, projections.Config{}, projectionsAll()...)
	if err != nil {
		return res, err
	}
	restoreGC := rebuildGC()
	stats, err := runner.Rebuild(ctx, nil, nil)
	restoreGC()
	if err != nil {
		return res, err
	}
	res.ProjectSeconds, res.ProjectPerSec = stats.Duration.Seconds(), stats.EventsPerSecond()
	if err := timeQueries(ctx, store, queries, &res); err != nil {
		return res, err
	}
	return res, timeSearches(ctx, store, queries, &res)
}

// timeSearches times searches, half terms and half substrings, as an
// auditor would type them: a word of the output, a host name, an address,
// a piece of a trace id; a quarter of them with a user, a command or a
// time range as well, and some followed a page deeper.
func timeSearches(ctx context.Context, store projections.Source, searches int, res *benchSeedResult) error {
	reader := projections.NewSearchReader(projections.DBOf(store))
	rng := rand.New(rand.NewPCG(43, 43))
	commands := []string{"ops:status", "k8s:deploy", "aws:logs", "github:list", "statuspage:describe"}
	var terms, substrings []time.Duration
	var all []timedSearch
	var hits int64
	for i := range searches {
		var text string
		substring := i%2 == 1
		switch {
		case !substring && rng.IntN(2) == 0:
			text = projectionstest.OutputWords[rng.IntN(len(projectionstest.OutputWords))]
		case !substring:
			text = fmt.Sprintf("web %d", rng.IntN(5000)) // the host web-N: two terms
		case rng.IntN(2) == 0:
			text = fmt.Sprintf("10.0.%d.%d", rng.IntN(256), rng.IntN(256))
		default:
			text = fmt.Sprintf("trace=%06x", rng.Uint32()&0xffffff)
		}
		query, err := projections.ParseSearchQuery(text)
		if err != nil {
			return err
		}
		f := projections.SearchFilter{Query: query, Limit: 50}
		switch rng.IntN(8) {
		case 1:
			f.Username = fmt.Sprintf("user%03d", rng.IntN(200))
		case 2:
			f.Command = commands[rng.IntN(len(commands))]
		}
		for depth, page := rng.IntN(3), 1; ; depth, page = depth-1, page+1 {
			began := time.Now()
			found, err := reader.Search(ctx, f)
			took := time.Since(began)
			if err != nil {
				return fmt.Errorf("search %q: %w", text, err)
			}
			if substring {
				substrings = append(substrings, took)
			} else {
				terms = append(terms, took)
			}
			all = append(all, timedSearch{Ms: float64(took) / float64(time.Millisecond), Query: text, User: f.Username, Command: f.Command, Page: page, Hits: len(found.Hits)})
			hits += int64(len(found.Hits))
			if found.Next == "" || depth <= 0 {
				break
			}
			f.Cursor = found.Next
		}
	}
	slices.SortFunc(all, func(a, b timedSearch) int { return cmp.Compare(b.Ms, a.Ms) })
	res.SlowestSearches = all[:min(10, len(all))]
	res.Searches = len(terms) + len(substrings)
	res.SearchTermP50Ms, res.SearchTermP99Ms = percentiles(terms)
	res.SearchSubstringP50, res.SearchSubstringP99 = percentiles(substrings)
	res.SearchAverageHits = float64(hits) / float64(res.Searches)
	return nil
}

// percentiles are the p50 and p99 of latencies, in milliseconds.
func percentiles(latencies []time.Duration) (p50, p99 float64) {
	if len(latencies) == 0 {
		return 0, 0
	}
	slices.Sort(latencies)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return ms(latencies[len(latencies)/2]), ms(latencies[min(len(latencies)-1, len(latencies)*99/100)])
}

// timeQueries times history pages and fills in res's query numbers.
func timeQueries(ctx context.Context, store projections.Source, queries int, res *benchSeedResult) error {
	latencies, rows, err := benchSeedQueries(ctx, projections.NewHistoryReader(projections.DBOf(store)), queries)
	if err != nil {
		return err
	}
	slices.Sort(latencies)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	res.QueryP50Ms = ms(latencies[len(latencies)/2])
	res.QueryP99Ms = ms(latencies[min(len(latencies)-1, len(latencies)*99/100)])
	res.QueryMaxMs = ms(latencies[len(latencies)-1])
	res.AverageRowsFound = float64(rows) / float64(queries)
	return nil
}

// benchSeedQueries times page queries of 50 runs over random filters (the
// workload's own users, commands, statuses, providers, rooms and time
// ranges), following the cursor a random number of pages deep.
func benchSeedQueries(ctx context.Context, h *projections.HistoryReader, queries int) ([]time.Duration, int64, error) {
	rng := rand.New(rand.NewPCG(42, 42))
	statuses := []string{"succeeded", "failed", "timed_out", "cancelled", "lost"}
	commands := []string{"ops:status", "k8s:deploy", "aws:logs", "github:list", "statuspage:describe"}
	adapters := []string{"slack", "irc", "web", "api"}
	rooms := []string{"#ops", "#dev", "#incidents", "#db"}
	now := time.Now()
	var (
		latencies []time.Duration
		rows      int64
	)
	for len(latencies) < queries {
		var f projections.RunFilter
		switch rng.IntN(8) {
		case 1:
			f.Status = statuses[rng.IntN(len(statuses))]
		case 2:
			f.Username = fmt.Sprintf("user%03d", rng.IntN(200))
		case 3:
			f.Command = commands[rng.IntN(len(commands))]
		case 4:
			f.Adapter = adapters[rng.IntN(len(adapters))]
		case 5:
			f.Room = rooms[rng.IntN(len(rooms))]
		case 6:
			f.Username, f.Status = fmt.Sprintf("user%03d", rng.IntN(200)), statuses[rng.IntN(2)]
		case 7:
			f.From, f.To = now.Add(-time.Duration(rng.IntN(600))*time.Second), now
		}
		f.Limit = 50
		for depth := rng.IntN(4); len(latencies) < queries; depth-- {
			began := time.Now()
			page, err := h.Runs(ctx, f)
			if err != nil {
				return nil, 0, err
			}
			latencies = append(latencies, time.Since(began))
			rows += int64(len(page.Runs))
			if page.Next == "" || depth <= 0 {
				break
			}
			f.Cursor = page.Next
		}
	}
	return latencies, rows, nil
}
