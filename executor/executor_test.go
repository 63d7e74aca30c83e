package executor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/runbus"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/executor/executortest"
)

// fakeRuntime runs a scripted function instead of a command.
type fakeRuntime struct {
	calls atomic.Int32
	fn    func(ctx context.Context, spec executor.Spec, sink executor.Sink) (executor.Outcome, error)
}

func (f *fakeRuntime) Run(ctx context.Context, spec executor.Spec, sink executor.Sink) (executor.Outcome, error) {
	f.calls.Add(1)
	return f.fn(ctx, spec, sink)
}

func newTestExecutor(t *testing.T, store *executortest.MemStore, rt executor.Runtime, concurrency int) *executor.Executor {
	t.Helper()
	e, err := executor.NewExecutorWithConfig(executor.Config{
		Runtime: rt, Publisher: executortest.AppendingPublisher{Appender: executor.NewAppender(store)}, Store: store,
		Concurrency: concurrency, KillGrace: 100 * time.Millisecond,
		Chunking: executor.ChunkerConfig{Interval: time.Hour},
		Logger:   zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return e
}

func echoRun(stdout string, out executor.Outcome) func(context.Context, executor.Spec, executor.Sink) (executor.Outcome, error) {
	return func(_ context.Context, spec executor.Spec, sink executor.Sink) (executor.Outcome, error) {
		sink.ContainerCreated("c-"+spec.RunID, "sha256:abc")
		sink.ContainerStarted("c-"+spec.RunID, false)
		_, _ = sink.Stdout().Write([]byte(stdout))
		out.Started = true
		out.ContainerID = "c-" + spec.RunID
		out.Release = func(context.Context) error { return nil }
		return out, nil
	}
}

func request(runID string) runbus.RunRequest {
	return runbus.RunRequest{RunID: runID, Request: run.RunRequested{
		RequestID: "req-" + runID, Bundle: "ops", Command: "hello", Image: "img", Argv: []string{"/bin/hello"},
	}}
}

func types(ps []domain.Payload) string { return executortest.Types(ps) }

func TestExecutorRecordsEachStepOfARun(t *testing.T) {
	t.Parallel()
	store := executortest.NewMemStore()
	rt := &fakeRuntime{fn: echoRun("hello\n", executor.Outcome{ExitCode: 0, Duration: 5 * time.Millisecond})}
	e := newTestExecutor(t, store, rt, 1)
	if err := e.Execute(request("r1")); err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(context.Background()); err != nil { // waits for the container's removal
		t.Fatal(err)
	}
	got := store.Payloads("run-r1")
	want := "RunRequested ContainerCreated ContainerStarted OutputChunk ContainerStopped RunSucceeded ContainerRemoved"
	if types(got) != want {
		t.Fatalf("events = %s\nwant     %s", types(got), want)
	}
	succeeded := got[5].(run.RunSucceeded)
	if string(succeeded.Result.Value) != `[{"body":["hello"]}]` {
		t.Fatalf("result = %s, want the Cog body of the output", succeeded.Result.Value)
	}
	events, _ := store.ReadStream(context.Background(), "run-r1", 0, 100)
	for _, ev := range events {
		if md := ev.Metadata(); md.CorrelationID != "req-r1" || md.Actor != "executor" {
			t.Fatalf("%s metadata = %+v, want the request id as correlation and the executor as actor", ev.Type, md)
		}
	}
}

func TestExecutorEndsEachRunWithTheRightTerminalEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		fn         func(context.Context, executor.Spec, executor.Sink) (executor.Outcome, error)
		wantType   string
		wantReason string
	}{
		{"exit 0 succeeds", echoRun("ok\n", executor.Outcome{}), "RunSucceeded", ""},
		{"a non-zero exit fails with its code", echoRun("", executor.Outcome{ExitCode: 3}), "RunFailed", "exited with code 3"},
		{"a signal is named", echoRun("", executor.Outcome{ExitCode: 137, Signal: "SIGKILL"}), "RunFailed", "(SIGKILL)"},
		{"an OOM kill says so", echoRun("", executor.Outcome{ExitCode: 137, OOMKilled: true}), "RunFailed", "out of memory"},
		{"a timeout times out", echoRun("", executor.Outcome{ExitCode: 143, TimedOut: true}), "RunTimedOut", ""},
		{"a Cog abort fails", echoRun("COGCMD_ACTION: abort\n", executor.Outcome{}), "RunFailed", "aborted"},
		{"bad JSON after the marker fails with its line", echoRun("JSON\n{oops\n", executor.Outcome{}), "RunFailed", "stdout line 2"},
		{"a missing image fails with the reason", func(context.Context, executor.Spec, executor.Sink) (executor.Outcome, error) {
			return executor.Outcome{}, executor.Errorf(executor.ErrImageMissing, nil, "image img is not on this host")
		}, "RunFailed", "image img is not on this host"},
		{"an error after the start is a lost run", func(_ context.Context, _ executor.Spec, sink executor.Sink) (executor.Outcome, error) {
			sink.ContainerStarted("", false)
			return executor.Outcome{Started: true}, executor.Errorf(executor.ErrUnavailable, errors.New("EOF"), "daemon went away")
		}, "RunLost", "daemon went away"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := executortest.NewMemStore()
			e := newTestExecutor(t, store, &fakeRuntime{fn: tt.fn}, 1)
			id := fmt.Sprintf("t%d", i)
			if err := e.Execute(request(id)); err != nil {
				t.Fatal(err)
			}
			var terminal domain.Payload
			for _, p := range store.Payloads("run-" + id) {
				if run.IsTerminal(p) {
					if terminal != nil {
						t.Fatalf("two terminal events: %s and %s", terminal.EventType(), p.EventType())
					}
					terminal = p
				}
			}
			if terminal == nil || terminal.EventType() != tt.wantType {
				t.Fatalf("terminal = %v, want %s", terminal, tt.wantType)
			}
			if reason := fmt.Sprintf("%+v", terminal); !strings.Contains(reason, tt.wantReason) {
				t.Fatalf("terminal %s does not say %q", reason, tt.wantReason)
			}
		})
	}
}

