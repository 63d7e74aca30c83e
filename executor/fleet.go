package executor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
)

// Heartbeat is what an executor on a broker says about itself, every
// HeartbeatInterval.
type Heartbeat struct {
	ID      string   `json:"id"`
	Boot    string   `json:"boot"` // new each time the process starts
	Host    string   `json:"host"`
	Groups  []string `json:"groups"`
	Version string   `json:"version"`
	// Runs are the runs it holds now.
	Runs []string `json:"runs"`
	// PoolContainers are the warm and single-use containers it keeps.
	PoolContainers int `json:"pool_containers"`
	Slots          int `json:"slots"`
}

// ExecutorStatus is a live executor as the server sees it.
type ExecutorStatus struct {
	Heartbeat
	LastSeen time.Time `json:"last_seen"`
	Since    time.Time `json:"since"` // its first heartbeat of this boot
}

// FleetConfig configures NewFleet.
type FleetConfig struct {
	Store eventstore.Store // required
	Desk  *ClaimDesk       // required
	// LostAfter is how long an executor may stay silent before it is
	// taken for gone and its started runs are recorded RunLost (15s).
	LostAfter time.Duration
	// QueueTimeout is how long a run may wait for a relay group with no
	// live executor before it fails, naming the group (30s).
	QueueTimeout time.Duration
	Now          func() time.Time // time.Now
	// Connected, when set, says whether the server hears the bus now:
	// while it does not, silence proves nothing, and nobody is lost.
	Connected func() bool
	// Release, when set, tells an executor that rejoined after being
	// taken for gone to stop the runs its heartbeat still names and the
	// server recorded lost meanwhile: it cancels them and removes their
	// containers, so a command the log says was lost does not run on.
	Release func(ctx context.Context, executorID string, runIDs []string)
	Logger  zerolog.Logger
}

// Fleet is the server's view of its executors: who is live (heartbeats),
// which runs wait for a group nobody serves, and what to record when an
// executor goes silent or comes back as a new process.
type Fleet struct {
	cfg   FleetConfig
	start time.Time

	mu      sync.Mutex
	members map[string]*ExecutorStatus
	lastGot map[string]time.Time // last heartbeat of executors seen, live or not
	pending map[string]queuedRun
}

type queuedRun struct {
	group string
	since time.Time
}

// NewFleet returns a fleet with nobody live yet.
func NewFleet(cfg FleetConfig) (*Fleet, error) {
	if cfg.Store == nil || cfg.Desk == nil {
		return nil, errors.New("fleet config: Store and Desk are required")
	}
	if cfg.LostAfter <= 0 {
		cfg.LostAfter = 15 * time.Second
	}
	if cfg.QueueTimeout <= 0 {
		cfg.QueueTimeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Fleet{cfg: cfg, start: cfg.Now(), members: map[string]*ExecutorStatus{}, lastGot: map[string]time.Time{}, pending: map[string]queuedRun{}}, nil
}

// Live reports whether executor id sends heartbeats.
func (f *Fleet) Live(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.members[id]
	return ok
}

// Serves reports whether live executor id named group in its heartbeat.
func (f *Fleet) Serves(id, group string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.members[id]
	return ok && slices.Contains(m.Groups, group)
}

// Executors lists the live executors by id.
func (f *Fleet) Executors() []ExecutorStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]ExecutorStatus, 0, len(f.members))
	for _, m := range f.members {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b ExecutorStatus) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Beat takes a heartbeat. An executor that comes back as a new process
