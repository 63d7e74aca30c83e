// Package export streams the event log to outside destinations for a SIEM
// or an archive: JSONL files with rotation, syslog (RFC 5424) over TCP or
// TLS, and an HTTP webhook signed with HMAC-SHA256. Each destination
// follows the log from a cursor stored in the database, in position order,
// and moves the cursor only after the destination acknowledged what it was
// sent, so every event reaches it at least once. Each record carries its
// position, its chain hash and the previous hash, so a receiver can check
// that what it holds is continuous and drop a record it already has.
package export

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
)

// Kind is what a destination writes to.
type Kind string

const (
	KindFile    Kind = "file"
	KindSyslog  Kind = "syslog"
	KindWebhook Kind = "webhook"
)

// From says where a destination without a cursor starts.
type From string

const (
	// FromStart sends the whole log, from position 1 (the default).
	FromStart From = "start"
	// FromHead sends only what is appended after the destination's first
	// start.
	FromHead From = "head"
)

// Config is one destination, read from LOGBOOK_EXPORT_<NAME>_* variables.
type Config struct {
	// Name is the destination's name in LOGBOOK_EXPORT (lower case), which
	// also names its cursor.
	Name string
	Kind Kind
	From From
	// Batch bounds how many events one send carries.
	Batch int

	// File: Dir holds the files; a file is closed and a new one started
	// when it would pass RotateBytes, or is RotateEvery old (0: never).
	Dir         string
	RotateBytes int64
	RotateEvery time.Duration

	// Syslog: Addr is host:port; TLS (RFC 5425) with an optional CA file,
	// server name and client certificate; Facility and Hostname go in each
	// message's header. MaxMessage bounds one message: a record over it is
	// sent without its data (which it names by digest). ResendWindow is
	// how much of what was written before a connection broke is sent again.
	Addr          string
	TLS           bool
	TLSCAFile     string
	TLSServerName string
	TLSCertFile   string
	TLSKeyFile    string
	Facility      int
	Hostname      string
	MaxMessage    int
	ResendWindow  time.Duration

	// Webhook: URL takes each batch as a POST; the HMAC key is read from
	// SecretFile, or from the vault as the base-layer secret SecretKey of
	// bundle SecretBundle. Timeout bounds one POST.
	URL          string
	SecretFile   string
	SecretBundle string
	SecretKey    string
	Timeout      time.Duration
}

// envPrefix starts every variable this package reads.
const envPrefix = "LOGBOOK_EXPORT"

// MaxDestinations bounds LOGBOOK_EXPORT's list.
const MaxDestinations = 16

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// facilities are the RFC 5424 facility names, by code.
var facilities = []string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp", "audit", "alert", "clock",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

// settings lists the variables each kind takes, after LOGBOOK_EXPORT_<NAME>_.
var settings = map[Kind][]string{
	KindFile:    {"TYPE", "FROM", "BATCH", "DIR", "ROTATE_SIZE", "ROTATE_INTERVAL"},
	KindSyslog:  {"TYPE", "FROM", "BATCH", "ADDR", "TLS", "TLS_CA_FILE", "TLS_SERVER_NAME", "TLS_CERT_FILE", "TLS_KEY_FILE", "FACILITY", "HOSTNAME", "MAX_MESSAGE", "RESEND_WINDOW"},
	KindWebhook: {"TYPE", "FROM", "BATCH", "URL", "SECRET_FILE", "SECRET", "TIMEOUT"},
}

