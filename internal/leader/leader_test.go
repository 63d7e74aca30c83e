package leader_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/internal/leader"
)

// memLeases is eventstore.Leases in memory, timed by time.Now (the bubble's
// clock under synctest). down makes every call fail, as a database that
// cannot be reached does.
type memLeases struct {
	mu     sync.Mutex
	leases map[string]eventstore.Lease
	down   bool
}

var errDown = errors.New("the database does not answer")

func (m *memLeases) AcquireLease(_ context.Context, name, holder string, ttl time.Duration) (eventstore.Lease, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return eventstore.Lease{}, false, errDown
	}
	cur, ok := m.leases[name]
	switch {
	case !ok:
		cur = eventstore.Lease{Name: name, Holder: holder, Term: 1}
	case cur.Holder == holder:
	case time.Now().After(cur.Expires):
		cur.Holder, cur.Term = holder, cur.Term+1
	default:
		return cur, false, nil
	}
	cur.Expires = time.Now().Add(ttl)
	m.leases[name] = cur
	return cur, true, nil
}

func (m *memLeases) RenewLease(_ context.Context, l eventstore.Lease, ttl time.Duration) (eventstore.Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return l, errDown
	}
	cur := m.leases[l.Name]
	if cur.Holder != l.Holder || cur.Term != l.Term {
		return l, eventstore.ErrLeaseLost
	}
	cur.Expires = time.Now().Add(ttl)
	m.leases[l.Name] = cur
	return cur, nil
}

func (m *memLeases) ReleaseLease(_ context.Context, l eventstore.Lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errDown
	}
	if cur := m.leases[l.Name]; cur.Holder == l.Holder && cur.Term == l.Term {
		cur.Expires = time.Now().Add(-time.Millisecond)
		m.leases[l.Name] = cur
	}
	return nil
}

func (m *memLeases) CurrentLease(_ context.Context, name string) (eventstore.Lease, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.leases[name]
	return l, ok, nil
}

func (m *memLeases) setDown(down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = down
}

// duties records which holders lead, and when.
type duties struct {
	mu      sync.Mutex
	leading map[string]eventstore.Lease
	log     []string
	fenced  bool
}

func (d *duties) lead(holder string) func(ctx context.Context, lease eventstore.Lease) error {
	return func(ctx context.Context, lease eventstore.Lease) error {
		fence, ok := eventstore.FenceOf(ctx)
		d.mu.Lock()
		d.fenced = ok && fence == lease
		d.leading[holder] = lease
		d.log = append(d.log, "start "+holder)
		d.mu.Unlock()
		<-ctx.Done()
		d.mu.Lock()
		delete(d.leading, holder)
		d.log = append(d.log, "stop "+holder)
		d.mu.Unlock()
		return nil
	}
}

func (d *duties) leaders() map[string]eventstore.Lease {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]eventstore.Lease{}
	for k, v := range d.leading {
		out[k] = v
	}
	return out
}

type node struct {
	elector *leader.Elector
	stop    context.CancelFunc
	done    chan struct{}
}

func start(t *testing.T, leases eventstore.Leases, d *duties, holder string) *node {
	t.Helper()
	e, err := leader.New(leader.Config{Leases: leases, Name: "leader", Holder: holder, TTL: 3 * time.Second, Lead: d.lead(holder), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{elector: e, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		if err := e.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	return n
}

func TestGivenTwoServersOnlyOneLeadsAndItsDutiesAreFenced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		leases := &memLeases{leases: map[string]eventstore.Lease{}}
		d := &duties{leading: map[string]eventstore.Lease{}}
		a := start(t, leases, d, "a")
		synctest.Wait()
		b := start(t, leases, d, "b")
		// A minute of renewals and campaigns.
		for range 60 {
			time.Sleep(time.Second)
			synctest.Wait()
			if got := d.leaders(); len(got) != 1 || got["a"].Term != 1 {
				t.Fatalf("leaders after %v: %v, want a alone at term 1", time.Second, got)
			}
		}
		if !d.fenced {
			t.Error("the duties' context is not fenced by the lease")
		}
		if s := a.elector.Status(); !s.Leader || s.Term != 1 {
			t.Errorf("a's status %+v", s)
		}
		if s := b.elector.Status(); s.Leader || s.LeaderHolder != "a" {
			t.Errorf("b's status %+v, want a follower that names a", s)
		}
		a.stop()
		b.stop()
		<-a.done
		<-b.done
	})
}

