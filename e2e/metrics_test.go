package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	collector "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/logbookhq/logbook/internal/testenv"
)

// otlpReceiver is an OTLP/HTTP trace endpoint: it keeps the spans posted
// to /v1/traces, by trace id.
type otlpReceiver struct {
	mu     sync.Mutex
	traces map[string][]string // trace id (hex) -> span names
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req collector.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				id := hex.EncodeToString(s.GetTraceId())
				o.traces[id] = append(o.traces[id], s.GetName())
			}
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&collector.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func (o *otlpReceiver) spans(traceID string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.traces[traceID]...)
}

// metricLine reads one sample of the /metrics text: name{labels} value.
func metricValue(body, series string) (float64, bool) {
	for line := range strings.SplitSeq(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

func TestMetricsCountTheRequestsMadeAndEachRequestIsTracedOverOTLP(t *testing.T) {
	receiver := &otlpReceiver{traces: map[string][]string{}}
	otlp := httptest.NewServer(receiver)
	defer otlp.Close()
	s := startServer(t, "OTEL_EXPORTER_OTLP_ENDPOINT="+otlp.URL, "OTEL_BSP_SCHEDULE_DELAY=50")
	s.waitReady(t)
	token := s.token(t)

	var ids []string
	for i, text := range []string{"echo one", "echo two", "echo three", "nosuchbundle:nosuchcommand"} {
		body, _ := json.Marshal(map[string]string{"text": text, "message_id": "metrics-" + strconv.Itoa(i)})
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+"/v1/requests?wait=1", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var answer struct {
			RequestID string `json:"request_id"`
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := json.Unmarshal(raw, &answer); err != nil || answer.RequestID == "" {
			t.Fatalf("%s: %s %s", text, resp.Status, raw)
		}
		ids = append(ids, answer.RequestID)
	}

	var metrics string
	testenv.Eventually(t, "/metrics to count three completed api requests and one that failed", func() bool {
		code, body := get(t, "http://"+s.addr+"/metrics")
		metrics = body
		completed, _ := metricValue(body, `logbook_requests_total{adapter="api",outcome="completed"}`)
		return code == http.StatusOK && completed == 3 && countOutcomes(body) == 4
	})
	if v, ok := metricValue(metrics, `logbook_run_duration_seconds_count{bundle="logbook",command="echo",mode="builtin",outcome="succeeded"}`); !ok || v != 3 {
		t.Errorf("builtin echo runs timed: %v, want 3\n%s", v, grep(metrics, "logbook_run_duration_seconds_count"))
	}
	if v, ok := metricValue(metrics, "logbook_store_group_commit_events_count"); !ok || v < 4 {
		t.Errorf("group commits observed: %v, want at least one per request", v)
	}
	if v, ok := metricValue(metrics, "logbook_log_head_position"); !ok || v < 20 {
		t.Errorf("head position %v", v)
	}
	if !strings.Contains(metrics, `logbook_follower_lag_events{follower="dispatcher"}`) || !strings.Contains(metrics, `logbook_follower_lag_events{follower="history"}`) {
		t.Errorf("no lag for the dispatcher and the history view:\n%s", grep(metrics, "logbook_follower_lag_events"))
	}
	if !strings.Contains(metrics, "go_goroutines ") || !strings.Contains(metrics, "process_cpu_seconds_total ") {
		t.Errorf("no Go runtime or process series")
	}

	for _, id := range ids[:3] {
		traceID := strings.ReplaceAll(id, "-", "")
		testenv.Eventually(t, "the trace of request "+id+" to reach the OTLP endpoint", func() bool {
			names := receiver.spans(traceID)
			return contains(names, "request") && contains(names, "decide") && contains(names, "run logbook:echo") && contains(names, "reply")
		})
	}
}

// countOutcomes sums logbook_requests_total over every label set.
func countOutcomes(body string) float64 {
	var sum float64
	for line := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(line, "logbook_requests_total{") {
			fields := strings.Fields(line)
			v, _ := strconv.ParseFloat(fields[len(fields)-1], 64)
			sum += v
		}
	}
	return sum
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func grep(body, prefix string) string {
	var out []string
	for line := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func contains(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}
