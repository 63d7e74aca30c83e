// Package merkletree keeps the Merkle tree over the log (domain/auditlog)
// as the log grows: a follower of the log, like a view, whose checkpoint
// is the tree's stored size, moved with the hashes it adds in one
// transaction. It signs a checkpoint every N events or T seconds and hands
// it to the publishers (a file, an HTTP endpoint, witnesses).
package merkletree

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/logbookhq/logbook/domain/auditlog"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/internal/supervisor"
)

// Config sets a Maintainer up. Zero durations and counts take defaults.
type Config struct {
	Events eventstore.Store
	Tree   auditlog.TreeStore
	// Signer signs checkpoints; nil maintains the tree without signing.
	Signer note.Signer
	// Every signs a checkpoint once the tree grew by this many events
	// since the last (default 1000, LOGBOOK_CHECKPOINT_EVERY).
	Every int64
	// Interval signs one once this long passed since the last, if the
	// tree grew at all (default 1m, LOGBOOK_CHECKPOINT_INTERVAL).
	Interval time.Duration
	// BatchSize is how many events one read and one tree commit take
	// (default 5000).
	BatchSize int
	// Now and After are the clock; tests inject theirs.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// Signed, when set, is told of each checkpoint signed (the publisher
	// waits on it).
	Signed func(auditlog.StoredCheckpoint)
}

func (c *Config) setDefaults() {
	if c.Every <= 0 {
		c.Every = 1000
	}
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 5000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.After == nil {
		c.After = time.After
	}
}

// Maintainer follows the log and keeps the tree and its checkpoints.
type Maintainer struct {
	cfg      Config
	frontier *auditlog.Frontier
	last     auditlog.StoredCheckpoint // the newest checkpoint (Size 0: none)
	lastAt   time.Time                 // when it was signed, or when this maintainer started
}

// New makes a maintainer.
func New(cfg Config) *Maintainer {
	cfg.setDefaults()
	return &Maintainer{cfg: cfg}
}

// safetyNet bounds how long the maintainer trusts the change signal alone
// (a missed notification from another process), as eventstore.Follow does.
const safetyNet = 5 * time.Second

