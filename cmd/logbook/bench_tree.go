package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain/auditlog"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/projections/merkletree"
	"github.com/logbookhq/logbook/projections/projectionstest"
)

func init() { registerBench(newBenchProveCmd) }

// benchTreeRound is one pair of `bench store --tree` runs: the same
// appends without and with the Merkle tree maintained beside them.
type benchTreeRound struct {
	Round         int     `json:"round"`
	WithoutPerSec float64 `json:"without_tree_events_per_s"`
	WithPerSec    float64 `json:"with_tree_events_per_s"`
	Ratio         float64 `json:"ratio"`
	CatchUpMs     float64 `json:"tree_catch_up_ms"`
	// CPU per event (this process's user+system time over the events
	// appended, chain check included), with over without: less at the
	// mercy of other work on the machine than the throughput ratio.
	CPURatio       float64 `json:"cpu_per_event_ratio"`
	Checkpoints    int     `json:"checkpoints_signed"`
	EventsAppended int64   `json:"events_with_tree"`
}

// benchStoreWithTree runs bench store's appends in pairs, without and with
// the tree's maintainer (signing a checkpoint every 1000 events), in
// alternating order, each on a fresh store, and reports each pair's ratio:
// on a shared machine only a ratio taken in the same run means anything.
func benchStoreWithTree(ctx context.Context, database string, producers, batch int, duration time.Duration, rounds int) ([]benchTreeRound, error) {
	skey, _, err := note.GenerateKey(rand.Reader, "logbook.bench/tree")
	if err != nil {
		return nil, err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, err
	}
	var out []benchTreeRound
	for round := range rounds {
		r := benchTreeRound{Round: round + 1}
		var cpuWith, cpuWithout float64
		for i := range 2 {
			withTree := (i+round)%2 == 1
			url, cleanup, err := benchStoreTarget(ctx, database)
			if err != nil {
				return nil, err
			}
			store, _, err := openStore(ctx, url, "", createStore)
			if err != nil {
				cleanup()
				return nil, redactErr(err, url)
			}
			var (
				stop        = func() {}
				checkpoints atomic.Int64
			)
			if withTree {
				m := merkletree.New(merkletree.Config{Events: store, Tree: store, Signer: signer, Every: 1000,
					Signed: func(auditlog.StoredCheckpoint) { checkpoints.Add(1) }})
				mctx, cancel := context.WithCancel(ctx)
				var wg sync.WaitGroup
				wg.Go(func() { _ = m.Run(mctx) })
				stop = func() { cancel(); wg.Wait() }
			}
			cpuBefore := ownCPU()
			res, err := benchStore(ctx, store, producers, batch, duration)
			if err == nil && withTree {
				r.WithPerSec, r.EventsAppended = res.EventsPerSec, res.Events
				err = measureCatchUp(ctx, store, &r)
				r.Checkpoints = int(checkpoints.Load())
				cpuWith = (ownCPU() - cpuBefore).Seconds() / float64(res.Events)
			} else if err == nil {
				r.WithoutPerSec = res.EventsPerSec
				cpuWithout = (ownCPU() - cpuBefore).Seconds() / float64(res.Events)
			}
			stop()
			store.Close()
			cleanup()
			if err != nil {
				return nil, err
			}
		}
		r.Ratio = r.WithPerSec / r.WithoutPerSec
		r.CPURatio = cpuWith / cpuWithout
		out = append(out, r)
	}
	return out, nil
}

// ownCPU is this process's CPU time so far (processCPU, of bench load).
func ownCPU() time.Duration {
	d, _ := processCPU(os.Getpid())
	return d
}

