package main

import (
	"encoding/json"
	"testing"
)

func TestBenchSlackTimesEventsToTheirPostedReply(t *testing.T) {
	out, _, err := runCLIOutput(t, "bench", "slack", "--n", "5", "--json", "--sqlite-sync", "normal")
	if err != nil {
		t.Fatal(err)
	}
	var res benchSlackResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.N != 5 || res.P50Ms <= 0 || res.MaxMs < res.P50Ms || res.Sync != "normal" {
		t.Fatalf("bench slack printed %s (%v)", out, err)
	}
}
