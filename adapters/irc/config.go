package irc

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// The environment variables the provider is configured by.
const (
	EnvServer   = "LOGBOOK_IRC_SERVER"   // host:port; the provider is off when unset
	EnvNick     = "LOGBOOK_IRC_NICK"     // the bot's nick ("logbook")
	EnvChannels = "LOGBOOK_IRC_CHANNELS" // comma list: "#ops,#dev"
	EnvTLS      = "LOGBOOK_IRC_TLS"      // 1 or 0 (1 when the port is 6697)
	// EnvTLSCAFile trusts one more CA (a PEM file), for a server whose
	// certificate a private CA signed.
	EnvTLSCAFile = "LOGBOOK_IRC_TLS_CA_FILE"
	// EnvTLSInsecure turns certificate checks off. Anyone on the path can
	// then read and forge the bot's traffic; the name says so, so nobody
	// sets it by accident. Tests only.
	EnvTLSInsecure = "LOGBOOK_IRC_TLS_INSECURE_SKIP_VERIFY_TESTS_ONLY"
	EnvPassword    = "LOGBOOK_IRC_PASSWORD"      // server password (PASS), when the server wants one
	EnvSASLUser    = "LOGBOOK_IRC_SASL_USER"     // SASL PLAIN account, with LOGBOOK_IRC_SASL_PASSWORD
	EnvSASLPass    = "LOGBOOK_IRC_SASL_PASSWORD" // SASL PLAIN password
	EnvRate        = "LOGBOOK_IRC_LINES_PER_SECOND"
	EnvBurst       = "LOGBOOK_IRC_BURST"
	EnvMaxLines    = "LOGBOOK_IRC_MAX_LINES" // the most lines one reply shows (30)
)

// Config configures the IRC provider. Zero values take the defaults below.
type Config struct {
	Server   string   // host:port
	Nick     string   // "logbook"
	Channels []string // joined at every connect, with their sigils: "#ops"
	TLS      bool
	// TLSCAFile adds a CA to the system pool for the server's certificate.
	TLSCAFile string
	// TLSInsecureSkipVerify accepts any certificate. Tests only.
	TLSInsecureSkipVerify bool
	Password              string // server password (PASS)
	SASLUser              string // SASL PLAIN account
	SASLPassword          string
	// Prefix starts a command in a channel ("!").
	Prefix string
	// LinesPerSecond and Burst throttle everything the bot says (1/s,
	// burst 4): servers disconnect clients that flood, and these keep the
	// bot well within the usual limits.
	LinesPerSecond float64
	Burst          int
	// MaxParts is how many lines-worth of parts one reply may take before
	// the rest is cut with a link to its transcript (10).
	MaxParts int
	// MaxLines is how many lines one reply may show, each a PRIVMSG of its
	// own, before the rest is cut with a link to its transcript (30): a
	// part holds up to a line budget of bytes, so `seq 1 1000` would
	// otherwise flood a channel for minutes within MaxParts.
	MaxLines int
	// MinBackoff and MaxBackoff bound the wait between reconnects (500ms,
	// 60s); each failure doubles it, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds connecting and registering, and how long a posted
	// line may wait for the server's acknowledgement (30s).
	Timeout time.Duration
	// KeepAlive is how often the bot pings an idle server to notice a dead
	// connection (2m; a missing answer within Timeout disconnects).
	KeepAlive time.Duration
	Logger    zerolog.Logger
}

