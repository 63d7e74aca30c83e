package merkletree

import (
	"context"
	"fmt"
	"slices"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/auditlog"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
)

// recentCheckpoints is how many of the newest checkpoints Prove picks from.
const recentCheckpoints = 50

// Prove builds the evidence bundle of a request: every event of its
// stream and of the runs it started, each with its inclusion proof
// against the newest stored checkpoint that covers them all and has as
// many cosignatures as any. Each proof is O(log n) stored hashes; all of
// them are read in one query (by leaf, 100 leaves a statement).
func Prove(ctx context.Context, events eventstore.Store, tree auditlog.TreeStore, requestID string) (auditlog.Bundle, error) {
	recorded, err := readWhole(ctx, events, dispatch.Stream(requestID))
	if err != nil {
		return auditlog.Bundle{}, err
	}
	if len(recorded) == 0 {
		return auditlog.Bundle{}, fmt.Errorf("the log holds no request %s", requestID)
	}
	var all []domain.RecordedEvent
	all = append(all, recorded...)
	for _, e := range recorded {
		if runID := auditlog.StageRun(e); runID != "" {
			runEvents, err := readWhole(ctx, events, run.Stream(runID))
			if err != nil {
				return auditlog.Bundle{}, err
			}
			all = append(all, runEvents...)
		}
	}
	slices.SortFunc(all, func(a, b domain.RecordedEvent) int { return int(a.Position - b.Position) })
	last := all[len(all)-1].Position
	checkpoints, err := tree.Checkpoints(ctx, recentCheckpoints)
	if err != nil {
		return auditlog.Bundle{}, err
	}
	var chosen *auditlog.StoredCheckpoint
	for i := range checkpoints {
		c := &checkpoints[i]
		if c.Size >= last && (chosen == nil || len(c.Cosignatures) > len(chosen.Cosignatures)) {
			chosen = c
		}
	}
	if chosen == nil {
		newest := int64(0)
		if len(checkpoints) > 0 {
			newest = checkpoints[0].Size
		}
		return auditlog.Bundle{}, fmt.Errorf("no signed checkpoint covers request %s's last event (position %d) yet: the newest covers %d events; the server signs one every LOGBOOK_CHECKPOINT_EVERY events or LOGBOOK_CHECKPOINT_INTERVAL", requestID, last, newest)
	}
	b := auditlog.Bundle{Format: auditlog.BundleFormat, RequestID: requestID, Checkpoint: string(chosen.Cosigned())}
	reader, err := prefetch(ctx, tree, chosen.Size, all)
	if err != nil {
		return auditlog.Bundle{}, err
	}
	for _, e := range all {
		proof, err := tlog.ProveRecord(chosen.Size, auditlog.LeafIndex(e.Position), reader)
		if err != nil {
			return auditlog.Bundle{}, fmt.Errorf("prove position %d in the tree of %d: %w", e.Position, chosen.Size, err)
		}
		b.Events = append(b.Events, auditlog.NewBundleEvent(e, proof))
	}
	return b, nil
}

func readWhole(ctx context.Context, s eventstore.Store, stream string) ([]domain.RecordedEvent, error) {
	var out []domain.RecordedEvent
	for {
		page, err := s.ReadStream(ctx, stream, int64(len(out)), 10000)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < 10000 {
			return out, nil
		}
	}
}

// prefetch reads every stored hash the events' proofs need in one query:
// a first pass of tlog.ProveRecord against a reader that only notes the
// indexes asked for, then one read of their packs.
func prefetch(ctx context.Context, tree auditlog.TreeStore, size int64, events []domain.RecordedEvent) (tlog.HashReader, error) {
	var wanted []int64
	noting := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		wanted = append(wanted, indexes...)
		return make([]tlog.Hash, len(indexes)), nil
	})
	for _, e := range events {
		if _, err := tlog.ProveRecord(size, auditlog.LeafIndex(e.Position), noting); err != nil {
			return nil, fmt.Errorf("prove position %d in the tree of %d: %w", e.Position, size, err)
		}
	}
	hashes, err := auditlog.HashReader(ctx, tree).ReadHashes(wanted)
	if err != nil {
		return nil, err
	}
	cache := make(map[int64]tlog.Hash, len(wanted))
	for i, ix := range wanted {
		cache[ix] = hashes[i]
	}
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, ix := range indexes {
			h, ok := cache[ix]
			if !ok {
				return nil, fmt.Errorf("stored hash %d was not read ahead", ix)
			}
			out[i] = h
		}
		return out, nil
	}), nil
}
