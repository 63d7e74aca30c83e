package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
)

func init() { registerBench(newBenchStoreCmd) }

// benchStoreResult is one `logbook bench store` measurement.
type benchStoreResult struct {
	Store           string  `json:"store"`
	Producers       int     `json:"producers"`
	Batch           int     `json:"batch"`
	Events          int64   `json:"events"`
	Seconds         float64 `json:"seconds"`
	EventsPerSec    float64 `json:"events_per_s"`
	AppendsPerSec   float64 `json:"appends_per_s"`
	P50Ms           float64 `json:"p50_ms"`
	P99Ms           float64 `json:"p99_ms"`
	MaxMs           float64 `json:"max_ms"`
	EventsPerCommit float64 `json:"events_per_commit"`
	OptimisticShare float64 `json:"optimistic_commit_share"`
	VerifyPerSec    float64 `json:"verify_events_per_s"`
	VerifiedEvents  int64   `json:"verified_events"`
	VerifiedChainOK bool    `json:"verified_chain_ok"`
}

func newBenchStoreCmd() *cobra.Command {
	var (
		database  string
		producers int
		batch     int
		duration  time.Duration
		asJSON    bool
		profile   string
		tree      bool
		rounds    int
	)
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Append through the real Store and report events/s and append latency",
		Long: `Append small events through the real Store from --producers goroutines,
--batch events per append, for --duration; report events/s and p50/p99 append
latency, then verify the chain and report its throughput.
Without --database it uses a fresh SQLite file in a temporary directory. With a
postgres:// URL it works in a fresh schema that it drops afterwards, unless the
URL names one with search_path=; an sqlite:// URL is used as it is.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if producers < 1 || batch < 1 || duration <= 0 {
				return exitWith(2, "--producers and --batch must be at least 1 and --duration positive")
			}
			if tree {
				results, err := benchStoreWithTree(cmd.Context(), database, producers, batch, duration, max(rounds, 1))
				if err != nil {
					return err
				}
				return printTreeRounds(cmd, results, asJSON)
			}
			url, cleanup, err := benchStoreTarget(cmd.Context(), database)
			if err != nil {
				return err
			}
			defer cleanup()
			store, name, err := openStore(cmd.Context(), url, "", createStore)
			if err != nil {
				return redactErr(err, url)
			}
			defer store.Close()
			if profile != "" {
				stop, err := startCPUProfile(profile)
				if err != nil {
					return err
				}
				defer stop()
			}
			res, err := benchStore(cmd.Context(), store, producers, batch, duration)
			if err != nil {
				return err
			}
			res.Store = strings.Fields(name)[0]
			if st := store.Stats(); st.Optimistic+st.Locked > 0 {
				res.EventsPerCommit = float64(res.Events) / float64(st.Optimistic+st.Locked)
				res.OptimisticShare = float64(st.Optimistic) / float64(st.Optimistic+st.Locked)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			t := newTable(cmd.OutOrStdout(), "store", "producers", "batch", "events", "events/s", "p50 ms", "p99 ms", "max ms", "events/commit", "verify events/s")
			t.Row(res.Store, res.Producers, res.Batch, res.Events, fmt.Sprintf("%.0f", res.EventsPerSec),
				fmt.Sprintf("%.2f", res.P50Ms), fmt.Sprintf("%.2f", res.P99Ms), fmt.Sprintf("%.2f", res.MaxMs),
				fmt.Sprintf("%.1f", res.EventsPerCommit), fmt.Sprintf("%.0f", res.VerifyPerSec))
			return t.Flush()
		},
	}
	cmd.Flags().StringVar(&database, "database", "", "postgres:// URL, sqlite:///path, or empty for a temporary SQLite file")
	cmd.Flags().IntVar(&producers, "producers", 1, "concurrent appenders")
	cmd.Flags().IntVar(&batch, "batch", 1, "events per append")
	cmd.Flags().DurationVar(&duration, "duration", 5*time.Second, "how long to append")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.Flags().StringVar(&profile, "cpuprofile", "", "write a CPU profile of the run to this file")
	cmd.Flags().BoolVar(&tree, "tree", false, "run the appends in pairs, without and with the Merkle tree maintained (a checkpoint every 1000 events), and report the ratio")
	cmd.Flags().IntVar(&rounds, "rounds", 3, "with --tree: how many pairs")
	return cmd
}

// benchStoreTarget gives the bench a store of its own: a temporary SQLite
// file, or a fresh schema in the given Postgres database.
func benchStoreTarget(ctx context.Context, database string) (string, func(), error) {
	kind, _, err := parseDatabaseURL(database, "")
	if err != nil {
		return "", nil, err
	}
	if database == "" {
		dir, err := os.MkdirTemp("", "logbook-bench-")
		if err != nil {
			return "", nil, err
		}
		return "sqlite://" + filepath.Join(dir, "bench.db"), func() { os.RemoveAll(dir) }, nil
	}
	if kind != "postgres" || strings.Contains(database, "search_path=") {
		return database, func() {}, nil // the caller chose where the events go
	}
	db, err := sql.Open("postgres", database)
	if err != nil {
		return "", nil, err
	}
	schema := fmt.Sprintf("logbook_bench_%d", time.Now().UnixNano())
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("create bench schema: %w", err)
	}
	sep := "?"
	if strings.Contains(database, "?") {
		sep = "&"
	}
	return database + sep + "search_path=" + schema, func() {
		_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
		db.Close()
	}, nil
}

type benchEvent struct {
	Producer int    `json:"producer"`
	Seq      int    `json:"seq"`
	Text     string `json:"text"`
}

func (benchEvent) EventType() string { return "BenchEvent" }

func benchStore(ctx context.Context, store eventstore.Store, producers, batch int, duration time.Duration) (benchStoreResult, error) {
	res := benchStoreResult{Producers: producers, Batch: batch}
	latencies := make([][]time.Duration, producers)
	errs := make(chan error, producers)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(duration)
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; time.Now().Before(deadline); seq++ {
				events := make([]domain.NewEvent, batch)
				for i := range events {
					events[i] = domain.MustEncode(benchEvent{Producer: p, Seq: seq*batch + i, Text: "deploy:status prod | filter --field=state"},
						domain.Metadata{CorrelationID: "bench", Actor: "bench"})
				}
				stream := fmt.Sprintf("bench-%d.%d", p, seq/50)
				t0 := time.Now()
				if _, err := store.Append(ctx, stream, eventstore.Any, events...); err != nil {
					errs <- err
					return
				}
				latencies[p] = append(latencies[p], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return res, err
	}
	all := slices.Concat(latencies...)
	slices.Sort(all)
	if len(all) == 0 {
		return res, fmt.Errorf("no append finished within %s", duration)
	}
	res.Events = int64(len(all) * batch)
	res.Seconds = elapsed.Seconds()
	res.EventsPerSec = float64(res.Events) / elapsed.Seconds()
	res.AppendsPerSec = float64(len(all)) / elapsed.Seconds()
	res.P50Ms = ms(all[len(all)*50/100])
	res.P99Ms = ms(all[min(len(all)*99/100, len(all)-1)])
	res.MaxMs = ms(all[len(all)-1])

	verifyStart := time.Now()
	report, err := eventstore.Verify(ctx, store, nil)
	if err != nil {
		return res, err
	}
	res.VerifyPerSec = perSecond(report.Checked, time.Since(verifyStart))
	res.VerifiedEvents, res.VerifiedChainOK = report.Checked, report.OK
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// startCPUProfile profiles this process until the returned stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
