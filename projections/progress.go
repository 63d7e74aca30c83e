package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// StoredProgress answers how far a view has got from its stored
// checkpoint, for a server that does not run the views itself (another
// server sharing the database leads and maintains them).
type StoredProgress struct {
	DB DB
	// Every is how often a wait reads the checkpoint again (25ms).
	Every time.Duration
}

// WaitFor blocks until the named view's stored checkpoint has reached
// position, or ctx ends.
func (p StoredProgress) WaitFor(ctx context.Context, name string, position int64) error {
	every := p.Every
	if every <= 0 {
		every = 25 * time.Millisecond
	}
	for {
		var checkpoint int64
		err := p.DB.Read.QueryRowContext(ctx, p.DB.rebind("SELECT position FROM view_checkpoints WHERE name = $1"), name).Scan(&checkpoint)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// Not created yet: the leader has not opened the view.
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			return fmt.Errorf("read the checkpoint of view %s: %w", name, err)
		case checkpoint >= position:
			return nil
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