// Run keeps the tree caught up with the log until ctx ends, signing
// checkpoints as they fall due. It reports itself ready once caught up. A
// tree moved by another maintainer is re-read and followed from there.
func (m *Maintainer) Run(ctx context.Context) error {
	if err := m.open(ctx); err != nil {
		return err
	}
	ready := false
	for {
		changed := m.cfg.Events.Changed()
		if _, err := m.catchUp(ctx, nil); err != nil {
			if errors.Is(err, auditlog.ErrTreeMoved) {
				zerolog.Ctx(ctx).Warn().Err(err).Msg("the Merkle tree was moved by another maintainer; reading it again")
				if err := m.open(ctx); err != nil {
					return err
				}
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := m.checkpointIfDue(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if !ready {
			ready = true
			supervisor.Ready(ctx)
		}
		var due <-chan time.Time
		if m.cfg.Signer != nil && m.frontier.Size() > m.last.Size {
			due = m.cfg.After(max(m.lastAt.Add(m.cfg.Interval).Sub(m.cfg.Now()), 0))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			if !m.gather(ctx) {
				return nil
			}
		case <-due:
		case <-m.cfg.After(safetyNet):
		}
	}
}

// quiet and maxGather shape the live tree's batches, as Quiet and
// MaxGather shape the views' (projections.Config) but longer: woken by an
// append, the maintainer waits until appends have been quiet for 20ms,
// 250ms at most, so under load one tree commit takes in many appends. On
// SQLite each commit takes the one write connection from the event
// writer; with the views' 2ms/25ms the tree cost 30-40% of append
// throughput under bench store --tree, with these about 10%. Nothing
// waits on the tree but checkpoints, which come every N events or T.
const (
	quiet     = 20 * time.Millisecond
	maxGather = 250 * time.Millisecond
)

// gather waits while appends keep coming; false when ctx ended.
func (m *Maintainer) gather(ctx context.Context) bool {
	deadline := time.NewTimer(maxGather)
	defer deadline.Stop()
	still := time.NewTimer(quiet)
	defer still.Stop()
	for {
		changed := m.cfg.Events.Changed()
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return true
		case <-still.C:
			return true
		case <-changed:
			still.Reset(quiet)
		}
	}
}

// Rebuild empties the stored tree and builds it again from the events,
// signing nothing. progress, when set, is told the leaves built so far.
// The server should be stopped (its maintainer would race this one; the
// size's compare-and-set makes the loser stop, not corrupt the tree).
func (m *Maintainer) Rebuild(ctx context.Context, progress func(int64)) (int64, error) {
	if err := m.cfg.Tree.ResetTree(ctx); err != nil {
		return 0, err
	}
	m.frontier = auditlog.NewFrontier()
	return m.catchUp(ctx, progress)
}

// CatchUp brings the tree up to the log's head once, without signing, and
// returns its size (for commands and tests).
func (m *Maintainer) CatchUp(ctx context.Context) (int64, error) {
	if err := m.open(ctx); err != nil {
		return 0, err
	}
	return m.catchUp(ctx, nil)
}

// open reads the stored tree's size, its frontier and the newest
// checkpoint.
func (m *Maintainer) open(ctx context.Context) error {
	size, err := m.cfg.Tree.TreeSize(ctx)
	if err != nil {
		return err
	}
	m.frontier, err = auditlog.LoadFrontier(size, auditlog.HashReader(ctx, m.cfg.Tree))
	if err != nil {
		return fmt.Errorf("load the Merkle tree's frontier at size %d: %w", size, err)
	}
	latest, err := m.cfg.Tree.Checkpoints(ctx, 1)
	if err != nil {
		return err
	}
	m.last, m.lastAt = auditlog.StoredCheckpoint{}, m.cfg.Now()
	if len(latest) > 0 {
		m.last, m.lastAt = latest[0], latest[0].CreatedAt
	}
	return nil
}

// catchUp adds every stored event past the tree to it, a batch per
// transaction, signing checkpoints that fall due between batches.
func (m *Maintainer) catchUp(ctx context.Context, progress func(int64)) (int64, error) {
	for {
		from := m.frontier.Size()
		events, err := eventstore.ReadLive(ctx, m.cfg.Events, from+1, m.cfg.BatchSize)
		if err != nil {
			return from, err
		}
		if len(events) == 0 {
			return from, nil
		}
		packs := make([][]byte, 0, len(events))
		next := m.frontier.Clone()
		for _, e := range events {
			if e.Position != next.Size()+1 {
				return from, fmt.Errorf("the log has position %d where the tree expects %d: the log has a gap (run logbook audit verify)", e.Position, next.Size()+1)
			}
			hashes, err := next.Append(auditlog.LeafData(e))
			if err != nil {
				return from, err
			}
			packs = append(packs, auditlog.Pack(hashes))
		}
		if err := m.cfg.Tree.AppendTree(ctx, from, packs); err != nil {
			return from, err
		}
		m.frontier = next
		if progress != nil {
			progress(next.Size())
		} else if err := m.checkpointIfDue(ctx); err != nil {
			return next.Size(), err
		}
		if len(events) < m.cfg.BatchSize {
			return next.Size(), nil
		}
	}
}

// checkpointIfDue signs a checkpoint of the tree as it is when it grew by
// Every events since the last, or Interval passed and it grew at all.
func (m *Maintainer) checkpointIfDue(ctx context.Context) error {
	size := m.frontier.Size()
	if m.cfg.Signer == nil || size <= m.last.Size {
		return nil
	}
	if size-m.last.Size < m.cfg.Every && m.cfg.Now().Sub(m.lastAt) < m.cfg.Interval {
		return nil
	}
	_, err := m.Checkpoint(ctx)
	return err
}

// Checkpoint signs and stores a checkpoint of the tree at its current
// size (the newest stored one when the tree has not grown since).
func (m *Maintainer) Checkpoint(ctx context.Context) (auditlog.StoredCheckpoint, error) {
	size := m.frontier.Size()
	if m.cfg.Signer == nil {
		return auditlog.StoredCheckpoint{}, errors.New("no signing key is configured (LOGBOOK_SIGNING_KEY_FILE)")
	}
	if size == 0 {
		return auditlog.StoredCheckpoint{}, errors.New("the tree is empty: there is nothing to sign yet")
	}
	if size == m.last.Size {
		return m.last, nil
	}
	root, err := m.frontier.Root()
	if err != nil {
		return auditlog.StoredCheckpoint{}, err
	}
	signed, err := auditlog.SignCheckpoint(m.cfg.Signer, size, root)
	if err != nil {
		return auditlog.StoredCheckpoint{}, fmt.Errorf("sign the checkpoint of size %d: %w", size, err)
	}
	now := m.cfg.Now().UTC().Truncate(time.Microsecond)
	c := auditlog.StoredCheckpoint{Size: size, Root: root, Note: signed, CreatedAt: now, Cosignatures: map[string]string{}}
	if err := m.cfg.Tree.AddCheckpoint(ctx, c); err != nil {
		return auditlog.StoredCheckpoint{}, err
	}
	m.last, m.lastAt = c, now
	zerolog.Ctx(ctx).Info().Int64("size", size).Str("root", root.String()).Msg("checkpoint signed")
	if m.cfg.Signed != nil {
		m.cfg.Signed(c)
	}
	return c, nil
}

// Size is the tree's size as this maintainer last built it.
func (m *Maintainer) Size() int64 {
	if m.frontier == nil {
		return 0
	}
	return m.frontier.Size()
}

// Root is the tree head at Size.
func (m *Maintainer) Root() (tlog.Hash, error) { return m.frontier.Root() }
