// Package leader runs the parts of a server that must be single among the
// servers sharing one database (the dispatcher, reply delivery, timers)
// only while this server holds the lease for them.
//
// Why not a library: the election is the store's own lease (a row in the
// database, timed by its clock, and the term fences appends in the same
// transaction as the append lock); etcd's or Consul's elections would
// need a service Logbook does not otherwise run, and Kubernetes' leader
// election a cluster. What is left here is the loop: campaign, renew,
// step down before the lease can have expired, hand over on shutdown.
package leader

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain/eventstore"
)

// Config sets up an Elector. Leases, Name, Holder and Lead are required.
type Config struct {
	Leases eventstore.Leases
	// Name is the lease's name ("leader").
	Name string
	// Holder names this process's life; a restarted process is a new
	// holder (see NewHolder).
	Holder string
	// TTL is how long a lease lasts without a renewal (3s): a dead
	// leader's duties move within TTL plus one Campaign interval.
	TTL time.Duration
	// Renew is how often the leader renews (TTL/3), and Campaign how
	// often a follower asks for the lease (TTL/3).
	Renew, Campaign time.Duration
	// Lead does the leader's duties until ctx ends, then returns. Its
	// context is fenced by the lease (eventstore.WithFence): its appends
	// fail with ErrFenced once another holder has the lease.
	Lead   func(ctx context.Context, lease eventstore.Lease) error
	Logger zerolog.Logger
}

func (c *Config) setDefaults() error {
	var errs []error
	if c.Leases == nil {
		errs = append(errs, errors.New("leader: Leases is required"))
	}
	if c.Name == "" || c.Holder == "" {
		errs = append(errs, errors.New("leader: Name and Holder are required"))
	}
	if c.Lead == nil {
		errs = append(errs, errors.New("leader: Lead is required"))
	}
	if c.TTL <= 0 {
		c.TTL = 3 * time.Second
	}
	if c.Renew <= 0 {
		c.Renew = c.TTL / 3
	}
	if c.Campaign <= 0 {
		c.Campaign = c.TTL / 3
	}
	if c.Renew >= c.TTL {
		errs = append(errs, fmt.Errorf("leader: renewing every %v would let a lease of %v expire", c.Renew, c.TTL))
	}
	return errors.Join(errs...)
}

// Status is what /readyz reports of the election.
type Status struct {
	Leader bool   `json:"leader"`
	Term   int64  `json:"term,omitempty"`
	Holder string `json:"holder"`
	// LeaderHolder is the current leader as last seen ("" when unknown).
	LeaderHolder string `json:"leader_holder,omitempty"`
}

// Elector campaigns for the lease and runs Lead while it holds it.
type Elector struct {
	cfg Config

	mu     sync.Mutex
	status Status
}

// New checks cfg and returns an elector.
func New(cfg Config) (*Elector, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Elector{cfg: cfg, status: Status{Holder: cfg.Holder}}, nil
}

// Status reports whether this process leads, and at which term.
func (e *Elector) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.status
}

// Run campaigns until ctx ends. Elected, it runs Lead and renews the
// lease; it stops Lead when a renewal finds the lease taken, or when it
// cannot renew and the lease may be about to expire (by this process's
// clock, one Renew interval early: better no leader for a moment than
// two). At the end it releases the lease, so another server takes over at
// once.
func (e *Elector) Run(ctx context.Context) error {
	log := e.cfg.Logger.With().Str("lease", e.cfg.Name).Str("holder", e.cfg.Holder).Logger()
	for {
		lease, ok, err := e.cfg.Leases.AcquireLease(ctx, e.cfg.Name, e.cfg.Holder, e.cfg.TTL)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Warn().Err(err).Msg("campaigning for the lease")
		case ok:
			// After a term, wait a campaign interval like any follower, so
			// that duties failing here can move to another server.
			e.lead(ctx, lease, log)
		default:
			e.set(Status{Holder: e.cfg.Holder, LeaderHolder: lease.Holder, Term: lease.Term})
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(e.cfg.Campaign):
		}
	}
}

// lead runs Lead for one term and returns when the term is over for this
// process.
func (e *Elector) lead(ctx context.Context, lease eventstore.Lease, log zerolog.Logger) {
	acquired := time.Now()
	log = log.With().Int64("term", lease.Term).Logger()
	log.Info().Msg("elected: leading")
	e.set(Status{Leader: true, Term: lease.Term, Holder: e.cfg.Holder, LeaderHolder: e.cfg.Holder})
	duties, stop := context.WithCancel(eventstore.WithFence(context.WithoutCancel(ctx), lease))
	done := make(chan error, 1)
	go func() { done <- e.cfg.Lead(duties, lease) }()
	// expiresBy is when the lease may expire by this process's clock: the
	// last successful renewal's start plus the TTL.
	expiresBy := acquired.Add(e.cfg.TTL)
	ticker := time.NewTicker(e.cfg.Renew)
	defer ticker.Stop()
	reason := ""
loop:
	for {
		select {
		case <-ctx.Done():
			reason = "shutting down"
			break loop
		case err := <-done:
			// Lead ended on its own: the duties cannot go on here, so
			// another server should have them.
			reason = fmt.Sprintf("the duties ended: %v", err)
			done <- err
			break loop
		case <-ticker.C:
			start := time.Now()
			renewed, err := e.cfg.Leases.RenewLease(ctx, lease, e.cfg.TTL)
			switch {
			case errors.Is(err, eventstore.ErrLeaseLost):
				reason = "another server took the lease"
				break loop
			case err != nil:
				// The next try would come too late: step down now.
				if !time.Now().Add(e.cfg.Renew).Before(expiresBy) {
					reason = fmt.Sprintf("the lease could not be renewed before it may expire: %v", err)
					break loop
				}
				log.Warn().Err(err).Msg("renewing the lease; trying again")
			default:
				lease = renewed
				expiresBy = start.Add(e.cfg.TTL)
			}
		}
	}
	stop()
	<-done
	e.set(Status{Holder: e.cfg.Holder, Term: lease.Term})
	// Hand over at once, whatever the reason: a lease lost already is
	// left as it is.
	releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.Renew)
	defer cancel()
	if err := e.cfg.Leases.ReleaseLease(releaseCtx, lease); err != nil {
		log.Warn().Err(err).Msg("releasing the lease")
	}
	log.Info().Str("reason", reason).Msg("stepped down")
}

// NewHolder names this process's life: host, pid and a random part, so a
// restart on the same host is a new holder.
func NewHolder() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%x", host, os.Getpid(), b)
}

func (e *Elector) set(s Status) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.status = s
}
