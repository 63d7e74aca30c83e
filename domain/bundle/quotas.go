package bundle

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// QuotaOverrides are the site's quotas (LOGBOOK_QUOTAS), by bundle name;
// the name "*" holds the defaults for every bundle. A count of 0 written
// there means no bound, so the site can lift a bundle's own quota.
type QuotaOverrides map[string]Quotas

// AllBundles is the name under which QuotaOverrides keeps the site's
// defaults.
const AllBundles = "*"

// For gives the quotas that hold for a bundle: the site's own for it win
// over what the bundle declares, which wins over the site's defaults.
func (o QuotaOverrides) For(name string, declared Quotas) Quotas {
	return o[AllBundles].Overlay(declared).Overlay(o[name])
}

// quotaKeys are the settings LOGBOOK_QUOTAS may give, as a bundle's
// execution section spells them.
var quotaKeys = []string{"concurrency.bundle", "concurrency.user", "concurrency.room", "rate", "queue"}

// maxOverrides bounds how many settings one LOGBOOK_QUOTAS holds.
const maxOverrides = 1000

// ParseQuotaOverrides reads the site's quotas: settings separated by
// commas, each BUNDLE.KEY=VALUE, where BUNDLE is a bundle's name or * for
// every bundle, KEY one of concurrency.bundle, concurrency.user,
// concurrency.room, rate and queue, and VALUE a count (0 for no bound)
// or, for queue, a duration (0s refuses at once):
//
//	ops.concurrency.user=1, ops.rate=5, *.queue=0s
//
// Spaces around the parts are ignored. A setting given twice, an unknown
// key or a malformed value is an error naming the setting.
func ParseQuotaOverrides(text string) (QuotaOverrides, error) {
	out := QuotaOverrides{}
	seen := map[string]bool{}
	if strings.TrimSpace(text) == "" {
		return out, nil
	}
	settings := strings.Split(text, ",")
	if len(settings) > maxOverrides {
		return nil, fmt.Errorf("%d settings; at most %d", len(settings), maxOverrides)
	}
	for i, setting := range settings {
		setting = strings.TrimSpace(setting)
		where := fmt.Sprintf("setting %d (%q)", i+1, setting)
		name, rest, found := strings.Cut(setting, ".")
		key, value, assigned := strings.Cut(rest, "=")
		name, key, value = strings.TrimSpace(name), strings.TrimSpace(key), strings.TrimSpace(value)
		switch {
		case setting == "":
			return nil, fmt.Errorf("%s is empty: write BUNDLE.KEY=VALUE, such as ops.rate=5", where)
		case !found || !assigned:
			return nil, fmt.Errorf("%s: write BUNDLE.KEY=VALUE, such as ops.rate=5 or *.queue=30s", where)
		case name != AllBundles && !namePattern.MatchString(name):
			return nil, fmt.Errorf("%s: %q is not a bundle name (or * for every bundle)", where, name)
		case !slices.Contains(quotaKeys, key):
			return nil, fmt.Errorf("%s: unknown quota %q; expected one of %s", where, key, strings.Join(quotaKeys, ", "))
		case seen[name+"."+key]:
			return nil, fmt.Errorf("%s: %s.%s is set twice", where, name, key)
		}
		seen[name+"."+key] = true
		q := out[name]
		if key == "queue" {
			d, err := time.ParseDuration(value)
			if err != nil || d < 0 || d > MaxQueue {
				return nil, fmt.Errorf("%s: queue is how long a request over a quota waits, from 0s to %s, such as 30s", where, MaxQueue)
			}
			q.Queue = &d
			out[name] = q
			continue
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 || n > maxQuota {
			return nil, fmt.Errorf("%s: expected a count from 0 (no bound) to %d", where, maxQuota)
		}
		switch key {
		case "concurrency.bundle":
			q.BundleConcurrency = &n
		case "concurrency.user":
			q.UserConcurrency = &n
		case "concurrency.room":
			q.RoomConcurrency = &n
		default:
			q.Rate = &n
		}
		out[name] = q
	}
	return out, nil
}

// String writes the overrides back in the form ParseQuotaOverrides reads,
// bundles and keys in a stable order.
func (o QuotaOverrides) String() string {
	names := make([]string, 0, len(o))
	for name := range o {
		names = append(names, name)
	}
	sort.Strings(names)
	var parts []string
	for _, name := range names {
		q := o[name]
		for _, kv := range []struct {
			key string
			n   *int64
		}{{"concurrency.bundle", q.BundleConcurrency}, {"concurrency.user", q.UserConcurrency}, {"concurrency.room", q.RoomConcurrency}, {"rate", q.Rate}} {
			if kv.n != nil {
				parts = append(parts, fmt.Sprintf("%s.%s=%d", name, kv.key, *kv.n))
			}
		}
		if q.Queue != nil {
			parts = append(parts, fmt.Sprintf("%s.queue=%s", name, *q.Queue))
		}
	}
	return strings.Join(parts, ",")
}
