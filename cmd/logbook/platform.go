package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/docker/docker/client"

	"github.com/logbookhq/logbook/adapters/docker"
	"github.com/logbookhq/logbook/adapters/process"
	"github.com/logbookhq/logbook/adapters/secretvault"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/adapters/telemetry"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/dispatcher/admin"
	"github.com/logbookhq/logbook/dispatcher/scheduler"
	"github.com/logbookhq/logbook/domain/bundleconfig"
	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/internal/samplebundle"
	"github.com/logbookhq/logbook/internal/supervisor"
	"github.com/logbookhq/logbook/projections"
)

// platform is what serve runs on top of the store: the views, the
// executor with its runtime, the appender, the dispatcher, the chat
// providers and the in-process bus between them, each a part of the
// server's supervisor.
//
// Several servers may share one PostgreSQL database. Every one serves
// people (the API, the web UI, Slack's Events API) and records requests;
// the duties that must be single (deciding, delivering replies, running
// commands on the in-process bus, the views, the timers, the IRC
// connection, the exports and the Merkle tree) run on the one holding the
// leader lease (election.go). On SQLite the server is alone and always
// does them.
type platform struct {
	cfg        config
	log        zerolog.Logger
	store      *sqlstore.Store
	bus        executor.EmbeddedBus
	runtime    executor.Runtime
	engine     docker.Engine // nil without Docker
	vault      *secretvault.Vault
	exec       *executor.Executor
	builtins   *executor.BuiltinExecutor
	views      *projections.Runner
	facts      *dispatcher.Facts
	dispatcher *dispatcher.Dispatcher
	// runs is where the dispatcher publishes container runs and cancels:
	// the in-process bus, or NATS, chosen when the duties start.
	runs     *laterPublisher
	triggers *dispatcher.Triggers
	chat     *chatSet
	secrets  *dispatcher.Secrets
	// live hands the events of followed transcripts and console requests
	// to their readers: one follower of the log for all of them.
	live *eventstore.Hub
	// nats is the NATS run bus (LOGBOOK_BUS_URL), nil on the embedded one.
	nats atomic.Pointer[serverBus]
	// telemetry serves /metrics and exports traces.
	telemetry *telemetry.Reporter
	// election is nil on a server alone (SQLite).
	election *election
	// leading says whether this server does the single duties now.
	leading atomic.Bool
}

// startPlatform wires the platform and starts its parts under sup: first
// what every server runs, then the single duties, at once on a server
// alone, or on the server that wins the election when several share the
// database. An error is one a restart cannot fix (a bad setting, no
// Docker when it is required).
func startPlatform(ctx context.Context, sup *supervisor.Supervisor, cfg config, store *sqlstore.Store, log zerolog.Logger) (*platform, error) {
	p := &platform{cfg: cfg, log: log, store: store, bus: executor.NewEmbeddedBus(log), runs: &laterPublisher{}}
	if err := p.startShared(ctx, sup); err != nil {
		return nil, err
	}
	if store.Dialect() == "sqlite" {
		p.leading.Store(true)
		return p, p.startDuties(ctx, sup)
	}
	var err error
	if p.election, err = newElection(p, sup); err != nil {
		return nil, err
	}
	// Its stop waits for the duties to stop when it leads (the executor's
	// takes up to 40s), then hands the lease over.
	sup.Start(ctx, supervisor.Part{Name: "election", Essential: true, ReportsReady: true, StopTimeout: 60 * time.Second, Run: p.election.Run})
	return p, nil
}

