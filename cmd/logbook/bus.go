package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/curve25519"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/adapters/natsbus"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/runbus"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/internal/supervisor"
)

// busSettings are the LOGBOOK_* variables of the NATS run bus and of
// executors on other hosts.
type busSettings struct {
	URL          string // LOGBOOK_BUS_URL: nats://...; empty is the in-process bus
	User         string // LOGBOOK_BUS_USER
	Password     string // LOGBOOK_BUS_PASSWORD
	NKeySeedFile string // LOGBOOK_BUS_NKEY_FILE: an nkey seed instead of a password
	// Groups (LOGBOOK_EXECUTOR_GROUPS=prod,default) are the relay groups an
	// executor serves; serve runs an executor of its own on a NATS bus
	// only when they are set.
	Groups     []string
	ExecutorID string // LOGBOOK_EXECUTOR_ID: default the host name
	Slots      int    // LOGBOOK_EXECUTOR_SLOTS: runs at once (4)
	// QueueTimeout (LOGBOOK_QUEUE_TIMEOUT, 30s): a run for a relay group
	// with no live executor fails after it.
	QueueTimeout time.Duration
	// LostAfter (LOGBOOK_EXECUTOR_LOST_AFTER, 15s): an executor silent
	// this long is gone, and its started runs are lost.
	LostAfter time.Duration
	// Heartbeat (LOGBOOK_HEARTBEAT_INTERVAL, 2s).
	Heartbeat time.Duration
	// AckWait (LOGBOOK_BUS_ACK_WAIT, 30s): a run request's message goes to
	// another executor when its holder stops acknowledging it for this
	// long.
	AckWait time.Duration
	// RelayKeysFile (LOGBOOK_RELAY_KEYS_FILE, the server): "GROUP
	// PUBLIC-KEY" lines; secrets of a group's runs are sealed to its key.
	RelayKeysFile string
	// ExecutorKeyFile (LOGBOOK_EXECUTOR_KEY_FILE, an executor): "GROUP
	// PRIVATE-KEY" lines, to open them.
	ExecutorKeyFile string
	errs            []error
}

func loadBusSettings() busSettings {
	b := busSettings{
		URL: os.Getenv("LOGBOOK_BUS_URL"), User: os.Getenv("LOGBOOK_BUS_USER"), Password: os.Getenv("LOGBOOK_BUS_PASSWORD"),
		NKeySeedFile: os.Getenv("LOGBOOK_BUS_NKEY_FILE"), ExecutorID: os.Getenv("LOGBOOK_EXECUTOR_ID"),
		RelayKeysFile: os.Getenv("LOGBOOK_RELAY_KEYS_FILE"), ExecutorKeyFile: os.Getenv("LOGBOOK_EXECUTOR_KEY_FILE"),
	}
	if b.URL != "" && !strings.HasPrefix(b.URL, "nats://") && !strings.HasPrefix(b.URL, "tls://") {
		b.errs = append(b.errs, errors.New("LOGBOOK_BUS_URL is not a nats:// or tls:// URL (it is not shown, since it may hold a password)"))
	}
	if raw := os.Getenv("LOGBOOK_EXECUTOR_GROUPS"); raw != "" {
		for _, g := range strings.Split(raw, ",") {
			g = strings.TrimSpace(g)
			if err := natsbus.ValidateName("LOGBOOK_EXECUTOR_GROUPS: relay group", g); err != nil {
				b.errs = append(b.errs, err)
				continue
			}
			b.Groups = append(b.Groups, g)
		}
	}
	if b.ExecutorID == "" {
		host, _ := os.Hostname()
		b.ExecutorID = strings.ToLower(strings.NewReplacer(".", "-", " ", "-").Replace(host))
	}
	if err := natsbus.ValidateName("LOGBOOK_EXECUTOR_ID", b.ExecutorID); err != nil {
		b.errs = append(b.errs, err)
	}
	b.Slots = 4
	if raw := os.Getenv("LOGBOOK_EXECUTOR_SLOTS"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 1024 {
			b.errs = append(b.errs, fmt.Errorf("LOGBOOK_EXECUTOR_SLOTS %q is not a number of runs from 1 to 1024", raw))
		}
		b.Slots = n
	}
	b.QueueTimeout = b.duration("LOGBOOK_QUEUE_TIMEOUT", 30*time.Second)
	b.LostAfter = b.duration("LOGBOOK_EXECUTOR_LOST_AFTER", 15*time.Second)
	b.Heartbeat = b.duration("LOGBOOK_HEARTBEAT_INTERVAL", 2*time.Second)
	b.AckWait = b.duration("LOGBOOK_BUS_ACK_WAIT", 30*time.Second)
	if b.Heartbeat >= b.LostAfter {
		b.errs = append(b.errs, fmt.Errorf("LOGBOOK_HEARTBEAT_INTERVAL (%s) must be shorter than LOGBOOK_EXECUTOR_LOST_AFTER (%s)", b.Heartbeat, b.LostAfter))
	}
	return b
}

