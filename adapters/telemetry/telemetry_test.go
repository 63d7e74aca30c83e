package telemetry_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/adapters/telemetry"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
)

// fakeClock is the store's clock: each append is recorded at its time.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	t     *testing.T
	store *sqlite.Store
	clock *fakeClock
	spans *tracetest.InMemoryExporter
	rep   *telemetry.Reporter
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)}
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	spans := tracetest.NewInMemoryExporter()
	provider := telemetry.NewTracerProvider(sdktrace.WithSyncer(spans))
	rep, err := telemetry.New(telemetry.Config{Store: store, From: 1, Tracer: provider,
		Followers: func(context.Context) ([]telemetry.Lag, error) {
			return []telemetry.Lag{{Name: "history", Position: 2}}, nil
		},
		Pools: func() []telemetry.Pool {
			return []telemetry.Pool{{Mode: run.ModeWarm, Image: "toolbox:1", Containers: map[string]int{"idle": 1, "busy": 2}}}
		},
		Leader: func() telemetry.Leadership { return telemetry.Leadership{Leading: true, Term: 7} },
	})
	if err != nil {
		t.Fatal(err)
	}
	store.Observe(rep)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rep.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &fixture{t: t, store: store, clock: clock, spans: spans, rep: rep}
}

// record appends payloads to stream after advancing the clock by step.
func (f *fixture) record(stream string, step time.Duration, payloads ...domain.Payload) {
	f.t.Helper()
	f.clock.advance(step)
	var events []domain.NewEvent
	for _, p := range payloads {
		events = append(events, domain.MustEncode(p, domain.Metadata{}))
	}
	if _, err := f.store.Append(context.Background(), stream, eventstore.Any, events...); err != nil {
		f.t.Fatal(err)
	}
}

