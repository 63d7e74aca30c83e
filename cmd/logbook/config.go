package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/docker"
	"github.com/logbookhq/logbook/adapters/export"
	"github.com/logbookhq/logbook/adapters/postgres"
	"github.com/logbookhq/logbook/adapters/secretvault"
	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/internal/supervisor"
)

// config is Logbook's 12-factor configuration: environment variables with
// defaults, no file needed to start.
type config struct {
	DatabaseURL string // LOGBOOK_DATABASE_URL; empty means embedded SQLite
	DataDir     string // LOGBOOK_DATA_DIR
	HTTPAddr    string // LOGBOOK_HTTP_ADDR
	LogLevel    string // LOGBOOK_LOG_LEVEL
	LogFormat   string // LOGBOOK_LOG_FORMAT: json, console, or empty for console on a TTY
	Runtime     string // LOGBOOK_RUNTIME: docker, process, or empty for Docker when a daemon answers
	SQLiteSync  string // LOGBOOK_SQLITE_SYNC: full (default) or normal
	PublicURL   string // LOGBOOK_PUBLIC_URL: where people reach the web UI, for links in chat
	CPUProfile  string // LOGBOOK_CPU_PROFILE: write a CPU profile of serve's (or executor's) whole run to this file (diagnostics)
	Slack       slackConfig
	IRC         ircSettings // LOGBOOK_IRC_*
	// SelfRegister (LOGBOOK_SELF_REGISTER=1) lets an unknown chat user in as
	// a new Logbook user holding what SelfRegisterGroup
	// (LOGBOOK_SELF_REGISTER_GROUP) grants, or nothing.
	SelfRegister      bool
	SelfRegisterGroup string
	selfRegisterRaw   string
	// ApprovalTTL (LOGBOOK_APPROVAL_TTL, a duration, default 15m) is how
	// long a request waits for the approvals its rules ask for.
	ApprovalTTL    time.Duration
	approvalTTLRaw string
	// Quotas (LOGBOOK_QUOTAS) are the site's quotas over what bundles
	// declare: "ops.concurrency.user=1, *.rate=30".
	Quotas    bundle.QuotaOverrides
	quotasErr error
	// MaxPids (LOGBOOK_MAX_PIDS) caps the pids limit of every run and of
	// what bundles may ask for.
	MaxPids    int64
	maxPidsErr error
	// SecretKeyFile (LOGBOOK_SECRET_KEY_FILE) holds the key secrets are
	// encrypted under. Unset on SQLite: one made at first start under
	// DataDir; unset on PostgreSQL: the server keeps no secrets.
	SecretKeyFile string
	// PullTimeout (LOGBOOK_PULL_TIMEOUT) bounds one pull of a bundle
	// image; the pull runs on its own, not under the builtin's 30s.
	PullTimeout    time.Duration
	pullTimeoutErr error
	// LeaseTTL (LOGBOOK_LEASE_TTL, default 3s) is how long the leader
	// lease lasts unrenewed, with several servers on one PostgreSQL: a dead
	// leader's duties move within it plus a third of it.
	LeaseTTL    time.Duration
	leaseTTLErr error
	// Bus is the NATS run bus and the executors' settings (bus.go).
	Bus busSettings
	// Warm (LOGBOOK_WARM_*) sizes the warm pools (warmSettings).
	Warm    docker.WarmConfig
	warmErr error
	// Exports (LOGBOOK_EXPORT, LOGBOOK_EXPORT_<NAME>_*) are the
	// destinations the event log is streamed to.
	Exports   []export.Config
	exportErr error
}

// maxApprovalTTL bounds LOGBOOK_APPROVAL_TTL: a request left waiting for
// longer is better asked again.
const maxApprovalTTL = 7 * 24 * time.Hour

