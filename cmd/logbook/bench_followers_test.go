package main

import (
	"encoding/json"
	"testing"
)

// Every chunk appended to a followed run reaches its follower over SSE,
// and the rounds take turns.
func TestBenchFollowersDeliversEachChunkToItsFollower(t *testing.T) {
	out, _, err := runCLIOutput(t, "bench", "followers", "--followers", "5", "--producers", "2", "--rounds", "1", "--duration", "300ms", "--feeds", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rounds []followersRound
	if err := json.Unmarshal([]byte(out), &rounds); err != nil || len(rounds) != 3 {
		t.Fatalf("bench followers printed %s (%v)", out, err)
	}
	for i, want := range []followersSetup{noFollowers, sseFollowers, feedFollowers} {
		r := rounds[i]
		if r.Setup != want || r.Events == 0 {
			t.Fatalf("round %d is %+v, want %s with events appended", i, r, want)
		}
		if want != noFollowers && r.Delivered != r.Events {
			t.Errorf("%s: %d of %d chunks delivered before the round ended", want, r.Delivered, r.Events)
		}
	}
}