func (b *busSettings) duration(key string, fallback time.Duration) time.Duration {
	raw := os.Getenv(key)
	if raw == "" {
		return fallback
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d < 100*time.Millisecond {
		b.errs = append(b.errs, fmt.Errorf("%s %q is not a duration of 100ms or more, such as 30s", key, raw))
		return fallback
	}
	return d
}

func (b busSettings) connConfig(name, executorID string, log zerolog.Logger) natsbus.Config {
	return natsbus.Config{URL: b.URL, User: b.User, Password: b.Password, NKeySeedFile: b.NKeySeedFile, Name: name,
		ExecutorID: executorID, AckWait: b.AckWait, Logger: log.With().Str("component", "nats").Logger()}
}

// readKeyLines reads "GROUP BASE64-KEY" lines (blank lines and # comments
// skipped); a file of private keys others may read is refused.
func readKeyLines(path, what string, private bool) (map[string]*[32]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if private && info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s %s is readable by others (mode %v): chmod 600 it", what, path, info.Mode().Perm())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	return parseKeyLines(f, what+" "+path)
}

// parseKeyLines reads "GROUP BASE64-KEY" lines; where names the file in
// errors, which give the line.
func parseKeyLines(r io.Reader, where string) (map[string]*[32]byte, error) {
	keys := map[string]*[32]byte{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		group, key, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("%s line %d: want GROUP KEY", where, n)
		}
		if err := natsbus.ValidateName("relay group", group); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", where, n, err)
		}
		if _, dup := keys[group]; dup {
			return nil, fmt.Errorf("%s line %d: relay group %s has a key already", where, n, group)
		}
		k, err := runbus.DecodeKey(key)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", where, n, err)
		}
		keys[group] = k
	}
	return keys, sc.Err()
}

// sealer seals a run's secrets to its relay group's public key. A group
// without a key gets no secrets at all (never the clear values): its
// executor fails such a run, naming the secret.
func sealer(settings busSettings, log zerolog.Logger) (func(string, *runbus.RunRequest) error, error) {
	keys := map[string]*[32]byte{}
	if settings.RelayKeysFile != "" {
		var err error
		if keys, err = readKeyLines(settings.RelayKeysFile, "LOGBOOK_RELAY_KEYS_FILE", false); err != nil {
			return nil, err
		}
	}
	return func(group string, req *runbus.RunRequest) error {
		key, ok := keys[group]
		if !ok {
			log.Warn().Str("run_id", req.RunID).Str("group", group).Msg("the run's secrets are not sent: relay group has no key in LOGBOOK_RELAY_KEYS_FILE (logbook executor keygen makes one)")
			req.Env = nil
			return nil
		}
		return req.Seal(key)
	}, nil
}

// opener opens the sealed secrets of runs of the executor's groups.
func opener(settings busSettings) (func(string, *runbus.RunRequest) error, error) {
	keys := map[string]*[32]byte{}
	if settings.ExecutorKeyFile != "" {
		var err error
		if keys, err = readKeyLines(settings.ExecutorKeyFile, "LOGBOOK_EXECUTOR_KEY_FILE", true); err != nil {
			return nil, err
		}
	}
	return func(group string, req *runbus.RunRequest) error {
		priv, ok := keys[group]
		if !ok {
			return fmt.Errorf("no key of relay group %s in LOGBOOK_EXECUTOR_KEY_FILE", group)
		}
		pub, err := curve25519.X25519(priv[:], curve25519.Basepoint)
		if err != nil {
			return err
		}
		var public [32]byte
		copy(public[:], pub)
		return req.Open(runbus.GroupKey{Public: &public, Private: priv})
	}, nil
}

