package projections_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/projections"
	"github.com/logbookhq/logbook/projections/projectionstest"
)

func appendTo(t *testing.T, s eventstore.Store, stream string, payloads ...domain.Payload) {
	t.Helper()
	events := make([]domain.NewEvent, len(payloads))
	for i, p := range payloads {
		events[i] = domain.MustEncode(p, domain.Metadata{})
	}
	if _, err := s.Append(context.Background(), stream, eventstore.Any, events...); err != nil {
		t.Fatal(err)
	}
}

func catchUp(t *testing.T, src projections.Source, views ...projections.Projection) *projections.Runner {
	t.Helper()
	r, err := projections.NewRunner(src, projections.Config{BatchSize: 3}, views...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CatchUp(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestTranscriptsReassembleOutputByteForByte(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		src := open(t)
		ctx := context.Background()
		start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		binary := []byte{0, 0xff, 0xfe, '\n', 0x80, 'x'}
		appendTo(t, src, run.Stream("r1"),
			run.RunRequested{RequestID: "q1", Bundle: "ops", Command: "status"},
			run.ContainerStarted{ContainerID: "c1"})
		// Delivered out of order, one of them twice: seq decides.
		appendTo(t, src, run.Stream("r1"),
			run.OutputChunk{Seq: 2, Stream: run.Stdout, Bytes: []byte("third"), At: start.Add(30 * time.Millisecond)},
			run.OutputChunk{Seq: 0, Stream: run.Stdout, Bytes: binary, At: start},
			run.OutputChunk{Seq: 1, Stream: run.Stderr, Bytes: []byte("warn\r\n"), At: start.Add(10 * time.Millisecond)},
			run.OutputChunk{Seq: 2, Stream: run.Stdout, Bytes: []byte("redelivered"), At: start},
			run.OutputChunk{Seq: 3, Stream: run.Stdout, Bytes: []byte{}, At: start.Add(40 * time.Millisecond)},
			run.OutputTruncated{LimitBytes: 16, AfterSeq: 3})
		catchUp(t, src, projections.NewTranscripts())
		reader := projections.NewTranscriptReader(projections.DBOf(src))
		for _, tc := range []struct {
			name, stream string
			want         []byte
		}{
			{"all output interleaves both streams in seq order", "", append(append(append([]byte{}, binary...), "warn\r\n"...), "third"...)},
			{"stdout alone keeps binary bytes and the first delivery of a chunk", "stdout", append(append([]byte{}, binary...), "third"...)},
			{"stderr alone is just stderr", "stderr", []byte("warn\r\n")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := reader.Output(ctx, "r1", tc.stream)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, tc.want) {
					t.Fatalf("output %q, want %q", got, tc.want)
				}
			})
		}
		chunks, err := reader.Chunks(ctx, "r1", -1, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(chunks) != 4 || chunks[1].Stream != "stderr" || chunks[2].At.Sub(chunks[0].At) != 30*time.Millisecond {
			t.Fatalf("chunks = %+v", chunks)
		}
		info, err := reader.Info(ctx, "r1")
		if err != nil || !info.Truncated || info.TruncatedLimit != 16 || info.StartedAt.IsZero() {
			t.Fatalf("info = %+v, %v", info, err)
		}
		if _, err := reader.Info(ctx, "nope"); !errors.Is(err, projections.ErrNotFound) {
			t.Fatalf("info of an unknown run: %v", err)
		}
	})
}

