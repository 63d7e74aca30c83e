package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Lease is one holder's hold on a named role (the dispatcher, say) among
// the processes that share a store. Term grows by one each time the role
// changes hands, so a term names one holding from start to end.
type Lease struct {
	Name    string
	Holder  string
	Term    int64
	Expires time.Time // by the database's clock
}

// Leases elects one holder per name among processes sharing a store, by
// the database's clock, so the processes' own clocks never disagree about
// who holds it. A holder id names one process's life (a restart is a new
// holder, and takes a new term).
type Leases interface {
	// AcquireLease makes holder the holder of name for ttl when nobody
	// holds it or the holding expired, with the next term, or extends it
	// when holder holds it already (same term). When another holds it,
	// acquired is false and the lease returned is theirs.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (lease Lease, acquired bool, err error)
	// RenewLease extends l by ttl, if l's holder still holds it at l's
	// term (expired or not, as long as nobody took it); otherwise
	// ErrLeaseLost.
	RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// ReleaseLease ends l now, so another process takes over at once (a
	// clean shutdown); releasing a lease lost already is not an error.
	ReleaseLease(ctx context.Context, l Lease) error
	// CurrentLease reads name's lease; found is false when it was never
	// held.
	CurrentLease(ctx context.Context, name string) (lease Lease, found bool, err error)
}

// ErrLeaseLost says another holder took the lease.
var ErrLeaseLost = errors.New("the lease is held by another holder now")

// ErrFenced says an append made under a lease's term was refused because
// the lease has changed hands since: nothing was written. A holder that
// gets it must stop acting for the role.
var ErrFenced = errors.New("append fenced: the lease it was made under has a newer holder")

// FencedError names the lease, the term the append was made under and the
// term the store holds now.
type FencedError struct {
	Name              string
	Term, CurrentTerm int64
	CurrentHolder     string
}

func (e *FencedError) Error() string {
	return fmt.Sprintf("%v: %s is at term %d (held by %s), the append was made at term %d", ErrFenced, e.Name, e.CurrentTerm, e.CurrentHolder, e.Term)
}

func (e *FencedError) Is(target error) bool { return target == ErrFenced }

type fenceKey struct{}

// WithFence makes every append made with the returned context conditional
// on l's term still being its name's current term, checked in the append's
// own transaction: once another holder has taken the lease, the append
// fails with a *FencedError and writes nothing. A store that is not a
// Leases refuses fenced appends.
func WithFence(ctx context.Context, l Lease) context.Context {
	return context.WithValue(ctx, fenceKey{}, l)
}

// FenceOf returns the lease ctx's appends are fenced by, if any.
func FenceOf(ctx context.Context) (Lease, bool) {
	l, ok := ctx.Value(fenceKey{}).(Lease)
	return l, ok
}
