package executor

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

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

// publishes records each Publish call's messages as one entry, the
// events a group message carries counted one by one.
type publishes struct {
	mu    sync.Mutex
	calls [][]string // the event types of each Publish
}

func (b *publishes) Publish(_ string, msgs ...*message.Message) error {
	var types []string
	for _, m := range msgs {
		events, err := DecodeRunEventsMessage(m)
		if err != nil {
			return err
		}
		if events == nil {
			events = []*message.Message{m}
		}
		for _, e := range events {
			types = append(types, e.Metadata.Get(metaType))
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, types)
	return nil
}

func (*publishes) Close() error { return nil }

func (b *publishes) got() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, c := range b.calls {
		out = append(out, "["+strings.Join(c, " ")+"]")
	}
	return strings.Join(out, " ")
}

func claimedRun() []domain.Payload {
	return []domain.Payload{run.RunRequested{RequestID: "req-h", Argv: []string{"/bin/x"}}, run.RunClaimed{Executor: "e1"}, run.RunStarting{}}
}

// Given a claimed run on a broker, when its command ends within the hold,
// then ContainerStarted, its output and its end go in one Publish; when
// the command outlasts the hold, then what was held goes when the hold
// ends and the output after it as it comes.
func TestAClaimedRunsStartWaitsForItsEndWithinTheHold(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		// A short command
		bus := &publishes{}
		rec := newRecorder(context.Background(), GroupPublisher{bus}, TopicRunEvents, "h", domain.Metadata{}, claimedRun())
		rec.holdStarted(100*time.Millisecond, zerolog.Nop())
		mustRecord(t, rec, run.ContainerStarted{ContainerID: "w", Warm: true}, run.OutputChunk{Stream: run.Stdout, Bytes: []byte("hi\n")})
		time.Sleep(50 * time.Millisecond)
		if got := bus.got(); got != "" {
			t.Fatalf("published %s within the hold, want nothing yet", got)
		}
		rec.end()
		mustRecord(t, rec, run.ContainerStopped{}, run.RunSucceeded{})
		if got, want := bus.got(), "[ContainerStarted OutputChunk ContainerStopped RunSucceeded]"; got != want {
			t.Fatalf("published %s, want %s", got, want)
		}
		time.Sleep(time.Second) // the hold's timer, stopped, publishes nothing more
		synctest.Wait()
		if got, want := bus.got(), "[ContainerStarted OutputChunk ContainerStopped RunSucceeded]"; got != want {
			t.Fatalf("published %s after the hold, want %s", got, want)
		}

		// A long command
		bus = &publishes{}
		rec = newRecorder(context.Background(), GroupPublisher{bus}, TopicRunEvents, "l", domain.Metadata{}, claimedRun())
		rec.holdStarted(100*time.Millisecond, zerolog.Nop())
		mustRecord(t, rec, run.ContainerStarted{ContainerID: "w", Warm: true}, run.OutputChunk{Stream: run.Stdout, Bytes: []byte("one\n")})
		time.Sleep(150 * time.Millisecond)
		synctest.Wait()
		if got, want := bus.got(), "[ContainerStarted OutputChunk]"; got != want {
			t.Fatalf("published %s once the hold ended, want %s", got, want)
		}
		mustRecord(t, rec, run.OutputChunk{Stream: run.Stdout, Seq: 1, Bytes: []byte("two\n")})
		rec.end()
		mustRecord(t, rec, run.ContainerStopped{}, run.RunSucceeded{})
		if got, want := bus.got(), "[ContainerStarted OutputChunk] [OutputChunk] [ContainerStopped RunSucceeded]"; got != want {
			t.Fatalf("published %s, want %s", got, want)
		}
	})
}

// Given a run that was not claimed (the embedded bus, where a restarted
// server reads ContainerStarted to know the command began), when its
// container starts, then ContainerStarted goes at once, whatever the hold.
func TestAnUnclaimedRunsStartIsNeverHeld(t *testing.T) {
	t.Parallel()
	bus := &publishes{}
	rec := newRecorder(context.Background(), GroupPublisher{bus}, TopicRunEvents, "u", domain.Metadata{}, []domain.Payload{run.RunRequested{RequestID: "req-u", Argv: []string{"/bin/x"}}})
	rec.holdStarted(time.Hour, zerolog.Nop())
	mustRecord(t, rec, run.ContainerStarted{ContainerID: "w", Warm: true})
	if got, want := bus.got(), "[ContainerStarted]"; got != want {
		t.Fatalf("published %s, want %s", got, want)
	}
}

func mustRecord(t *testing.T, rec *recorder, events ...domain.Payload) {
	t.Helper()
	for _, p := range events {
		if err := rec.record(p); err != nil {
			t.Fatalf("record %s: %v", p.EventType(), err)
		}
	}
}