// ConfigFromEnv reads the LOGBOOK_IRC_* variables through getenv. It returns
// ok false when LOGBOOK_IRC_SERVER is unset (the provider is off), and every
// bad setting at once otherwise.
func ConfigFromEnv(getenv func(string) string) (cfg Config, ok bool, err error) {
	cfg.Server = strings.TrimSpace(getenv(EnvServer))
	if cfg.Server == "" {
		return Config{}, false, nil
	}
	var errs []error
	cfg.Nick = strings.TrimSpace(getenv(EnvNick))
	for _, ch := range strings.Split(getenv(EnvChannels), ",") {
		if ch = strings.TrimSpace(ch); ch != "" {
			cfg.Channels = append(cfg.Channels, ch)
		}
	}
	_, port, _ := net.SplitHostPort(cfg.Server)
	cfg.TLS = port == "6697"
	if v := getenv(EnvTLS); v != "" {
		b, perr := parseBool(v)
		if perr != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", EnvTLS, v, perr))
		}
		cfg.TLS = b
	}
	cfg.TLSCAFile = getenv(EnvTLSCAFile)
	if v := getenv(EnvTLSInsecure); v != "" {
		b, perr := parseBool(v)
		if perr != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", EnvTLSInsecure, v, perr))
		}
		cfg.TLSInsecureSkipVerify = b
	}
	cfg.Password = getenv(EnvPassword)
	cfg.SASLUser, cfg.SASLPassword = getenv(EnvSASLUser), getenv(EnvSASLPass)
	if v := getenv(EnvRate); v != "" {
		f, perr := strconv.ParseFloat(v, 64)
		if perr != nil || f <= 0 {
			errs = append(errs, fmt.Errorf("%s %q is not a positive number of lines per second", EnvRate, v))
		}
		cfg.LinesPerSecond = f
	}
	if v := getenv(EnvBurst); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%s %q is not a whole number of lines, 1 or more", EnvBurst, v))
		}
		cfg.Burst = n
	}
	if v := getenv(EnvMaxLines); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%s %q is not a whole number of lines, 1 or more", EnvMaxLines, v))
		}
		cfg.MaxLines = n
	}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	return cfg, true, errors.Join(errs...)
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, errors.New("use 1 or 0")
}

// withDefaults fills the zero values.
func (c Config) withDefaults() Config {
	if c.Nick == "" {
		c.Nick = "logbook"
	}
	if c.Prefix == "" {
		c.Prefix = "!"
	}
	if c.LinesPerSecond == 0 {
		c.LinesPerSecond = 1
	}
	if c.Burst == 0 {
		c.Burst = 4
	}
	if c.MaxParts == 0 {
		c.MaxParts = 10
	}
	if c.MaxLines == 0 {
		c.MaxLines = 30
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 500 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 60 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 2 * time.Minute
	}
	return c
}

// Validate reports every bad setting at once, naming the variable it came
// from.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	host, port, err := net.SplitHostPort(c.Server)
	if err != nil || host == "" {
		errs = append(errs, fmt.Errorf("%s %q is not host:port (irc.example.org:6697)", EnvServer, c.Server))
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		errs = append(errs, fmt.Errorf("%s %q: port %q is not a number from 1 to 65535", EnvServer, c.Server, port))
	}
	if !validNick(c.Nick) {
		errs = append(errs, fmt.Errorf("%s %q is not a valid IRC nick (a letter or one of []\\`_^{|} first, then letters, digits, those or '-')", EnvNick, c.Nick))
	}
	if len(c.Channels) == 0 {
		errs = append(errs, fmt.Errorf("%s is empty: name at least one channel to join (#ops)", EnvChannels))
	}
	for _, ch := range c.Channels {
		if !validChannel(ch) {
			errs = append(errs, fmt.Errorf("%s: %q is not a channel name (it starts with # or &, and has no spaces, commas or control characters)", EnvChannels, ch))
		}
	}
	if (c.SASLUser == "") != (c.SASLPassword == "") {
		errs = append(errs, fmt.Errorf("%s and %s go together: set both or neither", EnvSASLUser, EnvSASLPass))
	}
	if c.TLSCAFile != "" && !c.TLS {
		errs = append(errs, fmt.Errorf("%s is set but %s is 0: the CA is only used over TLS", EnvTLSCAFile, EnvTLS))
	}
	if c.TLSCAFile != "" {
		if _, err := os.Stat(c.TLSCAFile); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvTLSCAFile, err))
		}
	}
	if c.LinesPerSecond < 0 || c.Burst < 0 {
		errs = append(errs, errors.New("irc throttle: lines per second and burst must be positive"))
	}
	if c.MinBackoff > c.MaxBackoff {
		errs = append(errs, fmt.Errorf("irc backoff: minimum %v is above maximum %v", c.MinBackoff, c.MaxBackoff))
	}
	if c.KeepAlive < c.Timeout {
		errs = append(errs, fmt.Errorf("irc keepalive %v is shorter than the timeout %v", c.KeepAlive, c.Timeout))
	}
	return errors.Join(errs...)
}

// tlsConfig builds the client TLS settings, or nil for plain text.
func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS {
		return nil, nil
	}
	host, _, _ := net.SplitHostPort(c.Server)
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLSInsecureSkipVerify}
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvTLSCAFile, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s %s: no PEM certificate in it", EnvTLSCAFile, c.TLSCAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}
