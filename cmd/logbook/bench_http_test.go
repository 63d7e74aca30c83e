package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentileIsTheNearestRank(t *testing.T) {
	var sorted []time.Duration
	for i := 1; i <= 100; i++ {
		sorted = append(sorted, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.99: 99 * time.Millisecond, 0.999: 100 * time.Millisecond, 0: time.Millisecond} {
		if got := percentile(sorted, p); got != want {
			t.Errorf("p%v = %v, want %v", p*100, got, want)
		}
	}
	if got := percentile(nil, 0.99); got != 0 {
		t.Errorf("p99 of nothing = %v", got)
	}
}

func TestTheLoadIsOpenLoopAndCountsQueueingFromTheScheduledTime(t *testing.T) {
	// Given a server that takes 100 ms per request, one at a time.
	var (
		inFlight, maxInFlight atomic.Int64
		served                atomic.Int64
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		n := inFlight.Add(1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
		inFlight.Add(-1)
		served.Add(1)
		_, _ = w.Write([]byte(`{"requests":[]}`))
	}))
	defer srv.Close()

	// When 100 requests per second are sent for one second.
	res := runOpenLoop(context.Background(), newLoadClient(), srv.URL, "tok", []string{"/v1/history?limit=50"}, 100, time.Second)

	// Then all 100 were sent on schedule, not one after another: about ten
	// were in flight at once, and none was faster than the server.
	if res.Requests != 100 || res.Errors != 0 || served.Load() != 100 {
		t.Fatalf("requests %d, errors %d (%s), served %d; want 100, 0, 100", res.Requests, res.Errors, res.FirstError, served.Load())
	}
	if maxInFlight.Load() < 5 {
		t.Fatalf("at most %d requests were in flight: the load waited for answers", maxInFlight.Load())
	}
	if res.P50Ms < 100 || res.MaxMs < res.P99Ms || res.P99Ms < res.P50Ms {
		t.Fatalf("percentiles p50 %.1f, p99 %.1f, max %.1f: want p50 >= 100 ms and ordered", res.P50Ms, res.P99Ms, res.MaxMs)
	}
	if res.Seconds < 1 {
		t.Fatalf("a one-second schedule took %.2f s", res.Seconds)
	}

	// And a wrong token counts as an error, with what it was.
	bad := runOpenLoop(context.Background(), newLoadClient(), srv.URL, "nope", []string{"/v1/history"}, 50, 200*time.Millisecond)
	if bad.Errors != bad.Requests || !strings.Contains(bad.FirstError, "401") {
		t.Fatalf("bad token: %d of %d errors, first %q", bad.Errors, bad.Requests, bad.FirstError)
	}
}

func TestFindMaxStopsAtTheFirstRateThatMissesTheTarget(t *testing.T) {
	// Given a server whose p99 is 2 ms per 100 req/s.
	measure := func(rate int) httpLoadResult { return httpLoadResult{Rate: rate, P99Ms: float64(rate) / 50} }
	// When the rate steps up by 100 from 100 with a 10 ms target.
	best, runs := findMaxRate(context.Background(), 100, 100, 10000, 10*time.Millisecond, measure)
	// Then 400 (8 ms) is the highest under it and 500 (10 ms) ends the sweep.
	if best != 400 || len(runs) != 5 || runs[4].Rate != 500 {
		t.Fatalf("best %d after %d runs, want 400 after 5", best, len(runs))
	}
	// And errors end it too, even under the latency target.
	best, _ = findMaxRate(context.Background(), 100, 100, 1000, 10*time.Millisecond, func(rate int) httpLoadResult {
		return httpLoadResult{Rate: rate, P99Ms: 1, Errors: map[bool]int{true: 1}[rate >= 300]}
	})
	if best != 200 {
		t.Fatalf("best %d with errors from 300, want 200", best)
	}
}

func TestTargetsUseFilterValuesAndCursorsFromTheHistory(t *testing.T) {
	// Given a history with two users and a second page.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page := map[string]any{"requests": []map[string]string{
			{"username": "alice", "commands": "toolbox:echo toolbox:wc", "status": "completed", "adapter": "slack", "room": "#ops"},
			{"username": "bob", "commands": "toolbox:date", "status": "failed", "adapter": "api", "room": "api"},
		}}
		if r.URL.Query().Get("cursor") == "" {
			page["next_cursor"] = "42"
		}
		_ = json.NewEncoder(w).Encode(page)
	}))
	defer srv.Close()
	targets, err := historyTargets(context.Background(), newLoadClient(), clientConfig{URL: srv.URL, Token: "t"}, allHistoryFilters)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(targets, "\n")
	for _, want := range []string{"user=alice", "user=bob", "command=toolbox%3Aecho", "status=failed", "provider=slack", "room=%23ops", "cursor=42", "since=", "limit=50"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no target has %s:\n%s", want, joined)
		}
	}
	// And --filters leaves out the kinds not named.
	some, err := historyTargets(context.Background(), newLoadClient(), clientConfig{URL: srv.URL, Token: "t"}, []string{"user", "status"})
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range some {
		if strings.Contains(target, "command=") || strings.Contains(target, "room=") || !strings.Contains(target, "user=") && !strings.Contains(target, "status=") {
			t.Errorf("with --filters user,status: %s", target)
		}
	}
	if _, err := historyTargets(context.Background(), newLoadClient(), clientConfig{URL: srv.URL, Token: "t"}, []string{"colour"}); err == nil {
		t.Error("an unknown filter kind was accepted")
	}
}
