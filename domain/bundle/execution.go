package bundle

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
)

var (
	executionFields   = []string{"mode", "timeout", "memory", "cpu", "pids", "output_cap", "user", "concurrency", "rate", "queue"}
	concurrencyFields = []string{"bundle", "user", "room"}
	approvalsFields   = []string{"room", "provider"}
)

// maxQuota bounds a concurrency or rate quota: far above any real one,
// and a typo of many zeros is caught.
const maxQuota = 1_000_000

// minMemory is Docker's smallest accepted memory limit.
const minMemory = 6 << 20

// maxPids is the most any site may allow; a site's own maximum (Site) is
// usually far lower.
const maxPids = 1 << 22

// maxID is the largest uid or gid accepted: the kernel's are 32-bit and
// many tools read them as signed.
const maxID = 1<<31 - 1

// userPattern is a numeric uid, optionally with a numeric gid.
var userPattern = regexp.MustCompile(`^([0-9]{1,10})(?::([0-9]{1,10}))?$`)

// decodeExecution reads Logbook's execution section (see the package
// documentation). Values are checked here, since a malformed duration or
// size is a type problem; defaults are the executor's business. Quotas
// belong to the bundle level (bundleLevel); a command's are refused.
func (l *loader) decodeExecution(n *yaml.Node, path string, bundleLevel bool) Execution {
	var e Execution
	if !l.mapping(n, path) {
		return e
	}
	for _, f := range fields(n) {
		fpath := join(path, f.Key)
		v := f.Value
		switch f.Key {
		case "mode":
			if s, ok := l.str(v, fpath); ok {
				switch Mode(s) {
				case ModeFresh, ModeWarm, ModeSingleUse:
					e.Mode = Mode(s)
				default:
					l.schemaf(v.Line, "%s: %q is not a mode; expected fresh (a new container for each run), warm (a started container that serves run after run, cleaned up between them) or single-use (a started container that serves one run and is removed)", fpath, s)
				}
			}
		case "timeout":
			e.Timeout = l.duration(v, fpath)
		case "memory":
			if size := l.size(v, fpath); size != nil {
				if *size < minMemory {
					l.schemaf(v.Line, "%s: %d bytes is below the smallest memory limit, 6MiB", fpath, *size)
				} else {
					e.MemoryBytes = size
				}
			}
		case "output_cap":
			e.OutputCapBytes = l.size(v, fpath)
		case "cpu":
			if c, ok := l.number(v, fpath); ok {
				if c <= 0 || c > 1024 {
					l.schemaf(v.Line, "%s: expected a number of CPUs above 0 and at most 1024, such as 0.5 or 2", fpath)
				} else {
					e.CPUs = &c
				}
			}
		case "pids":
			if p, ok := l.integer(v, fpath); ok {
				switch site := l.maxPids(); {
				case p < 1 || p > maxPids:
					l.schemaf(v.Line, "%s: expected a process limit from 1 to %d", fpath, maxPids)
				case site > 0 && p > site:
					l.schemaf(v.Line, "%s: %d is above this site's maximum of %d processes", fpath, p, site)
				default:
					e.Pids = &p
				}
			}
		case "concurrency", "rate", "queue":
			if !bundleLevel {
				l.schemaf(f.Line, "%s: quotas hold for the whole bundle; set %s in the bundle's execution section", fpath, f.Key)
				continue
			}
			switch f.Key {
			case "concurrency":
				l.decodeConcurrency(v, fpath, &e.Quotas)
			case "rate":
				e.Quotas.Rate = l.quota(v, fpath, "requests a user may start in a minute")
			default:
				e.Quotas.Queue = l.wait(v, fpath)
			}
		case "user":
			e.User = l.user(v, fpath)
		default:
			l.unknownField(f, path, executionFields)
		}
	}
	return e
}

// decodeCommandExecution reads a command's execution override. Cog bundle
// version 3 used the same key for a string, "once" or "multiple"; Cog
// dropped both, and so does Logbook.
func (l *loader) decodeCommandExecution(n *yaml.Node, path string) Execution {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		switch n.Value {
		case "multiple":
			l.schemaWarnf(n.Line, "%s: multiple is Cog's old default and is ignored; remove it", path)
			return Execution{}
		case "once":
			l.schemaf(n.Line, "%s: once (a long-running command) is not supported; remove it and make the command exit after each invocation", path)
			return Execution{}
		}
	}
	return l.decodeExecution(n, path, false)
}

// decodeConcurrency reads execution.concurrency: the runs in flight for
// the whole bundle, one user and one room.
func (l *loader) decodeConcurrency(n *yaml.Node, path string, q *Quotas) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		l.schemaf(n.Line, "%s: say whose runs it bounds: a mapping of bundle, user and room, such as {user: 1}", path)
		return
	}
	if !l.mapping(n, path) {
		return
	}
	for _, f := range fields(n) {
		fpath := join(path, f.Key)
		switch f.Key {
		case "bundle":
			q.BundleConcurrency = l.quota(f.Value, fpath, "runs of the bundle at once")
		case "user":
			q.UserConcurrency = l.quota(f.Value, fpath, "runs of one user at once")
		case "room":
			q.RoomConcurrency = l.quota(f.Value, fpath, "runs from one room at once")
		default:
			l.unknownField(f, path, concurrencyFields)
		}
	}
}