func loadConfig() (config, error) {
	c := config{
		DatabaseURL: os.Getenv("LOGBOOK_DATABASE_URL"),
		DataDir:     envOr("LOGBOOK_DATA_DIR", "./data"),
		HTTPAddr:    envOr("LOGBOOK_HTTP_ADDR", "127.0.0.1:8080"),
		LogLevel:    envOr("LOGBOOK_LOG_LEVEL", "info"),
		LogFormat:   os.Getenv("LOGBOOK_LOG_FORMAT"),
		Runtime:     os.Getenv("LOGBOOK_RUNTIME"),
		SQLiteSync:  os.Getenv("LOGBOOK_SQLITE_SYNC"),
		PublicURL:   os.Getenv("LOGBOOK_PUBLIC_URL"),
		CPUProfile:  os.Getenv("LOGBOOK_CPU_PROFILE"),
		Slack:       loadSlackConfig(),
		IRC:         loadIRCSettings(),
		Bus:         loadBusSettings(),
	}
	c.selfRegisterRaw = os.Getenv("LOGBOOK_SELF_REGISTER")
	c.SelfRegister = c.selfRegisterRaw == "1" || c.selfRegisterRaw == "true"
	c.SelfRegisterGroup = os.Getenv("LOGBOOK_SELF_REGISTER_GROUP")
	c.approvalTTLRaw = os.Getenv("LOGBOOK_APPROVAL_TTL")
	c.ApprovalTTL = dispatch.DefaultApprovalTTL
	if c.approvalTTLRaw != "" {
		c.ApprovalTTL, _ = time.ParseDuration(c.approvalTTLRaw)
	}
	c.Quotas, c.quotasErr = bundle.ParseQuotaOverrides(os.Getenv("LOGBOOK_QUOTAS"))
	c.MaxPids, c.maxPidsErr = maxPidsFromEnv()
	c.SecretKeyFile = os.Getenv("LOGBOOK_SECRET_KEY_FILE")
	c.PullTimeout = 10 * time.Minute
	c.LeaseTTL = 3 * time.Second
	if raw := os.Getenv("LOGBOOK_LEASE_TTL"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d < 300*time.Millisecond || d > 5*time.Minute {
			c.leaseTTLErr = fmt.Errorf("LOGBOOK_LEASE_TTL %q is not a duration between 300ms and 5m, such as 3s", raw)
		} else {
			c.LeaseTTL = d
		}
	}
	if raw := os.Getenv("LOGBOOK_PULL_TIMEOUT"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d < time.Second {
			c.pullTimeoutErr = fmt.Errorf("LOGBOOK_PULL_TIMEOUT %q is not a duration of a second or more, such as 10m", raw)
		}
		c.PullTimeout = d
	}
	c.Exports, c.exportErr = export.ParseConfig(os.Environ())
	c.Warm, c.warmErr = warmSettings(os.Getenv)
	return c, c.Validate()
}