// value reads one series of the registry: a counter's or gauge's value,
// or a histogram's sample count and sum; found is false when absent.
func (f *fixture) value(name string, labels map[string]string) (value float64, sum float64, found bool) {
	f.t.Helper()
	families, err := f.rep.Registry().Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.GetMetric() {
			if !labelsMatch(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), 0, true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), 0, true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), m.Histogram.GetSampleSum(), true
			}
		}
	}
	return 0, 0, false
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// await waits until the series reaches want (the reporter follows the log
// on its own goroutine).
func (f *fixture) await(name string, labels map[string]string, want float64) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _, _ := f.value(name, labels)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReporterCountsWhatTheLogRecordsAndTracesEachRequest(t *testing.T) {
	f := newFixture(t)
	q1, q2 := uuid.NewString(), uuid.NewString()
	runID := q1 + "-s0-i0"
	ms := time.Millisecond

	f.record(run.Stream(runID), 0, run.RunRequested{RequestID: q1, Bundle: "toolbox", Command: "echo", Mode: run.ModeWarm})
	f.record(dispatch.StreamPrefix+q1, 0, dispatch.RequestReceived{Adapter: "api", Room: "api", ChatUser: "admin", Text: "toolbox:echo secret-looking-text"},
		dispatch.IdentityResolved{User: "u1", Username: "admin"}, dispatch.PermissionChecked{Command: "toolbox:echo", Granted: true},
		dispatch.StageStarted{RunID: runID})
	f.record(run.Stream(runID), 3*ms, run.ContainerStarted{Warm: true})
	f.record(run.Stream(runID), 2*ms, run.OutputChunk{Stream: run.Stdout, Bytes: []byte("hello\n")})
	f.record(run.Stream(runID), 5*ms, run.RunSucceeded{})
	f.record(dispatch.StreamPrefix+q1, ms, dispatch.RequestCompleted{}, dispatch.ReplyPosted{Adapter: "api", Room: "api"})

	f.record(dispatch.StreamPrefix+q2, 100*ms, dispatch.RequestReceived{Adapter: "slack", Room: "C1", ChatUser: "U2", Text: "ops:deploy"})
	f.record(dispatch.StreamPrefix+q2, ms, dispatch.PermissionChecked{Command: "ops:deploy", Granted: false}, dispatch.RequestDenied{Reason: "no"})
	f.record(dispatch.StreamPrefix+q2, 4*ms, dispatch.ReplyPosted{Adapter: "slack", Room: "C1"})

	f.await("logbook_requests_total", map[string]string{"adapter": "slack", "outcome": "denied"}, 1)
	if got, _, _ := f.value("logbook_requests_total", map[string]string{"adapter": "api", "outcome": "completed"}); got != 1 {
		t.Errorf("completed api requests = %v, want 1", got)
	}
	if got, _, _ := f.value("logbook_denials_total", map[string]string{"command": "ops:deploy"}); got != 1 {
		t.Errorf("denials of ops:deploy = %v, want 1", got)
	}
	count, sum, _ := f.value("logbook_run_duration_seconds", map[string]string{"bundle": "toolbox", "command": "echo", "mode": "warm", "outcome": "succeeded"})
	if count != 1 || !near(sum, 0.010) {
		t.Errorf("run duration: %v samples summing to %vs, want 1 of 0.010s", count, sum)
	}
	count, sum, _ = f.value("logbook_run_queued_seconds", map[string]string{"mode": "warm"})
	if count != 1 || !near(sum, 0.003) {
		t.Errorf("queued: %v samples summing to %vs, want 1 of 0.003s", count, sum)
	}
	count, sum, _ = f.value("logbook_request_duration_seconds", map[string]string{"adapter": "api", "outcome": "completed"})
	if count != 1 || !near(sum, 0.011) {
		t.Errorf("request duration: %v samples summing to %vs, want 1 of 0.011s", count, sum)
	}
	if got, _, _ := f.value("logbook_executor_queue_depth", nil); got != 0 {
		t.Errorf("queue depth %v after every run ended, want 0", got)
	}
	// Nine appends, each its own group commit here (one at a time).
	if count, _, _ := f.value("logbook_store_append_seconds", map[string]string{"result": "ok"}); count != 9 {
		t.Errorf("appends observed: %v, want 9", count)
	}
	if count, sum, _ := f.value("logbook_store_group_commit_events", nil); count != 9 || sum != 14 {
		t.Errorf("group commits: %v carrying %v events, want 9 carrying 14", count, sum)
	}
	if got, _, _ := f.value("logbook_log_head_position", nil); got != 14 {
		t.Errorf("head = %v, want 14", got)
	}
	if got, _, _ := f.value("logbook_follower_lag_events", map[string]string{"follower": "history"}); got != 12 {
		t.Errorf("history's lag = %v, want 12", got)
	}
	if got, _, _ := f.value("logbook_pool_containers", map[string]string{"mode": "warm", "state": "busy"}); got != 2 {
		t.Errorf("busy warm containers = %v, want 2", got)
	}
	if term, _, _ := f.value("logbook_leader_term", nil); term != 7 {
		t.Errorf("leader term = %v, want 7", term)
	}
	if leading, _, _ := f.value("logbook_leader", nil); leading != 1 {
		t.Errorf("leading = %v, want 1", leading)
	}

	// The text of /metrics holds the same.
	rec := httptest.NewRecorder()
	f.rep.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if !strings.Contains(string(body), `logbook_requests_total{adapter="api",outcome="completed"} 1`) {
		t.Errorf("/metrics does not say one completed api request:\n%s", body)
	}
	if strings.Contains(string(body), "secret-looking-text") {
		t.Errorf("/metrics holds a request's text")
	}

	spans := awaitSpans(t, f.spans, 2)
	byName := map[string][]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = append(byName[s.Name], s)
	}
	var root tracetest.SpanStub
	for _, s := range byName["request"] {
		if s.SpanContext.TraceID().String() == strings.ReplaceAll(q1, "-", "") {
			root = s
		}
	}
	if !root.SpanContext.IsValid() {
		t.Fatalf("no request span has the trace id of %s; spans: %v", q1, names(spans))
	}
	received := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	if !root.StartTime.Equal(received) || root.EndTime.Sub(root.StartTime) != 11*ms {
		t.Errorf("request span %v..%v, want from %v for 11ms", root.StartTime, root.EndTime, received)
	}
	want := map[string]string{"decide": "request", "run toolbox:echo": "request", "reply": "request", "queued": "run toolbox:echo", "container": "run toolbox:echo", "output": "run toolbox:echo"}
	for name, parentName := range want {
		var found bool
		for _, s := range byName[name] {
			if s.SpanContext.TraceID() != root.SpanContext.TraceID() {
				continue
			}
			found = true
			var parent tracetest.SpanStub
			for _, p := range spans {
				if p.SpanContext.SpanID() == s.Parent.SpanID() {
					parent = p
				}
			}
			if parent.Name != parentName {
				t.Errorf("%s's parent is %q, want %q", name, parent.Name, parentName)
			}
		}
		if !found {
			t.Errorf("no %s span in %s's trace", name, q1)
		}
	}
	for _, s := range spans {
		for _, a := range s.Attributes {
			if strings.Contains(a.Value.Emit(), "secret-looking-text") || strings.Contains(a.Value.Emit(), "hello") {
				t.Errorf("span %s attribute %s holds the request's text or output", s.Name, a.Key)
			}
		}
	}
}

