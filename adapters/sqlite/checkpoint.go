package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// Checkpoints are the checkpointer's: a goroutine with a connection of its
// own copies the WAL into the database file every checkpointEvery.
//
// SQLite's default makes the committing connection do it once the WAL is
// long enough (wal_autocheckpoint): a commit now and then copied 10,000
// pages and synced the database file, 17 to 250 ms during which every
// request's commit waited. That was most of the builtin requests' p99
// under load (docs/benchmarks.md). A PASSIVE checkpoint from another
// connection copies the same pages while commits go on.
//
// A passive checkpoint never starts the WAL over from its beginning: the
// log's frames are reused only when a writer begins while every frame is
// copied and no reader still reads one, and under load a commit always
// comes first. So once the WAL holds walRestartFrames, the checkpointer
// also tries a RESTART, which holds commits back only for the frames the
// passive pass left, and, with no busy wait on its connection, gives up at
// once when a reader or the writer is busy (the next tick tries again).
// The commits' own checkpoint stays as a backstop, at walBackstopPages.
const (
	defaultCheckpointEvery  = 250 * time.Millisecond
	defaultWALRestartFrames = 10000
)

// startCheckpointer starts the checkpointer of the database at path; stop
// ends it and closes its connection.
func startCheckpointer(path, synchronous string, every time.Duration, restartFrames int) (stop func() error, err error) {
	if every <= 0 {
		every = defaultCheckpointEvery
	}
	if restartFrames <= 0 {
		restartFrames = defaultWALRestartFrames
	}
	db, err := sql.Open("sqlite", dsn(path, checkpointConn, synchronous))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			// A pass that fails (the file gone, the disk full) is tried
			// again at the next tick; meanwhile the backstop bounds the WAL.
			frames, err := checkpoint(ctx, db, "PASSIVE")
			if err == nil && frames >= restartFrames {
				checkpoint(ctx, db, "RESTART") //nolint:errcheck // as above
			}
		}
	}()
	return func() error {
		cancel()
		<-done
		return db.Close()
	}, nil
}

// checkpoint runs one checkpoint and returns how many frames the WAL held.
func checkpoint(ctx context.Context, db *sql.DB, mode string) (frames int, err error) {
	var busy, copied int
	err = db.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &frames, &copied)
	return frames, err
}