// startShared starts what every server runs: the bus and the runtime
// (used only by the duties, but built here so that the builtins and the
// API know what the server can do), the facts and the dispatcher's
// front (Receive: any server records requests), the live streams, the
// metrics, and the chat providers that any number of servers may run.
func (p *platform) startShared(ctx context.Context, sup *supervisor.Supervisor) error {
	cfg, store, log := p.cfg, p.store, p.log
	sup.Start(ctx, supervisor.Part{Name: "bus", Run: waitForStop, Stop: func(context.Context) error { return p.bus.Close() }})

	runtime, closeRT, eng, err := chooseRuntime(ctx, cfg, store, log)
	if err != nil {
		return err
	}
	p.runtime, p.engine = runtime, eng
	sup.Start(ctx, supervisor.Part{Name: "runtime", Run: waitForStop, Stop: closeRT, StopTimeout: 30 * time.Second})

	if p.vault, err = openVault(cfg, store, log); err != nil {
		return err
	}
	// The facts the dispatcher decides with, which the builtins read too.
	viewsDB := projections.DBOf(store)
	adminCfg := admin.Config{
		Store: store, History: projections.NewHistoryReader(viewsDB), Transcripts: projections.NewTranscriptReader(viewsDB),
		Vault: vaultPort(p.vault), Search: projections.NewSearchReader(viewsDB),
		Sources: projections.NewSourcesReader(viewsDB),
	}
	if eng != nil {
		// Bundles install from images only where they run in containers.
		registry, err := docker.NewRegistry(docker.RegistryConfig{Engine: eng, CredentialsFile: docker.DefaultCredentialsFile(), PullTimeout: cfg.PullTimeout, Logger: log})
		if err != nil {
			return err
		}
		adminCfg.Images = registry
	}
	adminBuiltins, err := admin.Builtins(adminCfg)
	if err != nil {
		return err
	}
	if p.chat, err = configuredChat(cfg, log); err != nil {
		return err
	}
	p.facts = dispatcher.NewFacts(dispatch.DefaultBuiltins().With(adminBuiltins...),
		dispatch.Settings{SelfRegister: cfg.SelfRegister, SelfRegisterGroup: cfg.SelfRegisterGroup, MaxPids: cfg.MaxPids, ApprovalTTL: cfg.ApprovalTTL, Quotas: cfg.Quotas}, p.chat.canPost)

	p.live = eventstore.NewHub(store, eventstore.HubOptions{})
	sup.Start(ctx, supervisor.Part{Name: "live", Run: p.live.Run})
	if p.views, err = projections.NewRunner(store, projections.Config{}, projectionsAll()...); err != nil {
		return err
	}
	dcfg := dispatcher.Config{
		Store: store, Publisher: p.runs, Facts: p.facts, Logger: log,
		Checkpoints: dispatcher.SQLCheckpoints{DB: store.WriteDB(), Rebind: rebindFor(store)},
		Posters: map[string]dispatcher.ReplyPoster{"api": dispatcher.Posted{}, "web": dispatcher.Posted{},
			dispatch.TriggerAdapter: dispatcher.Posted{}, dispatch.ScheduleAdapter: dispatcher.Posted{}},
		Chat: p.chat.providers, TranscriptURL: p.chat.transcriptURL, Vault: vaultPort(p.vault),
	}
	if store.Dialect() != "sqlite" {
		// Followers fold up to the stored checkpoint: store it often.
		dcfg.CheckpointEvery = 250 * time.Millisecond
	}
	if p.dispatcher, err = dispatcher.New(dcfg); err != nil {
		return err
	}
	p.triggers = &dispatcher.Triggers{Store: store, Vault: vaultPort(p.vault)}
	p.secrets = &dispatcher.Secrets{Store: store, Facts: p.facts}
	if p.vault != nil {
		p.secrets.Vault, p.secrets.Rotator = p.vault, p.vault
	}
	if p.telemetry, err = startTelemetry(ctx, sup, p, runtime, log); err != nil {
		return err
	}
	p.chat.start(ctx, sup, p.dispatcher, log, sharedProvider)
	return nil
}

// partStarter starts parts: the server's supervisor, or the leader's
// (fencedParts).
type partStarter interface {
	Start(ctx context.Context, part supervisor.Part)
}

