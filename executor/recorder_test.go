package executor

import (
	"context"
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/run"
)

// refusingGroups is a bus that takes single events and refuses any
// message carrying several.
type refusingGroups struct{ published []*message.Message }

func (b *refusingGroups) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		if m.Metadata.Get(MetaRunEvents) != "" {
			return errors.New("bus refused the message")
		}
	}
	b.published = append(b.published, msgs...)
	return nil
}

func (*refusingGroups) Close() error { return nil }

// Given a recorder holding a run's last events, when publishing them with
// the terminal event fails, then the recorder forgets them: its state is
// the one before them, and the next event it records takes the first
// held one's version, so the stream gets no gap.
func TestRecorderForgetsHeldEventsWhosePublishFailed(t *testing.T) {
	t.Parallel()
	bus := &refusingGroups{}
	past := []domain.Payload{run.RunRequested{RequestID: "req-f", Argv: []string{"/bin/x"}}, run.ContainerCreated{ContainerID: "c"}, run.ContainerStarted{ContainerID: "c"}}
	rec := newRecorder(context.Background(), GroupPublisher{bus}, TopicRunEvents, "f", domain.Metadata{}, past)
	rec.end()
	if err := rec.record(run.ContainerStopped{}); err != nil {
		t.Fatal(err)
	}
	if len(bus.published) != 0 {
		t.Fatalf("%d events published, want ContainerStopped held for the terminal event", len(bus.published))
	}
	if err := rec.record(run.RunSucceeded{}); err == nil {
		t.Fatal("the terminal event's publish succeeded on a bus that refuses it")
	}
	if s := rec.snapshot(); s.Stopped || s.Finished() {
		t.Fatalf("state %+v, want the one before the held ContainerStopped", s)
	}
	if err := rec.record(run.RunLost{Reason: "not observed"}); err != nil { // one alone passes
		t.Fatal(err)
	}
	if len(bus.published) != 1 || bus.published[0].Metadata.Get(metaVersion) != "3" {
		t.Fatalf("published %v, want RunLost at version 3, where the held ContainerStopped was", bus.published)
	}
	if err := rec.flush(); err != nil || len(bus.published) != 1 {
		t.Fatalf("flush = %v with %d published, want nothing left held", err, len(bus.published))
	}
}
