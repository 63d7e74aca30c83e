package projections

import (
	"context"
	"sync"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// Access is the in-memory permission model: an access.Directory folded
// from the log in global order (access events, plus the permissions each
// installed bundle declares), with the position it reflects. It is safe for
// concurrent use.
//
// How the dispatcher checks the very next request: when it handles the
// event at position N (a RequestReceived), it calls WaitFor(ctx, N-1) and
// then Read, which sees every access change recorded before the request
// (and possibly a few after it, never fewer). A caller that needs the state
// at exactly N-1 keeps its own Access and feeds it the same ordered events
// it reacts to (Apply each event before handling the next).
type Access struct {
	mu       sync.RWMutex
	dir      *access.Directory
	position int64
	changed  chan struct{} // closed and replaced when position advances
}

// NewAccess returns an empty model at position 0.
func NewAccess() *Access {
	return &Access{dir: dispatch.NewDirectory(), changed: make(chan struct{})}
}

// AccessTypes lists the event types the model folds.
func AccessTypes() []string {
	return []string{
		"UserCreated", "ChatHandleLinked", "ChatHandleUnlinked", "UserDisabled", "UserEnabled",
		"GroupCreated", "MemberAdded", "MemberRemoved", "RoleGranted", "RoleRevoked",
		"RoleCreated", "PermissionGranted", "PermissionRevoked", "SitePermissionCreated",
		"BundleInstalled",
	}
}

// Apply folds one recorded event (any type: others only move the
// position) and advances to its position.
func (a *Access) Apply(e domain.RecordedEvent) error {
	p, err := domain.Decode(e)
	if err != nil {
		return &EventError{Position: e.Position, Type: e.Type, Err: err}
	}
	a.mu.Lock()
	dispatch.FoldAccess(a.dir, p)
	a.mu.Unlock()
	a.advance(e.Position)
	return nil
}

// advance records that everything up to position is folded.
func (a *Access) advance(position int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if position <= a.position {
		return
	}
	a.position = position
	close(a.changed)
	a.changed = make(chan struct{})
}

// Position is the last position folded.
func (a *Access) Position() int64 {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.position
}

// Read calls fn with the directory and the position it reflects, holding
// the model still until fn returns. fn must not keep the directory.
func (a *Access) Read(fn func(dir *access.Directory, position int64)) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	fn(a.dir, a.position)
}

// WaitFor blocks until the model has folded position (and everything
// before it) or ctx ends.
func (a *Access) WaitFor(ctx context.Context, position int64) error {
	for {
		a.mu.RLock()
		reached, changed := a.position >= position, a.changed
		a.mu.RUnlock()
		if reached {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// replace swaps in a directory rebuilt elsewhere, at position.
func (a *Access) replace(dir *access.Directory, position int64) {
	a.mu.Lock()
	a.dir = dir
	moved := position != a.position
	a.position = position
	if moved {
		close(a.changed)
		a.changed = make(chan struct{})
	}
	a.mu.Unlock()
}

// LoadDirectory folds the log's access events from position 1 up to and
// including upTo into a fresh directory.
func LoadDirectory(ctx context.Context, store eventstore.Store, upTo int64) (*access.Directory, error) {
	dir := dispatch.NewDirectory()
	if err := foldLog(ctx, store, upTo, dir); err != nil {
		return nil, err
	}
	return dir, nil
}

// foldLog folds the access events of positions 1..upTo into every dir.
// They are a few among many, so only they are read when the store offers
// the lean feed.
func foldLog(ctx context.Context, store eventstore.Store, upTo int64, dirs ...*access.Directory) error {
	feed, ok := store.(FeedReader)
	if !ok {
		feed = readAllFeed{store}
	}
	types := AccessTypes()
	const span = 200_000
	for from := int64(1); from <= upTo; from += span {
		events, err := feed.ReadFeed(ctx, from, min(from+span-1, upTo), types)
		if err != nil {
			return err
		}
		for _, e := range events {
			p, err := domain.Decode(e)
			if err != nil {
				return &EventError{Position: e.Position, Type: e.Type, Err: err}
			}
			for _, dir := range dirs {
				dispatch.FoldAccess(dir, p)
			}
		}
	}
	return nil
}
