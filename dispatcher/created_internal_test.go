package dispatcher

import (
	"testing"

	"github.com/google/uuid"

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

// Given a decision's parts, the payloads encoded into them and what its
// commit returned, when they are kept for the fold, then the payloads of
// the parts written are kept by event id, and neither those of a part the
// store held already (whose events the feed brought before) nor those the
// fold passes over without looking them up.
func TestTheFoldTakesThePayloadsOfWhatTheCommitWrote(t *testing.T) {
	written, repeated := domain.NewEvent{ID: domain.NewEventID(), Type: "RunRequested"}, domain.NewEvent{ID: domain.NewEventID(), Type: "RunRequested"}
	output := domain.NewEvent{ID: domain.NewEventID(), Type: "OutputChunk"} // a pure builtin's, which the fold passes over
	rec := &preparedRecord{
		parts: []eventstore.StreamAppend{
			{Stream: run.Stream("new"), Events: []domain.NewEvent{written, output}},
			{Stream: run.Stream("repeat"), Events: []domain.NewEvent{repeated}},
		},
		payloads: map[uuid.UUID]domain.Payload{written.ID: run.RunRequested{Bundle: "ops"}, output.ID: run.OutputChunk{}, repeated.ID: run.RunRequested{Bundle: "old"}},
	}
	d := &Dispatcher{recorded: map[uuid.UUID]domain.Payload{}}
	d.keepRecorded(rec, []eventstore.AppendResult{{FirstPosition: 5, LastPosition: 5}, {FirstPosition: 2, LastPosition: 2, Duplicate: true}})
	if p, ok := d.recorded[written.ID].(run.RunRequested); !ok || p.Bundle != "ops" || len(d.recorded) != 1 {
		t.Fatalf("kept %v, want only the written run's RunRequested", d.recorded)
	}

	// And a map that reached its bound starts again
	for range maxRecorded {
		d.recorded[domain.NewEventID()] = run.RunRequested{}
	}
	d.keepRecorded(rec, []eventstore.AppendResult{{FirstPosition: 5, LastPosition: 5}, {FirstPosition: 2, LastPosition: 2, Duplicate: true}})
	if len(d.recorded) != 1 {
		t.Fatalf("kept %d payloads past the bound, want the map emptied and 1", len(d.recorded))
	}
}
