package main

import (
	"context"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/docker"
	"github.com/logbookhq/logbook/adapters/telemetry"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/internal/supervisor"
)

// startTelemetry starts the reporter behind /metrics, and the trace
// export when OTEL_EXPORTER_OTLP_ENDPOINT asks for it, as parts of sup.
func startTelemetry(ctx context.Context, sup *supervisor.Supervisor, p *platform, runtime executor.Runtime, log zerolog.Logger) (*telemetry.Reporter, error) {
	tracer, err := telemetry.TracerFromEnv(ctx)
	if err != nil {
		return nil, err
	}
	cfg := telemetry.Config{
		Store: p.store, Logger: log,
		Followers: func(ctx context.Context) ([]telemetry.Lag, error) {
			lags := []telemetry.Lag{{Name: "dispatcher", Position: p.dispatcher.Position()}}
			views, err := p.views.Status(ctx)
			for _, v := range views {
				lags = append(lags, telemetry.Lag{Name: v.Name, Position: v.Checkpoint})
			}
			return lags, err
		},
	}
	cfg.Leader = func() telemetry.Leadership {
		if p.election != nil {
			return p.election.Leadership()
		}
		return telemetry.Leadership{Leading: true}
	}
	if pools, ok := runtime.(dockerPools); ok {
		cfg.Pools = func() []telemetry.Pool { return poolsOf(pools) }
	}
	if tracer != nil {
		cfg.Tracer = tracer
		log.Info().Msg("exporting a trace per request over OTLP/HTTP (OTEL_EXPORTER_OTLP_ENDPOINT)")
	}
	reporter, err := telemetry.New(cfg)
	if err != nil {
		return nil, err
	}
	p.store.Observe(reporter)
	sup.Start(ctx, supervisor.Part{
		Name: "telemetry", Run: reporter.Run,
		Stop: func(ctx context.Context) error {
			p.store.Observe(nil)
			if tracer != nil {
				return tracer.Shutdown(ctx)
			}
			return nil
		},
	})
	return reporter, nil
}

// dockerPools is the Docker runtime's view of its pools.
type dockerPools interface {
	WarmStatus() []docker.WarmPoolStatus
	SingleUseStatus() []docker.SingleUsePoolStatus
}

func poolsOf(d dockerPools) []telemetry.Pool {
	var out []telemetry.Pool
	for _, w := range d.WarmStatus() {
		out = append(out, telemetry.Pool{Mode: run.ModeWarm, Image: w.Image, Containers: map[string]int{"idle": w.Idle, "busy": w.Live - w.Idle}})
	}
	for _, s := range d.SingleUseStatus() {
		out = append(out, telemetry.Pool{Mode: run.ModeSingleUse, Image: s.Image, Containers: map[string]int{"spare": s.Spare, "starting": s.Starting, "running": s.Running}, Waiting: s.Waiting})
	}
	return out
}

// metricsHandler serves the platform's /metrics once it has started.
func (s *server) metricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.RLock()
		p := s.platform
		s.mu.RUnlock()
		if p == nil || p.telemetry == nil {
			http.Error(w, "starting: the metrics are served once the store is open", http.StatusServiceUnavailable)
			return
		}
		p.telemetry.Handler().ServeHTTP(w, r)
	})
}
