package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/adapters/docker"
	"github.com/logbookhq/logbook/adapters/natsbus"
	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/runbus"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/internal/samplebundle"
	"github.com/logbookhq/logbook/internal/supervisor"
)

func init() { register(newExecutorCmd) }

func newExecutorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "executor",
		Short: "Run commands for a Logbook server on this host, over NATS (LOGBOOK_BUS_URL)",
		Long: `Run an executor: it takes the runs of its relay groups (LOGBOOK_EXECUTOR_GROUPS,
default "default") from NATS JetStream (LOGBOOK_BUS_URL, with LOGBOOK_BUS_USER and
LOGBOOK_BUS_PASSWORD or LOGBOOK_BUS_NKEY_FILE), runs them in Docker on this host, and
publishes their events back. It needs no database: it reads and writes the log only
through the server. Its id is LOGBOOK_EXECUTOR_ID (default the host name); a
run's secrets are opened with the group's key in LOGBOOK_EXECUTOR_KEY_FILE.
SIGTERM or SIGINT stops it: runs in flight end cancelled.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return exitWith(2, "configuration: %v", err)
			}
			if cfg.Bus.URL == "" {
				return exitWith(2, "configuration: logbook executor needs LOGBOOK_BUS_URL (nats://...)")
			}
			if len(cfg.Bus.Groups) == 0 {
				cfg.Bus.Groups = []string{natsbus.DefaultGroup}
			}
			return runExecutorProcess(cmd.Context(), cfg)
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "keygen GROUP",
		Short: "Make a relay group's key pair for sealing run secrets",
		Long: `Print a new key pair of a relay group: the public line goes in the server's
LOGBOOK_RELAY_KEYS_FILE, the private line in the LOGBOOK_EXECUTOR_KEY_FILE (mode 0600)
of every executor of the group.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := natsbus.ValidateName("relay group", args[0]); err != nil {
				return exitWith(2, "%v", err)
			}
			key, err := runbus.NewGroupKey()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "# LOGBOOK_RELAY_KEYS_FILE (server):\n%s %s\n# LOGBOOK_EXECUTOR_KEY_FILE (executors of %s, keep secret):\n%s %s\n",
				args[0], runbus.EncodeKey(key.Public), args[0], args[0], runbus.EncodeKey(key.Private))
			return nil
		},
	})
	return cmd
}

// busExecutor is an executor on the NATS bus, in its own process or in
// serve's.
type busExecutor struct {
	exec *executor.Executor
	link *natsbus.Link
	sub  *natsbus.Subscriber
	pub  *natsbus.Publisher
}

// newBusExecutor builds an executor taking the runs of settings.Groups on
// conn, claiming each from the server before it starts.
func newBusExecutor(conn *natsbus.Conn, settings busSettings, rt executor.Runtime, maxPids int64, log zerolog.Logger) (*busExecutor, error) {
	open, err := opener(settings)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	b := &busExecutor{link: natsbus.NewLink(conn, settings.ExecutorID, uuid.NewString(), host, settings.Groups)}
	// A run's events go out without waiting for each acknowledgement; its
	// request is acknowledged once they all are.
	if b.pub, err = natsbus.NewPublisher(conn, natsbus.PublisherConfig{Source: settings.ExecutorID, Pipelined: true}); err != nil {
		return nil, err
	}
	if b.sub, err = natsbus.NewSubscriber(conn, natsbus.SubscriberConfig{Groups: settings.Groups, Slots: settings.Slots, Open: open, Settle: b.pub.Settle}); err != nil {
		return nil, err
	}
	// A run's last events go in one message (and one commit).
	b.exec, err = executor.NewExecutorWithConfig(executor.Config{Runtime: rt, Publisher: executor.GroupPublisher{Publisher: b.pub}, Claimer: b.link, Concurrency: settings.Slots,
		MaxPids: maxPids, Actor: "executor:" + settings.ExecutorID, Logger: log.With().Str("executor", settings.ExecutorID).Logger()})
	return b, err
}

// heartbeat is what the executor says about itself.
func (b *busExecutor) heartbeat(rt executor.Runtime) func() executor.Heartbeat {
	version := buildVersion()
	return func() executor.Heartbeat {
		hb := executor.Heartbeat{Version: version, Runs: b.exec.Held(), Slots: b.exec.Slots()}
		if pools, ok := rt.(interface{ PoolContainers() int }); ok {
			hb.PoolContainers = pools.PoolContainers()
		}
		return hb
	}
}