func TestExecutorNeverRunsACommandTwiceForOneRunID(t *testing.T) {
	t.Parallel()
	store := executortest.NewMemStore()
	rt := &fakeRuntime{fn: echoRun("once\n", executor.Outcome{})}
	e := newTestExecutor(t, store, rt, 2)
	for range 3 {
		if err := e.Execute(request("r1")); err != nil {
			t.Fatal(err)
		}
	}
	if n := rt.calls.Load(); n != 1 {
		t.Fatalf("runtime ran %d times for one run id, want 1", n)
	}
}

func TestExecutorContinuesAStreamTheDispatcherStarted(t *testing.T) {
	t.Parallel()
	store := executortest.NewMemStore()
	req := request("r1")
	stored := domain.MustEncode(req.Request, domain.Metadata{CorrelationID: req.Request.RequestID})
	if _, err := store.Append(context.Background(), "run-r1", eventstore.NoStream, stored); err != nil {
		t.Fatal(err)
	}
	req.EventID = stored.ID.String()
	e := newTestExecutor(t, store, &fakeRuntime{fn: echoRun("", executor.Outcome{})}, 1)
	if err := e.Execute(req); err != nil {
		t.Fatal(err)
	}
	got := types(store.Payloads("run-r1"))
	if !strings.HasPrefix(got, "RunRequested ContainerCreated") || strings.Count(got, "RunRequested") != 1 {
		t.Fatalf("events = %s, want one RunRequested followed by the executor's events", got)
	}
}

// streamReads counts the reads of each stream, over a MemStore.
type streamReads struct {
	*executortest.MemStore
	mu    sync.Mutex
	reads map[string]int
}

func (s *streamReads) ReadStream(ctx context.Context, stream string, from int64, limit int) ([]domain.RecordedEvent, error) {
	s.mu.Lock()
	s.reads[stream]++
	s.mu.Unlock()
	return s.MemStore.ReadStream(ctx, stream, from, limit)
}

