// Package natsbus carries Logbook's run bus over NATS JetStream, so the
// server and its executors can be separate processes on separate hosts. It
// is a thin watermill Publisher and Subscriber written over nats.go's
// jetstream package rather than watermill-nats: the run bus needs one
// durable consumer per relay group on a work-queue stream, a fetch only
// when the executor has a free slot, in-progress acknowledgements while a
// run lasts, ordered lanes for the run events, and subjects that carry the
// publisher's identity so NATS permissions can confine each executor to
// its own; watermill-nats maps one topic to one subscription and decides
// those things itself.
package natsbus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain/bundle"
)

// Streams and subjects of the run bus.
const (
	// RunsStream is the work queue of run requests: logbook.runs.<group>,
	// one durable consumer (runs-<group>) per relay group.
	RunsStream = "LOGBOOK_RUNS"
	// EventsStream carries run events back: logbook.events.<executor>.<run>,
	// read by the server's appender.
	EventsStream = "LOGBOOK_EVENTS"
	// PoisonStream keeps what could not be processed, and the run requests
	// that exceeded MaxDeliver: logbook.poison.<who>.
	PoisonStream = "LOGBOOK_POISON"

	subjectRuns      = "logbook.runs."
	subjectEvents    = "logbook.events."
	subjectPoison    = "logbook.poison."
	subjectCancel    = "logbook.cancel"
	subjectHeartbeat = "logbook.heartbeat."
	subjectClaim     = "logbook.claim."
	appenderConsumer = "appender"
	// DefaultGroup is the relay group of a bundle assigned to none.
	DefaultGroup = bundle.DefaultRelayGroup
)

// ValidateName checks an executor id or relay group name: it becomes a
// subject token and a consumer name.
func ValidateName(kind, name string) error { return bundle.ValidateRelayName(kind, name) }

// RunsSubject is the subject run requests for group are published on.
func RunsSubject(group string) string { return subjectRuns + group }

// GroupConsumer names the durable consumer of a relay group.
func GroupConsumer(group string) string { return "runs-" + group }

// InboxPrefix is the inbox an executor's connection uses: its own, so
// NATS permissions can let it read replies to it alone.
func InboxPrefix(executorID string) string { return "_INBOX." + executorID }

// ExecutorPermissions are the subjects an executor with id and groups may
// publish to and subscribe to: its own events, heartbeats, claims and
// poison subject, the consumers of its groups, and its own inbox. A NATS
// configuration gives each executor's user exactly these, so it cannot
// publish events under another executor's name or take another group's
// runs.
func ExecutorPermissions(id string, groups []string) (publish, subscribe []string) {
	publish = []string{
		subjectEvents + id + ".>", subjectHeartbeat + id, subjectClaim + id, subjectPoison + id,
		"$JS.API.INFO",
	}
	for _, g := range groups {
		c := GroupConsumer(g)
		publish = append(publish,
			"$JS.API.CONSUMER.INFO."+RunsStream+"."+c,
			"$JS.API.CONSUMER.MSG.NEXT."+RunsStream+"."+c,
			"$JS.ACK."+RunsStream+"."+c+".>")
	}
	subscribe = []string{InboxPrefix(id) + ".>", subjectCancel}
	return publish, subscribe
}

// Config says how to reach NATS.
type Config struct {
	URL string // nats://host:port[,nats://...]
	// User and Password, or NKeySeedFile (an nkey seed, "SU..."), identify
	// this process to NATS.
	User, Password string
	NKeySeedFile   string
	// Name is the connection's name, shown by the server's monitoring.
	Name string
	// ExecutorID, for an executor, sets its own inbox prefix.
	ExecutorID string
	// AckWait is how long a run request stays with an executor between
	// its in-progress acknowledgements before NATS gives it to another
	// (30s); MaxDeliver bounds the deliveries of one (5).
	AckWait    time.Duration
	MaxDeliver int
	Logger     zerolog.Logger
}

func (c *Config) setDefaults() {
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 5
	}
}

// Conn is a connection to NATS with its JetStream context.
type Conn struct {
	NC  *nats.Conn
	JS  jetstream.JetStream
	cfg Config
	log zerolog.Logger
	// groups are the relay groups whose consumer this process made.
	groups sync.Map
	// reconnected are called each time the connection comes back.
	hooks      sync.Mutex
	reconnects []func()
}

// OnReconnect calls f each time the connection comes back after a loss.
func (c *Conn) OnReconnect(f func()) {
	c.hooks.Lock()
	c.reconnects = append(c.reconnects, f)
	c.hooks.Unlock()
}

// Connected reports whether the connection is up now.
func (c *Conn) Connected() bool { return c.NC.IsConnected() }

