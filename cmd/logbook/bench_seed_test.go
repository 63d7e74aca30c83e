package main

import (
	"encoding/json"
	"testing"
)

func TestBenchSeedSeedsProjectsAndTimesPages(t *testing.T) {
	out, _, err := runCLIOutput(t, "bench", "seed", "--runs", "60", "--producers", "2", "--queries", "40", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res benchSeedResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("bench seed --json = %s (%v)", out, err)
	}
	if res.Store != "sqlite" || res.Runs < 60 || res.Events < 60*5 || res.ProjectPerSec <= 0 || res.AppendPerSec <= 0 ||
		res.Queries != 40 || res.QueryP99Ms < res.QueryP50Ms || res.AverageRowsFound <= 0 {
		t.Fatalf("bench seed result %+v", res)
	}
}