func TestHistoryRecordsEachRequestAndRunStatus(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		src := open(t)
		ctx := context.Background()
		stages, _ := json.Marshal([]map[string]string{{"command": "ops:deploy", "bundle": "ops", "name": "deploy"}, {"command": "filter", "name": "filter"}})
		received := func(id string) domain.Payload {
			return dispatch.RequestReceived{Adapter: "slack", MessageID: id, Room: "#ops", ChatUser: "U1", Text: "ops:deploy prod"}
		}
		resolved := dispatch.IdentityResolved{User: "u1", Username: "alice"}
		appendTo(t, src, dispatch.Stream("done"), received("done"), resolved, dispatch.PipelineParsed{Stages: stages}, dispatch.StageStarted{RunID: "run1"})
		appendTo(t, src, run.Stream("run1"),
			run.RunRequested{RequestID: "done", Bundle: "ops", Command: "deploy", Image: "ops:1"},
			run.ContainerCreated{ContainerID: "c", Image: "ops:1", ImageDigest: "sha256:ab"},
			run.ContainerStarted{}, run.ContainerStopped{ExitCode: 0, DurationMS: 42}, run.RunSucceeded{})
		appendTo(t, src, dispatch.Stream("done"), dispatch.RequestCompleted{})
		appendTo(t, src, dispatch.Stream("who"), received("who"), dispatch.IdentityUnknown{Adapter: "slack", ChatUser: "U9"})
		appendTo(t, src, dispatch.Stream("bad"), received("bad"), resolved, dispatch.PipelineRejected{Error: "expected a command"})
		appendTo(t, src, dispatch.Stream("no"), received("no"), resolved, dispatch.RequestDenied{Reason: "missing ops:write"})
		appendTo(t, src, dispatch.Stream("busy"), received("busy"), resolved, dispatch.StageStarted{RunID: "run2"})
		appendTo(t, src, run.Stream("run2"), run.RunRequested{RequestID: "busy", Bundle: "ops", Command: "deploy"}, run.ContainerStarted{})
		appendTo(t, src, run.Stream("run3"), run.RunRequested{RequestID: "busy", Bundle: "ops", Command: "logs"},
			run.ContainerStopped{ExitCode: 137, OOMKilled: true, Signal: "SIGKILL"}, run.RunFailed{Reason: "out of memory"}, run.RunLost{Reason: "late"})
		appendTo(t, src, run.Stream("run4"), run.RunRequested{RequestID: "busy"}, run.RunTimedOut{TimeoutMS: 5})
		appendTo(t, src, run.Stream("run5"), run.RunRequested{RequestID: "busy"}, run.RunCancelled{Reason: "stop"})
		appendTo(t, src, run.Stream("run6"), run.RunRequested{RequestID: "busy"}, run.RunLost{Reason: "executor gone"})
		appendTo(t, src, run.Stream("run7"), run.RunRequested{RequestID: "busy"})
		catchUp(t, src, projections.NewHistory())
		h := projections.NewHistoryReader(projections.DBOf(src))
		for _, tc := range []struct{ request, status string }{
			{"done", "completed"}, {"who", "unknown-user"}, {"bad", "rejected"}, {"no", "denied"}, {"busy", "running"},
		} {
			t.Run("request "+tc.request+" is "+tc.status, func(t *testing.T) {
				r, err := h.Request(ctx, tc.request)
				if err != nil || r.Status != tc.status {
					t.Fatalf("request %s = %+v, %v; want status %s", tc.request, r, err, tc.status)
				}
			})
		}
		for _, tc := range []struct{ run, status string }{
			{"run1", "succeeded"}, {"run2", "running"}, {"run3", "failed"}, {"run4", "timed_out"}, {"run5", "cancelled"}, {"run6", "lost"}, {"run7", "requested"},
		} {
			t.Run("run "+tc.run+" is "+tc.status, func(t *testing.T) {
				r, err := h.Run(ctx, tc.run)
				if err != nil || r.Status != tc.status {
					t.Fatalf("run %s = %+v, %v; want status %s", tc.run, r, err, tc.status)
				}
			})
		}
		done, _ := h.Request(ctx, "done")
		if done.Commands != "ops:deploy filter" || done.UserID != "u1" || done.Runs != 1 || !done.EndedAt.Valid {
			t.Fatalf("completed request = %+v", done)
		}
		run1, _ := h.Run(ctx, "run1")
		if run1.Command != "ops:deploy" || run1.Username != "alice" || run1.Adapter != "slack" || run1.Room != "#ops" ||
			run1.ImageDigest != "sha256:ab" || run1.ExitCode.Int64 != 0 || !run1.ExitCode.Valid || run1.DurationMS.Int64 != 42 {
			t.Fatalf("run1 = %+v", run1)
		}
		run3, _ := h.Run(ctx, "run3")
		if run3.Reason != "out of memory" || !run3.OOMKilled || run3.ExitCode.Int64 != 137 {
			t.Fatalf("the first end of a run wins: run3 = %+v", run3)
		}
		page, err := h.Requests(ctx, projections.RequestFilter{Command: "filter"})
		if err != nil || len(page.Requests) != 1 || page.Requests[0].RequestID != "done" {
			t.Fatalf("requests with command filter = %+v, %v", page, err)
		}
	})
}