// measureCatchUp records how long the tree took to catch up with the
// head once the appends (and bench store's chain check) ended.
func measureCatchUp(ctx context.Context, store *sqlstore.Store, r *benchTreeRound) error {
	head, _, err := store.Head(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	for {
		size, err := store.TreeSize(ctx)
		if err != nil {
			return err
		}
		if size >= head {
			r.CatchUpMs = ms(time.Since(start))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func printTreeRounds(cmd *cobra.Command, rounds []benchTreeRound, asJSON bool) error {
	ratios, cpu := make([]float64, len(rounds)), make([]float64, len(rounds))
	for i, r := range rounds {
		ratios[i], cpu[i] = r.Ratio, r.CPURatio
	}
	slices.Sort(ratios)
	slices.Sort(cpu)
	median, medianCPU := ratios[len(ratios)/2], cpu[len(cpu)/2]
	if asJSON {
		return writeJSON(cmd.OutOrStdout(), map[string]any{"rounds": rounds, "median_ratio": median, "median_cpu_per_event_ratio": medianCPU})
	}
	t := newTable(cmd.OutOrStdout(), "round", "without tree events/s", "with tree events/s", "ratio", "cpu/event ratio", "catch-up ms", "checkpoints")
	for _, r := range rounds {
		t.Row(r.Round, fmt.Sprintf("%.0f", r.WithoutPerSec), fmt.Sprintf("%.0f", r.WithPerSec), fmt.Sprintf("%.3f", r.Ratio), fmt.Sprintf("%.3f", r.CPURatio), fmt.Sprintf("%.1f", r.CatchUpMs), r.Checkpoints)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "median ratio %.3f (append throughput with the tree kept, over without); median CPU per event %.3f of without\n", median, medianCPU)
	return nil
}

// benchProveResult is one `logbook bench prove` measurement.
type benchProveResult struct {
	Store           string  `json:"store"`
	Events          int64   `json:"events"`
	SeedSeconds     float64 `json:"seed_seconds"`
	TreeSeconds     float64 `json:"tree_build_seconds"`
	TreePerSec      float64 `json:"tree_build_events_per_s"`
	Proves          int     `json:"proves"`
	EventsPerBundle float64 `json:"average_events_per_bundle"`
	BundleBytes     float64 `json:"average_bundle_bytes"`
	HashesPerProof  float64 `json:"average_hashes_per_inclusion_proof"`
	ProveP50Ms      float64 `json:"prove_p50_ms"`
	ProveP99Ms      float64 `json:"prove_p99_ms"`
	ProveMaxMs      float64 `json:"prove_max_ms"`
	VerifyP50Ms     float64 `json:"verify_p50_ms"`
	VerifyP99Ms     float64 `json:"verify_p99_ms"`
}

func newBenchProveCmd() *cobra.Command {
	var (
		database  string
		events    int64
		producers int
		proves    int
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "prove",
		Short: "Seed a log of N events, build its Merkle tree, and time audit prove for random requests and the offline check of each bundle",
		Long: `Append realistic requests and runs through the real Store until the log holds --events events,
build the Merkle tree over them (reporting its rate), sign a checkpoint, then prove --proves random
requests as logbook audit prove does (p50/p99/max) and verify each bundle offline (p50/p99).
Without --database it uses a fresh SQLite file in a temporary directory; with a postgres:// URL a
fresh schema it drops afterwards.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if events < 100 || producers < 1 || proves < 1 {
				return exitWith(2, "--events must be at least 100, --producers and --proves at least 1")
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
			res, err := benchProve(cmd.Context(), store, events, producers, proves)
			if err != nil {
				return err
			}
			res.Store = strings.Fields(name)[0]
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			t := newTable(cmd.OutOrStdout(), "store", "events", "tree events/s", "proves", "events/bundle", "hashes/proof", "prove p50 ms", "p99 ms", "max ms", "verify p50 ms", "p99 ms")
			t.Row(res.Store, res.Events, fmt.Sprintf("%.0f", res.TreePerSec), res.Proves, fmt.Sprintf("%.1f", res.EventsPerBundle), fmt.Sprintf("%.1f", res.HashesPerProof),
				fmt.Sprintf("%.2f", res.ProveP50Ms), fmt.Sprintf("%.2f", res.ProveP99Ms), fmt.Sprintf("%.2f", res.ProveMaxMs), fmt.Sprintf("%.2f", res.VerifyP50Ms), fmt.Sprintf("%.2f", res.VerifyP99Ms))
			return t.Flush()
		},
	}
	cmd.Flags().StringVar(&database, "database", "", "postgres:// URL, sqlite:///path, or empty for a temporary SQLite file")
	cmd.Flags().Int64Var(&events, "events", 100000, "how many events the log holds")
	cmd.Flags().IntVar(&producers, "producers", 2, "concurrent appenders while seeding")
	cmd.Flags().IntVar(&proves, "proves", 200, "how many requests to prove")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

func benchProve(ctx context.Context, store *sqlstore.Store, events int64, producers, proves int) (benchProveResult, error) {
	res := benchProveResult{Proves: proves}
	start := time.Now()
	setup := projectionstest.NewWorkload(1, 200)
	if err := projectionstest.AppendAll(ctx, store, setup.Setup()); err != nil {
		return res, err
	}
	progress, done := progressBar(events, "seeding", "events", false)
	var (
		wg        sync.WaitGroup
		errs      = make(chan error, producers)
		requests  = make([][]string, producers)
		appended  atomic.Int64
		headCache atomic.Int64
	)
	for p := range producers {
		wg.Go(func() {
			w := projectionstest.NewWorkload(uint64(1000+p), 200)
			w.MaxChunks = 2
			for headCache.Load() < events {
				appends := w.Request()
				n := 0
				for _, a := range appends {
					n += len(a.Events)
					if id, ok := strings.CutPrefix(a.Stream, dispatch.StreamPrefix); ok && (len(requests[p]) == 0 || requests[p][len(requests[p])-1] != id) {
						requests[p] = append(requests[p], id)
					}
				}
				if err := projectionstest.AppendAll(ctx, store, appends); err != nil {
					errs <- err
					return
				}
				headCache.Store(appended.Add(int64(n)))
				progress(headCache.Load())
			}
		})
	}
	wg.Wait()
	done()
	close(errs)
	if err := <-errs; err != nil {
		return res, err
	}
	head, _, err := store.Head(ctx)
	if err != nil {
		return res, err
	}
	res.Events, res.SeedSeconds = head, time.Since(start).Seconds()

	skey, vkey, err := note.GenerateKey(rand.Reader, "logbook.bench/prove")
	if err != nil {
		return res, err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return res, err
	}
	m := merkletree.New(merkletree.Config{Events: store, Tree: store, Signer: signer})
	treeStart := time.Now()
	if _, err := m.CatchUp(ctx); err != nil {
		return res, err
	}
	res.TreeSeconds = time.Since(treeStart).Seconds()
	res.TreePerSec = float64(head) / res.TreeSeconds
	if _, err := m.Checkpoint(ctx); err != nil {
		return res, err
	}
	policy, err := auditlog.NewPolicy(vkey, nil, 0)
	if err != nil {
		return res, err
	}
	all := slices.Concat(requests...)
	var proveTimes, verifyTimes []time.Duration
	var bundleEvents, bundleBytes, proofHashes, proofs int
	for i := range proves {
		id := all[(i*7919)%len(all)] // spread over the whole log
		t0 := time.Now()
		b, err := merkletree.Prove(ctx, store, store, id)
		if err != nil {
			return res, fmt.Errorf("prove %s: %w", id, err)
		}
		raw, err := b.Marshal()
		if err != nil {
			return res, err
		}
		proveTimes = append(proveTimes, time.Since(t0))
		t1 := time.Now()
		if _, err := auditlog.VerifyBundle(raw, policy); err != nil {
			return res, fmt.Errorf("verify %s: %w", id, err)
		}
		verifyTimes = append(verifyTimes, time.Since(t1))
		bundleEvents += len(b.Events)
		bundleBytes += len(raw)
		for _, e := range b.Events {
			proofHashes += len(e.Proof)
			proofs++
		}
	}
	slices.Sort(proveTimes)
	slices.Sort(verifyTimes)
	res.ProveP50Ms, res.ProveP99Ms, res.ProveMaxMs = ms(proveTimes[len(proveTimes)/2]), ms(proveTimes[min(len(proveTimes)*99/100, len(proveTimes)-1)]), ms(proveTimes[len(proveTimes)-1])
	res.VerifyP50Ms, res.VerifyP99Ms = ms(verifyTimes[len(verifyTimes)/2]), ms(verifyTimes[min(len(verifyTimes)*99/100, len(verifyTimes)-1)])
	res.EventsPerBundle = float64(bundleEvents) / float64(proves)
	res.BundleBytes = float64(bundleBytes) / float64(proves)
	res.HashesPerProof = float64(proofHashes) / float64(proofs)
	return res, nil
}
