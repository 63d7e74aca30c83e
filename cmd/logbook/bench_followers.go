package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/projections"
)

func init() { registerBench(newBenchFollowersCmd) }

// followersSetup is one way the appends of `bench followers` are watched.
type followersSetup string

const (
	// noFollowers: nobody watches; the baseline.
	noFollowers followersSetup = "none"
	// sseFollowers: N clients follow N runs' transcripts over SSE, served
	// through the hub.
	sseFollowers followersSetup = "sse"
	// feedFollowers: N goroutines each follow the whole log and keep their
	// run's events, as each SSE client did before the hub.
	feedFollowers followersSetup = "feeds"
)

// followersRound is one timed round of appends under one setup.
type followersRound struct {
	Setup        followersSetup `json:"setup"`
	Followers    int            `json:"followers"`
	Events       int64          `json:"events"`
	Seconds      float64        `json:"seconds"`
	EventsPerSec float64        `json:"events_per_s"`
	// Delivered counts the chunk events the followers received.
	Delivered int64 `json:"delivered"`
	// CPUPerEventUS is this process's CPU time (user and system: the
	// store, the server and the followers' clients) per event appended.
	CPUPerEventUS float64 `json:"cpu_per_event_us"`
	LoadAvg       string  `json:"loadavg"`
}