func TestHistoryPagesByKeysetThroughFilters(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		src := open(t)
		ctx := context.Background()
		w := projectionstest.NewWorkload(3, 5)
		if err := projectionstest.AppendAll(ctx, src, w.Setup()); err != nil {
			t.Fatal(err)
		}
		for range 120 {
			if err := projectionstest.AppendAll(ctx, src, w.Request()); err != nil {
				t.Fatal(err)
			}
		}
		catchUp(t, src, projections.NewHistory())
		h := projections.NewHistoryReader(projections.DBOf(src))
		all, err := h.Runs(ctx, projections.RunFilter{Limit: 1000})
		if err != nil || len(all.Runs) < 100 || all.Next != "" {
			t.Fatalf("all runs: %d rows, next %q, %v", len(all.Runs), all.Next, err)
		}
		for _, tc := range []struct {
			name   string
			filter projections.RunFilter
			keep   func(projections.RunRow) bool
		}{
			{"no filter pages through every run newest first", projections.RunFilter{}, func(projections.RunRow) bool { return true }},
			{"a status filter keeps only that status", projections.RunFilter{Status: "succeeded"}, func(r projections.RunRow) bool { return r.Status == "succeeded" }},
			{"a user and provider filter keeps both", projections.RunFilter{Username: "user001", Adapter: "slack"}, func(r projections.RunRow) bool { return r.Username == "user001" && r.Adapter == "slack" }},
			{"a command filter keeps that command", projections.RunFilter{Command: "ops:status"}, func(r projections.RunRow) bool { return r.Command == "ops:status" }},
			{"a time range keeps runs requested in it", projections.RunFilter{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)}, func(projections.RunRow) bool { return true }},
			{"a time range in the future keeps nothing", projections.RunFilter{From: time.Now().Add(time.Hour)}, func(projections.RunRow) bool { return false }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var want []string
				for _, r := range all.Runs {
					if tc.keep(r) {
						want = append(want, r.RunID)
					}
				}
				var got []string
				f := tc.filter
				f.Limit = 7
				for pages := 0; ; pages++ {
					page, err := h.Runs(ctx, f)
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range page.Runs {
						got = append(got, r.RunID)
					}
					if page.Next == "" || pages > 100 {
						break
					}
					f.Cursor = page.Next
				}
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Fatalf("paged %d runs, want %d:\n%v\n%v", len(got), len(want), got, want)
				}
			})
		}
		if _, err := h.Runs(ctx, projections.RunFilter{Cursor: "x"}); !errors.Is(err, projections.ErrBadCursor) {
			t.Fatalf("a bad cursor gave %v", err)
		}
	})
}

