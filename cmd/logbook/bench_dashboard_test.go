package main

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

func TestBenchDashboardTimesTheDashboardsQueriesOverASeededStore(t *testing.T) {
	database := "sqlite://" + filepath.Join(t.TempDir(), "seeded.db")
	if _, _, err := runCLIOutput(t, "bench", "seed", "--database", database, "--runs", "40", "--producers", "2", "--queries", "5"); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLIOutput(t, "bench", "dashboard", "--database", database, "--rounds", "5", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res []benchDashboardResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("bench dashboard --json = %s (%v)", out, err)
	}
	if len(res) != 3 || res[0].Range != "24h" || res[0].Requests < 1 || res[0].RollupRow < 1 || res[0].Rounds != 5 || res[0].P99Ms < res[0].P50Ms {
		t.Fatalf("bench dashboard result %+v", res)
	}
	if _, _, err := runCLIOutput(t, "bench", "dashboard"); err == nil {
		t.Fatal("bench dashboard without --database succeeded")
	}
}