func (s *streamReads) of(stream string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads[stream]
}

func TestExecutorSkipsReadingAJustRequestedRunOnlyOnItsFirstHandling(t *testing.T) {
	t.Parallel()
	// Given a run whose stream the dispatcher has just created, and its
	// request marked so
	mem := executortest.NewMemStore()
	store := &streamReads{MemStore: mem, reads: map[string]int{}}
	req := request("r1")
	stored := domain.MustEncode(req.Request, domain.Metadata{CorrelationID: req.Request.RequestID})
	if _, err := store.Append(context.Background(), "run-r1", eventstore.NoStream, stored); err != nil {
		t.Fatal(err)
	}
	req.EventID = stored.ID.String()
	req = req.JustRequested()
	rt := &fakeRuntime{fn: echoRun("fresh\n", executor.Outcome{})}
	e, err := executor.NewExecutorWithConfig(executor.Config{
		Runtime: rt, Publisher: executortest.AppendingPublisher{Appender: executor.NewAppender(store)}, Store: store,
		Concurrency: 1, Chunking: executor.ChunkerConfig{Interval: time.Hour}, Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })

	// When it is handled, and then the same request (a retry, a
	// redelivery) twice more
	if err := e.Execute(req); err != nil {
		t.Fatal(err)
	}
	if n := store.of("run-r1"); n != 0 {
		t.Fatalf("the first handling read the run's stream %d times, want none", n)
	}
	for range 2 {
		if err := e.Execute(req); err != nil {
			t.Fatal(err)
		}
	}

	// Then the run's events follow the one RunRequested, the command ran
	// once, and the later handlings read the stream and found it ended
	if got := types(mem.Payloads("run-r1")); !strings.HasPrefix(got, "RunRequested ContainerCreated") || strings.Count(got, "RunRequested") != 1 || strings.Count(got, "RunSucceeded") != 1 {
		t.Fatalf("events = %s, want one RunRequested followed by one run's events", got)
	}
	if n := rt.calls.Load(); n != 1 {
		t.Fatalf("runtime ran %d times, want 1", n)
	}
	if n := store.of("run-r1"); n < 2 {
		t.Fatalf("the later handlings read the run's stream %d times, want at least 2", n)
	}
}

func TestExecutorRecordsLostARunWhoseCommandBeganBeforeARestart(t *testing.T) {
	t.Parallel()
	cases := map[string][]domain.Payload{
		// A warm container does not name its run, so reconcile cannot
		// find the run from it.
		"started in a warm container": {run.ContainerStarted{ContainerID: "warm0123456789ab", Warm: true}},
		"its container made":          {run.ContainerCreated{ContainerID: "fresh0123456789a", Image: "img"}},
		// A warm run takes itself before its command starts.
		"taken by itself": {run.RunClaimed{Executor: "executor"}, run.RunStarting{Executor: "executor"}},
	}
	for name, began := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// Given a run whose command began in a process that is gone
			store := executortest.NewMemStore()
			req := request("r1")
			md := domain.Metadata{CorrelationID: req.Request.RequestID}
			stored := []domain.NewEvent{domain.MustEncode(req.Request, md)}
			for _, p := range began {
				stored = append(stored, domain.MustEncode(p, md))
			}
			if _, err := store.Append(context.Background(), "run-r1", eventstore.NoStream, stored...); err != nil {
				t.Fatal(err)
			}
			req.EventID = stored[0].ID.String()
			rt := &fakeRuntime{fn: echoRun("again\n", executor.Outcome{})}
			e := newTestExecutor(t, store, rt, 1)

			// When its request is given again
			if err := e.Execute(req); err != nil {
				t.Fatal(err)
			}

			// Then it ends lost, naming the container, and never runs again
			if n := rt.calls.Load(); n != 0 {
				t.Fatalf("the runtime ran the command %d times, want 0", n)
			}
			payloads := store.Payloads("run-r1")
			lost, ok := payloads[len(payloads)-1].(run.RunLost)
			if !ok {
				t.Fatalf("events = %s, want them to end with RunLost", types(payloads))
			}
			if id := containerIDOf(began); id != "" && !strings.Contains(lost.Reason, "container "+id[:12]) {
				t.Fatalf("RunLost reason %q does not name the container", lost.Reason)
			}
			if err := e.Execute(req); err != nil {
				t.Fatal(err)
			}
			if got := types(store.Payloads("run-r1")); strings.Count(got, "RunLost") != 1 {
				t.Fatalf("given again after it ended: events = %s, want one RunLost", got)
			}
		})
	}
}

