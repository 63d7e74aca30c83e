package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/adapters/slack"
	"github.com/logbookhq/logbook/adapters/slack/slacktest"
	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/executor"
)

func init() { registerBench(newBenchSlackCmd) }

// benchSlackResult is one `logbook bench slack` measurement.
type benchSlackResult struct {
	Store string  `json:"store"`
	Sync  string  `json:"sqlite_sync"`
	N     int     `json:"n"`
	P50Ms float64 `json:"p50_ms"`
	P90Ms float64 `json:"p90_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

func newBenchSlackCmd() *cobra.Command {
	var (
		n      int
		asJSON bool
		sync   string
	)
	cmd := &cobra.Command{
		Use:   "slack",
		Short: "Time a Slack event delivered to its reply posted, for `!echo hi`, against a local Slack Web API",
		Long: `Run the dispatcher and the Slack provider on a fresh SQLite store, with a
local server playing Slack's Web API. Deliver --n signed Events API requests
of "!echo hi" one after another, each in its own channel (so that Slack's
one-message-a-second pace per channel does not count), and time each from
the moment the HTTP delivery starts to the moment the local Web API receives
the reply's chat.postMessage: signature check, RequestReceived recorded,
identity, parse, permission, the builtin run, the reply part recorded
attempted, posted, recorded posted. Slack's own network is not counted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 {
				return exitWith(2, "--n must be at least 1")
			}
			res, err := benchSlack(cmd.Context(), n, sync)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			t := newTable(cmd.OutOrStdout(), "store", "sync", "n", "p50 ms", "p90 ms", "p99 ms", "max ms")
			t.Row(res.Store, res.Sync, res.N, fmt.Sprintf("%.2f", res.P50Ms), fmt.Sprintf("%.2f", res.P90Ms), fmt.Sprintf("%.2f", res.P99Ms), fmt.Sprintf("%.2f", res.MaxMs))
			return t.Flush()
		},
	}
	cmd.Flags().IntVar(&n, "n", 300, "events to time")
	cmd.Flags().StringVar(&sync, "sqlite-sync", "full", "SQLite durability: full or normal (LOGBOOK_SQLITE_SYNC)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

const benchSlackSecret = "bench-signing-secret"

func benchSlack(ctx context.Context, n int, sync string) (benchSlackResult, error) {
	const warmup = 20
	dir, err := os.MkdirTemp("", "logbook-bench-slack-")
	if err != nil {
		return benchSlackResult{}, err
	}
	defer os.RemoveAll(dir)
	store, err := sqlite.OpenWith(ctx, filepath.Join(dir, "bench.db"), sqlite.Options{Synchronous: sync})
	if err != nil {
		return benchSlackResult{}, err
	}
	defer store.Close()

	channels := make([]slacktest.Channel, n+warmup)
	for i := range channels {
		channels[i] = slacktest.Channel{ID: fmt.Sprintf("C%07d", i), Name: fmt.Sprintf("bench-%d", i), Member: true}
	}
	api := slacktest.New(channels, []slacktest.User{{ID: "U0BENCH", Name: "bench"}})
	defer api.Close()
	provider, err := slack.New(slack.Config{BotToken: "xoxb-bench", SigningSecret: benchSlackSecret, APIURL: api.APIURL(), Logger: zerolog.Nop()})
	if err != nil {
		return benchSlackResult{}, err
	}
	facts := dispatcher.NewFacts(dispatch.DefaultBuiltins(), dispatch.Settings{}, nil)
	builtins, err := executor.NewBuiltinExecutor(executor.BuiltinConfig{Store: store, Builtins: facts.Builtins(), Facts: facts, Recorded: facts.ApplyRecorded, Logger: zerolog.Nop()})
	if err != nil {
		return benchSlackResult{}, err
	}
	defer builtins.Shutdown(context.Background()) //nolint:errcheck // the bench is over
	d, err := dispatcher.New(dispatcher.Config{
		Store: store, Publisher: executor.InProcessBuiltins{Executor: builtins}, Facts: facts,
		Checkpoints: dispatcher.SQLCheckpoints{DB: store.WriteDB(), Rebind: sqlstore.RebindQuestion},
		Chat:        map[string]chat.Provider{slack.Name: provider},
	})
	if err != nil {
		return benchSlackResult{}, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go d.Run(runCtx)                                                          //nolint:errcheck // stopped with the bench
	go provider.Run(runCtx, func(ctx context.Context, m chat.Message) error { //nolint:errcheck // stopped with the bench
		_, err := d.Receive(ctx, m.Received(), "slack:"+m.User)
		return err
	})
	if err := linkBenchUser(ctx, store, facts); err != nil {
		return benchSlackResult{}, err
	}
	events := httptest.NewServer(provider.EventsHandler())
	defer events.Close()

	latencies := make([]time.Duration, 0, n)
	for i := range n + warmup {
		ts := fmt.Sprintf("%d.%06d", time.Now().Unix(), i)
		body, _ := json.Marshal(map[string]any{
			"type": "event_callback", "team_id": "T0BENCH", "event_id": fmt.Sprintf("Ev%08d", i), "event_time": time.Now().Unix(),
			"event": map[string]any{"type": "message", "channel": channels[i].ID, "channel_type": "channel", "user": "U0BENCH", "text": "!echo hi", "ts": ts},
		})
		start := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, events.URL, bytes.NewReader(body))
		if err != nil {
			return benchSlackResult{}, err
		}
		req.Header.Set("Content-Type", "application/json")
		slack.SignRequest(req, benchSlackSecret, body, start)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return benchSlackResult{}, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return benchSlackResult{}, fmt.Errorf("event %d answered %s", i, resp.Status)
		}
		select {
		case m := <-api.Posted():
			if m.Channel != channels[i].ID || m.Text != "hi" {
				return benchSlackResult{}, fmt.Errorf("event %d: posted %q to %s, want \"hi\" to %s", i, m.Text, m.Channel, channels[i].ID)
			}
			if i >= warmup {
				latencies = append(latencies, m.At.Sub(start))
			}
		case <-time.After(10 * time.Second):
			return benchSlackResult{}, fmt.Errorf("event %d: no reply posted within 10s", i)
		}
	}
	slices.Sort(latencies)
	at := func(q int) float64 { return ms(latencies[min(len(latencies)*q/100, len(latencies)-1)]) }
	return benchSlackResult{Store: "sqlite", Sync: sync, N: n, P50Ms: at(50), P90Ms: at(90), P99Ms: at(99), MaxMs: ms(latencies[len(latencies)-1])}, nil
}

// linkBenchUser bootstraps the admin and links the Slack handle U0BENCH to
// it, as `!user link admin slack U0BENCH` would.
func linkBenchUser(ctx context.Context, store eventstore.Store, facts *dispatcher.Facts) error {
	if _, err := dispatcher.Bootstrap(ctx, store); err != nil {
		return err
	}
	var admin access.UserInfo
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var ok bool
		if admin, ok = facts.UserByUsername("admin"); ok {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the dispatcher did not see the admin")
		}
	}
	e := domain.MustEncode(access.ChatHandleLinked{User: admin.ID, Provider: slack.Name, Handle: "U0BENCH"}, domain.Metadata{Actor: "bench"})
	if _, err := store.Append(ctx, access.UserStream(admin.ID), eventstore.Any, e); err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, ok := facts.UserByHandle(slack.Name, "U0BENCH"); ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the dispatcher did not see the linked handle")
		}
	}
}
