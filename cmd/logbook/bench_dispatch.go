package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/runbus"
	"github.com/logbookhq/logbook/internal/samplebundle"
)

func init() { registerBench(newBenchDispatchCmd) }

// benchDispatchResult is one `logbook bench dispatch` measurement.
type benchDispatchResult struct {
	Store string  `json:"store"`
	Sync  string  `json:"sqlite_sync"`
	N     int     `json:"n"`
	P50Ms float64 `json:"p50_ms"`
	P90Ms float64 `json:"p90_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
	// CommitsPerRequest counts the store's commits (each an fsync under
	// synchronous=FULL) per request, from RequestReceived to its reply.
	CommitsPerRequest float64 `json:"commits_per_request"`
}

// arrivals is a publisher that notes when each run request is published:
// the dispatcher appends RunRequested just before.
type arrivals struct {
	mu   sync.Mutex
	seen map[string]chan struct{}
}

func (a *arrivals) expect(requestID string) <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch := make(chan struct{})
	a.seen[requestID] = ch
	return ch
}

func (a *arrivals) Publish(topic string, msgs ...*message.Message) error {
	if topic != runbus.TopicRunRequested {
		return nil
	}
	for _, m := range msgs {
		req, err := runbus.DecodeRunRequest(m)
		if err != nil {
			return err
		}
		a.mu.Lock()
		if ch, ok := a.seen[req.Request.RequestID]; ok {
			close(ch)
			delete(a.seen, req.Request.RequestID)
		}
		a.mu.Unlock()
	}
	return nil
}

func (a *arrivals) Close() error { return nil }

func newBenchDispatchCmd() *cobra.Command {
	var (
		n      int
		asJSON bool
		sync   string
	)
	cmd := &cobra.Command{
		Use:   "dispatch",
		Short: "Time a request from its arrival to its RunRequested appended, on the embedded default",
		Long: `Run the dispatcher on a fresh SQLite store with the sample bundle installed,
issue --n requests for toolbox:echo one after another, and time each from
the moment it is handed to the dispatcher (Receive) to the moment its
RunRequested is appended and published to the executors (recording the
request, identity, parse, permission check, run request: everything the
dispatcher does before a container starts). commits/request counts the
store's commits per request, each an fsync under synchronous=FULL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 {
				return exitWith(2, "--n must be at least 1")
			}
			res, err := benchDispatch(cmd.Context(), n, sync)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			t := newTable(cmd.OutOrStdout(), "store", "sync", "n", "p50 ms", "p90 ms", "p99 ms", "max ms", "commits/request")
			t.Row(res.Store, res.Sync, res.N, fmt.Sprintf("%.2f", res.P50Ms), fmt.Sprintf("%.2f", res.P90Ms), fmt.Sprintf("%.2f", res.P99Ms), fmt.Sprintf("%.2f", res.MaxMs), fmt.Sprintf("%.2f", res.CommitsPerRequest))
			return t.Flush()
		},
	}
	cmd.Flags().IntVar(&n, "n", 500, "requests to time")
	cmd.Flags().StringVar(&sync, "sqlite-sync", "full", "SQLite durability: full or normal (LOGBOOK_SQLITE_SYNC)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

func benchDispatch(ctx context.Context, n int, sync string) (benchDispatchResult, error) {
	dir, err := os.MkdirTemp("", "logbook-bench-dispatch-")
	if err != nil {
		return benchDispatchResult{}, err
	}
	defer os.RemoveAll(dir)
	store, err := sqlite.OpenWith(ctx, filepath.Join(dir, "bench.db"), sqlite.Options{Synchronous: sync})
	if err != nil {
		return benchDispatchResult{}, err
	}
	defer store.Close()
	facts := dispatcher.NewFacts(dispatch.DefaultBuiltins(), dispatch.Settings{}, nil)
	pub := &arrivals{seen: map[string]chan struct{}{}}
	d, err := dispatcher.New(dispatcher.Config{
		Store: store, Publisher: pub, Facts: facts,
		Checkpoints: dispatcher.SQLCheckpoints{DB: store.WriteDB(), Rebind: sqlstore.RebindQuestion},
		Posters:     map[string]dispatcher.ReplyPoster{"api": dispatcher.Posted{}},
	})
	if err != nil {
		return benchDispatchResult{}, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go d.Run(runCtx) //nolint:errcheck // stopped with the bench
	if _, err := dispatcher.Bootstrap(ctx, store); err != nil {
		return benchDispatchResult{}, err
	}
	if _, err := dispatcher.InstallBundle(ctx, store, samplebundle.Config, "bench"); err != nil {
		return benchDispatchResult{}, err
	}
	for deadline := time.Now().Add(10 * time.Second); !facts.BundleInstalled("toolbox"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return benchDispatchResult{}, fmt.Errorf("the dispatcher did not see the sample bundle")
		}
	}
	latencies := make([]time.Duration, 0, n)
	var commitsBefore sqlstore.CommitStats
	for i := range n + 20 { // the first 20 warm up
		if i == 20 {
			commitsBefore = waitForQuiet(store)
		}
		in := dispatch.RequestReceived{Adapter: "api", Room: "api", ChatUser: "admin", Text: "toolbox:echo hi", Sender: "bench"}.WithFreshMessageID()
		arrived := pub.expect(in.ID())
		start := time.Now()
		if _, err := d.Receive(ctx, in, "bench"); err != nil {
			return benchDispatchResult{}, err
		}
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			return benchDispatchResult{}, fmt.Errorf("request %d did not reach RunRequested within 10s", i)
		}
		if i >= 20 {
			latencies = append(latencies, time.Since(start))
		}
	}
	commitsAfter := waitForQuiet(store)
	commits := commitsAfter.Optimistic + commitsAfter.Locked - commitsBefore.Optimistic - commitsBefore.Locked
	slices.Sort(latencies)
	at := func(q int) float64 { return ms(latencies[min(len(latencies)*q/100, len(latencies)-1)]) }
	return benchDispatchResult{Store: "sqlite", Sync: sync, N: n, P50Ms: at(50), P90Ms: at(90), P99Ms: at(99), MaxMs: ms(latencies[len(latencies)-1]),
		CommitsPerRequest: float64(commits) / float64(n)}, nil
}

// waitForQuiet returns the store's commit counts once they stop moving (the
// last request's reply is recorded after its run request was published).
func waitForQuiet(store interface{ Stats() sqlstore.CommitStats }) sqlstore.CommitStats {
	last := store.Stats()
	for {
		time.Sleep(20 * time.Millisecond)
		now := store.Stats()
		if now == last {
			return now
		}
		last = now
	}
}