// warmSettings reads the warm pools' sizes from the environment; unset
// ones keep WarmConfig's defaults.
//
//	LOGBOOK_WARM_POOL_SIZE    containers one image may keep started (8)
//	LOGBOOK_WARM_PREWARM      containers started for an image at install (2)
//	LOGBOOK_WARM_MAX_RUNS     runs before a container is recycled (1000)
//	LOGBOOK_WARM_IDLE_EXPIRY  an idle container is removed after this (5m)
func warmSettings(getenv func(string) string) (docker.WarmConfig, error) {
	var warm docker.WarmConfig
	var errs []error
	count := func(key string, most int, what string) int {
		raw := getenv(key)
		if raw == "" {
			return 0
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > most {
			errs = append(errs, fmt.Errorf("%s %q is not a number of %s from 1 to %d", key, raw, what, most))
			return 0
		}
		return n
	}
	warm.PoolSize = count("LOGBOOK_WARM_POOL_SIZE", 256, "containers")
	warm.Prewarm = count("LOGBOOK_WARM_PREWARM", 256, "containers")
	warm.MaxInvocations = count("LOGBOOK_WARM_MAX_RUNS", 1_000_000, "runs")
	if raw := getenv("LOGBOOK_WARM_IDLE_EXPIRY"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d < time.Second {
			errs = append(errs, fmt.Errorf("LOGBOOK_WARM_IDLE_EXPIRY %q is not a duration of 1s or more, such as 5m", raw))
		}
		warm.IdleExpiry = d
	}
	if warm.PoolSize > 0 && warm.Prewarm > warm.PoolSize {
		errs = append(errs, fmt.Errorf("LOGBOOK_WARM_PREWARM (%d) is more than LOGBOOK_WARM_POOL_SIZE (%d)", warm.Prewarm, warm.PoolSize))
	}
	return warm, errors.Join(errs...)
}

// maxPidsFromEnv reads LOGBOOK_MAX_PIDS, run.DefaultMaxPids when unset.
func maxPidsFromEnv() (int64, error) {
	raw := os.Getenv("LOGBOOK_MAX_PIDS")
	if raw == "" {
		return run.DefaultMaxPids, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 1 || n > 1<<22 {
		return run.DefaultMaxPids, fmt.Errorf("LOGBOOK_MAX_PIDS %q is not a number of processes from 1 to 4194304", raw)
	}
	return n, nil
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

// Validate reports every bad setting at once.
func (c config) Validate() error {
	var errs []error
	if _, err := zerolog.ParseLevel(c.LogLevel); err != nil || c.LogLevel == "" {
		errs = append(errs, fmt.Errorf("LOGBOOK_LOG_LEVEL %q is not one of trace, debug, info, warn, error", c.LogLevel))
	}
	switch c.LogFormat {
	case "", "json", "console":
	default:
		errs = append(errs, fmt.Errorf("LOGBOOK_LOG_FORMAT %q is not json or console", c.LogFormat))
	}
	switch c.SQLiteSync {
	case "", "full", "normal":
	default:
		errs = append(errs, fmt.Errorf("LOGBOOK_SQLITE_SYNC %q is not full or normal", c.SQLiteSync))
	}
	switch c.Runtime {
	case "", "docker", "process":
	default:
		errs = append(errs, fmt.Errorf("LOGBOOK_RUNTIME %q is not docker or process", c.Runtime))
	}
	if _, _, err := parseDatabaseURL(c.DatabaseURL, c.DataDir); err != nil {
		errs = append(errs, err)
	}
	switch c.selfRegisterRaw {
	case "", "0", "1", "false", "true":
	default:
		errs = append(errs, fmt.Errorf("LOGBOOK_SELF_REGISTER %q is not 1 (on) or 0 (off)", c.selfRegisterRaw))
	}
	if c.SelfRegisterGroup != "" {
		if err := access.ValidateGroupName(c.SelfRegisterGroup); err != nil {
			errs = append(errs, fmt.Errorf("LOGBOOK_SELF_REGISTER_GROUP: %w", err))
		}
		if !c.SelfRegister {
			errs = append(errs, fmt.Errorf("LOGBOOK_SELF_REGISTER_GROUP is set but LOGBOOK_SELF_REGISTER is not 1"))
		}
	}
	if c.ApprovalTTL <= 0 || c.ApprovalTTL > maxApprovalTTL {
		errs = append(errs, fmt.Errorf("LOGBOOK_APPROVAL_TTL %q is not a duration above zero and at most 168h, such as 15m", c.approvalTTLRaw))
	}
	if c.quotasErr != nil {
		errs = append(errs, fmt.Errorf("LOGBOOK_QUOTAS: %w", c.quotasErr))
	}
	if c.maxPidsErr != nil {
		errs = append(errs, c.maxPidsErr)
	}
	if c.leaseTTLErr != nil {
		errs = append(errs, c.leaseTTLErr)
	}
	if c.pullTimeoutErr != nil {
		errs = append(errs, c.pullTimeoutErr)
	}
	if c.exportErr != nil {
		errs = append(errs, c.exportErr)
	}
	if c.warmErr != nil {
		errs = append(errs, c.warmErr)
	}
	errs = append(errs, c.Slack.validate()...)
	if c.IRC.err != nil {
		errs = append(errs, c.IRC.err)
	}
	errs = append(errs, c.Bus.errs...)
	return errors.Join(errs...)
}

// parseDatabaseURL says which store a URL names: ("postgres", url) or
// ("sqlite", path). Empty means the embedded SQLite file under dataDir. A
// postgres URL must parse, since one that does not would be quoted whole
// in the driver's errors; the error here never shows it.
func parseDatabaseURL(raw, dataDir string) (kind, target string, err error) {
	switch {
	case raw == "":
		return "sqlite", filepath.Join(dataDir, "logbook.db"), nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if _, err := url.Parse(raw); err != nil {
			return "", "", errors.New("LOGBOOK_DATABASE_URL does not parse as a URL (it is not shown, since it may hold a password): " +
				"percent-encode any '@', ':', '/', '?', '#', '%' or space in the user name or password")
		}
		return "postgres", raw, nil
	case strings.HasPrefix(raw, "sqlite://"):
		return "sqlite", strings.TrimPrefix(raw, "sqlite://"), nil
	case strings.HasPrefix(raw, "file:"):
		return "sqlite", strings.TrimPrefix(raw, "file:"), nil
	}
	return "", "", fmt.Errorf("LOGBOOK_DATABASE_URL %q: use postgres://user@host/db, sqlite:///path/to/file.db, or leave it unset for %s", redactURL(raw), filepath.Join(dataDir, "logbook.db"))
}

// openMode says what opening a store may do beyond reading it.
type openMode int

const (
	// createStore creates the store when the database holds none (bench).
	createStore openMode = iota
	// existingStore opens only a store that exists: a read-only command
	// never creates one (audit verify, events tail, projections).
	existingStore
	// serveStore creates the store when needed and takes the server lock
	// on SQLite, so a second server on the same file is refused.
	serveStore
)

// openStore opens the store a URL names, once.
func openStore(ctx context.Context, url, dataDir string, mode openMode) (*sqlstore.Store, string, error) {
	kind, target, err := parseDatabaseURL(url, dataDir)
	if err != nil {
		return nil, "", err
	}
	switch kind {
	case "postgres":
		s, err := postgres.OpenWith(ctx, target, postgres.Options{MustExist: mode == existingStore})
		if err != nil {
			return nil, "", redactErr(err, target)
		}
		return s.Store, "postgres " + redactURL(target), nil
	default:
		s, err := sqlite.OpenWith(ctx, target, sqlite.Options{Synchronous: os.Getenv("LOGBOOK_SQLITE_SYNC"), MustExist: mode == existingStore, Serve: mode == serveStore})
		if err != nil {
			return nil, "", err
		}
		if why := s.ViewsReset(); why != "" {
			zerolog.Ctx(ctx).Warn().Str("views_file", sqlite.ViewsPath(target)).Str("reason", why).
				Msg("the views file did not belong to this log; it was emptied, and the views and the Merkle tree are folded again from the log")
		}
		return s.Store, "sqlite " + target, nil
	}
}

// openConfiguredStore opens the existing store a command works on:
// --database when given, else LOGBOOK_DATABASE_URL, else the embedded
// SQLite file. It never creates one. Errors are exit code 2, as for any
// bad setting.
func openConfiguredStore(ctx context.Context, database string) (*sqlstore.Store, string, config, error) {
	cfg, err := loadConfig()
	if err != nil {
		return nil, "", cfg, exitWith(2, "configuration: %v", err)
	}
	if database != "" {
		cfg.DatabaseURL = database
	}
	store, name, err := openStore(ctx, cfg.DatabaseURL, cfg.DataDir, existingStore)
	if err != nil {
		return nil, "", cfg, exitWith(2, "open %s: %v", redactURL(cfg.DatabaseURL), redactErr(err, cfg.DatabaseURL))
	}
	return store, name, cfg, nil
}

// openStoreWithRetry opens the store serve runs on, trying until the
// database answers or ctx ends, backing off from 200ms to 10s, logging
// each failure and reporting it to the supervisor (the server is not
// ready). A bad URL, a store another server holds, or a schema this build
// cannot use is not retried.
func openStoreWithRetry(ctx context.Context, log zerolog.Logger, url, dataDir string) (*sqlstore.Store, string, error) {
	if _, _, err := parseDatabaseURL(url, dataDir); err != nil {
		return nil, "", err
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 200*time.Millisecond, 10*time.Second
	attempt := 0
	type opened struct {
		store *sqlstore.Store
		name  string
	}
	o, err := backoff.Retry(ctx, func() (opened, error) {
		attempt++
		s, name, err := openStore(ctx, url, dataDir, serveStore)
		switch {
		case err == nil:
			return opened{s, name}, nil
		case errors.Is(err, sqlstore.ErrInUse), errors.Is(err, sqlstore.ErrMigration) && pingable(ctx, url, dataDir):
			return opened{}, backoff.Permanent(err)
		}
		supervisor.Unready(ctx, err)
		log.Warn().Err(err).Int("attempt", attempt).Msg("database not reachable; retrying")
		return opened{}, err
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(0))
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		return nil, "", err
	}
	return o.store, o.name, nil
}

// pingable says whether the database behind url answers now: a migration
// that failed while it does is the schema's fault, not the network's.
func pingable(ctx context.Context, url, dataDir string) bool {
	kind, target, err := parseDatabaseURL(url, dataDir)
	if err != nil || kind != "postgres" {
		return err == nil // a SQLite file is always there to ask
	}
	db, err := sql.Open("postgres", target)
	if err != nil {
		return false
	}
	defer db.Close()
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return db.PingContext(pingCtx) == nil
}

// newLogger builds the one root logger: console output on a TTY, JSON
// otherwise, unless LOGBOOK_LOG_FORMAT says.
func newLogger(c config, w io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(c.LogLevel)
	if err != nil {
		level = zerolog.InfoLevel
	}
	format := c.LogFormat
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "console"
		}
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	}
	// Milliseconds: a takeover or a retry is read from the logs of several
	// processes side by side.
	zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00"
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// defaultSecretKeyFile is where the embedded default keeps the key it
// makes at first start.
const defaultSecretKeyFile = "secret.key"

// secretKeyFile says which key file the server's vault uses: the setting,
// else on SQLite the one under the data directory (made at first start,
// mode 0600), else none: on PostgreSQL several hosts may share the
// database, and a key made on one would strand the secrets on it.
func secretKeyFile(c config, log zerolog.Logger) (string, error) {
	if c.SecretKeyFile != "" {
		if _, err := os.Stat(c.SecretKeyFile); err != nil {
			return "", fmt.Errorf("LOGBOOK_SECRET_KEY_FILE: %w (make one with 32 random bytes in base64: head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE)", err)
		}
		return c.SecretKeyFile, nil
	}
	kind, _, err := parseDatabaseURL(c.DatabaseURL, c.DataDir)
	if err != nil || kind != "sqlite" {
		return "", err
	}
	path := filepath.Join(c.DataDir, defaultSecretKeyFile)
	created, err := secretvault.EnsureKeyFile(path)
	if err != nil {
		return "", fmt.Errorf("make the secret key file %s: %w", path, err)
	}
	if created {
		log.Info().Str("key_file", path).Msg("made the key secrets are encrypted under (mode 0600): back it up with the database, or the secrets are lost")
	}
	return path, nil
}
