// Package telemetry reports what Logbook does as Prometheus metrics and
// OpenTelemetry traces. Both are read off the log, not off the code paths
// that write it: a follower folds each request's and run's events
// (projections.Activity) from the head at start, so the figures and the
// traces say what was recorded, with the times the log recorded, and the
// hot path carries no instrumentation beyond the store's commit timings.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/projections"
)

// FeedReader is the lean, type-filtered read of the log the views use
// (*sqlstore.Store has it); a store without it is read with ReadAll.
type FeedReader interface {
	ReadFeed(ctx context.Context, from, to int64, types []string) ([]domain.RecordedEvent, error)
}

// Lag is how far one follower of the log is behind its head.
type Lag struct {
	Name     string // a view's name, or "dispatcher"
	Position int64
}

// Pool is one container pool of the Docker runtime.
type Pool struct {
	Mode  run.Mode // warm or single-use
	Image string
	// Containers by state: idle, busy (warm); spare, starting (single-use).
	Containers map[string]int
	Waiting    int // runs waiting for a container
}

// Config wires the reporter. Store is required; the rest are optional.
type Config struct {
	Store eventstore.Store
	// Followers reports the positions of the views and the dispatcher.
	Followers func(ctx context.Context) ([]Lag, error)
	// Pools reports the runtime's container pools.
	Pools func() []Pool
	// Leader reports this server's part in the election of servers
	// sharing one database (nil: a single server, always leading).
	Leader func() Leadership
	// From is the first position to read (0: the head's next at start, so
	// the figures count what happens from then on, as counters do).
	From int64
	// Spacing is the least time between two reads of the log (100ms):
	// under load one read takes many commits' events, so the reporter
	// costs the hot path almost nothing; the figures lag by at most that.
	Spacing time.Duration
	// Tracer receives a trace per request (nil: no traces).
	Tracer trace.TracerProvider
	Logger zerolog.Logger
}

// Reporter follows the log and serves /metrics.
type Reporter struct {
	cfg      Config
	registry *prometheus.Registry
	activity *projections.Activity
	next     int64 // the next position to read; 0 before the first read

	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	denials         *prometheus.CounterVec
	runDuration     *prometheus.HistogramVec
	runQueued       *prometheus.HistogramVec
	queueDepth      prometheus.Gauge
	running         prometheus.Gauge
	dropped         prometheus.Counter
	appendLatency   *prometheus.HistogramVec
	commitEvents    prometheus.Histogram
	commitRequests  prometheus.Histogram
	commitDuration  prometheus.Histogram
	tracer          trace.Tracer
}

// activityTypes are the event types the fold reads; the rest are skipped
// in the read itself.
var activityTypes = []string{
	"RequestReceived", "IdentityResolved", "IdentityUnknown", "PipelineRejected", "PermissionChecked",
	"InvocationChecked", "RequestDenied", "StageStarted", "RequestCompleted", "RequestFailed", "ReplyPosted",
	"RunRequested", "ContainerStarted", "OutputChunk", "RunSucceeded", "RunFailed", "RunTimedOut", "RunCancelled", "RunLost",
}

