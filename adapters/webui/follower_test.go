package webui

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/run"
)

// recorded makes a stored event of p in stream, at position.
func recorded(t *testing.T, stream string, position int64, p domain.Payload) domain.RecordedEvent {
	t.Helper()
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return domain.RecordedEvent{Stream: stream, Position: position, Type: p.EventType(), Data: data, RawMetadata: json.RawMessage(`{}`)}
}

func TestTheFollowerTurnsARequestsEventsIntoConsoleMessages(t *testing.T) {
	received := dispatch.RequestReceived{Adapter: "web", MessageID: "m1", Room: "console", ChatUser: "alice", Text: "toolbox:echo hi"}
	id := dispatch.RequestID("web", "m1")
	runID := dispatch.RunID(id, 0, 0)
	stages, _ := json.Marshal([]map[string]any{{"command": "toolbox:echo", "args": []string{"hi"}}})
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	req, runStream := dispatch.Stream(id), run.Stream(runID)

	// Given a request whose run was recorded first, printed on both
	// streams and succeeded, and whose reply was posted;
	events := []domain.RecordedEvent{
		recorded(t, runStream, 1, run.RunRequested{RequestID: id, Bundle: "toolbox", Command: "echo", Stage: 0}),
		recorded(t, req, 2, received),
		recorded(t, req, 3, dispatch.IdentityResolved{User: "u1", Username: "alice"}),
		recorded(t, req, 4, dispatch.PipelineParsed{Stages: stages, Redirects: json.RawMessage(`[]`)}),
		recorded(t, req, 5, dispatch.PermissionChecked{Stage: 0, Command: "toolbox:echo", Granted: true}),
		recorded(t, req, 6, dispatch.StageStarted{Stage: 0, RunID: runID}),
		recorded(t, runStream, 7, run.OutputChunk{Seq: 0, Stream: run.Stdout, Bytes: []byte("hi\n"), At: at}),
		recorded(t, runStream, 8, run.OutputChunk{Seq: 1, Stream: run.Stderr, Bytes: []byte{'x', 0xff, '\n'}, At: at}),
		recorded(t, runStream, 9, run.RunSucceeded{Result: run.Result{Value: json.RawMessage(`[{"body":["hi"]}]`)}}),
		recorded(t, req, 10, dispatch.RequestCompleted{Output: json.RawMessage(`[{"body":["hi"]}]`)}),
		recorded(t, req, 11, dispatch.ReplyPosted{Adapter: "web", Room: "console"}),
		recorded(t, "run-someone-elses", 12, run.OutputChunk{Seq: 0, Stream: run.Stdout, Bytes: []byte("not ours"), At: at}),
	}
	// when the follower folds them in order,
	f := newRequestFollower(id)
	var got []sseMessage
	for _, e := range events {
		msgs, err := f.apply(e)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, msgs...)
	}
	// then it sends the run, both chunks (invalid UTF-8 shown as U+FFFD)
	// and the run's end, and the reply is the dispatcher's.
	want := []sseMessage{
		{eventRun, runStarted{RunID: runID, Command: "toolbox:echo", Stage: 0}},
		{eventChunk, chunkOut{RunID: runID, Seq: 0, Stream: "stdout", Text: "hi\n"}},
		{eventChunk, chunkOut{RunID: runID, Seq: 1, Stream: "stderr", Text: "x\uFFFD\n"}},
		{eventRunEnd, runEnded{RunID: runID, Status: "succeeded"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sent %+v\nwant %+v", got, want)
	}
	if !f.ended() {
		t.Fatal("the request has not ended")
	}
	reply, ok := f.reply()
	if !ok || reply.Text != "hi" || reply.Failed || reply.Adapter != "web" {
		t.Fatalf("the reply is %+v (%v)", reply, ok)
	}
}

func TestTheFollowerRendersADenialsReply(t *testing.T) {
	id := dispatch.RequestID("web", "m2")
	req := dispatch.Stream(id)
	// Given a denied request,
	events := []domain.RecordedEvent{
		recorded(t, req, 1, dispatch.RequestReceived{Adapter: "web", MessageID: "m2", Room: "console", ChatUser: "bob", Text: "toolbox:shout"}),
		recorded(t, req, 2, dispatch.IdentityResolved{User: "u2", Username: "bob"}),
		recorded(t, req, 3, dispatch.RequestDenied{Reason: "toolbox:shout needs toolbox:loud"}),
	}
	f := newRequestFollower(id)
	for _, e := range events {
		if msgs, err := f.apply(e); err != nil || len(msgs) != 0 {
			t.Fatalf("a request event sent %v (%v)", msgs, err)
		}
	}
	// then it has ended, and the reply says why, as failed.
	reply, ok := f.reply()
	if !f.ended() || !ok || !reply.Failed || reply.Text != "Denied: toolbox:shout needs toolbox:loud" {
		t.Fatalf("ended %v, reply %+v", f.ended(), reply)
	}
}
