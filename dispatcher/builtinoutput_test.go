package dispatcher_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/internal/testenv"
	"github.com/logbookhq/logbook/projections"
)

// runEvents decodes a run's stream.
func runEvents(t *testing.T, h *harness, runID string) []domain.Payload {
	t.Helper()
	events, err := h.store.ReadStream(context.Background(), run.Stream(runID), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]domain.Payload, len(events))
	for i, e := range events {
		if out[i], err = domain.Decode(e); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// A builtin run records its output as a container run does, so its
// transcript is not empty.
func TestABuiltinRunsOutputIsInItsTranscript(t *testing.T) {
	h := startAdmin(t)
	messageID := "transcript-echo"
	h.say(t, messageID, "admin", "echo hello")
	runID := dispatch.RunID(apiRequestID("admin", messageID), 0, 0)

	events := runEvents(t, h, runID)
	var types []string
	for _, p := range events {
		types = append(types, p.EventType())
	}
	if strings.Join(types, " ") != "RunRequested OutputChunk RunSucceeded" {
		t.Fatalf("run stream = %v, want RunRequested OutputChunk RunSucceeded", types)
	}
	if chunk := events[1].(run.OutputChunk); chunk.Seq != 0 || chunk.Stream != run.Stdout || string(chunk.Bytes) != "hello\n" {
		t.Fatalf("chunk = %+v, want stdout seq 0 \"hello\\n\"", chunk)
	}
	state := run.Fold(events)
	if state.Terminal != "RunSucceeded" || state.NextSeq != 1 {
		t.Fatalf("run state = %+v", state)
	}

	transcripts := projections.NewTranscriptReader(projections.DBOf(h.store))
	var out []byte
	testenv.Eventually(t, "the transcript view to hold the output", func() bool {
		out, _ = transcripts.Output(context.Background(), runID, "")
		return len(out) > 0
	})
	if string(out) != "hello\n" {
		t.Fatalf("transcript = %q, want \"hello\\n\"", out)
	}
	chunks, err := transcripts.Chunks(context.Background(), runID, -1, 10)
	if err != nil || len(chunks) != 1 || chunks[0].Offset != 0 {
		t.Fatalf("chunks = %+v, %v; want one, at offset 0", chunks, err)
	}
	var shown string
	testenv.Eventually(t, "the history view to know the run", func() bool {
		reply := h.as(t, "admin", "transcript "+runID)
		shown = reply.Text
		return !reply.Failed
	})
	if !strings.Contains(shown, "hello") || strings.Contains(shown, "(no output)") {
		t.Fatalf("transcript builtin = %q, want the run's output", shown)
	}
}

// A token a builtin shows is kept out of its recorded output too: the
// chunk holds the placeholder.
func TestAnIssuedTokenIsNotInTheRunsOutput(t *testing.T) {
	h := startAdmin(t)
	h.must(t, "admin", "user create carol")
	messageID := "token-output"
	reply := h.say(t, messageID, "admin", "user token carol")
	token := tokenPattern.FindString(reply.Text)
	if token == "" {
		t.Fatalf("the reply has no token: %q", reply.Text)
	}
	var output []byte
	for _, p := range runEvents(t, h, dispatch.RunID(apiRequestID("admin", messageID), 0, 0)) {
		if c, ok := p.(run.OutputChunk); ok {
			output = append(output, c.Bytes...)
		}
	}
	if !bytes.Contains(output, []byte("[secret:")) || bytes.Contains(output, []byte(token)) {
		t.Fatalf("recorded output %q: want the placeholder, not the token", output)
	}
}
