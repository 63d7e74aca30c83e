package run_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/run"
)

var (
	requested = run.RunRequested{RequestID: "r1", Image: "img", Argv: []string{"echo"}}
	builtin   = run.RunRequested{RequestID: "r1", Bundle: "logbook", Command: "echo", Mode: run.ModeBuiltin}
)

func TestDecideKeepsOneTerminalEventPerRun(t *testing.T) {
	t.Parallel()
	started := []domain.Payload{requested, run.ContainerCreated{ContainerID: "c1"}, run.ContainerStarted{}}
	stopped := append(append([]domain.Payload{}, started...), run.ContainerStopped{ExitCode: 0})
	finished := append(append([]domain.Payload{}, stopped...), run.RunSucceeded{})
	tests := []struct {
		name    string
		given   []domain.Payload
		when    domain.Payload
		then    []domain.Payload
		wantErr error
	}{
		{"a new run may be requested", nil, requested, []domain.Payload{requested}, nil},
		{"a run is requested only once", []domain.Payload{requested}, requested, nil, run.ErrOutOfOrder},
		{"an executor claims a requested run", []domain.Payload{requested}, run.RunClaimed{Executor: "a"}, []domain.Payload{run.RunClaimed{Executor: "a"}}, nil},
		{"the same executor's second claim records nothing", []domain.Payload{requested, run.RunClaimed{Executor: "a"}}, run.RunClaimed{Executor: "a"}, nil, nil},
		{"another executor claims a run not started", []domain.Payload{requested, run.RunClaimed{Executor: "a"}}, run.RunClaimed{Executor: "b"}, []domain.Payload{run.RunClaimed{Executor: "b"}}, nil},
		{"a started run is never claimed again", append([]domain.Payload{run.RunClaimed{Executor: "a"}}, started...), run.RunClaimed{Executor: "b"}, nil, run.ErrOutOfOrder},
		{"a finished run is not claimed", finished, run.RunClaimed{Executor: "b"}, nil, run.ErrRunFinished},
		{"the holder starts its run", []domain.Payload{requested, run.RunClaimed{Executor: "a"}}, run.RunStarting{Executor: "a"}, []domain.Payload{run.RunStarting{Executor: "a"}}, nil},
		{"only the holder starts a run", []domain.Payload{requested, run.RunClaimed{Executor: "a"}}, run.RunStarting{Executor: "b"}, nil, run.ErrOutOfOrder},
		{"a starting run is never claimed again", []domain.Payload{requested, run.RunClaimed{Executor: "a"}, run.RunStarting{Executor: "a"}}, run.RunClaimed{Executor: "b"}, nil, run.ErrOutOfOrder},
		{"nothing happens to a run never requested", nil, run.ContainerStarted{}, nil, run.ErrOutOfOrder},
		{"a requested run may fail before it has a container", []domain.Payload{requested}, run.RunFailed{Reason: "image missing"}, []domain.Payload{run.RunFailed{Reason: "image missing"}}, nil},
		{"a run gets one container", started, run.ContainerCreated{ContainerID: "c2"}, nil, run.ErrOutOfOrder},
		{"output needs a started command", []domain.Payload{requested}, run.OutputChunk{Seq: 0, Stream: run.Stdout}, nil, run.ErrOutOfOrder},
		{"the first chunk has seq 0", started, run.OutputChunk{Seq: 0, Stream: run.Stdout}, []domain.Payload{run.OutputChunk{Seq: 0, Stream: run.Stdout}}, nil},
		{"a chunk that skips a seq is rejected", started, run.OutputChunk{Seq: 1, Stream: run.Stdout}, nil, run.ErrOutOfOrder},
		{"a chunk on an unknown stream is rejected", started, run.OutputChunk{Seq: 0, Stream: "stdin"}, nil, run.ErrOutOfOrder},
		{"no output follows truncation", append(append([]domain.Payload{}, started...), run.OutputTruncated{}), run.OutputChunk{Seq: 0, Stream: run.Stdout}, nil, run.ErrOutOfOrder},
		{"a started command must stop before success", started, run.RunSucceeded{}, nil, run.ErrOutOfOrder},
		{"a started command may be lost without a stop", started, run.RunLost{Reason: "executor restarted"}, []domain.Payload{run.RunLost{Reason: "executor restarted"}}, nil},
		{"a stopped command may succeed", stopped, run.RunSucceeded{}, []domain.Payload{run.RunSucceeded{}}, nil},
		{"a second terminal event is rejected", finished, run.RunFailed{Reason: "again"}, nil, run.ErrRunFinished},
		{"output after the end is rejected", finished, run.OutputChunk{Seq: 0, Stream: run.Stdout}, nil, run.ErrRunFinished},
		{"a finished run cannot be cancelled", finished, run.RunCancelRequested{}, nil, run.ErrRunFinished},
		{"the container is removed after the end", finished, run.ContainerRemoved{ContainerID: "c1"}, []domain.Payload{run.ContainerRemoved{ContainerID: "c1"}}, nil},
		{"removing another container is rejected", finished, run.ContainerRemoved{ContainerID: "c9"}, nil, run.ErrOutOfOrder},
		{"a second removal records nothing", append(append([]domain.Payload{}, finished...), run.ContainerRemoved{ContainerID: "c1"}), run.ContainerRemoved{ContainerID: "c1"}, nil, nil},
		{"the container is not removed before the end", stopped, run.ContainerRemoved{ContainerID: "c1"}, nil, run.ErrOutOfOrder},
		{"a running run may be cancelled", started, run.RunCancelRequested{Actor: "alice"}, []domain.Payload{run.RunCancelRequested{Actor: "alice"}}, nil},
		{"a second cancel request records nothing", append(append([]domain.Payload{}, started...), run.RunCancelRequested{}), run.RunCancelRequested{Actor: "bob"}, nil, nil},
		{"a foreign event is rejected", started, domain.Raw{Type: "Other"}, nil, run.ErrOutOfOrder},
		{"a builtin run's output follows its request directly", []domain.Payload{builtin}, run.OutputChunk{Seq: 0, Stream: run.Stdout}, []domain.Payload{run.OutputChunk{Seq: 0, Stream: run.Stdout}}, nil},
		{"a builtin run's chunks are numbered too", []domain.Payload{builtin}, run.OutputChunk{Seq: 1, Stream: run.Stdout}, nil, run.ErrOutOfOrder},
		{"a builtin run has no container", []domain.Payload{builtin}, run.ContainerCreated{ContainerID: "c1"}, nil, run.ErrOutOfOrder},
		{"a builtin run does not start a container", []domain.Payload{builtin}, run.ContainerStarted{}, nil, run.ErrOutOfOrder},
		{"a builtin run stops no container", []domain.Payload{builtin, run.OutputChunk{Seq: 0, Stream: run.Stdout}}, run.ContainerStopped{}, nil, run.ErrOutOfOrder},
		{"a builtin run succeeds after its output", []domain.Payload{builtin, run.OutputChunk{Seq: 0, Stream: run.Stdout}}, run.RunSucceeded{}, []domain.Payload{run.RunSucceeded{}}, nil},
		{"a builtin run ends once", []domain.Payload{builtin, run.RunSucceeded{}}, run.RunFailed{Reason: "again"}, nil, run.ErrRunFinished},
		{"no output follows a builtin run's end", []domain.Payload{builtin, run.RunSucceeded{}}, run.OutputChunk{Seq: 0, Stream: run.Stdout}, nil, run.ErrRunFinished},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := run.Decide(run.Fold(tt.given), tt.when)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				var le *run.LifecycleError
				if !errors.As(err, &le) || le.Event != tt.when.EventType() || le.Reason == "" {
					t.Fatalf("error %v does not name the event and a reason", err)
				}
			}
			if !reflect.DeepEqual(got, tt.then) {
				t.Fatalf("events = %#v, want %#v", got, tt.then)
			}
		})
	}
}

