package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/adapters/postgres"
	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/internal/testenv"
	"github.com/logbookhq/logbook/projections"
)

const goodToken = "lbk_good"

// oneUser knows a single token, alice's; she holds logbook:read_history,
// so these tests read every user's requests.
type oneUser struct{}

func (oneUser) UserForToken(token string) (access.UserInfo, bool) {
	return access.UserInfo{ID: "u-alice", Username: "alice"}, token == goodToken
}
func (oneUser) UserByUsername(string) (access.UserInfo, bool) { return access.UserInfo{}, false }
func (oneUser) PermissionsOf(string) []string                 { return []string{access.PermReadHistory} }

// fixture is a real store with the views running, behind the API.
type fixture struct {
	store projections.Source
	url   string
}

func openSQLite(t *testing.T) projections.Source {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// openPostgres skips or fails, by internal/testenv's rule, without Postgres.
func openPostgres(t *testing.T) projections.Source {
	t.Helper()
	store, err := postgres.Open(context.Background(), testenv.PostgresSchema(t), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

func newFixture(t *testing.T) *fixture { return newFixtureOn(t, openSQLite(t)) }

func newFixtureOn(t *testing.T, store projections.Source) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	views, err := projections.NewRunner(store, projections.Config{}, projections.NewHistory(), projections.NewTranscripts())
	if err != nil {
		t.Fatal(err)
	}
	live := eventstore.NewHub(store, eventstore.HubOptions{})
	done := make(chan error, 2)
	go func() { done <- views.Run(ctx) }()
	go func() { done <- live.Run(ctx) }()
	db := projections.DBOf(store)
	api := &httpapi.API{Users: oneUser{}, History: projections.NewHistoryReader(db), Transcripts: projections.NewTranscriptReader(db), Events: store, Views: views, Live: live}
	srv := httptest.NewServer(httpapi.NewHandler(alwaysReady, func() *httpapi.API { return api }))
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		<-done
		store.Close()
	})
	return &fixture{store: store, url: srv.URL}
}

func (f *fixture) append(t *testing.T, stream string, payloads ...domain.Payload) {
	t.Helper()
	events := make([]domain.NewEvent, len(payloads))
	for i, p := range payloads {
		events[i] = domain.MustEncode(p, domain.Metadata{Actor: "test"})
	}
	if _, err := f.store.Append(context.Background(), stream, eventstore.Any, events...); err != nil {
		t.Fatal(err)
	}
}

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// request records a completed one-stage request by username on adapter,
// whose run printed chunks (stdout, then stderr when there are two), and
// returns the request and run ids.
func (f *fixture) request(t *testing.T, adapter, username, command string, chunks ...string) (string, string) {
	t.Helper()
	messageID := fmt.Sprintf("m-%d", time.Now().UnixNano())
	id := dispatch.RequestID(adapter, messageID)
	runID := id + "-s0-i0"
	bundle, name, _ := strings.Cut(command, ":")
	stages, _ := json.Marshal([]map[string]string{{"command": command, "bundle": bundle, "name": name}})
	f.append(t, dispatch.Stream(id),
		dispatch.RequestReceived{Adapter: adapter, MessageID: messageID, Room: "#ops", ChatUser: username, Text: command},
		dispatch.IdentityResolved{User: "u-" + username, Username: username},
		dispatch.PipelineParsed{Stages: stages, Redirects: json.RawMessage("[]")},
		dispatch.StageStarted{Stage: 0, RunID: runID})
	payloads := []domain.Payload{
		run.RunRequested{RequestID: id, Bundle: bundle, Version: "1.0.0", Command: name, Image: "toolbox:1", Argv: []string{name}},
		run.ContainerStarted{ContainerID: "c-" + runID},
	}
	for i, c := range chunks {
		stream := run.Stdout
		if i == 1 {
			stream = run.Stderr
		}
		payloads = append(payloads, run.OutputChunk{Seq: int64(i), Stream: stream, Bytes: []byte(c), At: t0.Add(time.Duration(i) * time.Millisecond)})
	}
	payloads = append(payloads, run.ContainerStopped{ExitCode: 0, DurationMS: 12}, run.RunSucceeded{})
	f.append(t, run.Stream(runID), payloads...)
	f.append(t, dispatch.Stream(id), dispatch.RequestCompleted{Output: json.RawMessage(`[]`)})
	return id, runID
}