func TestViewsSkipUnknownEventTypesAndStopOnAnEventTheyCannotRead(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		src := open(t)
		ctx := context.Background()
		appendTo(t, src, run.Stream("r1"), run.RunRequested{RequestID: "q"})
		if _, err := src.Append(ctx, "future-1", eventstore.Any, domain.NewEvent{ID: domain.NewEventID(), Type: "FromTheFuture", Data: json.RawMessage(`{"x":1}`)}); err != nil {
			t.Fatal(err)
		}
		// A known type whose data does not decode: position 3.
		if _, err := src.Append(ctx, run.Stream("r1"), eventstore.Any, domain.NewEvent{ID: domain.NewEventID(), Type: "ContainerStarted", Data: json.RawMessage(`{"container_id":5}`)}); err != nil {
			t.Fatal(err)
		}
		appendTo(t, src, access.UserStream("u1"), access.UserCreated{User: "u1", Username: "alice"})
		r, err := projections.NewRunner(src, projections.Config{}, allViews()...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.CatchUp(ctx, nil)
		if !errors.Is(err, projections.ErrViewFailed) {
			t.Fatalf("catch-up over an unreadable event returned %v", err)
		}
		for _, want := range []string{"projection history stopped", "projection transcripts stopped", "position 3 (ContainerStarted)"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error %q does not say %q", err, want)
			}
		}
		status, _ := r.Status(ctx)
		for _, s := range status {
			switch s.Name {
			case "permissions", "approvals", "audit", "search", "sources":
				if s.Checkpoint != 4 || s.Error != "" {
					t.Errorf("%s does not read ContainerStarted and went on: %+v", s.Name, s)
				}
			default:
				if s.Checkpoint != 2 || s.Error == "" {
					t.Errorf("%s should stop before position 3: %+v", s.Name, s)
				}
			}
		}
	})
}

func TestPermissionsServeTheNextRequestFromMemoryAndTables(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		src := open(t)
		ctx := context.Background()
		perms := projections.NewPermissions()
		r, err := projections.NewRunner(src, projections.Config{}, perms)
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		go r.Run(runCtx) //nolint:errcheck // ends with the test

		appendTo(t, src, bundle.Stream("ops"), bundle.BundleInstalled{Name: "ops", Version: "1", Permissions: []string{"ops:deploy", "ops:read", "evil:x"}})
		appendTo(t, src, access.UserStream("u1"), access.UserCreated{User: "u1", Username: "alice"}, access.ChatHandleLinked{User: "u1", Provider: "slack", Handle: "U1"})
		appendTo(t, src, access.RoleStream("deployer"), access.RoleCreated{Role: "deployer"}, access.PermissionGranted{Role: "deployer", Permission: "ops:deploy"})
		res, err := src.Append(ctx, access.GroupStream("ops"), eventstore.Any,
			domain.MustEncode(access.GroupCreated{Group: "ops"}, domain.Metadata{}),
			domain.MustEncode(access.MemberAdded{Group: "ops", User: "u1"}, domain.Metadata{}),
			domain.MustEncode(access.RoleGranted{Group: "ops", Role: "deployer"}, domain.Metadata{}))
		if err != nil {
			t.Fatal(err)
		}
		// The request right after the grant sees it.
		waitCtx, waitCancel := context.WithTimeout(ctx, 10*time.Second)
		defer waitCancel()
		if err := perms.Access().WaitFor(waitCtx, res.LastPosition); err != nil {
			t.Fatal(err)
		}
		perms.Access().Read(func(dir *access.Directory, position int64) {
			if position < res.LastPosition || !dir.HasPermission("u1", "ops:deploy") {
				t.Errorf("at position %d alice may %v", position, dir.PermissionsOf("u1"))
			}
			if u, ok := dir.UserByHandle("slack", "U1"); !ok || u.Username != "alice" {
				t.Errorf("the slack handle resolves to %+v", u)
			}
		})
		if err := r.WaitFor(waitCtx, "permissions", res.LastPosition); err != nil {
			t.Fatal(err)
		}
		dump, err := projectionstest.Dump(ctx, src.DB(), perms.Tables())
		if err != nil {
			t.Fatal(err)
		}
		for table, want := range map[string]string{
			"view_access_user_permissions": "u1 | ops:deploy",
			"view_access_permissions": "logbook:admin | logbook,logbook:manage_bundles | logbook,logbook:manage_groups | logbook," +
				"logbook:manage_roles | logbook,logbook:manage_schedules | logbook,logbook:manage_triggers | logbook,logbook:manage_users | logbook,logbook:read_history | logbook,ops:deploy | ops,ops:read | ops",
			"view_access_handles":     "u1 | slack | U1",
			"view_access_users":       "u1 | alice |  | 0",
			"view_access_group_roles": "ops | deployer",
		} {
			if got := strings.Join(dump[table], ","); got != want {
				t.Errorf("%s = %q, want %q", table, got, want)
			}
		}
		// Disabling alice takes her permissions away, in the tables too.
		res, err = src.Append(ctx, access.UserStream("u1"), eventstore.Any, domain.MustEncode(access.UserDisabled{User: "u1"}, domain.Metadata{}))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.WaitFor(waitCtx, "permissions", res.LastPosition); err != nil {
			t.Fatal(err)
		}
		dump, _ = projectionstest.Dump(ctx, src.DB(), []string{"view_access_user_permissions"})
		if len(dump["view_access_user_permissions"]) != 0 {
			t.Errorf("a disabled user keeps %v", dump["view_access_user_permissions"])
		}
		// A fresh process loads the model from the log up to its checkpoint.
		again := projections.NewPermissions()
		catchUp(t, src, again)
		again.Access().Read(func(dir *access.Directory, position int64) {
			if position != res.LastPosition || !dir.IsDisabled("u1") || !dir.PermissionExists("ops:read") {
				t.Errorf("a restarted view's model at %d: disabled %v", position, dir.IsDisabled("u1"))
			}
		})
	})
}