// startDuties starts the duties that must be single among the servers on
// one database, in the order they depend on each other (the reverse of
// the order they stop in): the executors (containers and builtins) on
// their router, reconcile, the views, the dispatcher, the timers, the
// chat providers that hold a single connection, the exports, the Merkle
// tree; then the first start's bootstrap and the sample bundle. On the
// leader, ctx is fenced by its lease: an append after another server took
// over fails.
func (p *platform) startDuties(ctx context.Context, sup partStarter) error {
	cfg, store, log := p.cfg, p.store, p.log
	router, err := executor.NewRouter(executor.RouterConfig{PoisonPublisher: p.bus.Commands, Logger: log})
	if err != nil {
		return err
	}
	var runs message.Publisher = p.bus.Commands
	if cfg.Bus.URL == "" {
		p.exec, err = executor.NewExecutorWithConfig(executor.Config{Runtime: p.runtime, Publisher: p.bus.EventsPublisher(), Store: store, MaxPids: cfg.MaxPids, Concurrency: cfg.Bus.Slots, Logger: log})
		if err != nil {
			return err
		}
		p.exec.AddHandlers(router, p.bus.Commands, p.bus.Commands)
	} else if runs, err = p.startNATS(ctx, sup, cfg, p.runtime, router, log); err != nil {
		return err
	}
	p.runs.set(runs)
	p.builtins, err = executor.NewBuiltinExecutor(executor.BuiltinConfig{
		Store: store, Builtins: p.facts.Builtins(), Facts: p.facts, Recorded: p.facts.ApplyRecorded, Logger: log,
	})
	if err != nil {
		return err
	}
	p.builtins.AddHandler(router, p.bus.Commands)
	// A run's last events go in one commit with what their end calls for.
	p.bus.AddAppender(router, executor.NewAppender(store).EndRunsWith(p.dispatcher))
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
		return ctx.Err()
	}
	if leftovers, ok := p.runtime.(executor.LeftoverRuntime); ok {
		report, err := executor.Reconcile(ctx, executor.ReconcileConfig{Runtime: leftovers, Store: store, Publisher: p.bus.EventsPublisher()})
		if err != nil {
			log.Error().Err(err).Msg("reconciling leftover containers")
		} else if len(report.Lost) > 0 || report.Removed > 0 {
			log.Warn().Strs("lost_runs", report.Lost).Int("removed", report.Removed).Msg("runs of a previous process recorded lost")
		}
		if report.Foreign > 0 {
			log.Info().Int("containers", report.Foreign).Msg("containers labelled by an older Logbook whose runs this store does not know were left alone: they may be another server's")
		}
	}

	sup.Start(ctx, supervisor.Part{Name: "views", Essential: true, ReportsReady: true, Run: p.views.Run})
	sup.Start(ctx, supervisor.Part{Name: "dispatcher", Essential: true, ReportsReady: true, Run: p.dispatcher.Run})
	schedules, err := scheduler.New(scheduler.Config{Store: store, Receiver: p.dispatcher, Logger: log})
	if err != nil {
		return err
	}
	sup.Start(ctx, supervisor.Part{Name: "scheduler", ReportsReady: true, Run: schedules.Run})
	p.chat.start(ctx, sup, p.dispatcher, log, func(pr chat.Provider) bool { return !sharedProvider(pr) })
	if err := startExports(ctx, sup, cfg, store, vaultPort(p.vault), log); err != nil {
		return err
	}
	if err := startTransparency(ctx, sup, cfg, store, log); err != nil {
		return fmt.Errorf("the Merkle tree and checkpoints: %w", err)
	}

	switch token, err := dispatcher.Bootstrap(ctx, store); {
	case err == nil:
		fmt.Fprintf(os.Stdout, "admin token: %s\n", token)
	case !errors.Is(err, dispatcher.ErrAlreadyBootstrapped):
		return err
	}
	if b, err := dispatcher.InstallBundle(ctx, store, samplebundle.Config, "serve"); err != nil {
		log.Error().Err(err).Msg("installing the sample bundle")
	} else if p.engine != nil {
		buildSampleImage(ctx, p.engine, b.Image(), log)
	}
	return p.awaitFolded(ctx)
}

