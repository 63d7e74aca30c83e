package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
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
		res.Queries != 40 || res.QueryP99Ms < res.QueryP50Ms || res.AverageRowsFound <= 0 ||
		res.Searches < 40 || res.SearchTermP99Ms < res.SearchTermP50Ms || res.SearchSubstringP99 < res.SearchSubstringP50 || res.SearchAverageHits <= 0 {
		t.Fatalf("bench seed result %+v", res)
	}
}

func TestBenchSeedQueryOnlyTimesPagesOverAStoreSeededBefore(t *testing.T) {
	database := "sqlite://" + filepath.Join(t.TempDir(), "seeded.db")
	if _, _, err := runCLIOutput(t, "bench", "seed", "--database", database, "--runs", "40", "--producers", "2", "--queries", "5"); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLIOutput(t, "bench", "seed", "--database", database, "--query-only", "--queries", "30", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res benchSeedResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("bench seed --query-only --json = %s (%v)", out, err)
	}
	if res.Runs < 40 || res.Events < 40*5 || res.AppendPerSec != 0 || res.ProjectPerSec != 0 || res.Queries != 30 || res.AverageRowsFound <= 0 {
		t.Fatalf("bench seed --query-only result %+v", res)
	}
	_, _, err = runCLIOutput(t, "bench", "seed", "--query-only")
	if ee, ok := err.(*exitError); !ok || ee.code != 2 || !strings.Contains(ee.msg, "--database") {
		t.Fatalf("--query-only without --database returned %v, want exit 2 naming --database", err)
	}
}
