package dispatcher

import (
	"testing"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
)

// Given a decision's parts and what its commit returned, when the runs its
// commit created are noted, then only a run stream written now, holding its
// RunRequested alone, counts: not a repeat, not a part a piecewise append
// left as it was, not the request's own stream.
func TestOnlyARunStreamTheCommitWroteAloneCountsAsCreated(t *testing.T) {
	one := []domain.NewEvent{{Type: "RunRequested"}}
	rec := &preparedRecord{
		parts: []eventstore.StreamAppend{
			{Stream: "request-r", Expected: eventstore.NoStream, Events: one},
			{Stream: run.Stream("new"), Expected: eventstore.NoStream, Events: one},
			{Stream: run.Stream("repeat"), Expected: eventstore.NoStream, Events: one},
			{Stream: run.Stream("left"), Expected: eventstore.NoStream, Events: one},
			{Stream: run.Stream("ran"), Expected: eventstore.NoStream, Events: append(one, domain.NewEvent{Type: "RunSucceeded"})},
		},
		runEventIDs: map[string]string{"new": "e1", "repeat": "e2", "left": "e3"},
	}
	rec.noteCreated([]eventstore.AppendResult{
		{FirstPosition: 1, LastPosition: 1, LastVersion: 0},
		{FirstPosition: 2, LastPosition: 2, LastVersion: 0},
		{FirstPosition: 7, LastPosition: 7, LastVersion: 0, Duplicate: true},
		{}, // a piecewise append found the run requested before
		{FirstPosition: 3, LastPosition: 4, LastVersion: 1},
	})
	if len(rec.created) != 1 || !rec.created["new"] {
		t.Fatalf("created = %v, want only the run \"new\"", rec.created)
	}
}

// The dispatcher decodes a run's request and its end, which it and its
// quotas fold, and none of the rest of a run's stream.
func TestTheDispatcherFoldsARunsRequestAndEndOnly(t *testing.T) {
	for _, p := range []domain.Payload{run.RunRequested{}, run.RunSucceeded{}, run.RunFailed{}, run.RunTimedOut{}, run.RunCancelled{}, run.RunLost{}} {
		if !foldsRunEvent(p.EventType()) {
			t.Errorf("%s is not folded", p.EventType())
		}
	}
	for _, p := range []domain.Payload{run.OutputChunk{}, run.ContainerStarted{}, run.ContainerCreated{}, run.RunStarting{}, run.RunClaimed{}, run.ContainerStopped{}, run.ContainerRemoved{}, run.RunCancelRequested{}} {
		if foldsRunEvent(p.EventType()) {
			t.Errorf("%s is decoded, though nothing the dispatcher folds reads it", p.EventType())
		}
	}
}