func containerIDOf(ps []domain.Payload) string {
	switch p := ps[0].(type) {
	case run.ContainerStarted:
		return p.ContainerID
	case run.ContainerCreated:
		return p.ContainerID
	}
	return ""
}

func TestExecutorStopsARunOnCancel(t *testing.T) {
	t.Parallel()
	store := executortest.NewMemStore()
	started := make(chan struct{})
	rt := &fakeRuntime{fn: func(ctx context.Context, _ executor.Spec, sink executor.Sink) (executor.Outcome, error) {
		sink.ContainerStarted("", false)
		close(started)
		<-ctx.Done()
		return executor.Outcome{Started: true, Stopped: true, ExitCode: 143, Signal: "SIGTERM"}, nil
	}}
	e := newTestExecutor(t, store, rt, 1)
	done := make(chan error, 1)
	go func() { done <- e.Execute(request("r1")) }()
	<-started
	if !e.Cancel(runbus.CancelRequest{RunID: "r1", Actor: "alice", Reason: "wrong env"}) {
		t.Fatal("Cancel did not find the run in flight")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := store.Payloads("run-r1")
	if types(got) != "RunRequested ContainerStarted RunCancelRequested ContainerStopped RunCancelled" {
		t.Fatalf("events = %s", types(got))
	}
	if c := got[4].(run.RunCancelled); c.Reason != "cancelled by alice: wrong env" {
		t.Fatalf("reason = %q", c.Reason)
	}
}

func TestExecutorCancelsARunWhoseCancelCameFirst(t *testing.T) {
	t.Parallel()
	store := executortest.NewMemStore()
	rt := &fakeRuntime{fn: echoRun("", executor.Outcome{})}
	e := newTestExecutor(t, store, rt, 1)
	e.Cancel(runbus.CancelRequest{RunID: "r1", Actor: "bob"})
	if err := e.Execute(request("r1")); err != nil {
		t.Fatal(err)
	}
	if rt.calls.Load() != 0 {
		t.Fatal("a cancelled run's command ran")
	}
	if got := types(store.Payloads("run-r1")); got != "RunRequested RunCancelRequested RunCancelled" {
		t.Fatalf("events = %s", got)
	}
}

func TestExecutorRespectsItsConcurrencyLimit(t *testing.T) {
	t.Parallel()
	store := executortest.NewMemStore()
	var now, peak atomic.Int32
	rt := &fakeRuntime{fn: func(context.Context, executor.Spec, executor.Sink) (executor.Outcome, error) {
		n := now.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		now.Add(-1)
		return executor.Outcome{}, nil
	}}
	e := newTestExecutor(t, store, rt, 2)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = e.Execute(request(fmt.Sprintf("r%d", i))) }()
	}
	wg.Wait()
	if p := peak.Load(); p != 2 {
		t.Fatalf("peak concurrency = %d, want the limit 2", p)
	}
}