// The Grafana dashboard in deploy/ plots only series the reporter serves:
// after the scenario above every family has a sample.
func TestTheGrafanaDashboardPlotsOnlySeriesTheReporterServes(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dashboard struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dashboard); err != nil {
		t.Fatalf("deploy/grafana-dashboard.json: %v", err)
	}
	f := newFixture(t)
	q, runID := uuid.NewString(), uuid.NewString()
	f.record(run.Stream(runID), 0, run.RunRequested{RequestID: q, Bundle: "toolbox", Command: "echo", Mode: run.ModeWarm})
	f.record(dispatch.StreamPrefix+q, 0, dispatch.RequestReceived{Adapter: "api"}, dispatch.PermissionChecked{Command: "ops:x"}, dispatch.StageStarted{RunID: runID})
	f.record(run.Stream(runID), 0, run.ContainerStarted{}, run.RunSucceeded{})
	f.record(dispatch.StreamPrefix+q, 0, dispatch.RequestFailed{}, dispatch.ReplyPosted{})
	f.await("logbook_requests_total", map[string]string{"outcome": "failed"}, 1)
	families, err := f.rep.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, fam := range families {
		served[fam.GetName()] = true
		if fam.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				served[fam.GetName()+suffix] = true
			}
		}
	}
	series := regexp.MustCompile(`\b(logbook_[a-z_]+)`)
	plotted := map[string]bool{}
	for _, p := range dashboard.Panels {
		for _, target := range p.Targets {
			for _, m := range series.FindAllStringSubmatch(target.Expr, -1) {
				plotted[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m[1], "_bucket"), "_sum"), "_count")] = true
				if !served[m[1]] {
					t.Errorf("panel %q plots %s, which the reporter does not serve", p.Title, m[1])
				}
			}
		}
	}
	for name := range served {
		if strings.HasPrefix(name, "logbook_") && !strings.HasSuffix(name, "_bucket") && !strings.HasSuffix(name, "_sum") && !strings.HasSuffix(name, "_count") &&
			name != "logbook_scrape_errors" && !plotted[name] {
			t.Errorf("the dashboard does not plot %s", name)
		}
	}
}

func TestReporterSkipsLifecyclesBegunBeforeItsStart(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	q := uuid.NewString()
	if _, err := store.Append(context.Background(), dispatch.StreamPrefix+q, eventstore.Any,
		domain.MustEncode(dispatch.RequestReceived{Adapter: "api"}, domain.Metadata{})); err != nil {
		t.Fatal(err)
	}
	// The reporter starts where a server started now would: after the
	// head, which holds the first request's beginning.
	head, _, err := store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := telemetry.New(telemetry.Config{Store: store, From: head + 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rep.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// The second request's outcome proves the reporter read past the first's.
	q2 := uuid.NewString()
	if _, err := store.Append(context.Background(), dispatch.StreamPrefix+q, eventstore.Any,
		domain.MustEncode(dispatch.RequestCompleted{}, domain.Metadata{})); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(context.Background(), dispatch.StreamPrefix+q2, eventstore.Any,
		domain.MustEncode(dispatch.RequestReceived{Adapter: "irc"}, domain.Metadata{}),
		domain.MustEncode(dispatch.RequestFailed{Reason: "x"}, domain.Metadata{})); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, store: store, clock: clock, rep: rep}
	f.await("logbook_requests_total", map[string]string{"adapter": "irc", "outcome": "failed"}, 1)
	if got, _, found := f.value("logbook_requests_total", map[string]string{"adapter": "api"}); found {
		t.Errorf("a request received before the start was counted: %v", got)
	}
}

func TestTracerFromEnvRefusesAProtocolItCannotSpeak(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	_, err := telemetry.TracerFromEnv(context.Background())
	if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_PROTOCOL=grpc") || !strings.Contains(err.Error(), "http/protobuf") {
		t.Fatalf("err = %v, want one naming the variable and the protocol to use", err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "")
	if tp, err := telemetry.TracerFromEnv(context.Background()); tp != nil || err != nil {
		t.Fatalf("with no endpoint: %v, %v; want no provider and no error", tp, err)
	}
}

func awaitSpans(t *testing.T, spans *tracetest.InMemoryExporter, roots int) tracetest.SpanStubs {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := spans.GetSpans()
		n := 0
		for _, s := range got {
			if s.Name == "request" {
				n++
			}
		}
		if n >= roots {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d request spans, want %d: %v", n, roots, names(got))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func near(got, want float64) bool { return got > want-1e-6 && got < want+1e-6 }
