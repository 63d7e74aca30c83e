package run_test

import (
	"bytes"
	"testing"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/run"
)

// RunRequested gained the user its command runs as. Events stored before
// have none and still decode, meaning the image's user, as they ran.
func TestRunRequestedRecordsItsUserAndStoredEventsWithoutOneStillDecode(t *testing.T) {
	t.Parallel()
	decode := func(data string) run.RunRequested {
		t.Helper()
		p, err := domain.Decode(domain.RecordedEvent{Type: "RunRequested", Data: []byte(data)})
		if err != nil {
			t.Fatal(err)
		}
		return p.(run.RunRequested)
	}
	old := decode(`{"request_id":"r1","stage":0,"bundle":"b","version":"1.0","command":"c","image":"img","argv":["c"],"limits":{},"mode":"fresh","invocation":{}}`)
	if old.User != nil {
		t.Fatalf("an event without a user decoded with user %v, want none (the image's user)", *old.User)
	}
	e := domain.MustEncode(run.RunRequested{RequestID: "r1", Image: "img", Argv: []string{"c"}, User: &run.DefaultUser}, domain.Metadata{})
	if !bytes.Contains(e.Data, []byte(`"user":{"uid":65534,"gid":65534}`)) {
		t.Fatalf("encoded %s, want the user's uid and gid", e.Data)
	}
	if got := decode(string(e.Data)); got.User == nil || *got.User != run.DefaultUser {
		t.Fatalf("decoded user %v, want %v", got.User, run.DefaultUser)
	}
	if without := domain.MustEncode(run.RunRequested{RequestID: "r1"}, domain.Metadata{}); bytes.Contains(without.Data, []byte(`"user"`)) {
		t.Fatalf("a run without a user encoded %s, want no user field", without.Data)
	}
	if got := run.DefaultUser.String(); got != "65534:65534" {
		t.Fatalf("String = %q", got)
	}
}

// IsTerminalType, for an event still encoded, agrees with IsTerminal on
// every kind of run event.
func TestIsTerminalTypeAgreesWithIsTerminal(t *testing.T) {
	for _, p := range []domain.Payload{
		run.RunRequested{}, run.ContainerCreated{}, run.ContainerStarted{}, run.OutputChunk{}, run.OutputTruncated{},
		run.ContainerStopped{}, run.OutputRedacted{}, run.RunCancelRequested{}, run.ContainerRemoved{},
		run.RunSucceeded{}, run.RunFailed{}, run.RunTimedOut{}, run.RunCancelled{}, run.RunLost{},
	} {
		if got, want := run.IsTerminalType(p.EventType()), run.IsTerminal(p); got != want {
			t.Errorf("IsTerminalType(%q) = %v, IsTerminal says %v", p.EventType(), got, want)
		}
	}
	if run.IsTerminalType("RequestCompleted") {
		t.Error("a request's event ends no run")
	}
}
