package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/logbookhq/logbook/adapters/telemetry"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/internal/leader"
	"github.com/logbookhq/logbook/internal/supervisor"
)

// leaseName names the lease of the single duties in the leases table.
const leaseName = "leader"

// election runs a server that shares its database with others: it follows
// the log (dispatcher.Follow) until it wins the leader lease, then does
// the single duties under a supervisor of their own, with every append
// fenced by the lease's term, until the lease is lost or the server stops;
// then it follows again.
type election struct {
	p       *platform
	elector *leader.Elector

	mu sync.Mutex
	// runCtx is Run's: the follower reports the part's readiness on it.
	runCtx    context.Context
	following *follower
	// duties is the supervisor of the current term's duties (nil while
	// following), whose parts readiness reports beside the server's.
	duties *supervisor.Supervisor
	// started says the current term's duties have all started (the
	// first start's bootstrap among them).
	started bool
	// fatal takes a duty's permanent failure (bad settings) to Run.
	fatal chan error
}

func newElection(p *platform, sup *supervisor.Supervisor) (*election, error) {
	e := &election{p: p, fatal: make(chan error, 1)}
	var err error
	e.elector, err = leader.New(leader.Config{
		Leases: p.store, Name: leaseName, Holder: leader.NewHolder(), TTL: p.cfg.LeaseTTL,
		// A follower asks often (an acquire that finds the lease held is
		// one indexed read), so a dead leader's duties move within the
		// TTL and a sixth of it.
		Campaign: p.cfg.LeaseTTL / 6,
		Lead:     e.lead, Logger: p.log,
	})
	return e, err
}

// Run follows until elected and leads while elected, until ctx ends. It
// reports itself ready once the follower has caught up with the leader's
// checkpoint, or once this server leads.
func (e *election) Run(ctx context.Context) error {
	e.mu.Lock()
	e.runCtx = ctx
	e.mu.Unlock()
	e.startFollowing()
	elected := make(chan error, 1)
	go func() { elected <- e.elector.Run(ctx) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-e.fatal:
		err = supervisor.Permanent(err)
	}
	<-elected // after ctx ends: the term's duties stopped, the lease released
	e.stopFollowing()
	return err
}

// follower is the dispatcher following the log while this server does
// not lead.
type follower struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startFollowing runs the dispatcher's Follow until stopFollowing, again
// after a failure (the database went away), reporting the election part
// unready meanwhile. Not once the server stops.
func (e *election) startFollowing() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.runCtx.Err() != nil || e.following != nil {
		return
	}
	ctx, cancel := context.WithCancel(e.runCtx)
	f := &follower{cancel: cancel, done: make(chan struct{})}
	e.following = f
	go func() {
		defer close(f.done)
		for wait := time.Duration(0); ; wait = min(max(2*wait, 100*time.Millisecond), 5*time.Second) {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			err := e.p.dispatcher.Follow(ctx)
			if ctx.Err() != nil {
				return
			}
			supervisor.Unready(ctx, err)
			e.p.log.Warn().Err(err).Msg("following the leader's log; trying again")
		}
	}()
}

// stopFollowing stops the follower and waits for it: Follow and Run
// share the dispatcher's state.
func (e *election) stopFollowing() {
	e.mu.Lock()
	f := e.following
	e.following = nil
	e.mu.Unlock()
	if f != nil {
		f.cancel()
		<-f.done
	}
}

// lead does the single duties for one term: it stops following, starts
// the duties fenced by the lease, and when the term ends (the lease lost,
// or the server stopping) stops them and follows again.
func (e *election) lead(term context.Context, lease eventstore.Lease) error {
	e.stopFollowing()
	duties := supervisor.New(supervisor.Config{Logger: e.p.log.With().Int64("term", lease.Term).Logger()})
	e.mu.Lock()
	e.duties = duties
	runCtx := e.runCtx
	e.mu.Unlock()
	e.p.leading.Store(true)
	err := e.p.startDuties(term, fencedParts{sup: duties, lease: lease})
	if err == nil {
		e.mu.Lock()
		e.started = true
		e.mu.Unlock()
		supervisor.Ready(runCtx)
		select {
		case <-term.Done():
		case err = <-duties.Fatal():
			e.report(err)
		}
	} else if term.Err() == nil {
		e.report(fmt.Errorf("start the leader's duties: %w", err))
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(term), 55*time.Second)
	defer cancel()
	// fencedParts fenced every duty's Stop already.
	if stopErr := duties.Stop(stopCtx); stopErr != nil {
		e.p.log.Error().Err(stopErr).Msg("stopping the leader's duties")
	}
	e.p.leading.Store(false)
	e.mu.Lock()
	e.duties, e.started = nil, false
	e.mu.Unlock()
	e.startFollowing()
	return err
}

// report hands a permanent failure of the duties to Run.
func (e *election) report(err error) {
	select {
	case e.fatal <- err:
	default:
	}
}

// Leadership says whether this server leads, at which term, for /readyz
// and the metrics.
func (e *election) Leadership() telemetry.Leadership {
	st := e.elector.Status()
	return telemetry.Leadership{Leading: st.Leader, Term: st.Term}
}

// Status is the election's state for /readyz.
func (e *election) Status() leader.Status { return e.elector.Status() }

// readiness is the election's part in /readyz: the statuses of the
// current term's duties (none while following), and why the server cannot
// serve yet, if it cannot: it leads but its duties are still starting, or
// nobody leads yet (requests would be recorded and wait for a leader).
func (e *election) readiness() (reason string, parts []supervisor.Status) {
	st := e.elector.Status()
	e.mu.Lock()
	duties, started := e.duties, e.started
	e.mu.Unlock()
	switch {
	case st.Leader && (duties == nil || !started):
		return "elected: starting the leader's duties", nil
	case st.Leader:
		ready, parts := duties.Ready()
		if !ready {
			return "a duty of the leader is not running", parts
		}
		return "", parts
	case st.LeaderHolder == "":
		return "no server leads yet: the election is under way", nil
	}
	return "", nil
}

// fencedParts starts parts on sup whose Stop is fenced by the lease too
// (a part's Run gets the fence from its context already): a deposed
// leader's stopping appends nothing once another server has taken over.
type fencedParts struct {
	sup   *supervisor.Supervisor
	lease eventstore.Lease
}

func (f fencedParts) Start(ctx context.Context, part supervisor.Part) {
	if stop := part.Stop; stop != nil {
		part.Stop = func(ctx context.Context) error { return stop(eventstore.WithFence(ctx, f.lease)) }
	}
	f.sup.Start(ctx, part)
}