// (another boot) no longer holds what its earlier process claimed: those
// runs are settled at once.
func (f *Fleet) Beat(ctx context.Context, hb Heartbeat) {
	now := f.cfg.Now()
	f.mu.Lock()
	m := f.members[hb.ID]
	newBoot := m == nil || m.Boot != hb.Boot
	if newBoot {
		m = &ExecutorStatus{Since: now}
		f.members[hb.ID] = m
	}
	m.Heartbeat, m.LastSeen = hb, now
	f.lastGot[hb.ID] = now
	f.mu.Unlock()
	if newBoot {
		f.cfg.Logger.Info().Str("executor", hb.ID).Str("host", hb.Host).Strs("groups", hb.Groups).Str("version", hb.Version).Msg("executor joined")
		f.settle(ctx, hb.ID, hb.Boot, fmt.Sprintf("executor %s restarted while the run was in its hands", hb.ID))
		if lost := f.cfg.Desk.ClosedAmong(hb.Runs); len(lost) > 0 && f.cfg.Release != nil {
			f.cfg.Logger.Warn().Str("executor", hb.ID).Strs("runs", lost).Msg("executor rejoined still holding runs recorded lost; telling it to stop them")
			f.cfg.Release(ctx, hb.ID, lost)
		}
	}
}

// Resume gives every executor a fresh LostAfter after the server's own
// connection to the bus came back: the heartbeats it missed meanwhile
// say nothing about the executors.
func (f *Fleet) Resume() {
	now := f.cfg.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.start = now
	for _, m := range f.members {
		m.LastSeen = now
	}
	for id := range f.lastGot {
		f.lastGot[id] = now
	}
	for id, q := range f.pending {
		q.since = now
		f.pending[id] = q
	}
}

// Queued notes a run published for group (it waits until claimed).
func (f *Fleet) Queued(runID, group string) {
	f.mu.Lock()
	f.pending[runID] = queuedRun{group: group, since: f.cfg.Now()}
	f.mu.Unlock()
}

// Claimed notes that a run left its queue.
func (f *Fleet) Claimed(runID string) {
	f.mu.Lock()
	delete(f.pending, runID)
	f.mu.Unlock()
}

func (f *Fleet) groupLive(group string) bool {
	for _, m := range f.members {
		if slices.Contains(m.Groups, group) {
			return true
		}
	}
	return false
}

// Check is one sweep: executors silent for LostAfter leave, and their
// started runs are recorded RunLost (runs not started go back to their
// queue by NATS's redelivery); runs waiting longer than QueueTimeout for a
// group with no live executor fail, naming the group.
func (f *Fleet) Check(ctx context.Context) {
	if f.cfg.Connected != nil && !f.cfg.Connected() {
		return
	}
	now := f.cfg.Now()
	f.mu.Lock()
	var gone []string
	for id, m := range f.members {
		if now.Sub(m.LastSeen) >= f.cfg.LostAfter {
			gone = append(gone, id)
			delete(f.members, id)
		}
	}
	// Executors holding runs the desk learnt of (after a restart of the
	// server) that have not been heard since.
	for _, id := range f.cfg.Desk.Holders() {
		if _, live := f.members[id]; live || slices.Contains(gone, id) {
			continue
		}
		if now.Sub(latest(f.start, f.lastGot[id])) >= f.cfg.LostAfter {
			gone = append(gone, id)
		}
	}
	var timedOut []string
	var groups []string
	for runID, q := range f.pending {
		if now.Sub(q.since) >= f.cfg.QueueTimeout && !f.groupLive(q.group) {
			timedOut = append(timedOut, runID)
			groups = append(groups, q.group)
			delete(f.pending, runID)
		}
	}
	f.mu.Unlock()
	for _, id := range gone {
		f.cfg.Logger.Warn().Str("executor", id).Dur("silent_for", f.cfg.LostAfter).Msg("executor lost: no heartbeat")
		f.settle(ctx, id, "", fmt.Sprintf("executor %s stopped sending heartbeats (for %s) while the run was in its hands; the command may or may not have completed, and it is not run again", id, f.cfg.LostAfter))
	}
	for i, runID := range timedOut {
		reason := fmt.Sprintf("no executor of relay group %q is live: the run waited %s in its queue (LOGBOOK_QUEUE_TIMEOUT)", groups[i], f.cfg.QueueTimeout)
		if err := RecordRunEvent(ctx, f.cfg.Store, runID, "server", run.RunFailed{Reason: reason}); err != nil && !errors.Is(err, run.ErrRunFinished) && !errors.Is(err, run.ErrOutOfOrder) {
			f.cfg.Logger.Error().Err(err).Str("run_id", runID).Msg("failing a run no executor took")
			f.mu.Lock()
			f.pending[runID] = queuedRun{group: groups[i], since: now}
			f.mu.Unlock()
			continue
		}
		f.cfg.Logger.Warn().Str("run_id", runID).Str("group", groups[i]).Msg("run failed: no live executor in its relay group")
	}
}

