package export

import (
	"context"
	"net/url"
	"slices"
	"time"

	"github.com/logbookhq/logbook/domain/eventstore"
)

// Status is one destination's progress, for `logbook export status` and
// GET /v1/export/status.
type Status struct {
	Destination string `json:"destination"`
	// Type and Target say what it writes to: the directory, host:port, or
	// the webhook's address without credentials or query.
	Type   string `json:"type,omitempty"`
	Target string `json:"target,omitempty"`
	// Configured is false for a cursor whose destination LOGBOOK_EXPORT no
	// longer lists (it is kept: listed again, it goes on from there).
	Configured bool `json:"configured"`
	// Position is the last event the destination acknowledged, Head the
	// log's last; LagEvents the difference.
	Position  int64 `json:"position"`
	Head      int64 `json:"head"`
	LagEvents int64 `json:"lag_events"`
	// LagSeconds is how long the oldest event not yet acknowledged has
	// waited (0 when caught up).
	LagSeconds float64    `json:"lag_seconds"`
	AckedAt    *time.Time `json:"acked_at,omitempty"`
	// LastError is the latest failure to deliver since the last success.
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
}

// Target is where c writes, safe to show: a webhook's address loses its
// user, password and query.
func (c Config) Target() string {
	switch c.Kind {
	case KindFile:
		return c.Dir
	case KindSyslog:
		if c.TLS {
			return "tls://" + c.Addr
		}
		return "tcp://" + c.Addr
	case KindWebhook:
		if u, err := url.Parse(c.URL); err == nil {
			return u.Scheme + "://" + u.Host + u.Path
		}
	}
	return ""
}

// StatusOf reports every configured destination and every stored cursor,
// by name.
func StatusOf(ctx context.Context, store eventstore.Store, cursors Cursors, configs []Config, now time.Time) ([]Status, error) {
	stored, err := cursors.List(ctx)
	if err != nil {
		return nil, err
	}
	head, _, err := store.Head(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]*Status{}
	var out []*Status
	for _, c := range configs {
		s := &Status{Destination: c.Name, Type: string(c.Kind), Target: c.Target(), Configured: true}
		byName[c.Name] = s
		out = append(out, s)
	}
	for _, cur := range stored {
		s := byName[cur.Destination]
		if s == nil {
			s = &Status{Destination: cur.Destination}
			out = append(out, s)
		}
		s.Position = cur.Position
		if !cur.AckedAt.IsZero() {
			s.AckedAt = &cur.AckedAt
		}
		if cur.LastError != "" {
			s.LastError, s.LastErrorAt = cur.LastError, &cur.LastErrorAt
		}
	}
	for _, s := range out {
		s.Head = head
		s.LagEvents = max(head-s.Position, 0)
		if s.LagEvents > 0 {
			oldest, err := store.ReadAll(ctx, s.Position+1, 1)
			if err != nil {
				return nil, err
			}
			if len(oldest) == 1 {
				s.LagSeconds = max(now.Sub(oldest[0].RecordedAt).Seconds(), 0)
			}
		}
	}
	slices.SortFunc(out, func(a, b *Status) int {
		if a.Destination < b.Destination {
			return -1
		}
		if a.Destination > b.Destination {
			return 1
		}
		return 0
	})
	res := make([]Status, len(out))
	for i, s := range out {
		res[i] = *s
	}
	return res, nil
}