func (f *fixture) get(t *testing.T, path, token string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	return v
}

func TestHistoryAndRunsListWhatHappenedNewestFirstWithFilters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	first, firstRun := f.request(t, "api", "alice", "toolbox:echo", "hello\n")
	second, _ := f.request(t, "slack", "bob", "toolbox:seq", "1\n")

	code, _, body := f.get(t, "/v1/history", goodToken)
	page := decode[httpapi.HistoryPage](t, body)
	if code != http.StatusOK || len(page.Requests) != 2 || page.Requests[0].RequestID != second || page.Requests[1].RequestID != first {
		t.Fatalf("GET /v1/history = %d %s; want both requests, newest first", code, body)
	}
	got := page.Requests[1]
	if got.Status != "completed" || got.Username != "alice" || got.Adapter != "api" || got.Commands != "toolbox:echo" || got.Received == nil || got.Ended == nil {
		t.Fatalf("alice's request reads %s", body)
	}

	tests := []struct {
		name, query string
		want        []string
	}{
		{"a user filter keeps that user's requests", "?user=alice", []string{first}},
		{"a provider filter keeps that provider's requests", "?provider=slack", []string{second}},
		{"a command filter matches a stage's command", "?command=toolbox:seq", []string{second}},
		{"a status filter keeps requests in that status", "?status=failed", nil},
		{"a since after everything keeps nothing", "?since=2999-01-01T00:00:00Z", nil},
		{"an until before everything keeps nothing", "?until=2000-01-01T00:00:00Z", nil},
		{"a room filter keeps that room's requests", "?room=%23ops", []string{second, first}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := f.get(t, "/v1/history"+tt.query, goodToken)
			page := decode[httpapi.HistoryPage](t, body)
			var ids []string
			for _, r := range page.Requests {
				ids = append(ids, r.RequestID)
			}
			if code != http.StatusOK || strings.Join(ids, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("%s = %d %v; want %v", tt.query, code, ids, tt.want)
			}
		})
	}

	code, _, body = f.get(t, "/v1/runs?user=alice", goodToken)
	runs := decode[httpapi.RunsPage](t, body)
	if code != http.StatusOK || len(runs.Runs) != 1 || runs.Runs[0].RunID != firstRun || runs.Runs[0].Status != "succeeded" ||
		runs.Runs[0].Command != "toolbox:echo" || runs.Runs[0].Exit == nil || *runs.Runs[0].Exit != 0 {
		t.Fatalf("GET /v1/runs?user=alice = %d %s", code, body)
	}
}

func TestListsPageByCursorWithoutRepeatsOrGaps(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var want []string
	for range 5 {
		id, _ := f.request(t, "api", "alice", "toolbox:echo")
		want = append([]string{id}, want...)
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("the pages never end")
		}
		code, _, body := f.get(t, "/v1/history?limit=2&cursor="+cursor, goodToken)
		if code != http.StatusOK {
			t.Fatalf("page %d: %d %s", pages, code, body)
		}
		page := decode[httpapi.HistoryPage](t, body)
		for _, r := range page.Requests {
			got = append(got, r.RequestID)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("paged through %v\nwant %v", got, want)
	}
}