// ParseConfig reads the destinations from environ (os.Environ's form):
// LOGBOOK_EXPORT lists their names, and LOGBOOK_EXPORT_<NAME>_* configure
// each. Every problem is reported at once, each naming its variable; a
// LOGBOOK_EXPORT_* variable that configures nothing is one, so a typo
// does not silently leave a setting at its default.
func ParseConfig(environ []string) ([]Config, error) {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && (k == envPrefix || strings.HasPrefix(k, envPrefix+"_")) {
			env[k] = v
		}
	}
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	used := map[string]bool{envPrefix: true}
	var out []Config
	var names []string
	for raw := range strings.SplitSeq(env[envPrefix], ",") {
		name := strings.TrimSpace(raw)
		if name == "" {
			continue
		}
		switch {
		case !nameRE.MatchString(name):
			fail("%s: destination name %q is not a lower-case letter followed by up to 31 letters, digits or _", envPrefix, name)
			continue
		case slices.Contains(names, name):
			fail("%s: destination %q is listed twice", envPrefix, name)
			continue
		}
		names = append(names, name)
	}
	if len(names) > MaxDestinations {
		fail("%s lists %d destinations, over the limit of %d", envPrefix, len(names), MaxDestinations)
		names = names[:MaxDestinations]
	}
	for _, name := range names {
		prefix := envPrefix + "_" + strings.ToUpper(name) + "_"
		get := func(key string) (string, string) {
			v := prefix + key
			used[v] = true
			return v, env[v]
		}
		c := Config{Name: name, From: FromStart}
		typeVar, kind := get("TYPE")
		c.Kind = Kind(kind)
		if _, ok := settings[c.Kind]; !ok {
			if kind == "" {
				fail("%s is not set: say file, syslog or webhook", typeVar)
			} else {
				fail("%s %q is not file, syslog or webhook", typeVar, kind)
			}
			// Its other settings are not checked against a kind it lacks.
			for k := range env {
				if strings.HasPrefix(k, prefix) {
					used[k] = true
				}
			}
			continue
		}
		for _, key := range settings[c.Kind] {
			used[prefix+key] = true
		}
		if v, raw := get("FROM"); raw != "" {
			switch From(raw) {
			case FromStart, FromHead:
				c.From = From(raw)
			default:
				fail("%s %q is not start (the whole log) or head (what is appended from now on)", v, raw)
			}
		}
		c.Batch = map[Kind]int{KindFile: 1000, KindSyslog: 500, KindWebhook: 100}[c.Kind]
		if v, raw := get("BATCH"); raw != "" {
			n, err := strconv.Atoi(raw)
			if err != nil || n < 1 || n > 10000 {
				fail("%s %q is not a number of events from 1 to 10000", v, raw)
			} else {
				c.Batch = n
			}
		}
		switch c.Kind {
		case KindFile:
			parseFile(&c, get, fail)
		case KindSyslog:
			parseSyslog(&c, get, fail)
		case KindWebhook:
			parseWebhook(&c, get, fail)
		}
		out = append(out, c)
	}
	var unused []string
	for k := range env {
		if !used[k] {
			unused = append(unused, k)
		}
	}
	slices.Sort(unused)
	for _, k := range unused {
		if len(names) == 0 {
			fail("%s is set but %s lists no destination", k, envPrefix)
		} else {
			fail("%s configures nothing: %s lists %s, and each takes only the settings of its type (see the README)", k, envPrefix, strings.Join(names, ","))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

type getter func(key string) (variable, value string)

func parseFile(c *Config, get getter, fail func(string, ...any)) {
	if v, raw := get("DIR"); raw == "" {
		fail("%s is not set: name the directory the JSONL files go to", v)
	} else {
		c.Dir = raw
	}
	c.RotateBytes = 128 << 20
	if v, raw := get("ROTATE_SIZE"); raw != "" {
		n, err := units.RAMInBytes(raw)
		if err != nil || n < 4096 || n > 1<<40 {
			fail("%s %q is not a size from 4KiB to 1TiB, such as 128MiB", v, raw)
		} else {
			c.RotateBytes = n
		}
	}
	c.RotateEvery = 24 * time.Hour
	if v, raw := get("ROTATE_INTERVAL"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || (d != 0 && d < time.Second) {
			fail("%s %q is not a duration of a second or more (such as 1h), or 0 for size alone", v, raw)
		} else {
			c.RotateEvery = d
		}
	}
}

func parseSyslog(c *Config, get getter, fail func(string, ...any)) {
	if v, raw := get("ADDR"); raw == "" {
		fail("%s is not set: give the receiver's host:port", v)
	} else if host, port, err := net.SplitHostPort(raw); err != nil || host == "" || port == "" {
		fail("%s %q is not host:port", v, raw)
	} else {
		c.Addr = raw
	}
	if v, raw := get("TLS"); raw != "" {
		switch raw {
		case "1", "true":
			c.TLS = true
		case "0", "false":
		default:
			fail("%s %q is not 1 (TLS, RFC 5425) or 0 (plain TCP)", v, raw)
		}
	}
	tlsOnly := func(key string) string {
		v, raw := get(key)
		if raw != "" && !c.TLS {
			fail("%s is set but %sTLS is not 1", v, strings.TrimSuffix(v, key))
		}
		return raw
	}
	c.TLSCAFile, c.TLSServerName = tlsOnly("TLS_CA_FILE"), tlsOnly("TLS_SERVER_NAME")
	c.TLSCertFile, c.TLSKeyFile = tlsOnly("TLS_CERT_FILE"), tlsOnly("TLS_KEY_FILE")
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		v, _ := get("TLS_CERT_FILE")
		fail("%s and %s_KEY_FILE go together: a client certificate needs its key", v, strings.TrimSuffix(v, "_CERT_FILE"))
	}
	c.Facility = 16 // local0
	if v, raw := get("FACILITY"); raw != "" {
		if i := slices.Index(facilities, raw); i >= 0 {
			c.Facility = i
		} else {
			fail("%s %q is not a syslog facility name (%s)", v, raw, strings.Join(facilities, ", "))
		}
	}
	if v, raw := get("HOSTNAME"); raw != "" {
		if len(raw) > 255 || strings.IndexFunc(raw, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
			fail("%s %q is not up to 255 printable ASCII characters without spaces", v, raw)
		} else {
			c.Hostname = raw
		}
	}
	c.MaxMessage = 64 << 10
	if v, raw := get("MAX_MESSAGE"); raw != "" {
		n, err := units.RAMInBytes(raw)
		if err != nil || n < 2048 || n > 16<<20 {
			fail("%s %q is not a size from 2KiB to 16MiB, such as 64KiB (match the receiver's maximum message size)", v, raw)
		} else {
			c.MaxMessage = int(n)
		}
	}
	c.ResendWindow = 10 * time.Second
	if v, raw := get("RESEND_WINDOW"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d < 0 || d > time.Hour {
			fail("%s %q is not a duration from 0 to 1h, such as 10s", v, raw)
		} else {
			c.ResendWindow = d
		}
	}
}

func parseWebhook(c *Config, get getter, fail func(string, ...any)) {
	if v, raw := get("URL"); raw == "" {
		fail("%s is not set: give the http:// or https:// address batches are posted to", v)
	} else if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The address may hold a token: never quote it.
		fail("%s is not an http:// or https:// URL with a host (not shown, as it may hold a token)", v)
	} else {
		c.URL = raw
	}
	fileVar, file := get("SECRET_FILE")
	refVar, ref := get("SECRET")
	switch {
	case file != "" && ref != "":
		fail("%s and %s both name the HMAC key: keep one", fileVar, refVar)
	case file != "":
		c.SecretFile = file
	case ref != "":
		bundle, key, ok := strings.Cut(ref, "/")
		if !ok || bundle == "" || key == "" || strings.ContainsAny(key, "/ ") {
			fail("%s %q is not BUNDLE/KEY, a base-layer secret set with `logbook secret set BUNDLE KEY`", refVar, ref)
		} else {
			c.SecretBundle, c.SecretKey = bundle, key
		}
	default:
		fail("%s or %s must name the HMAC-SHA256 key the webhook's requests are signed with", fileVar, refVar)
	}
	c.Timeout = 10 * time.Second
	if v, raw := get("TIMEOUT"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d < 100*time.Millisecond || d > 10*time.Minute {
			fail("%s %q is not a duration from 100ms to 10m, such as 10s", v, raw)
		} else {
			c.Timeout = d
		}
	}
}
