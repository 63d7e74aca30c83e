package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/logbookhq/logbook/domain/eventstore"
)

// AcquireLease implements eventstore.Leases: one statement that inserts
// the lease, takes it over when it expired (next term), or extends it for
// its holder (same term), by the database's clock. A takeover dates its
// expiry once it has the row: the row may be locked for a long time (a
// paused leader's append holds it FOR SHARE until its session is ended),
// and an expiry reckoned before that wait would be over on arrival.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (eventstore.Lease, bool, error) {
	if err := checkLeaseArgs(name, holder, ttl); err != nil {
		return eventstore.Lease{}, false, err
	}
	now := s.dialect.NowMillisSQL()
	row := s.write.QueryRowContext(ctx, s.dialect.Rebind(`
		INSERT INTO leases (name, holder, term, expires_ms) VALUES ($1, $2, 1, `+now+` + $3)
		ON CONFLICT (name) DO UPDATE SET
			holder = excluded.holder,
			term = CASE WHEN leases.holder = excluded.holder THEN leases.term ELSE leases.term + 1 END,
			expires_ms = `+now+` + $3
		WHERE leases.holder = excluded.holder OR leases.expires_ms < `+now+`
		RETURNING holder, term, expires_ms`), name, holder, ttl.Milliseconds())
	lease, err := scanLease(name, row)
	if errors.Is(err, sql.ErrNoRows) {
		current, _, err := s.CurrentLease(ctx, name)
		return current, false, err
	}
	if err != nil {
		return eventstore.Lease{}, false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return lease, true, nil
}

// RenewLease implements eventstore.Leases.
func (s *Store) RenewLease(ctx context.Context, l eventstore.Lease, ttl time.Duration) (eventstore.Lease, error) {
	if err := checkLeaseArgs(l.Name, l.Holder, ttl); err != nil {
		return l, err
	}
	row := s.write.QueryRowContext(ctx, s.dialect.Rebind(`
		UPDATE leases SET expires_ms = `+s.dialect.NowMillisSQL()+` + $4
		WHERE name = $1 AND holder = $2 AND term = $3
		RETURNING holder, term, expires_ms`), l.Name, l.Holder, l.Term, ttl.Milliseconds())
	renewed, err := scanLease(l.Name, row)
	if errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("renew lease %s at term %d: %w", l.Name, l.Term, eventstore.ErrLeaseLost)
	}
	if err != nil {
		return l, fmt.Errorf("renew lease %s: %w", l.Name, err)
	}
	return renewed, nil
}

// ReleaseLease implements eventstore.Leases: the lease expires now.
func (s *Store) ReleaseLease(ctx context.Context, l eventstore.Lease) error {
	_, err := s.write.ExecContext(ctx, s.dialect.Rebind(`
		UPDATE leases SET expires_ms = `+s.dialect.NowMillisSQL()+` - 1
		WHERE name = $1 AND holder = $2 AND term = $3`), l.Name, l.Holder, l.Term)
	if err != nil {
		return fmt.Errorf("release lease %s: %w", l.Name, err)
	}
	return nil
}

// CurrentLease implements eventstore.Leases.
func (s *Store) CurrentLease(ctx context.Context, name string) (eventstore.Lease, bool, error) {
	row := s.read.QueryRowContext(ctx, s.dialect.Rebind("SELECT holder, term, expires_ms FROM leases WHERE name = $1"), name)
	lease, err := scanLease(name, row)
	if errors.Is(err, sql.ErrNoRows) {
		return eventstore.Lease{}, false, nil
	}
	if err != nil {
		return eventstore.Lease{}, false, fmt.Errorf("read lease %s: %w", name, err)
	}
	return lease, true, nil
}

func scanLease(name string, row *sql.Row) (eventstore.Lease, error) {
	l := eventstore.Lease{Name: name}
	var expires int64
	if err := row.Scan(&l.Holder, &l.Term, &expires); err != nil {
		return l, err
	}
	l.Expires = time.UnixMilli(expires).UTC()
	return l, nil
}

func checkLeaseArgs(name, holder string, ttl time.Duration) error {
	switch {
	case strings.TrimSpace(name) == "":
		return errors.New("lease: the name is empty")
	case strings.TrimSpace(holder) == "":
		return fmt.Errorf("lease %s: the holder is empty", name)
	case ttl < time.Millisecond:
		return fmt.Errorf("lease %s: the time to live %v is under a millisecond", name, ttl)
	}
	return nil
}

// checkFences fails, inside the append transaction tx (under the append
// lock), each request of batch whose fence's term is no longer its lease's
// current term. The lease rows are read with the dialect's share lock, so
// a takeover waits until this append has committed: no append made under
// an older term commits after a newer term began.
func (s *Store) checkFences(ctx context.Context, tx *sql.Tx, batch []*appendRequest) error {
	// A lease is read once per batch, however many appends it fences.
	current := map[string]*eventstore.Lease{}
	for _, r := range batch {
		r.fenced = nil
		if r.fence == nil {
			continue
		}
		lease, read := current[r.fence.Name]
		if !read {
			l := eventstore.Lease{Name: r.fence.Name}
			err := tx.QueryRowContext(ctx, s.dialect.Rebind("SELECT holder, term FROM leases WHERE name = $1"+s.dialect.ShareLockSQL()), r.fence.Name).Scan(&l.Holder, &l.Term)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				lease = nil
			case err != nil:
				return fmt.Errorf("read lease %s for a fenced append: %w", r.fence.Name, err)
			default:
				lease = &l
			}
			current[r.fence.Name] = lease
		}
		switch {
		case lease == nil:
			r.fenced = &eventstore.FencedError{Name: r.fence.Name, Term: r.fence.Term, CurrentHolder: "nobody"}
		case lease.Term != r.fence.Term || lease.Holder != r.fence.Holder:
			r.fenced = &eventstore.FencedError{Name: r.fence.Name, Term: r.fence.Term, CurrentTerm: lease.Term, CurrentHolder: lease.Holder}
		}
	}
	return nil
}

func anyFenced(batch []*appendRequest) bool {
	for _, r := range batch {
		if r.fence != nil {
			return true
		}
	}
	return false
}
