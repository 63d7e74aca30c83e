package dispatcher

import (
	"context"
	"database/sql"
	"errors"

	"github.com/logbookhq/logbook/domain/dispatch"
)

// SQLCheckpoints keeps checkpoints in the `checkpoints` table the
// projections use (migrations/*/00002_views.sql), beside the events.
type SQLCheckpoints struct {
	DB     *sql.DB
	Rebind func(string) string // $1 → the dialect's placeholders
}

// Load implements Checkpoints: 0 when the name has none yet.
func (c SQLCheckpoints) Load(ctx context.Context, name string) (int64, error) {
	var position int64
	err := c.DB.QueryRowContext(ctx, c.Rebind("SELECT position FROM checkpoints WHERE name = $1"), name).Scan(&position)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return position, err
}

// Save implements Checkpoints. A checkpoint only moves forward: a leader
// deposed while paused may save an older position after its successor
// saved a newer one, and a follower folds only up to the stored position
// (Follow), so the stored one must never go back.
func (c SQLCheckpoints) Save(ctx context.Context, name string, position int64) error {
	_, err := c.DB.ExecContext(ctx, c.Rebind(
		"INSERT INTO checkpoints (name, position) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET position = "+
			"CASE WHEN excluded.position > checkpoints.position THEN excluded.position ELSE checkpoints.position END"), name, position)
	return err
}

// Posted is the ReplyPoster of providers whose replies are read back over
// HTTP (api, web): posting records nothing beyond ReplyPosted itself, and
// the waiting client is woken by the dispatcher.
type Posted struct{}

// Post implements ReplyPoster.
func (Posted) Post(context.Context, string, dispatch.Reply) (string, error) { return "", nil }
