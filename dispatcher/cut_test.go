package dispatcher_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
)

// A command whose output is longer than a reply holds is answered with
// the start of it, a line saying it was cut, and the link to the whole
// transcript, as a chat reply cut by its provider's limits is.
func TestAReplyCutShortSaysSoAndLinksTheTranscript(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	d := startWithSampleBundle(t, store, store, func(cfg *dispatcher.Config) {
		cfg.TranscriptURL = func(runID string) string { return "https://logbook.example/runs/" + runID + "/transcript" }
	})

	// Given a command whose run printed more than its result holds (the
	// executor parsed the start of it, up to its last whole line).
	in := dispatch.RequestReceived{Adapter: "api", MessageID: "long-output", Room: "api", ChatUser: "admin", Text: "toolbox:seq 100000", Sender: "admin"}
	reply := d.WaitForReply(t.Context(), in.ID())
	if _, err := d.Receive(ctx, in, "admin"); err != nil {
		t.Fatal(err)
	}
	runID := dispatch.RunID(in.ID(), 0, 0)
	parsed, err := run.ParseCogOutput([]byte(strings.Repeat("12345\n", 10)+"123"), false)
	if err != nil {
		t.Fatal(err)
	}
	ended := domain.MustEncode(run.RunSucceeded{Result: parsed}, domain.Metadata{Actor: "executor"})
	if _, err := store.Append(ctx, run.Stream(runID), eventstore.Exact(0), ended); err != nil {
		t.Fatal(err)
	}

	// Then the reply ends at the last whole line, says it was cut, and
	// links the transcript.
	select {
	case got := <-reply:
		link := "https://logbook.example/runs/" + runID + "/transcript"
		want := strings.Repeat("12345\n", 10) + "[output cut: this is its start; the whole transcript: " + link + "]"
		if got.Text != want || got.CutRunID != runID || got.Transcript != link {
			t.Fatalf("the reply is %q (cut run %q, transcript %q)\nwant %q", got.Text, got.CutRunID, got.Transcript, want)
		}
		// And so does its rendering, which is what is posted: the notice a
		// paragraph of its own after the output.
		notice := "[output cut: this is its start; the whole transcript: " + link + "]"
		if got.Rendered == nil || got.Rendered.Text != strings.Repeat("12345\n", 10)+"\n"+notice {
			t.Fatalf("the rendered reply is %+v\nwant the output, then %q", got.Rendered, notice)
		}
		var v any
		if json.Unmarshal(got.Value, &v) != nil {
			t.Fatalf("the reply's value is not JSON: %s", got.Value)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reply within 10s")
	}
}
