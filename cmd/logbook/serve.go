package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/adapters/webui"
	"github.com/logbookhq/logbook/internal/supervisor"
	"github.com/logbookhq/logbook/projections"
)

func init() { register(newServeCmd) }

func newServeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the Logbook server (store, HTTP on LOGBOOK_HTTP_ADDR)",
		Long: `Run the Logbook server. The store is LOGBOOK_DATABASE_URL (postgres://...),
or, when unset, an embedded SQLite file under LOGBOOK_DATA_DIR (default ./data).
HTTP listens on LOGBOOK_HTTP_ADDR (default 127.0.0.1:8080): /healthz answers
while the process runs, /readyz once the database is connected. A database
that is down at start is retried with backoff. SIGTERM or SIGINT stops it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return exitWith(2, "configuration: %v", err)
			}
			return serve(cmd.Context(), cfg)
		},
	}
}

// server holds what serve starts, so readiness and the API can look at it.
type server struct {
	sup      *supervisor.Supervisor
	mu       sync.RWMutex
	store    *sqlstore.Store
	platform *platform
	api      *httpapi.API
	web      *webui.UI
}

// ready reports each part of the server: ready while every essential part
// runs and the database answers.
func (s *server) ready(ctx context.Context) httpapi.ReadinessReport {
	ready, parts := s.sup.Ready()
	report := httpapi.ReadinessReport{Ready: ready, Parts: parts}
	s.mu.RLock()
	st, p := s.store, s.platform
	s.mu.RUnlock()
	if p != nil {
		report.Leader = p.leading.Load()
		if p.election != nil {
			status := p.election.Status()
			report.Term, report.Holder, report.LeaderHolder = status.Term, status.Holder, status.LeaderHolder
			why, duties := p.election.readiness()
			report.Parts = append(report.Parts, duties...)
			if why != "" && ready {
				ready, report.Ready, report.Reason = false, false, why
			}
		}
	}
	switch {
	case st == nil:
		report.Ready, report.Reason = false, "database not connected yet"
	case p == nil:
		report.Ready, report.Reason = false, "starting the executor, views and dispatcher"
	case !ready:
		if report.Reason == "" {
			report.Reason = "a part of the server is not running"
		}
	default:
		if err := st.Ping(ctx); err != nil {
			report.Ready, report.Reason = false, "the database does not answer: "+err.Error()
		}
	}
	return report
}

// withWeb serves the web UI at / (a plain 503 page until the platform has
// started) and the API's routes from api.
func (s *server) withWeb(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/", api)
	mux.Handle("/healthz", api)
	mux.Handle("/readyz", api)
	mux.Handle("/metrics", s.metricsHandler())
	mux.Handle("/", webui.Starting(func() http.Handler {
		s.mu.RLock()
		defer s.mu.RUnlock()
		if s.web == nil {
			return nil
		}
		return s.web
	}))
	return mux
}

func (s *server) currentAPI() *httpapi.API {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.api
}

// serve runs the server until ctx ends or a part fails for good. Every
// long-running part runs under one supervisor: HTTP first, so /healthz
// answers (and /readyz says why not ready) while the database is down,
// then the store, opened with retries, and the platform on top of it.
// Shutdown stops HTTP first and the rest in the reverse of their start.
func serve(ctx context.Context, cfg config) error {
	log := newLogger(cfg, os.Stderr)
	ctx = log.WithContext(ctx)
	if cfg.CPUProfile != "" {
		// A diagnostic: the whole life of the server, written at shutdown.
		stop, err := startCPUProfile(cfg.CPUProfile)
		if err != nil {
			return fmt.Errorf("LOGBOOK_CPU_PROFILE: %w", err)
		}
		defer stop()
	}
	srv := &server{sup: supervisor.New(supervisor.Config{Logger: log})}

	listener, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (LOGBOOK_HTTP_ADDR): %w", cfg.HTTPAddr, err)
	}
	httpServer := &http.Server{Handler: srv.withChat(httpapi.Compress(srv.withWeb(httpapi.NewHandler(srv.ready, srv.currentAPI)))), ReadHeaderTimeout: 10 * time.Second}
	// Open console streams end at shutdown instead of holding it up.
	httpServer.RegisterOnShutdown(func() {
		srv.mu.RLock()
		defer srv.mu.RUnlock()
		if srv.web != nil {
			srv.web.Shutdown()
		}
	})

	// The parts run until shutdown, not until the signal: they stop in
	// order, after HTTP, so that no request arrives at a stopped part.
	partsCtx, stopParts := context.WithCancel(context.WithoutCancel(ctx))
	defer stopParts()
	srv.sup.Start(partsCtx, supervisor.Part{
		Name: "http", StopFirst: true, StopTimeout: 10 * time.Second,
		Run: func(context.Context) error {
			log.Info().Str("url", "http://"+listener.Addr().String()).Msg("listening")
			if err := httpServer.Serve(listener); !errors.Is(err, http.ErrServerClosed) {
				return supervisor.Permanent(fmt.Errorf("http server: %w", err))
			}
			return nil
		},
		Stop: httpServer.Shutdown,
	})
	srv.sup.Start(partsCtx, supervisor.Part{
		Name: "store", Essential: true, ReportsReady: true, StopTimeout: 15 * time.Second,
		Run: func(ctx context.Context) error { return srv.runStore(ctx, cfg, log) },
	})

	var runErr error
	select {
	case <-ctx.Done():
		log.Info().Msg("shutting down")
	case err := <-srv.sup.Fatal():
		runErr = err
		log.Error().Err(err).Msg("shutting down: a part of the server cannot go on")
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := srv.sup.Stop(shutdownCtx); err != nil {
		log.Error().Err(err).Msg("shutdown")
	}
	log.Info().Msg("stopped")
	return runErr
}

// runStore is the store part: it opens the store (retrying while the
// database is unreachable, reporting why), starts the platform's parts on
// it, and closes it when the server stops, after those parts (they were
// started after it, so they stop before it). A bad URL, a store another
// server holds, a schema this build cannot use, or a platform that cannot
// start are permanent: the process stops.
func (s *server) runStore(ctx context.Context, cfg config, log zerolog.Logger) error {
	st, name, err := openStoreWithRetry(ctx, log, cfg.DatabaseURL, cfg.DataDir)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return supervisor.Permanent(err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error().Err(err).Msg("closing the event store")
		}
	}()
	s.mu.Lock()
	s.store = st
	s.mu.Unlock()
	log.Info().Str("store", name).Msg("event store ready")
	p, err := startPlatform(ctx, s.sup, cfg, st, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return supervisor.Permanent(fmt.Errorf("start: %w", err))
	}
	api := &httpapi.API{Requests: p.dispatcher, Users: p.facts, History: historyReaderOf(p.store), Transcripts: historyTranscriptsOf(p.store), Events: p.store, Views: p.viewProgress(),
		Live: p.live, Permissions: projections.NewPermissionReader(projections.DBOf(p.store)), Approvals: projections.NewApprovalReader(projections.DBOf(p.store)), Secrets: p.secrets,
		Search:    projections.NewSearchReader(projections.DBOf(p.store)),
		Executors: p.executors(),
		Exports:   exportStatus{store: p.store, configs: cfg.Exports},
		Triggers:  p.triggers, Sources: projections.NewSourcesReader(projections.DBOf(p.store)), Logger: log}
	web, err := webui.New(webui.Config{Users: p.facts, Requests: p.dispatcher, History: historyReaderOf(p.store), Transcripts: historyTranscriptsOf(p.store),
		Events: p.store, Views: api.Views, Live: p.live, Access: p.facts, Permissions: api.Permissions, Approvals: api.Approvals, Search: api.Search, Executors: p.executors(), Logger: log,
		Audit: projections.NewAuditReader(projections.DBOf(p.store)), Sessions: webui.SQLSessions{Read: p.store.DB(), Write: p.store.WriteDB(), Rebind: rebindFor(p.store)}})
	if err != nil {
		return supervisor.Permanent(fmt.Errorf("web UI: %w", err))
	}
	s.mu.Lock()
	s.platform, s.api, s.web = p, api, web
	s.mu.Unlock()
	supervisor.Ready(ctx)
	if p.election == nil {
		log.Info().Msg("ready: executor, views and dispatcher running")
	} else {
		log.Info().Msg("ready: serving; the executor, views and dispatcher run on the server that holds the leader lease")
	}
	<-ctx.Done()
	return nil
}