func TestBadInputIsAnsweredWithWhatIsWrong(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, runID := f.request(t, "api", "alice", "toolbox:echo", "hi\n")
	tests := []struct {
		name, path, token string
		code              int
		mention           string
	}{
		{"no token is unauthorized", "/v1/history", "", 401, "Bearer"},
		{"a wrong token is unauthorized", "/v1/runs/" + runID, "lbk_wrong", 401, "not valid"},
		{"a wrong token learns nothing of an unknown run", "/v1/runs/nope/transcript", "lbk_wrong", 401, "not valid"},
		{"a malformed since names since", "/v1/history?since=yesterday", goodToken, 400, "since"},
		{"a malformed until names until", "/v1/runs?until=3pm", goodToken, 400, "until"},
		{"an until before since names until", "/v1/runs?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", goodToken, 400, "until"},
		{"a limit over 200 names limit", "/v1/runs?limit=201", goodToken, 400, "limit"},
		{"a limit of zero names limit", "/v1/history?limit=0", goodToken, 400, "limit"},
		{"an unknown status names status", "/v1/runs?status=completed", goodToken, 400, "status"},
		{"a forged cursor names cursor", "/v1/history?cursor=abc", goodToken, 400, "cursor"},
		{"an unknown parameter is named", "/v1/history?usr=alice", goodToken, 400, "usr"},
		{"a repeated parameter is named", "/v1/history?user=a&user=b", goodToken, 400, "user"},
		{"an unknown request is not found", "/v1/requests/nope", goodToken, 404, "nope"},
		{"an unknown run is not found", "/v1/runs/nope", goodToken, 404, "nope"},
		{"an unknown run has no transcript", "/v1/runs/nope/transcript", goodToken, 404, "nope"},
		{"a bad stream names stream", "/v1/runs/" + runID + "/transcript?stream=stdin", goodToken, 400, "stream"},
		{"a bad format names format", "/v1/runs/" + runID + "/transcript?format=html", goodToken, 400, "format"},
		{"a bad follow names follow", "/v1/runs/" + runID + "/transcript?follow=yes", goodToken, 400, "follow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := f.get(t, tt.path, tt.token)
			if code != tt.code || !strings.Contains(string(body), tt.mention) {
				t.Fatalf("GET %s = %d %s; want %d mentioning %q", tt.path, code, body, tt.code, tt.mention)
			}
			if tt.code == 401 && strings.Contains(string(body), "nope") {
				t.Fatalf("a 401 said something about the resource: %s", body)
			}
		})
	}
}

func TestDetailsCarryTheRowAndTheWholeEventChain(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id, runID := f.request(t, "api", "alice", "toolbox:echo", "hello\n")

	code, _, body := f.get(t, "/v1/requests/"+id, goodToken)
	req := decode[httpapi.RequestDetail](t, body)
	var types []string
	for i, e := range req.Events {
		types = append(types, e.Type)
		if e.Version != int64(i) || e.Position < 1 || e.RecordedAt.IsZero() || len(e.Data) == 0 {
			t.Fatalf("event %d is incomplete: %+v", i, e)
		}
	}
	if code != http.StatusOK || req.Request.RequestID != id || req.Request.Status != "completed" ||
		strings.Join(types, " ") != "RequestReceived IdentityResolved PipelineParsed StageStarted RequestCompleted" {
		t.Fatalf("GET /v1/requests/%s = %d %s", id, code, body)
	}

	code, _, body = f.get(t, "/v1/runs/"+runID, goodToken)
	rd := decode[httpapi.RunDetail](t, body)
	types = nil
	for _, e := range rd.Events {
		types = append(types, e.Type)
	}
	if code != http.StatusOK || rd.Run.RunID != runID || rd.Run.RequestID != id ||
		strings.Join(types, " ") != "RunRequested ContainerStarted OutputChunk ContainerStopped RunSucceeded" {
		t.Fatalf("GET /v1/runs/%s = %d %s", runID, code, body)
	}
}

func TestTranscriptsAreTheExactBytesOrChunks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	binary := "out\x00\xff\n"
	_, runID := f.request(t, "api", "alice", "toolbox:echo", binary, "warn\r\n")
	tests := []struct {
		name, query, want string
	}{
		{"by default both streams interleave as produced", "", binary + "warn\r\n"},
		{"stdout alone", "?stream=stdout", binary},
		{"stderr alone", "?stream=stderr", "warn\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, header, body := f.get(t, "/v1/runs/"+runID+"/transcript"+tt.query, goodToken)
			if code != http.StatusOK || string(body) != tt.want || !strings.HasPrefix(header.Get("Content-Type"), "text/plain") {
				t.Fatalf("transcript%s = %d %q (%s); want %q", tt.query, code, body, header.Get("Content-Type"), tt.want)
			}
		})
	}

	code, _, body := f.get(t, "/v1/runs/"+runID+"/transcript?format=chunks&stream=stderr", goodToken)
	tv := decode[httpapi.TranscriptView](t, body)
	if code != http.StatusOK || tv.RunID != runID || len(tv.Chunks) != 1 || tv.Chunks[0].Seq != 1 ||
		string(tv.Chunks[0].Bytes) != "warn\r\n" || tv.Chunks[0].Stream != "stderr" || tv.Chunks[0].OffsetMS < 0 {
		t.Fatalf("chunks = %d %s", code, body)
	}
	if !strings.Contains(string(body), `"bytes":"d2Fybg0K"`) {
		t.Fatalf("chunk bytes are not base64: %s", body)
	}
}