func TestGivenALeaderThatStopsCleanlyTheOtherTakesOverWithinACampaign(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		leases := &memLeases{leases: map[string]eventstore.Lease{}}
		d := &duties{leading: map[string]eventstore.Lease{}}
		a := start(t, leases, d, "a")
		synctest.Wait()
		b := start(t, leases, d, "b")
		synctest.Wait()
		a.stop()
		<-a.done
		stopped := time.Now()
		for len(d.leaders()) == 0 || d.leaders()["b"].Term == 0 {
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
		}
		if took := time.Since(stopped); took > time.Second+10*time.Millisecond {
			t.Errorf("b took over %v after a stopped; a released the lease, so one campaign (1s) at most", took)
		}
		if got := d.leaders()["b"].Term; got != 2 {
			t.Errorf("b leads at term %d, want 2", got)
		}
		b.stop()
		<-b.done
	})
}

func TestGivenALeaderThatDiesTheOtherTakesOverWithinTheTTLAndACampaign(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		leases := &memLeases{leases: map[string]eventstore.Lease{}}
		d := &duties{leading: map[string]eventstore.Lease{}}
		// The dead leader: its lease was taken and never renewed.
		if _, ok, _ := leases.AcquireLease(context.Background(), "leader", "dead", 3*time.Second); !ok {
			t.Fatal("could not set up the dead leader")
		}
		died := time.Now()
		b := start(t, leases, d, "b")
		for d.leaders()["b"].Term == 0 {
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
		}
		if took := time.Since(died); took > 4*time.Second+10*time.Millisecond {
			t.Errorf("b took over %v after the leader died; want the TTL (3s) and one campaign (1s) at most", took)
		}
		b.stop()
		<-b.done
	})
}

func TestGivenALeaderCutOffFromTheDatabaseItStepsDownBeforeItsLeaseCanExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		leases := &memLeases{leases: map[string]eventstore.Lease{}}
		d := &duties{leading: map[string]eventstore.Lease{}}
		a := start(t, leases, d, "a")
		synctest.Wait()
		lease, _, _ := leases.CurrentLease(context.Background(), "leader")
		leases.setDown(true)
		for len(d.leaders()) > 0 {
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
		}
		lease, _, _ = leases.CurrentLease(context.Background(), "leader")
		if !time.Now().Before(lease.Expires) {
			t.Errorf("a stopped its duties at %v, not before its lease expired at %v", time.Now(), lease.Expires)
		}
		if s := a.elector.Status(); s.Leader {
			t.Errorf("a still says it leads: %+v", s)
		}
		// Back up: a campaigns again and leads (same holder, same term).
		leases.setDown(false)
		for len(d.leaders()) == 0 {
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
		}
		a.stop()
		<-a.done
		if want := []string{"start a", "stop a", "start a", "stop a"}; !slices.Equal(d.log, want) {
			t.Errorf("duties: %v, want %v", d.log, want)
		}
	})
}

func TestConfigIsChecked(t *testing.T) {
	if _, err := leader.New(leader.Config{}); err == nil {
		t.Error("an empty config was accepted")
	}
	leases := &memLeases{leases: map[string]eventstore.Lease{}}
	_, err := leader.New(leader.Config{Leases: leases, Name: "l", Holder: "h", TTL: time.Second, Renew: 2 * time.Second,
		Lead: func(context.Context, eventstore.Lease) error { return nil }})
	if err == nil {
		t.Error("renewing less often than the TTL was accepted")
	}
}