// runExecutorProcess is `logbook executor`: NATS, the Docker runtime,
// reconcile of this executor's leftovers, the sample image, then the
// router, each a part of one supervisor.
func runExecutorProcess(ctx context.Context, cfg config) error {
	log := newLogger(cfg, os.Stderr).With().Str("executor", cfg.Bus.ExecutorID).Logger()
	ctx = log.WithContext(ctx)
	if cfg.CPUProfile != "" {
		// A diagnostic, as serve's: the executor's whole life, written
		// when it stops.
		stop, err := startCPUProfile(cfg.CPUProfile)
		if err != nil {
			return fmt.Errorf("LOGBOOK_CPU_PROFILE: %w", err)
		}
		defer stop()
	}
	sup := supervisor.New(supervisor.Config{Logger: log})
	partsCtx, stopParts := context.WithCancel(context.WithoutCancel(ctx))
	defer stopParts()

	conn, err := natsbus.Connect(ctx, cfg.Bus.connConfig("logbook-executor-"+cfg.Bus.ExecutorID, cfg.Bus.ExecutorID, log))
	if err != nil {
		if errors.Is(err, natsbus.ErrRefused) {
			return exitWith(3, "%v", err)
		}
		return err
	}
	sup.Start(partsCtx, supervisor.Part{Name: "nats", Run: waitForStop, Stop: func(context.Context) error { return conn.Close() }})

	rt, closeRT, eng, err := executorRuntime(ctx, cfg, log)
	if err != nil {
		return exitWith(2, "%v", err)
	}
	sup.Start(partsCtx, supervisor.Part{Name: "runtime", Run: waitForStop, Stop: closeRT, StopTimeout: 30 * time.Second})
	if leftovers, ok := rt.(executor.LeftoverRuntime); ok {
		reconcileHost(ctx, leftovers, log)
	}
	if eng != nil {
		if b, err := bundle.Load(samplebundle.Config); err == nil {
			buildSampleImage(ctx, eng, b.Image(), log)
		}
	}

	be, err := newBusExecutor(conn, cfg.Bus, rt, cfg.MaxPids, log)
	if err != nil {
		return exitWith(2, "%v", err)
	}
	router, err := executor.NewRouter(executor.RouterConfig{PoisonPublisher: be.pub, Logger: log})
	if err != nil {
		return err
	}
	be.exec.AddHandlers(router, be.sub, be.sub)
	sup.Start(partsCtx, supervisor.Part{
		Name: "heartbeat", StopTimeout: 5 * time.Second,
		Run: func(ctx context.Context) error { return be.link.Heartbeats(ctx, cfg.Bus.Heartbeat, be.heartbeat(rt)) },
	})
	sup.Start(partsCtx, routerPart(router, func(ctx context.Context) error {
		return errors.Join(be.exec.Shutdown(ctx), be.sub.Close(), router.Close())
	}))
	log.Info().Strs("groups", cfg.Bus.Groups).Int("slots", cfg.Bus.Slots).Msg("executor running")

	var runErr error
	select {
	case <-ctx.Done():
		log.Info().Msg("shutting down")
	case err := <-sup.Fatal():
		runErr = err
		log.Error().Err(err).Msg("shutting down: a part of the executor cannot go on")
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := sup.Stop(shutdownCtx); err != nil {
		log.Error().Err(err).Msg("shutdown")
	}
	log.Info().Msg("stopped")
	return runErr
}

// routerPart runs a watermill router as the "executor" part. A router runs
// once: its end before the process stops is one no restart can undo.
func routerPart(router interface {
	Run(context.Context) error
	Running() chan struct{}
}, stop func(context.Context) error) supervisor.Part {
	return supervisor.Part{
		Name: "executor", Essential: true, ReportsReady: true, StopTimeout: 40 * time.Second,
		Run: func(ctx context.Context) error {
			go func() {
				select {
				case <-router.Running():
					supervisor.Ready(ctx)
				case <-ctx.Done():
				}
			}()
			if err := router.Run(ctx); err != nil {
				return supervisor.Permanent(fmt.Errorf("the executor's router: %w", err))
			}
			if ctx.Err() == nil {
				return supervisor.Permanent(errors.New("the executor's router stopped"))
			}
			return nil
		},
		Stop: stop,
	}
}

// executorRuntime is Docker (required unless LOGBOOK_RUNTIME=process),
// pulling images it lacks, its containers labelled with this executor's
// own owner so that its reconcile touches nothing else on the host.
func executorRuntime(ctx context.Context, cfg config, log zerolog.Logger) (executor.Runtime, func(context.Context) error, docker.Engine, error) {
	if cfg.Runtime == "process" {
		return chooseRuntime(ctx, cfg, nil, log)
	}
	cli, err := docker.NewClient()
	if err == nil {
		pingCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err = cli.Ping(pingCtx)
		cancel()
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("an executor needs a Docker daemon (or LOGBOOK_RUNTIME=process for development): %w", err)
	}
	warm, err := agentConfig(ctx, cli, cfg.Warm, log)
	if err != nil {
		return nil, nil, nil, err
	}
	rt, err := docker.NewRuntimeWithConfig(docker.Config{Engine: cli, Owner: "logbook-executor-" + cfg.Bus.ExecutorID, Warm: warm, PullMissing: true, Logger: log})
	if err != nil {
		return nil, nil, nil, err
	}
	return rt, rt.Close, cli, nil
}

// reconcileHost removes what this executor's previous process left on the
// host, saying what it found. The server records the runs it held lost
// when this process's first heartbeat shows a new boot.
func reconcileHost(ctx context.Context, rt executor.LeftoverRuntime, log zerolog.Logger) {
	leftovers, err := rt.Leftovers(ctx)
	if err != nil {
		log.Error().Err(err).Msg("listing leftover containers")
		return
	}
	for _, l := range leftovers {
		ev := log.Warn().Str("run_id", l.RunID).Str("container_id", l.ContainerID).Str("state", l.State)
		if err := rt.Discard(ctx, l); err != nil {
			ev.Err(err).Msg("a leftover container of this executor's previous process could not be removed")
			continue
		}
		ev.Msg("removed a leftover container of this executor's previous process")
	}
}
