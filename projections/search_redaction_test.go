package projections_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/runbus"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/executor/executortest"
	"github.com/logbookhq/logbook/projections"
	"github.com/logbookhq/logbook/projections/projectionstest"
)

// printingRuntime prints a secret value the way commands leak them:
// split across writes far enough apart to be two chunks, base64-encoded,
// and on stderr.
type printingRuntime struct{ secret string }

func (p printingRuntime) Run(_ context.Context, spec executor.Spec, sink executor.Sink) (executor.Outcome, error) {
	sink.ContainerCreated("c-"+spec.RunID, "sha256:abc")
	sink.ContainerStarted("c-"+spec.RunID, false)
	half := len(p.secret) / 2
	_, _ = sink.Stdout().Write([]byte("connecting to 10.0.3.7 with token " + p.secret[:half]))
	time.Sleep(30 * time.Millisecond) // past the chunk interval
	_, _ = sink.Stdout().Write([]byte(p.secret[half:] + "\nbasic " + base64.StdEncoding.EncodeToString([]byte(p.secret)) + "\n"))
	_, _ = sink.Stderr().Write([]byte("retrying with " + p.secret + "\n"))
	return executor.Outcome{Started: true, ContainerID: "c-" + spec.RunID, Release: func(context.Context) error { return nil }}, nil
}

// Output reaches the log redacted, and the search view indexes only what
// the log holds: a secret a command printed is found neither by its value
// nor by a piece of it, in the documents or the full-text indexes, while
// the rest of the line is.
func TestSearchNeverIndexesASecretInTheClear(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-Value-9f8e7d6c5b4a"
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		ctx := context.Background()
		src := open(t)
		appendTo(t, src, dispatch.Stream("q-secret"),
			dispatch.RequestReceived{Adapter: "slack", MessageID: "m", Room: "ops", ChatUser: "ann", Text: "db connect"},
			dispatch.IdentityResolved{User: "u-ann", Username: "ann"})
		e, err := executor.NewExecutorWithConfig(executor.Config{
			Runtime: printingRuntime{secret}, Store: src, Publisher: executortest.AppendingPublisher{Appender: executor.NewAppender(src)},
			Chunking: executor.ChunkerConfig{Interval: 5 * time.Millisecond}, Logger: zerolog.New(zerolog.NewTestWriter(t)),
		})
		if err != nil {
			t.Fatal(err)
		}
		req := runbus.RunRequest{RunID: "r-secret", Env: map[string]string{"DB_TOKEN": secret}, Request: run.RunRequested{
			RequestID: "q-secret", Bundle: "db", Command: "connect", Image: "img", Argv: []string{"/bin/connect"},
			EnvNames: []string{"DB_TOKEN"}, Secrets: []run.SecretRef{{Name: "DB_TOKEN", Layer: "base", Version: 1}},
		}}
		if err := e.Execute(req); err != nil {
			t.Fatal(err)
		}
		if err := e.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		catchUp(t, src, projections.NewHistory(), projections.NewSearch())
		reader := projections.NewSearchReader(projections.DBOf(src))
		search := func(q string) []string {
			t.Helper()
			query, err := projections.ParseSearchQuery(q)
			if err != nil {
				t.Fatal(err)
			}
			page, err := reader.Search(ctx, projections.SearchFilter{Query: query})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, h := range page.Hits {
				out = append(out, hitString(h))
			}
			return out
		}
		for _, q := range []string{secret, secret[:10], secret[8:20], "s3cr3t", base64.StdEncoding.EncodeToString([]byte(secret))[:12]} {
			if hits := search(q); len(hits) > 0 {
				t.Fatalf("searching %q finds %v", q, hits)
			}
		}
		hits := search("DB_TOKEN")
		// stderr's line, then the chunk that holds stdout's first two.
		if len(hits) != 2 || !strings.HasSuffix(hits[0], "L3: retrying with [redacted: [DB_TOKEN]]") ||
			!strings.HasSuffix(hits[1], "L1: connecting to 10.0.3.7 with token [redacted: [DB_TOKEN]]") {
			t.Fatalf("searching the secret's name finds %v", hits)
		}
		// Nothing of the view's tables holds it either (SQLite's
		// full-text indexes read their text from view_search_docs).
		dump, err := projectionstest.Dump(ctx, src.DB(), projections.NewSearch().Tables())
		if err != nil {
			t.Fatal(err)
		}
		for table, rows := range dump {
			for _, row := range rows {
				if strings.Contains(row, secret[:10]) || strings.Contains(row, secret[10:]) {
					t.Fatalf("%s holds the secret: %s", table, row)
				}
			}
		}
	})
}