// Undeliverable fails a run whose request NATS gave up delivering
// (MaxDeliver): every executor that took it failed to run it.
func (f *Fleet) Undeliverable(ctx context.Context, runID, group string, deliveries int) error {
	f.Claimed(runID)
	reason := fmt.Sprintf("the run's request was delivered %d times to executors of relay group %q and none could run it; it is kept on the poison stream", deliveries, group)
	err := RecordRunEvent(ctx, f.cfg.Store, runID, "server", run.RunFailed{Reason: reason})
	if errors.Is(err, run.ErrRunFinished) {
		return nil
	}
	return err
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// settle records RunLost for each started run executorID holds (except
// those claimed by boot keep), and forgets the runs it had not started:
// NATS gives those to another executor, whose claim is then granted.
func (f *Fleet) settle(ctx context.Context, executorID, keep, reason string) {
	for _, runID := range f.cfg.Desk.Held(executorID, keep) {
		past, _, err := readRun(ctx, f.cfg.Store, runID)
		if err != nil {
			f.cfg.Logger.Error().Err(err).Str("run_id", runID).Msg("reading a run of a lost executor")
			continue
		}
		state := run.Fold(past)
		switch {
		case state.Finished():
			f.cfg.Desk.Forget(runID)
		case state.Starting || state.Created || state.Started:
			// Its executor may come back and say more: close the run to
			// it first, so nothing follows the loss.
			f.cfg.Desk.Close(runID)
			if err := RecordRunEvent(ctx, f.cfg.Store, runID, "server", run.RunLost{Reason: reason}); err != nil {
				f.cfg.Desk.Reopen(runID)
				f.cfg.Desk.remember(runID, holder{executor: executorID}) // the next sweep tries again
				f.cfg.Logger.Error().Err(err).Str("run_id", runID).Msg("recording a run lost")
				continue
			}
			f.cfg.Logger.Warn().Str("run_id", runID).Str("executor", executorID).Msg("run recorded lost")
		default:
			f.cfg.Desk.Forget(runID)
			f.cfg.Logger.Info().Str("run_id", runID).Str("executor", executorID).Msg("run not started by a lost executor; it goes to another")
		}
	}
}

// Run sweeps every second until ctx ends.
func (f *Fleet) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			f.Check(ctx)
		}
	}
}

// RecordRunEvent appends p to runID's stream as actor, if the run's
// lifecycle allows it (the run decider), at the version after its last
// event. A server-side writer of a run (a loss, a queue timeout) uses it.
func RecordRunEvent(ctx context.Context, store eventstore.Store, runID, actor string, p domain.Payload) error {
	past, _, err := readRun(ctx, store, runID)
	if err != nil {
		return err
	}
	accepted, err := run.Decide(run.Fold(past), p)
	if err != nil || len(accepted) == 0 {
		return err
	}
	md := domain.Metadata{CorrelationID: requestOf(past), Actor: actor}
	events := make([]domain.NewEvent, 0, len(accepted))
	for _, a := range accepted {
		ev, err := domain.Encode(a, md)
		if err != nil {
			return err
		}
		events = append(events, ev)
	}
	_, err = store.Append(ctx, run.Stream(runID), eventstore.Exact(int64(len(past))-1), events...)
	return err
}