// serverBus is the server's end of the NATS run bus: the publisher the
// dispatcher uses for container runs and cancels, the subscriber the
// appender reads run events from, and the fleet of executors.
type serverBus struct {
	conn  *natsbus.Conn
	pub   *natsbus.Publisher
	sub   *natsbus.Subscriber
	desk  *executor.ClaimDesk
	fleet *executor.Fleet
	log   zerolog.Logger
}

// startServerBus connects the server to NATS (retrying until it answers,
// a refusal is permanent), makes the streams, and starts the fleet's parts.
func startServerBus(ctx context.Context, sup partStarter, cfg config, store eventstore.Store, log zerolog.Logger) (*serverBus, error) {
	conn, err := natsbus.Connect(ctx, cfg.Bus.connConfig("logbook-server", "", log))
	if err != nil {
		return nil, err
	}
	sup.Start(ctx, supervisor.Part{Name: "nats", Run: waitForStop, Stop: func(context.Context) error { return conn.Close() }})
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := conn.EnsureStreams(ctx)
		if err == nil {
			break
		}
		log.Warn().Err(err).Msg("NATS JetStream streams not ready; retrying")
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
	b := &serverBus{conn: conn, log: log}
	b.desk = executor.NewClaimDesk(store, func(id string) bool { return b.fleet.Live(id) })
	b.fleet, err = executor.NewFleet(executor.FleetConfig{Store: store, Desk: b.desk, LostAfter: cfg.Bus.LostAfter, QueueTimeout: cfg.Bus.QueueTimeout,
		Connected: conn.Connected, Release: b.release, Logger: log})
	if err != nil {
		return nil, err
	}
	conn.OnReconnect(b.fleet.Resume)
	b.desk.ServedBy(b.fleet.Serves)
	seal, err := sealer(cfg.Bus, log)
	if err != nil {
		return nil, err
	}
	if b.pub, err = natsbus.NewPublisher(conn, natsbus.PublisherConfig{Source: "server", Seal: seal, Published: b.fleet.Queued, JustRequested: b.desk.JustRequested}); err != nil {
		return nil, err
	}
	if b.sub, err = natsbus.NewSubscriber(conn, natsbus.SubscriberConfig{}); err != nil {
		return nil, err
	}
	service := &natsbus.FleetService{Conn: conn, Desk: b.desk, Fleet: b.fleet}
	sup.Start(ctx, supervisor.Part{Name: "fleet", Run: service.Run})
	sup.Start(ctx, supervisor.Part{Name: "fleet-check", Run: b.fleet.Run})
	return b, nil
}

// release tells executorID, back after it was taken for gone, to stop the
// runs the server recorded lost meanwhile: a cancel, which every executor
// hears and only the holder acts on.
func (b *serverBus) release(_ context.Context, executorID string, runIDs []string) {
	for _, runID := range runIDs {
		msg, err := runbus.NewCancelMessage(runbus.CancelRequest{RunID: runID, Actor: "server",
			Reason: fmt.Sprintf("the server recorded the run lost while executor %s was cut off", executorID)})
		if err == nil {
			err = b.pub.Publish(runbus.TopicRunCancel, msg)
		}
		if err != nil {
			b.log.Error().Err(err).Str("run_id", runID).Str("executor", executorID).Msg("telling an executor to stop a run recorded lost")
		}
	}
}

