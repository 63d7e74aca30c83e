package merkletree

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/logbookhq/logbook/domain/auditlog"
	"github.com/logbookhq/logbook/internal/supervisor"
)

// Destination is where checkpoints are published: a witness answers with
// its cosignatures (keyed by witness), a file or an endpoint with none.
type Destination interface {
	Name() string
	// Cosigns says the destination answers with cosignatures (a witness);
	// the others are sent a checkpoint again when it gains cosignatures.
	Cosigns() bool
	// Publish hands the checkpoint on; prove gives a consistency proof
	// from an older size to the checkpoint's.
	Publish(ctx context.Context, c auditlog.StoredCheckpoint, prove func(old int64) (tlog.TreeProof, error)) (map[string]string, error)
}

// Publisher sends the newest checkpoint to every destination, witnesses
// first so the others get it cosigned, and stores the cosignatures. A
// destination that fails is tried again with backoff (up to a minute
// apart); one that is behind gets only the newest checkpoint; a file or an
// endpoint gets a checkpoint again when a witness that had failed cosigns
// it later.
type Publisher struct {
	Tree         auditlog.TreeStore
	Destinations []Destination
	// After is the clock's timer (time.After by default).
	After func(time.Duration) <-chan time.Time
	wake  chan struct{}
}

// NewPublisher makes a publisher; destinations that cosign go first.
func NewPublisher(tree auditlog.TreeStore, destinations ...Destination) *Publisher {
	return &Publisher{Tree: tree, Destinations: destinations, After: time.After, wake: make(chan struct{}, 1)}
}

// Notify says a checkpoint was signed (Config.Signed).
func (p *Publisher) Notify(auditlog.StoredCheckpoint) {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run publishes until ctx ends.
func (p *Publisher) Run(ctx context.Context) error {
	log := zerolog.Ctx(ctx)
	type sent struct {
		size         int64
		cosignatures int
	}
	published := make([]sent, len(p.Destinations))
	retry := make([]*backoff.ExponentialBackOff, len(p.Destinations))
	for i := range retry {
		retry[i] = backoff.NewExponentialBackOff()
		retry[i].InitialInterval, retry[i].MaxInterval = time.Second, time.Minute
	}
	supervisor.Ready(ctx)
	for {
		var wait time.Duration = -1
		latest, err := p.Tree.Checkpoints(ctx, 1)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for i, d := range p.Destinations {
			if len(latest) == 0 {
				continue
			}
			last := published[i]
			if last.size > latest[0].Size || last.size == latest[0].Size && (d.Cosigns() || last.cosignatures >= len(latest[0].Cosignatures)) {
				continue
			}
			c := latest[0]
			prove := func(old int64) (tlog.TreeProof, error) {
				return tlog.ProveTree(c.Size, old, auditlog.HashReader(ctx, p.Tree))
			}
			sigs, err := d.Publish(ctx, c, prove)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				next := retry[i].NextBackOff()
				log.Warn().Err(err).Str("destination", d.Name()).Int64("size", c.Size).Dur("retry_in", next).Msg("publishing a checkpoint failed")
				if wait < 0 || next < wait {
					wait = next
				}
				continue
			}
			retry[i].Reset()
			for witness, line := range sigs {
				if err := p.Tree.AddCosignature(ctx, c.Size, witness, line); err != nil {
					return err
				}
				latest[0].Cosignatures[witness] = line
			}
			published[i] = sent{size: c.Size, cosignatures: len(c.Cosignatures)}
			log.Info().Str("destination", d.Name()).Int64("size", c.Size).Int("cosignatures", len(sigs)).Msg("checkpoint published")
		}
		var timer <-chan time.Time
		if wait >= 0 {
			timer = p.After(wait)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		case <-timer:
		}
	}
}
