package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/docker"
	"github.com/logbookhq/logbook/adapters/process"
	"github.com/logbookhq/logbook/adapters/secretvault"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/adapters/telemetry"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/dispatcher/admin"
	"github.com/logbookhq/logbook/dispatcher/scheduler"
	"github.com/logbookhq/logbook/domain/bundleconfig"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/internal/samplebundle"
	"github.com/logbookhq/logbook/internal/supervisor"
	"github.com/logbookhq/logbook/projections"
)

// platform is what serve runs on top of the store, all in one process in
// the embedded default: the views, the executor with its runtime, the
// appender, the dispatcher, the chat providers and the in-process bus
// between them. Each is a part of the server's supervisor.
type platform struct {
	store      *sqlstore.Store
	bus        executor.EmbeddedBus
	exec       *executor.Executor
	builtins   *executor.BuiltinExecutor
	views      *projections.Runner
	facts      *dispatcher.Facts
	dispatcher *dispatcher.Dispatcher
	triggers   *dispatcher.Triggers
	chat       *chatSet
	secrets    *dispatcher.Secrets
	// live hands the events of followed transcripts and console requests
	// to their readers: one follower of the log for all of them.
	live *eventstore.Hub
	// nats is the NATS run bus (LOGBOOK_BUS_URL), nil on the embedded one.
	nats *serverBus
	// telemetry serves /metrics and exports traces.
	telemetry *telemetry.Reporter
}