func TestExecutorKeepsSecretValuesOutOfEvents(t *testing.T) {
	t.Parallel()
	store := executortest.NewMemStore()
	var gotEnv []string
	rt := &fakeRuntime{fn: func(_ context.Context, spec executor.Spec, _ executor.Sink) (executor.Outcome, error) {
		gotEnv = spec.Env
		return executor.Outcome{}, nil
	}}
	e := newTestExecutor(t, store, rt, 1)
	req := request("r1")
	req.Request.EnvNames = []string{"API_TOKEN", "COG_BUNDLE"}
	req.Env = map[string]string{"API_TOKEN": "s3cr3t-value", "COG_BUNDLE": "spoofed"}
	if err := e.Execute(req); err != nil {
		t.Fatal(err)
	}
	if !containsString(gotEnv, "API_TOKEN=s3cr3t-value") || !containsString(gotEnv, "COG_BUNDLE=ops") || containsString(gotEnv, "COG_BUNDLE=spoofed") {
		t.Fatalf("env = %q: want the secret passed and COG_ variables not overridden", gotEnv)
	}
	events, _ := store.ReadAll(context.Background(), 1, 100)
	for _, ev := range events {
		if bytes.Contains(ev.Data, []byte("s3cr3t-value")) {
			t.Fatalf("event %s holds the secret value: %s", ev.Type, ev.Data)
		}
	}
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestAppenderSettlesRedeliveryAndReordering(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := executortest.NewMemStore()
	app := executor.NewAppender(store)
	ev := func(p domain.Payload) domain.NewEvent { return domain.MustEncode(p, domain.Metadata{}) }
	first, second := ev(requested()), ev(run.ContainerStarted{})
	if err := app.Append(ctx, "run-x", 1, second); !errors.Is(err, executor.ErrStreamBehind) {
		t.Fatalf("an event ahead of its stream: error = %v, want ErrStreamBehind", err)
	}
	for _, step := range []struct {
		v int64
		e domain.NewEvent
	}{{0, first}, {1, second}, {1, second}, {0, first}} {
		if err := app.Append(ctx, "run-x", step.v, step.e); err != nil {
			t.Fatalf("append version %d: %v (a repeat must be acknowledged)", step.v, err)
		}
	}
	if err := app.Append(ctx, "run-x", 1, ev(run.ContainerStarted{})); !errors.Is(err, executor.ErrStreamConflict) {
		t.Fatalf("another event at a taken version: error = %v, want ErrStreamConflict", err)
	}
	if n := len(store.Payloads("run-x")); n != 2 {
		t.Fatalf("stream has %d events, want 2", n)
	}
}

func requested() run.RunRequested { return request("x").Request }

// The runtime gets the user the run records and a pids limit held to the
// site's maximum, however high the limit a request recorded before asked.
func TestExecutorPassesTheRunsUserAndHoldsPidsToTheMaximum(t *testing.T) {
	t.Parallel()
	var specs []executor.Spec
	var mu sync.Mutex
	rt := &fakeRuntime{fn: func(ctx context.Context, spec executor.Spec, sink executor.Sink) (executor.Outcome, error) {
		mu.Lock()
		specs = append(specs, spec)
		mu.Unlock()
		return echoRun("", executor.Outcome{})(ctx, spec, sink)
	}}
	store := executortest.NewMemStore()
	e, err := executor.NewExecutorWithConfig(executor.Config{
		Runtime: rt, Publisher: executortest.AppendingPublisher{Appender: executor.NewAppender(store)}, Store: store,
		MaxPids: 64, Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	asked := request("r1")
	asked.Request.User, asked.Request.Limits.Pids = &run.User{UID: 1000, GID: 100}, 100_000
	old := request("r2") // recorded before runs named their user
	for _, req := range []runbus.RunRequest{asked, old} {
		if err := e.Execute(req); err != nil {
			t.Fatal(err)
		}
	}
	if specs[0].User == nil || *specs[0].User != (run.User{UID: 1000, GID: 100}) || specs[0].Limits.Pids != 64 {
		t.Fatalf("spec user %v, pids %d; want 1000:100 and the maximum 64", specs[0].User, specs[0].Limits.Pids)
	}
	if specs[1].User != nil || specs[1].Limits.Pids != 64 {
		t.Fatalf("spec user %v, pids %d; want no user (the image's) and the default 128 held to 64", specs[1].User, specs[1].Limits.Pids)
	}
}