// quota reads a count of at least 1.
func (l *loader) quota(n *yaml.Node, path, what string) *int64 {
	v, ok := l.integer(n, path)
	if !ok {
		return nil
	}
	if v < 1 || v > maxQuota {
		l.schemaf(n.Line, "%s: expected the most %s, from 1 to %d (leave it out for no bound)", path, what, maxQuota)
		return nil
	}
	return &v
}

// wait reads how long a request over a quota waits: a duration, where
// zero (0s) means not at all.
func (l *loader) wait(n *yaml.Node, path string) *time.Duration {
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!str" || n.ShortTag() == "!!int") {
		if d, err := time.ParseDuration(n.Value); err == nil && d >= 0 && d <= MaxQueue {
			return &d
		}
	}
	if n.Kind != yaml.AliasNode {
		l.schemaf(n.Line, "%s: expected how long a request over a quota waits, from 0s (refuse it at once) to %s, such as 30s or 2m", path, MaxQueue)
	}
	return nil
}

// user reads a numeric uid, whose gid is then the same number, or
// "uid:gid". Names are refused: an image built FROM scratch has no
// /etc/passwd to look them up in.
func (l *loader) user(n *yaml.Node, path string) *User {
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!str") {
		if m := userPattern.FindStringSubmatch(n.Value); m != nil {
			uid, err1 := strconv.ParseInt(m[1], 10, 64)
			gid, err2 := uid, error(nil)
			if m[2] != "" {
				gid, err2 = strconv.ParseInt(m[2], 10, 64)
			}
			if err1 == nil && err2 == nil && uid <= maxID && gid <= maxID {
				return &User{UID: uid, GID: gid, Line: n.Line}
			}
		}
	}
	if n.Kind != yaml.AliasNode {
		l.schemaf(n.Line, "%s: expected a numeric uid such as 1000 (the gid is then the same) or uid:gid such as 1000:100, each at most %d, found %q; names cannot be looked up in an image without /etc/passwd", path, maxID, n.Value)
	}
	return nil
}

// MaxQueue bounds how long a request may wait for a quota: a request
// that waits longer is better sent again.
const MaxQueue = time.Hour

// decodeApprovals reads the approvals section: the approvers' room and
// its provider.
func (l *loader) decodeApprovals(n *yaml.Node, keyLine int, b *Bundle) {
	b.Approvals.Line = keyLine
	if !l.mapping(n, "approvals") {
		return
	}
	for _, f := range fields(n) {
		path := join("approvals", f.Key)
		switch f.Key {
		case "room":
			if s, ok := l.str(f.Value, path); ok {
				b.Approvals.Room = strings.TrimPrefix(s, "#")
				if b.Approvals.Room == "" || strings.TrimSpace(s) != s || strings.IndexFunc(s, unicode.IsControl) >= 0 {
					l.schemaf(f.Value.Line, "%s: expected the name of a room, such as ops-approvals or #ops-approvals", path)
				}
			}
		case "provider":
			if s, ok := l.str(f.Value, path); ok {
				b.Approvals.Provider = s
				if !providerPattern.MatchString(s) {
					l.schemaf(f.Value.Line, "%s: expected the name of a chat provider, such as slack or irc", path)
				}
			}
		default:
			l.unknownField(f, "approvals", approvalsFields)
		}
	}
	l.require(n, keyLine, "approvals", "room")
}

var providerPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

func (l *loader) duration(n *yaml.Node, path string) *time.Duration {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		if d, err := time.ParseDuration(n.Value); err == nil {
			if d <= 0 {
				l.schemaf(n.Line, "%s: expected a duration above zero", path)
				return nil
			}
			return &d
		}
	}
	if n.Kind != yaml.AliasNode {
		l.schemaf(n.Line, "%s: expected a duration such as 30s, 2m or 1h30m, found %s", path, describe(n))
	}
	return nil
}

var sizePattern = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$`)

var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
}

// size reads a byte count: a whole number of bytes, or a number with a
// unit, decimal (KB, MB, GB) or binary (KiB, MiB, GiB), in any case.
func (l *loader) size(n *yaml.Node, path string) *int64 {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!int", "!!str":
			if b, ok := parseSize(n.Value); ok {
				return &b
			}
		}
	}
	if n.Kind != yaml.AliasNode {
		l.schemaf(n.Line, "%s: expected a size above zero such as 256MiB, 1GB or 65536 (bytes), found %q", path, n.Value)
	}
	return nil
}

func parseSize(s string) (int64, bool) {
	m := sizePattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, false
	}
	unit, ok := sizeUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, false
	}
	bytes := math.Round(v * unit)
	// 1 PiB is far above any real limit and well inside int64.
	if bytes < 1 || bytes > 1<<50 {
		return 0, false
	}
	return int64(bytes), true
}