func TestASecondRunnerOnTheSameViewNeverAppliesTwice(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		src := open(t)
		ctx := context.Background()
		appendTo(t, src, run.Stream("r1"), run.RunRequested{RequestID: "q"})
		first, _ := projections.NewRunner(src, projections.Config{}, projections.NewHistory())
		second, _ := projections.NewRunner(src, projections.Config{}, projections.NewHistory())
		if err := first.Open(ctx); err != nil {
			t.Fatal(err)
		}
		if err := second.Open(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := first.CatchUp(ctx, nil); err != nil {
			t.Fatal(err)
		}
		_, err := second.CatchUp(ctx, nil)
		if !errors.Is(err, projections.ErrViewFailed) || !strings.Contains(err.Error(), "checkpoint is no longer at 0") {
			t.Fatalf("the second runner applied the same events: %v", err)
		}
	})
}

// Given requests whose text and room hold what array and SQL literals
// treat specially, when the history view stores them (on Postgres as array
// literals), then every byte reads back as it was recorded.
func TestHistoryStoresAnyTextExactly(t *testing.T) {
	t.Parallel()
	texts := []string{
		``, `NULL`, `null`, `"quoted"`, `back\slash`, `\\`, `\x41`, `{a,b}`, `a,b`, `}{`, `'single'`, ` padded `,
		"tab\tnew\nline", "ünïcödé ✓", `"\"`, `,`, `{}`, `ARRAY[1]`,
	}
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		src := open(t)
		ctx := context.Background()
		for i, text := range texts {
			id := fmt.Sprintf("q%d", i)
			appendTo(t, src, dispatch.Stream(id),
				dispatch.RequestReceived{Adapter: "slack", MessageID: id, Room: text, ChatUser: text, Text: text},
				dispatch.RequestFailed{Reason: text})
		}
		catchUp(t, src, projections.NewHistory())
		h := projections.NewHistoryReader(projections.DBOf(src))
		for i, text := range texts {
			r, err := h.Request(ctx, fmt.Sprintf("q%d", i))
			if err != nil {
				t.Fatal(err)
			}
			if r.Text != text || r.Room != text || r.ChatUser != text || r.Reason != text {
				t.Errorf("stored %q as text %q, room %q, chat user %q, reason %q", text, r.Text, r.Room, r.ChatUser, r.Reason)
			}
		}
	})
}