// eventsHandler appends run events from NATS, each only if it comes from
// the executor holding its run.
// An event whose run's stream is behind it waits in its lane for the
// earlier ones (an executor's pipelined publish may land a run's events
// out of order), until held back too long.
//
// A run's last events, which its executor sends in one message
// (natsbus.RunEvents), are appended in one commit; when that cannot be
// done as they are (one was appended already, the run's stream is behind
// them, one is refused) they are handed over again one by one, where each
// is settled on its own.
func (b *serverBus) eventsHandler(store eventstore.Store, ender executor.RunEnder) message.NoPublishHandlerFunc {
	appender := executor.NewAppender(store).EndRunsWith(ender)
	executorOf := func(m *message.Message) string { return m.Metadata.Get(natsbus.MetaExecutor) }
	guard, guardRun := b.desk.Guard(appender, executorOf), b.desk.GuardRun(appender, executorOf)
	return func(m *message.Message) error {
		together, err := natsbus.RunEvents(m)
		if err != nil {
			return err
		}
		if together != nil {
			if err := guardRun(m.Context(), together); err != nil {
				return fmt.Errorf("%w: appending them together: %v", executor.ErrHeldBack, err)
			}
			return nil
		}
		err = guard(m)
		if errors.Is(err, executor.ErrStreamBehind) && m.Metadata.Get(natsbus.MetaLastTry) == "" {
			return fmt.Errorf("%w: %v", executor.ErrHeldBack, err)
		}
		return err
	}
}

// topicPublisher sends each topic to its publisher: container runs and
// cancels over NATS, builtin runs in-process.
type topicPublisher struct {
	byTopic  map[string]message.Publisher
	fallback message.Publisher
}

func (t topicPublisher) Publish(topic string, msgs ...*message.Message) error {
	if p, ok := t.byTopic[topic]; ok {
		return p.Publish(topic, msgs...)
	}
	return t.fallback.Publish(topic, msgs...)
}

func (t topicPublisher) Close() error { return nil }

// buildVersion is this binary's module version (or VCS revision), for
// heartbeats.
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return s.Value[:12]
		}
	}
	return info.Main.Version
}

// startNATS puts serve on the NATS bus: the server's end (streams, claims,
// heartbeats, the appender of run events from executors) and, when
// LOGBOOK_EXECUTOR_GROUPS is set, an executor of its own on the same
// connection. It returns the publisher the dispatcher hands runs to.
func (p *platform) startNATS(ctx context.Context, sup partStarter, cfg config, rt executor.Runtime, router *message.Router, log zerolog.Logger) (message.Publisher, error) {
	sb, err := startServerBus(ctx, sup, cfg, p.store, log)
	if err != nil {
		return nil, err
	}
	p.nats.Store(sb)
	router.AddConsumerHandler("appender.nats_events", executor.TopicRunEvents, sb.sub, sb.eventsHandler(p.store, p.dispatcher))
	if len(cfg.Bus.Groups) > 0 {
		be, err := newBusExecutor(sb.conn, cfg.Bus, rt, cfg.MaxPids, log)
		if err != nil {
			return nil, err
		}
		p.exec = be.exec
		be.exec.AddHandlers(router, be.sub, be.sub)
		sup.Start(ctx, supervisor.Part{Name: "heartbeat", Run: func(ctx context.Context) error { return be.link.Heartbeats(ctx, cfg.Bus.Heartbeat, be.heartbeat(rt)) }})
		log.Info().Strs("groups", cfg.Bus.Groups).Msg("serve runs an executor of its own on the NATS bus")
	} else {
		log.Info().Msg("commands run on executors over NATS (logbook executor); serve runs none itself (LOGBOOK_EXECUTOR_GROUPS is unset)")
	}
	return topicPublisher{byTopic: map[string]message.Publisher{runbus.TopicRunRequested: sb.pub, runbus.TopicRunCancel: sb.pub}, fallback: p.bus.Commands}, nil
}

// executors lists the live executors on a NATS bus; nil on the in-process
// bus (a nil pointer in the interface would not read as nil). The fleet is
// the leader's: a server that does not lead lists none.
func (p *platform) executors() httpapi.ExecutorLister {
	if p.cfg.Bus.URL == "" {
		return nil
	}
	return leaderFleet{p}
}

// leaderFleet is the fleet of the current term's NATS bus, when this
// server leads.
type leaderFleet struct{ p *platform }

func (f leaderFleet) Executors() []executor.ExecutorStatus {
	if sb := f.p.nats.Load(); sb != nil && f.p.leading.Load() {
		return sb.fleet.Executors()
	}
	return nil
}