// startPlatform wires the platform and starts its parts under sup, in the
// order they depend on each other, which is also the reverse of the order
// they stop in: the bus, the runtime, the executors (containers and
// builtins) on their router, reconcile, the live streams, the views, the
// dispatcher, then the chat providers. An error
// is one a restart cannot fix (a bad setting, no Docker when it is
// required).
func startPlatform(ctx context.Context, sup *supervisor.Supervisor, cfg config, store *sqlstore.Store, log zerolog.Logger) (*platform, error) {
	p := &platform{store: store, bus: executor.NewEmbeddedBus(log)}
	sup.Start(ctx, supervisor.Part{Name: "bus", Run: waitForStop, Stop: func(context.Context) error { return p.bus.Close() }})

	runtime, closeRT, eng, err := chooseRuntime(ctx, cfg, store, log)
	if err != nil {
		return nil, err
	}
	sup.Start(ctx, supervisor.Part{Name: "runtime", Run: waitForStop, Stop: closeRT, StopTimeout: 30 * time.Second})

	vault, err := openVault(cfg, store, log)
	if err != nil {
		return nil, err
	}
	// The facts the dispatcher decides with, which the builtins read too.
	viewsDB := projections.DBOf(store)
	adminCfg := admin.Config{
		Store: store, History: projections.NewHistoryReader(viewsDB), Transcripts: projections.NewTranscriptReader(viewsDB),
		Vault: vaultPort(vault), Search: projections.NewSearchReader(viewsDB),
		Sources: projections.NewSourcesReader(viewsDB),
	}
	if eng != nil {
		// Bundles install from images only where they run in containers.
		registry, err := docker.NewRegistry(docker.RegistryConfig{Engine: eng, CredentialsFile: docker.DefaultCredentialsFile(), PullTimeout: cfg.PullTimeout, Logger: log})
		if err != nil {
			return nil, err
		}
		adminCfg.Images = registry
	}
	adminBuiltins, err := admin.Builtins(adminCfg)
	if err != nil {
		return nil, err
	}
	p.chat, err = configuredChat(cfg, log)
	if err != nil {
		return nil, err
	}
	p.facts = dispatcher.NewFacts(dispatch.DefaultBuiltins().With(adminBuiltins...),
		dispatch.Settings{SelfRegister: cfg.SelfRegister, SelfRegisterGroup: cfg.SelfRegisterGroup, MaxPids: cfg.MaxPids, ApprovalTTL: cfg.ApprovalTTL, Quotas: cfg.Quotas}, p.chat.canPost)

	router, err := executor.NewRouter(executor.RouterConfig{PoisonPublisher: p.bus.Commands, Logger: log})
	if err != nil {
		return nil, err
	}
	// The dispatcher publishes container runs and cancels here: the
	// in-process bus, or NATS for executors on other hosts.
	var runs message.Publisher = p.bus.Commands
	if cfg.Bus.URL == "" {
		p.exec, err = executor.NewExecutorWithConfig(executor.Config{Runtime: runtime, Publisher: p.bus.Events, Store: store, MaxPids: cfg.MaxPids, Logger: log})
		if err != nil {
			return nil, err
		}
		p.exec.AddHandlers(router, p.bus.Commands, p.bus.Commands)
	} else if runs, err = p.startNATS(ctx, sup, cfg, runtime, router, log); err != nil {
		return nil, err
	}
	p.builtins, err = executor.NewBuiltinExecutor(executor.BuiltinConfig{
		Store: store, Builtins: p.facts.Builtins(), Facts: p.facts, Recorded: p.facts.ApplyRecorded, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	p.builtins.AddHandler(router, p.bus.Commands)
	executor.NewAppender(store).AddHandler(router, p.bus.Events)
	// Runs in flight end RunCancelled and are recorded before the router
	// stops taking their events.
	sup.Start(ctx, routerPart(router, func(ctx context.Context) error {
		var errs []error
		if p.exec != nil {
			errs = append(errs, p.exec.Shutdown(ctx))
		}
		return errors.Join(append(errs, p.builtins.Shutdown(ctx), router.Close())...)
	}))
	select {
	case <-router.Running():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if leftovers, ok := runtime.(executor.LeftoverRuntime); ok {
		report, err := executor.Reconcile(ctx, executor.ReconcileConfig{Runtime: leftovers, Store: store, Publisher: p.bus.Events})
		if err != nil {
			log.Error().Err(err).Msg("reconciling leftover containers")
		} else if len(report.Lost) > 0 || report.Removed > 0 {
			log.Warn().Strs("lost_runs", report.Lost).Int("removed", report.Removed).Msg("runs of a previous process recorded lost")
		}
		if report.Foreign > 0 {
			log.Info().Int("containers", report.Foreign).Msg("containers labelled by an older Logbook whose runs this store does not know were left alone: they may be another server's")
		}
	}

	p.live = eventstore.NewHub(store, eventstore.HubOptions{})
	sup.Start(ctx, supervisor.Part{Name: "live", Run: p.live.Run})

	p.views, err = projections.NewRunner(store, projections.Config{}, projectionsAll()...)
	if err != nil {
		return nil, err
	}
	sup.Start(ctx, supervisor.Part{Name: "views", Essential: true, ReportsReady: true, Run: p.views.Run})

	p.dispatcher, err = dispatcher.New(dispatcher.Config{
		Store: store, Publisher: runs, Facts: p.facts, Logger: log,
		Checkpoints: dispatcher.SQLCheckpoints{DB: store.WriteDB(), Rebind: rebindFor(store)},
		Posters: map[string]dispatcher.ReplyPoster{"api": dispatcher.Posted{}, "web": dispatcher.Posted{},
			dispatch.TriggerAdapter: dispatcher.Posted{}, dispatch.ScheduleAdapter: dispatcher.Posted{}},
		Chat: p.chat.providers, TranscriptURL: p.chat.transcriptURL, Vault: vaultPort(vault),
	})
	if err != nil {
		return nil, err
	}
	sup.Start(ctx, supervisor.Part{Name: "dispatcher", Essential: true, ReportsReady: true, Run: p.dispatcher.Run})
	p.triggers = &dispatcher.Triggers{Store: store, Vault: vaultPort(vault)}
	schedules, err := scheduler.New(scheduler.Config{Store: store, Receiver: p.dispatcher, Logger: log})
	if err != nil {
		return nil, err
	}
	sup.Start(ctx, supervisor.Part{Name: "scheduler", ReportsReady: true, Run: schedules.Run})
	if p.telemetry, err = startTelemetry(ctx, sup, p, runtime, log); err != nil {
		return nil, err
	}
	p.secrets = &dispatcher.Secrets{Store: store, Facts: p.facts}
	if vault != nil {
		p.secrets.Vault, p.secrets.Rotator = vault, vault
	}
	p.chat.start(ctx, sup, p.dispatcher, log)
	if err := startExports(ctx, sup, cfg, store, vaultPort(vault), log); err != nil {
		return nil, err
	}

	switch token, err := dispatcher.Bootstrap(ctx, store); {
	case err == nil:
		fmt.Fprintf(os.Stdout, "admin token: %s\n", token)
	case !errors.Is(err, dispatcher.ErrAlreadyBootstrapped):
		return nil, err
	}
	if b, err := dispatcher.InstallBundle(ctx, store, samplebundle.Config, "serve"); err != nil {
		log.Error().Err(err).Msg("installing the sample bundle")
	} else if eng != nil {
		buildSampleImage(ctx, eng, b.Image(), log)
	}
	return p, nil
}

// openVault opens the vault secrets are kept in, or none when the server
// has no key file (PostgreSQL without LOGBOOK_SECRET_KEY_FILE).
func openVault(cfg config, store *sqlstore.Store, log zerolog.Logger) (*secretvault.Vault, error) {
	keyFile, err := secretKeyFile(cfg, log)
	if err != nil || keyFile == "" {
		if err == nil {
			log.Info().Msg("secrets are off: set LOGBOOK_SECRET_KEY_FILE to keep them (bundles' plain configuration works without)")
		}
		return nil, err
	}
	return secretvault.Open(secretvault.Config{Read: store.DB(), Write: store.WriteDB(), Rebind: rebindFor(store), KeyFile: keyFile})
}

// vaultPort is v as the port, nil when there is none (a nil pointer in
// an interface would not read as nil).
func vaultPort(v *secretvault.Vault) bundleconfig.Vault {
	if v == nil {
		return nil
	}
	return v
}

// waitForStop is the Run of a part that only holds a resource open: it
// serves until stopped, and its Stop closes the resource.
func waitForStop(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// buildSampleImage builds the sample bundle's image FROM scratch from the
// logbook-toolbox binary next to this executable.
func buildSampleImage(ctx context.Context, eng docker.Engine, tag string, log zerolog.Logger) {
	self, err := os.Executable()
	if err == nil {
		var data []byte
		if data, err = os.ReadFile(filepath.Join(filepath.Dir(self), "logbook-toolbox")); err == nil {
			var built bool
			built, err = docker.BuildScratchImage(ctx, eng, docker.ScratchImage{Tag: tag, Binary: "toolbox", Data: data, Links: samplebundle.Commands})
			if built {
				log.Info().Str("image", tag).Msg("built the sample bundle's image")
			}
		}
	}
	if err != nil {
		log.Warn().Err(err).Str("image", tag).Msg("the sample bundle's image could not be built (make build puts logbook-toolbox next to logbook); its commands will fail until it exists")
	}
}

// chooseRuntime picks LOGBOOK_RUNTIME, or Docker when a daemon answers and
// the process runtime (unisolated, with a warning) when none does.
func chooseRuntime(ctx context.Context, cfg config, store identifiedStore, log zerolog.Logger) (executor.Runtime, func(context.Context) error, docker.Engine, error) {
	useProcess := func() (executor.Runtime, func(context.Context) error, docker.Engine, error) {
		return process.New(process.Config{Logger: log}), func(context.Context) error { return nil }, nil, nil
	}
	if cfg.Runtime == "process" {
		return useProcess()
	}
	cli, err := docker.NewClient()
	if err == nil {
		pingCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err = cli.Ping(pingCtx)
		cancel()
	}
	if err != nil {
		if cfg.Runtime == "docker" {
			return nil, nil, nil, fmt.Errorf("LOGBOOK_RUNTIME=docker, but no Docker daemon answers: %w", err)
		}
		log.Warn().Err(err).Msg("no Docker daemon answers: commands run as host processes, UNISOLATED; set LOGBOOK_RUNTIME=docker to require Docker")
		return useProcess()
	}
	warm := docker.WarmConfig{}
	if agent, err := docker.FindAgent(); err == nil {
		warm.AgentPath = agent
	} else {
		log.Warn().Err(err).Msg("warm mode is unavailable: bundles that ask for it run fresh containers")
	}
	rt, err := storeDockerRuntime(ctx, cli, store, warm, log)
	if err != nil {
		return nil, nil, nil, err
	}
	return rt, rt.Close, cli, nil
}

// identifiedStore is a store with an identity of its own (sqlstore.Store).
type identifiedStore interface {
	Identity(ctx context.Context) (string, error)
}

// legacyContainerOwner is the owner label of the containers every Logbook
// made before owners were per store.
const legacyContainerOwner = "logbook"

// storeDockerRuntime builds the Docker runtime of one store: the owner label
// of its containers carries the store's identity, so servers of different
// stores sharing a Docker host reconcile only their own containers.
func storeDockerRuntime(ctx context.Context, eng docker.Engine, store identifiedStore, warm docker.WarmConfig, log zerolog.Logger) (*docker.Runtime, error) {
	id, err := store.Identity(ctx)
	if err != nil {
		return nil, err
	}
	return docker.NewRuntimeWithConfig(docker.Config{
		Engine: eng, Owner: "logbook-" + id, LegacyOwner: legacyContainerOwner, Warm: warm, Logger: log,
	})
}

func rebindFor(store *sqlstore.Store) func(string) string {
	if store.Dialect() == "sqlite" {
		return sqlstore.RebindQuestion
	}
	return func(q string) string { return q }
}