// New builds the reporter and its registry: the series below, Go's runtime
// and the process's.
func New(cfg Config) (*Reporter, error) {
	if cfg.Store == nil {
		return nil, errors.New("telemetry: Store is required")
	}
	if cfg.Spacing <= 0 {
		cfg.Spacing = 100 * time.Millisecond
	}
	r := &Reporter{cfg: cfg, registry: prometheus.NewRegistry(), activity: projections.NewActivity(), next: cfg.From}
	seconds := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}
	r.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logbook_requests_total",
		Help: "Requests that reached their outcome, by chat provider (adapter) and outcome (completed, failed, denied, rejected, unknown-user)."},
		[]string{"adapter", "outcome"})
	r.requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "logbook_request_duration_seconds",
		Help: "From a request's RequestReceived to its outcome, as recorded.", Buckets: seconds}, []string{"adapter", "outcome"})
	r.denials = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logbook_denials_total",
		Help: "Commands a permission check refused, by command."}, []string{"command"})
	r.runDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "logbook_run_duration_seconds",
		Help: "From a run's RunRequested to its end, by bundle, command, execution mode and outcome.", Buckets: seconds},
		[]string{"bundle", "command", "mode", "outcome"})
	r.runQueued = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "logbook_run_queued_seconds",
		Help: "From a run's RunRequested to its container's start, by execution mode.", Buckets: seconds}, []string{"mode"})
	r.queueDepth = prometheus.NewGauge(prometheus.GaugeOpts{Name: "logbook_executor_queue_depth",
		Help: "Runs requested and not yet started."})
	r.running = prometheus.NewGauge(prometheus.GaugeOpts{Name: "logbook_runs_running",
		Help: "Runs started and not yet ended."})
	r.dropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "logbook_telemetry_dropped_total",
		Help: "Open requests and runs the reporter let go of unfinished, past the most it holds."})
	r.appendLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "logbook_store_append_seconds",
		Help: "One append to the event store, from its call to its committed result.", Buckets: seconds}, []string{"result"})
	r.commitEvents = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "logbook_store_group_commit_events",
		Help: "Events written by one group commit.", Buckets: prometheus.ExponentialBuckets(1, 2, 12)})
	r.commitRequests = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "logbook_store_group_commit_appends",
		Help: "Appends carried by one group commit.", Buckets: prometheus.ExponentialBuckets(1, 2, 10)})
	r.commitDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "logbook_store_commit_seconds",
		Help: "One group commit's transaction, including the database's flush.", Buckets: seconds})
	r.registry.MustRegister(r.requests, r.requestDuration, r.denials, r.runDuration, r.runQueued, r.queueDepth, r.running, r.dropped,
		r.appendLatency, r.commitEvents, r.commitRequests, r.commitDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&scrapeCollector{r: r})
	if cfg.Tracer != nil {
		r.tracer = cfg.Tracer.Tracer("github.com/logbookhq/logbook")
	}
	return r, nil
}

// Handler serves the registry in Prometheus's text format.
func (r *Reporter) Handler() http.Handler {
	return promhttp.HandlerFor(r.registry, promhttp.HandlerOpts{ErrorLog: promLogger{r.cfg.Logger}})
}

// Registry is the reporter's registry (tests gather it).
func (r *Reporter) Registry() *prometheus.Registry { return r.registry }

// Committed implements sqlstore.CommitObserver.
func (r *Reporter) Committed(requests, events int, took time.Duration) {
	r.commitRequests.Observe(float64(requests))
	r.commitEvents.Observe(float64(events))
	r.commitDuration.Observe(took.Seconds())
}

// Appended implements sqlstore.CommitObserver.
func (r *Reporter) Appended(took time.Duration, failed bool) {
	result := "ok"
	if failed {
		result = "error"
	}
	r.appendLatency.WithLabelValues(result).Observe(took.Seconds())
}

// Run follows the log from Config.From, or from its head when first
// started, until ctx ends. A restart after an error goes on from where it
// stopped.
func (r *Reporter) Run(ctx context.Context) error {
	if r.next == 0 {
		head, _, err := r.cfg.Store.Head(ctx)
		if err != nil {
			return fmt.Errorf("telemetry: reading the log's head: %w", err)
		}
		r.next = head + 1
	}
	safety := time.NewTimer(5 * time.Second)
	defer safety.Stop()
	var lastRead time.Time
	for {
		if wait := r.cfg.Spacing - time.Since(lastRead); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		changed := r.cfg.Store.Changed()
		lastRead = time.Now()
		read, err := r.step(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("telemetry: reading the log from position %d: %w", r.next, err)
		}
		if read {
			continue
		}
		safety.Reset(5 * time.Second)
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-safety.C:
		}
	}
}

// step reads and folds the next batch of the log; false when there was
// none.
func (r *Reporter) step(ctx context.Context) (bool, error) {
	const batch = 5000
	head, _, err := r.cfg.Store.Head(ctx)
	if err != nil {
		return false, err
	}
	if head < r.next {
		return false, nil
	}
	to := min(head, r.next+batch-1)
	var events []domain.RecordedEvent
	if feed, ok := r.cfg.Store.(FeedReader); ok {
		events, err = feed.ReadFeed(ctx, r.next, to, activityTypes)
	} else {
		events, err = r.cfg.Store.ReadAll(ctx, r.next, int(to-r.next+1))
	}
	if err != nil {
		return false, err
	}
	for _, e := range events {
		if e.Position > to {
			break
		}
		r.apply(e)
	}
	r.next = to + 1
	r.queueDepth.Set(float64(r.activity.Queued()))
	r.running.Set(float64(r.activity.Running()))
	return true, nil
}