// ErrRefused is the kind of a connection NATS refused (wrong credentials).
var ErrRefused = errors.New("NATS refused the connection")

// Connect dials NATS. A refusal of the credentials is ErrRefused and
// final; once connected, the client reconnects on its own for ever (a
// restarted nats-server), buffering what is published meanwhile.
func Connect(ctx context.Context, cfg Config) (*Conn, error) {
	cfg.setDefaults()
	if cfg.URL == "" {
		return nil, errors.New("natsbus: no URL")
	}
	conn := &Conn{cfg: cfg, log: cfg.Logger}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(64 << 20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			cfg.Logger.Warn().Err(err).Msg("disconnected from NATS; reconnecting")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			cfg.Logger.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("reconnected to NATS")
			conn.hooks.Lock()
			hooks := slices.Clone(conn.reconnects)
			conn.hooks.Unlock()
			for _, f := range hooks {
				f()
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := cfg.Logger.Error().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("NATS reported an error")
		}),
	}
	if cfg.ExecutorID != "" {
		opts = append(opts, nats.CustomInboxPrefix(InboxPrefix(cfg.ExecutorID)))
	}
	switch {
	case cfg.NKeySeedFile != "":
		if err := readSeedFile(cfg.NKeySeedFile); err != nil {
			return nil, fmt.Errorf("nkey seed: %w", err)
		}
		opt, err := nats.NkeyOptionFromSeed(cfg.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nkey seed %s: %w", cfg.NKeySeedFile, err)
		}
		opts = append(opts, opt)
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	var nc *nats.Conn
	var err error
	for {
		nc, err = nats.Connect(cfg.URL, opts...)
		if err == nil {
			break
		}
		if errors.Is(err, nats.ErrAuthorization) || strings.Contains(strings.ToLower(err.Error()), "authorization") {
			return nil, fmt.Errorf("%w: %v (check the user and password or the nkey)", ErrRefused, err)
		}
		cfg.Logger.Warn().Err(err).Msg("NATS does not answer yet; retrying")
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to NATS: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(time.Second):
		}
	}
	// An asynchronous publish (a run's events) not acknowledged within
	// attemptTimeout fails, and is published again.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(attemptTimeout))
	if err != nil {
		nc.Close()
		return nil, err
	}
	conn.NC, conn.JS = nc, js
	return conn, nil
}

// Close drains and closes the connection.
func (c *Conn) Close() error {
	if err := c.NC.Drain(); err != nil {
		c.NC.Close()
		return err
	}
	for i := 0; i < 100 && !c.NC.IsClosed(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	c.NC.Close()
	return nil
}

// EnsureStreams creates or updates the run bus's streams: the server does
// this at start; executors are not allowed to.
func (c *Conn) EnsureStreams(ctx context.Context) error {
	streams := []jetstream.StreamConfig{
		{Name: RunsStream, Subjects: []string{subjectRuns + "*"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
			Description: "Logbook run requests, one subject per relay group"},
		{Name: EventsStream, Subjects: []string{subjectEvents + "*.*"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
			Description: "Logbook run events from executors, appended by the server"},
		{Name: PoisonStream, Subjects: []string{subjectPoison + ">"}, Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
			MaxAge: 14 * 24 * time.Hour, Description: "Logbook messages that could not be processed"},
	}
	for _, s := range streams {
		if _, err := c.JS.CreateOrUpdateStream(ctx, s); err != nil {
			return fmt.Errorf("stream %s: %w", s.Name, err)
		}
	}
	return nil
}

// EnsureGroup creates or updates the durable consumer of a relay group.
func (c *Conn) EnsureGroup(ctx context.Context, group string) error {
	if err := ValidateName("relay group", group); err != nil {
		return err
	}
	_, err := c.JS.CreateOrUpdateConsumer(ctx, RunsStream, jetstream.ConsumerConfig{
		Durable:       GroupConsumer(group),
		Description:   "run requests of relay group " + group,
		FilterSubject: RunsSubject(group),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.cfg.AckWait,
		MaxDeliver:    c.cfg.MaxDeliver,
		MaxAckPending: 10000,
	})
	if err != nil {
		return fmt.Errorf("consumer of relay group %s: %w", group, err)
	}
	return nil
}

// readSeedFile checks a seed file exists and is not readable by others.
func readSeedFile(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if info.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s is readable by others (mode %v): chmod 600 it", path, info.Mode().Perm())
	}
	return nil
}

// EnsureGroupOnce is EnsureGroup once per group for this connection.
func (c *Conn) EnsureGroupOnce(ctx context.Context, group string) error {
	if _, done := c.groups.Load(group); done {
		return nil
	}
	if err := c.EnsureGroup(ctx, group); err != nil {
		return err
	}
	c.groups.Store(group, true)
	return nil
}
