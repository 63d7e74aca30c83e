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

	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/adapters/webui"
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
	mu       sync.RWMutex
	store    *sqlstore.Store
	platform *platform
	api      *httpapi.API
	web      *webui.UI
}

func (s *server) ready(ctx context.Context) error {
	s.mu.RLock()
	st, p := s.store, s.platform
	s.mu.RUnlock()
	if st == nil {
		return errors.New("database not connected yet")
	}
	if p == nil {
		return errors.New("starting the executor, views and dispatcher")
	}
	return st.Ping(ctx)
}

// withWeb serves the web UI at / (a plain 503 page until the platform has
// started) and the API's routes from api.
func (s *server) withWeb(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/", api)
	mux.Handle("/healthz", api)
	mux.Handle("/readyz", api)
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

func serve(ctx context.Context, cfg config) error {
	log := newLogger(cfg, os.Stderr)
	ctx = log.WithContext(ctx)
	srv := &server{}

	listener, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (LOGBOOK_HTTP_ADDR): %w", cfg.HTTPAddr, err)
	}
	httpServer := &http.Server{Handler: srv.withChat(srv.withWeb(httpapi.NewHandler(srv.ready, srv.currentAPI))), ReadHeaderTimeout: 10 * time.Second}
	// Open console streams end at shutdown instead of holding it up.
	httpServer.RegisterOnShutdown(func() {
		srv.mu.RLock()
		defer srv.mu.RUnlock()
		if srv.web != nil {
			srv.web.Shutdown()
		}
	})
	httpDone := make(chan error, 1)
	go func() { httpDone <- httpServer.Serve(listener) }()
	log.Info().Str("url", "http://"+listener.Addr().String()).Msg("listening")

	// The platform runs until shutdown, not until the signal: it must stop
	// after HTTP, so that no request arrives at a stopped dispatcher.
	platformCtx, stopPlatform := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPlatform()
	openCtx, cancelOpen := context.WithCancel(ctx)
	defer cancelOpen()
	storeDone := make(chan error, 1)
	go func() {
		st, name, err := openStoreWithRetry(openCtx, log, cfg.DatabaseURL, cfg.DataDir)
		if err != nil {
			storeDone <- err
			return
		}
		srv.mu.Lock()
		srv.store = st
		srv.mu.Unlock()
		log.Info().Str("store", name).Msg("event store ready")
		p, err := startPlatform(platformCtx, cfg, st, log)
		if err != nil {
			storeDone <- fmt.Errorf("start: %w", err)
			return
		}
		srv.mu.Lock()
		srv.platform = p
		srv.api = &httpapi.API{Requests: p.dispatcher, Users: p.facts, History: historyReaderOf(p.store), Transcripts: historyTranscriptsOf(p.store), Events: p.store, Views: p.views,
			Permissions: projections.NewPermissionReader(projections.DBOf(p.store))}
		srv.web, err = webui.New(webui.Config{Users: p.facts, Requests: p.dispatcher, History: historyReaderOf(p.store), Transcripts: historyTranscriptsOf(p.store),
			Events: p.store, Views: p.views, Access: p.facts, Permissions: srv.api.Permissions, Logger: log})
		if err != nil {
			srv.mu.Unlock()
			storeDone <- fmt.Errorf("web UI: %w", err)
			return
		}
		srv.mu.Unlock()
		log.Info().Msg("ready: executor, views and dispatcher running")
		storeDone <- nil
	}()

	var runErr error
wait:
	for {
		select {
		case <-ctx.Done():
			log.Info().Msg("shutting down")
			break wait
		case err := <-httpDone:
			runErr = fmt.Errorf("http server: %w", err)
			break wait
		case err := <-storeDone:
			storeDone = nil // opened (or failed) once; stop selecting on it
			if err != nil && !errors.Is(err, context.Canceled) {
				runErr = err
				break wait
			}
		}
	}
	if storeDone != nil {
		cancelOpen()
		<-storeDone
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		log.Error().Err(err).Msg("http shutdown")
	}
	stopPlatform()
	srv.mu.Lock()
	if srv.platform != nil {
		srv.platform.shutdown(shutdownCtx, log)
	}
	if srv.store != nil {
		if err := srv.store.Close(); err != nil {
			log.Error().Err(err).Msg("closing the event store")
		}
	}
	srv.mu.Unlock()
	log.Info().Msg("stopped")
	return runErr
}