func TestEvolveTracksTheNextSeqAndTheTerminalEvent(t *testing.T) {
	t.Parallel()
	s := run.Fold([]domain.Payload{requested, run.ContainerStarted{}, run.OutputChunk{Seq: 0, Stream: run.Stdout}, run.OutputChunk{Seq: 1, Stream: run.Stderr}, run.ContainerStopped{}, run.RunTimedOut{}})
	if s.NextSeq != 2 {
		t.Errorf("NextSeq = %d, want 2", s.NextSeq)
	}
	if s.Terminal != "RunTimedOut" || !s.Finished() {
		t.Errorf("Terminal = %q, want RunTimedOut", s.Terminal)
	}
}

func TestLimitsOrPrefersTheRunsOwnValues(t *testing.T) {
	t.Parallel()
	got := run.Limits{TimeoutMS: 5, Pids: 7}.Or(run.Limits{TimeoutMS: 1, MemoryBytes: 2, NanoCPUs: 3, Pids: 4, OutputBytes: 6})
	want := run.Limits{TimeoutMS: 5, MemoryBytes: 2, NanoCPUs: 3, Pids: 7, OutputBytes: 6}
	if got != want {
		t.Fatalf("Or = %+v, want %+v", got, want)
	}
}

func TestOutputChunkBytesRoundTripExactly(t *testing.T) {
	t.Parallel()
	raw := []byte{0xff, 0xfe, 0, 'h', 'i', 0xc3}
	ev := domain.MustEncode(run.OutputChunk{Seq: 3, Stream: run.Stderr, Bytes: raw}, domain.Metadata{})
	p, err := domain.Decode(domain.RecordedEvent{Type: ev.Type, Data: ev.Data})
	if err != nil {
		t.Fatal(err)
	}
	got := p.(run.OutputChunk)
	if !reflect.DeepEqual(got.Bytes, raw) || got.Seq != 3 || got.Stream != run.Stderr {
		t.Fatalf("decoded %+v, want bytes %v", got, raw)
	}
}

func TestOutputChunkAppendJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 24, 17, 0, 0, 123456700, time.UTC)
	for _, c := range []run.OutputChunk{
		{Seq: 0, Stream: run.Stdout, Bytes: []byte("hi\n"), At: at},
		{Seq: 12345, Stream: run.Stderr, Bytes: []byte{0, 0xff, '"', '\\'}, At: at.Add(-at.Sub(at.Truncate(time.Second)))},
		{Seq: 1, Stream: run.Stdout, Bytes: []byte{}, At: at},
		{Seq: 2, Stream: run.Stdout, At: at},
	} {
		want, _ := json.Marshal(c)
		if got := c.AppendJSON(nil); string(got) != string(want) {
			t.Errorf("AppendJSON = %s\nwant         %s", got, want)
		}
	}
}