// awaitFolded returns once the dispatcher has folded the log as it is
// now: the server says it is ready after this, and by then the admin
// token the first start printed authenticates (the API checks tokens
// against the dispatcher's facts).
func (p *platform) awaitFolded(ctx context.Context) error {
	head, _, err := p.store.Head(ctx)
	if err != nil {
		return err
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for p.dispatcher.Position() < head {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// viewProgress lets a read wait for a lagging view: from the views this
// server runs while it leads, from their stored checkpoints otherwise.
func (p *platform) viewProgress() viewProgressFunc {
	stored := projections.StoredProgress{DB: projections.DBOf(p.store)}
	return func(ctx context.Context, name string, position int64) error {
		if p.leading.Load() {
			return p.views.WaitFor(ctx, name, position)
		}
		return stored.WaitFor(ctx, name, position)
	}
}

// viewProgressFunc is a func as httpapi.ViewProgress.
type viewProgressFunc func(ctx context.Context, name string, position int64) error

func (f viewProgressFunc) WaitFor(ctx context.Context, name string, position int64) error {
	return f(ctx, name, position)
}

// laterPublisher is the dispatcher's publisher of runs, chosen when the
// duties start (the dispatcher is built before: any server records
// requests through it, only the leader publishes).
type laterPublisher struct {
	to atomic.Pointer[message.Publisher]
}

func (l *laterPublisher) set(p message.Publisher) { l.to.Store(&p) }

// Publish implements message.Publisher.
func (l *laterPublisher) Publish(topic string, msgs ...*message.Message) error {
	to := l.to.Load()
	if to == nil {
		return fmt.Errorf("publish to %s: this server does not run the duties that publish runs", topic)
	}
	return (*to).Publish(topic, msgs...)
}

// Close implements message.Publisher: the bus it hands to is closed by
// its own part.
func (l *laterPublisher) Close() error { return nil }

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
	warm, err := agentConfig(ctx, cli, cfg.Warm, log)
	if err != nil {
		return nil, nil, nil, err
	}
	rt, err := storeDockerRuntime(ctx, cli, store, warm, log)
	if err != nil {
		return nil, nil, nil, err
	}
	return rt, rt.Close, cli, nil
}

// agentConfig is where warm and single-use containers get logbook-agent
// from: FindAgent's path, mounted as LOGBOOK_AGENT_MOUNT says (bind: the
// path is the Docker host's; volume: the runtime copies the agent into a
// Docker volume through the Engine API, for a Logbook in a container or a
// remote daemon), by default as docker.DefaultAgentMount chooses, added to
// the pools' sizes of warm (LOGBOOK_WARM_*, read with the configuration).
func agentConfig(ctx context.Context, cli *client.Client, warm docker.WarmConfig, log zerolog.Logger) (docker.WarmConfig, error) {
	warm.AgentMount = os.Getenv("LOGBOOK_AGENT_MOUNT")
	switch warm.AgentMount {
	case "":
		name := ""
		infoCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if info, err := cli.Info(infoCtx); err == nil {
			name = info.Name
		}
		cancel()
		warm.AgentMount = docker.DefaultAgentMount(cli.DaemonHost(), name)
	case docker.AgentBind, docker.AgentVolume:
	default:
		return warm, fmt.Errorf("LOGBOOK_AGENT_MOUNT %q is not bind or volume", warm.AgentMount)
	}
	if agent, err := docker.FindAgent(); err == nil {
		warm.AgentPath = agent
		log.Debug().Str("agent", agent).Str("mount", warm.AgentMount).Msg("warm and single-use containers get logbook-agent")
	} else {
		log.Warn().Err(err).Msg("warm mode is unavailable: bundles that ask for it run fresh containers")
	}
	return warm, nil
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