func newBenchFollowersCmd() *cobra.Command {
	var (
		database, profile        string
		followers, producers     int
		rounds                   int
		duration                 time.Duration
		unfollowed, asJSON, feed bool
	)
	cmd := &cobra.Command{
		Use:   "followers",
		Short: "Append throughput with N live transcript followers open over SSE, against none, in the same run",
		Long: `Seed --followers runs on a fresh store (a temporary SQLite file, or a fresh
schema of a postgres:// --database), serve the HTTP API in this process, and
append for --duration per round from --producers goroutines, one output chunk
per append, spread over those runs (or, with --unfollowed, to streams nobody
follows). Rounds alternate between no followers and --followers SSE clients,
each following one run's transcript (GET /v1/runs/{id}/transcript?follow=1)
and reading every chunk; with --feeds a third setup runs --followers
goroutines that each follow the whole log, as every SSE client did before the
hub. It prints each round and, per setup, the median events/s and its ratio
to the rounds without followers, with the load average at each round.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if followers < 1 || producers < 1 || rounds < 1 || duration <= 0 {
				return exitWith(2, "--followers, --producers and --rounds must be at least 1 and --duration positive")
			}
			ctx := cmd.Context()
			url, cleanup, err := benchStoreTarget(ctx, database)
			if err != nil {
				return redactErr(err, database)
			}
			defer cleanup()
			store, _, err := openStore(ctx, url, "", createStore)
			if err != nil {
				return redactErr(err, url)
			}
			defer store.Close()
			b, err := startFollowersBench(ctx, store, followers)
			if err != nil {
				return err
			}
			defer b.stop()
			if profile != "" {
				stop, err := startCPUProfile(profile)
				if err != nil {
					return err
				}
				defer stop()
			}
			setups := []followersSetup{noFollowers, sseFollowers}
			if feed {
				setups = append(setups, feedFollowers)
			}
			var results []followersRound
			for r := range rounds {
				for _, setup := range setups {
					res, err := b.round(ctx, setup, producers, duration, unfollowed)
					if err != nil {
						return err
					}
					results = append(results, res)
					if !asJSON {
						fmt.Fprintf(cmd.ErrOrStderr(), "round %d, %s: %.0f events/s, %.0f µs CPU/event (load %s)\n", r+1, setup, res.EventsPerSec, res.CPUPerEventUS, res.LoadAvg)
					}
				}
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), results)
			}
			t := newTable(cmd.OutOrStdout(), "setup", "followers", "rounds", "median events/s", "ratio to none", "chunks delivered/s")
			base := medianRate(results, noFollowers)
			for _, setup := range setups {
				med := medianRate(results, setup)
				var delivered, seconds float64
				n := 0
				for _, r := range results {
					if r.Setup == setup {
						delivered += float64(r.Delivered)
						seconds += r.Seconds
						n++
					}
				}
				count := followers
				if setup == noFollowers {
					count = 0
				}
				t.Row(string(setup), count, n, fmt.Sprintf("%.0f", med), fmt.Sprintf("%.3f", med/base), fmt.Sprintf("%.0f", delivered/seconds))
			}
			return t.Flush()
		},
	}
	cmd.Flags().StringVar(&database, "database", "", "postgres:// URL for a fresh schema there; empty for a temporary SQLite file")
	cmd.Flags().IntVar(&followers, "followers", 200, "transcripts followed at once")
	cmd.Flags().IntVar(&producers, "producers", 16, "concurrent appenders")
	cmd.Flags().IntVar(&rounds, "rounds", 3, "rounds of each setup, taken in turn")
	cmd.Flags().DurationVar(&duration, "duration", 3*time.Second, "how long each round appends")
	cmd.Flags().BoolVar(&unfollowed, "unfollowed", false, "append to streams nobody follows, instead of the followed runs")
	cmd.Flags().BoolVar(&feed, "feeds", false, "also measure a whole-log feed per follower, as before the hub")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print every round as JSON")
	cmd.Flags().StringVar(&profile, "cpuprofile", "", "write a CPU profile of all the rounds to this file")
	return cmd
}

func medianRate(results []followersRound, setup followersSetup) float64 {
	var rates []float64
	for _, r := range results {
		if r.Setup == setup {
			rates = append(rates, r.EventsPerSec)
		}
	}
	slices.Sort(rates)
	if len(rates) == 0 {
		return 0
	}
	if len(rates)%2 == 1 {
		return rates[len(rates)/2]
	}
	return (rates[len(rates)/2-1] + rates[len(rates)/2]) / 2
}

// followersBench is the server and the runs `bench followers` works on.
type followersBench struct {
	store   eventstore.Store
	runs    []string
	url     string
	server  *http.Server
	serving chan error
	hub     *eventstore.Hub
	stopHub context.CancelFunc
	hubDone chan error
	// seq is the next chunk seq of each run; each producer owns the runs
	// whose index it is congruent to.
	seq []int64
	// rounds counts the rounds seeded.
	rounds int
}

// benchFollowerToken is the bench user's bearer token.
const benchFollowerToken = "lbk_bench_followers"

// benchFollowerUsers knows one user, who ran every seeded run.
type benchFollowerUsers struct{}

var benchFollower = access.UserInfo{ID: "u-bench", Username: "bench"}

func (benchFollowerUsers) UserForToken(token string) (access.UserInfo, bool) {
	return benchFollower, token == benchFollowerToken
}
func (benchFollowerUsers) UserByUsername(name string) (access.UserInfo, bool) {
	return benchFollower, name == benchFollower.Username
}
func (benchFollowerUsers) PermissionsOf(string) []string { return nil }

func startFollowersBench(ctx context.Context, store projections.Source, followers int) (*followersBench, error) {
	b := &followersBench{store: store, runs: make([]string, followers), seq: make([]int64, followers)}
	hubCtx, stopHub := context.WithCancel(context.WithoutCancel(ctx))
	b.hub, b.stopHub, b.hubDone = eventstore.NewHub(store, eventstore.HubOptions{}), stopHub, make(chan error, 1)
	go func() { b.hubDone <- b.hub.Run(hubCtx) }()
	db := projections.DBOf(store)
	api := &httpapi.API{Users: benchFollowerUsers{}, History: projections.NewHistoryReader(db), Transcripts: projections.NewTranscriptReader(db),
		Events: store, Live: b.hub}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.stop()
		return nil, err
	}
	b.url = "http://" + l.Addr().String()
	b.server = &http.Server{Handler: httpapi.NewHandler(func(context.Context) httpapi.ReadinessReport { return httpapi.ReadinessReport{Ready: true} },
		func() *httpapi.API { return api }), ReadHeaderTimeout: 10 * time.Second}
	b.serving = make(chan error, 1)
	go func() { b.serving <- b.server.Serve(l) }()
	return b, nil
}

func (b *followersBench) stop() {
	if b.server != nil {
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = b.server.Shutdown(shutdown)
		cancel()
		<-b.serving
	}
	b.stopHub()
	<-b.hubDone
}

// seed records new runs for a round, so that a follower's catch-up is
// one event and not the rounds before.
func (b *followersBench) seed(ctx context.Context) error {
	b.rounds++
	for i := range b.runs {
		b.runs[i], b.seq[i] = fmt.Sprintf("bench-r%d-follow%d", b.rounds, i), 0
		requested := domain.MustEncode(run.RunRequested{RequestID: "bench", Bundle: "toolbox", Command: "seq", Argv: []string{"seq"},
			Mode: run.ModeFresh, Invocation: run.Invocation{Username: benchFollower.Username}}, domain.Metadata{Actor: "bench"})
		if _, err := b.store.Append(ctx, run.Stream(b.runs[i]), eventstore.NoStream, requested); err != nil {
			return err
		}
	}
	return nil
}

// round seeds its runs, opens the setup's followers, appends for d, and
// closes them.
func (b *followersBench) round(ctx context.Context, setup followersSetup, producers int, d time.Duration, unfollowed bool) (followersRound, error) {
	res := followersRound{Setup: setup}
	if err := b.seed(ctx); err != nil {
		return res, err
	}
	res.LoadAvg = loadAverage()
	var delivered atomic.Int64
	watchCtx, stopWatching := context.WithCancel(ctx)
	var watching sync.WaitGroup
	defer func() { stopWatching(); watching.Wait() }()
	switch setup {
	case sseFollowers:
		res.Followers = len(b.runs)
		opened := make(chan error, len(b.runs))
		for _, id := range b.runs {
			watching.Go(func() { b.followSSE(watchCtx, id, opened, &delivered) })
		}
		for range b.runs {
			if err := <-opened; err != nil {
				return res, err
			}
		}
	case feedFollowers:
		res.Followers = len(b.runs)
		head, _, err := b.store.Head(ctx)
		if err != nil {
			return res, err
		}
		for _, id := range b.runs {
			watching.Go(func() {
				stream := run.Stream(id)
				for e, err := range eventstore.Follow(watchCtx, b.store, head+1, eventstore.FeedOptions{}) {
					if err != nil {
						return
					}
					if e.Stream == stream {
						delivered.Add(1)
					}
				}
			})
		}
	}
	var appended, chunks atomic.Int64
	var failed atomic.Value
	cpuBefore, _ := processCPU(os.Getpid())
	deadline := time.Now().Add(d)
	start := time.Now()
	var appending sync.WaitGroup
	for p := range producers {
		appending.Go(func() {
			for n := 0; time.Now().Before(deadline); n++ {
				stream, event, chunk := b.nextChunk(p, producers, n, unfollowed)
				if _, err := b.store.Append(ctx, stream, eventstore.Any, event); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
				appended.Add(1)
				if chunk {
					chunks.Add(1)
				}
			}
		})
	}
	appending.Wait()
	res.Seconds = time.Since(start).Seconds()
	if err, ok := failed.Load().(error); ok {
		return res, err
	}
	res.Events = appended.Load()
	res.EventsPerSec = float64(res.Events) / res.Seconds
	if cpuAfter, err := processCPU(os.Getpid()); err == nil && res.Events > 0 {
		res.CPUPerEventUS = float64((cpuAfter - cpuBefore).Microseconds()) / float64(res.Events)
	}
	// The followers get what is still on its way before they close,
	// outside the time measured.
	if setup != noFollowers {
		deadline := time.Now().Add(time.Minute)
		for delivered.Load() < chunks.Load() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	res.Delivered = delivered.Load()
	return res, nil
}

// nextChunk is producer p's n-th event: a chunk of the next of its runs,
// or an event of its own stream nobody follows (chunk false).
func (b *followersBench) nextChunk(p, producers, n int, unfollowed bool) (string, domain.NewEvent, bool) {
	md := domain.Metadata{Actor: "bench"}
	mine := (len(b.runs) - p + producers - 1) / producers // runs p, p+producers, ...
	if unfollowed || mine == 0 {
		return fmt.Sprintf("bench-producer%d", p), domain.MustEncode(benchEvent{Producer: p, Seq: n, Text: "line"}, md), false
	}
	i := p + (n%mine)*producers
	seq := b.seq[i]
	b.seq[i]++
	return run.Stream(b.runs[i]), domain.MustEncode(run.OutputChunk{Seq: seq, Stream: run.Stdout, Bytes: fmt.Appendf(nil, "line %d\n", seq), At: time.Now()}, md), true
}

// followSSE follows one run's transcript until ctx ends, counting chunks;
// it reports on opened once the stream is open.
func (b *followersBench) followSSE(ctx context.Context, runID string, opened chan<- error, delivered *atomic.Int64) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.url+"/v1/runs/"+runID+"/transcript?follow=1", nil)
	if err != nil {
		opened <- err
		return
	}
	req.Header.Set("Authorization", "Bearer "+benchFollowerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		opened <- err
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		opened <- fmt.Errorf("following %s: %s: %s", runID, resp.Status, strings.TrimSpace(string(body)))
		return
	}
	opened <- nil
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == "event: "+httpapi.SSEChunk {
			delivered.Add(1)
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "following %s: %v\n", runID, err)
	}
}

// loadAverage is the first three fields of /proc/loadavg, or "?".
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	fields := strings.Fields(string(raw))
	if len(fields) < 3 {
		return "?"
	}
	return strings.Join(fields[:3], " ")
}