// sse reads Server-Sent Events from r and sends each on the channel.
type sseEvent struct{ id, event, data string }

func readSSE(r io.Reader, out chan<- sseEvent) {
	defer close(out)
	scanner := bufio.NewScanner(r)
	var e sseEvent
	for scanner.Scan() {
		line := scanner.Text()
		switch {
		case line == "":
			out <- e
			e = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			e.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			e.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			e.data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func TestFollowingATranscriptStreamsNewChunksUntilTheRunEnds(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(*testing.T) projections.Source{"on SQLite": openSQLite, "on Postgres": openPostgres} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			followUntilTheEnd(t, newFixtureOn(t, open(t)))
		})
	}
}

func followUntilTheEnd(t *testing.T, f *fixture) {
	runID := "follow-me"
	f.append(t, run.Stream(runID),
		run.RunRequested{RequestID: "q", Bundle: "toolbox", Command: "seq"},
		run.ContainerStarted{ContainerID: "c"},
		run.OutputChunk{Seq: 0, Stream: run.Stdout, Bytes: []byte("1\n"), At: t0})

	req, _ := http.NewRequest(http.MethodGet, f.url+"/v1/runs/"+runID+"/transcript?follow=1", nil)
	req.Header.Set("Authorization", "Bearer "+goodToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("follow answered %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	events := make(chan sseEvent)
	go readSSE(resp.Body, events)
	next := func() sseEvent {
		t.Helper()
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("the stream ended early")
			}
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no event within 10s")
		}
		return sseEvent{}
	}
	chunkBytes := func(e sseEvent) string {
		t.Helper()
		var c httpapi.ChunkView
		if e.event != httpapi.SSEChunk || json.Unmarshal([]byte(e.data), &c) != nil || e.id != fmt.Sprint(c.Seq) {
			t.Fatalf("want a chunk event, got %+v", e)
		}
		return string(c.Bytes)
	}
	if got := chunkBytes(next()); got != "1\n" {
		t.Fatalf("the stored chunk came as %q", got)
	}
	// Out of order: seq 2 waits for seq 1.
	f.append(t, run.Stream(runID), run.OutputChunk{Seq: 2, Stream: run.Stdout, Bytes: []byte("3\n"), At: t0.Add(2 * time.Millisecond)})
	f.append(t, run.Stream(runID), run.OutputChunk{Seq: 1, Stream: run.Stdout, Bytes: []byte("2\n"), At: t0.Add(time.Millisecond)})
	if got := chunkBytes(next()) + chunkBytes(next()); got != "2\n3\n" {
		t.Fatalf("live chunks came as %q", got)
	}
	f.append(t, run.Stream(runID), run.ContainerStopped{ExitCode: 1}, run.RunFailed{Reason: "exit 1"})
	end := next()
	var status httpapi.TranscriptEnd
	if end.event != httpapi.SSEEnd || json.Unmarshal([]byte(end.data), &status) != nil || status.Status != "failed" || status.RunID != runID {
		t.Fatalf("the last event is %+v", end)
	}
	if e, ok := <-events; ok {
		t.Fatalf("an event after the end: %+v", e)
	}
}

func TestFollowingAFinishedRunReplaysItAndEnds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, runID := f.request(t, "api", "alice", "toolbox:echo", "a", "b")
	req, _ := http.NewRequest(http.MethodGet, f.url+"/v1/runs/"+runID+"/transcript?follow=1&stream=stderr", nil)
	req.Header.Set("Authorization", "Bearer "+goodToken)
	req.Header.Set("Last-Event-ID", "0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := "id: 1\nevent: chunk\n"
	if !strings.HasPrefix(string(body), want) || !strings.Contains(string(body), "event: end\n") || strings.Count(string(body), "event: chunk") != 1 {
		t.Fatalf("followed a finished run's stderr after seq 0:\n%s", body)
	}
}