// apply folds one event and observes what it ended.
func (r *Reporter) apply(e domain.RecordedEvent) {
	payload, err := projections.DecodeForActivity(e)
	if err != nil {
		// A type this build does not know, or one the read did not filter
		// out (ReadAll): not the reporter's to judge.
		return
	}
	before := r.activity.Dropped()
	c := r.activity.Apply(e, payload)
	if d := r.activity.Dropped() - before; d > 0 {
		r.dropped.Add(float64(d))
	}
	if rn := c.RunEnded; rn != nil {
		mode := string(rn.Mode)
		r.runDuration.WithLabelValues(bundleLabel(rn.Bundle), rn.Command, mode, rn.Outcome).Observe(rn.Duration().Seconds())
		if !rn.StartedAt.IsZero() {
			r.runQueued.WithLabelValues(mode).Observe(rn.StartedAt.Sub(rn.RequestedAt).Seconds())
		}
	}
	if req := c.RequestEnded; req != nil {
		r.requests.WithLabelValues(req.Adapter, req.Outcome).Inc()
		r.requestDuration.WithLabelValues(req.Adapter, req.Outcome).Observe(req.EndedAt.Sub(req.ReceivedAt).Seconds())
		for _, command := range req.Denied {
			r.denials.WithLabelValues(command).Inc()
		}
	}
	if r.tracer != nil {
		for _, req := range c.RequestDone {
			r.trace(req)
		}
	}
}

// bundleLabel names a builtin's bundle as the history view does.
func bundleLabel(bundle string) string {
	if bundle == "" {
		return dispatch.BuiltinBundle
	}
	return bundle
}

// Leadership is this server's part in the election: whether it leads, and
// the term of the lease as last seen (its own while it leads).
type Leadership struct {
	Leading bool
	Term    int64
}

// scrapeCollector reports, at each scrape, what is read when asked: the
// log's head, each follower's lag and the container pools.
type scrapeCollector struct{ r *Reporter }

var (
	headDesc  = prometheus.NewDesc("logbook_log_head_position", "The position of the last event in the log.", nil, nil)
	lagDesc   = prometheus.NewDesc("logbook_follower_lag_events", "Events in the log that a view, or the dispatcher, has not applied yet.", []string{"follower"}, nil)
	poolDesc  = prometheus.NewDesc("logbook_pool_containers", "Containers of the runtime's pools, by execution mode, image and state.", []string{"mode", "image", "state"}, nil)
	waitDesc  = prometheus.NewDesc("logbook_pool_waiting_runs", "Runs waiting for a container of a pool.", []string{"mode", "image"}, nil)
	errorDesc = prometheus.NewDesc("logbook_scrape_errors", "Figures this scrape could not read (1 each).", []string{"figure"}, nil)
	termDesc  = prometheus.NewDesc("logbook_leader_term", "The term of the leader lease as this server last saw it; it grows by one at each takeover.", nil, nil)
	leadDesc  = prometheus.NewDesc("logbook_leader", "1 while this server holds the leader lease (runs the dispatcher, the views and the timers), else 0.", nil, nil)
)

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- headDesc
	ch <- lagDesc
	ch <- poolDesc
	ch <- waitDesc
	ch <- errorDesc
	ch <- termDesc
	ch <- leadDesc
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	head, _, err := c.r.cfg.Store.Head(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(errorDesc, prometheus.GaugeValue, 1, "head")
		return
	}
	ch <- prometheus.MustNewConstMetric(headDesc, prometheus.GaugeValue, float64(head))
	if c.r.cfg.Leader != nil {
		l := c.r.cfg.Leader()
		leading := 0.0
		if l.Leading {
			leading = 1
		}
		ch <- prometheus.MustNewConstMetric(leadDesc, prometheus.GaugeValue, leading)
		ch <- prometheus.MustNewConstMetric(termDesc, prometheus.GaugeValue, float64(l.Term))
	}
	if c.r.cfg.Followers != nil {
		lags, err := c.r.cfg.Followers(ctx)
		if err != nil {
			ch <- prometheus.MustNewConstMetric(errorDesc, prometheus.GaugeValue, 1, "followers")
		}
		for _, l := range lags {
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(max(head-l.Position, 0)), l.Name)
		}
	}
	if c.r.cfg.Pools != nil {
		for _, p := range c.r.cfg.Pools() {
			for state, n := range p.Containers {
				ch <- prometheus.MustNewConstMetric(poolDesc, prometheus.GaugeValue, float64(n), string(p.Mode), p.Image, state)
			}
			ch <- prometheus.MustNewConstMetric(waitDesc, prometheus.GaugeValue, float64(p.Waiting), string(p.Mode), p.Image)
		}
	}
}

// promLogger hands promhttp's errors to zerolog.
type promLogger struct{ log zerolog.Logger }

func (l promLogger) Println(v ...any) { l.log.Error().Msg(fmt.Sprint(v...)) }
