package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/migrations"
)

// The views file holds everything folded from the log: the views, their
// checkpoints and the Merkle tree (migrations/sqlite-views). It is a
// SQLite file of its own because SQLite has one write lock per file: in
// the log's file, every view transaction held the lock the appends wait
// for, and under load most of an append's wait was a view's
// (docs/benchmarks.md). It is disposable: deleted, it is made again empty
// and folded from the log.

// ViewsPath is the views file of the database at path.
func ViewsPath(path string) string { return path + "-views" }

// viewsSync is the views file's synchronous setting: its commits need not
// survive a power loss, since the views and their checkpoints go together
// and what is lost is folded again.
const viewsSync = "NORMAL"

// viewsSchema is the name the views file is attached as on the read
// connections. Queries name their tables without it: SQLite looks a
// table up in the main file first, then in the attached ones.
const viewsSchema = "views"

// attachingConnector opens connections to one database with another
// attached, so reads join the log and the views as they did in one file.
type attachingConnector struct {
	dsn    string
	attach string // the path of the file to attach
	as     string // its schema name
}

// viewsDriver opens the read connections. A driver of its own, as modernc
// supports, so nothing registered on the shared one applies here.
var viewsDriver = &sqlite.Driver{}

func (c attachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := viewsDriver.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	// mode=rw: a file that is gone (a server emptying the views) is an
	// error on this connection, never an empty file made in its place.
	_, err = conn.(driver.ExecerContext).ExecContext(ctx, "ATTACH DATABASE ? AS "+c.as,
		[]driver.NamedValue{{Ordinal: 1, Value: "file:" + c.attach + "?mode=rw"}})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("attach %s: %w", c.attach, err)
	}
	return conn, nil
}

func (c attachingConnector) Driver() driver.Driver { return viewsDriver }

// openViewsFile makes the views file beside the log at path (or brings its
// schema up to date) and checks that it was folded from this log: its
// origin is the log's identity, and no view, nor the Merkle tree, is past
// the log's head. A file that fails the check (beside a restored backup of
// the log, or a log whose last commits a power loss took with
// synchronous=normal), or that SQLite cannot read, is emptied and made
// again, so that everything is folded again; reset says why. Only the
// server does so, holding the server lock. log is the log's write
// connection; the caller holds the migration lock.
func openViewsFile(ctx context.Context, log *sql.DB, path string, serving bool) (reset string, err error) {
	var logID string
	var head int64
	if err := log.QueryRowContext(ctx, "SELECT id FROM store_identity WHERE only_row = 1").Scan(&logID); err != nil {
		return "", fmt.Errorf("read the store's identity: %w", err)
	}
	if err := log.QueryRowContext(ctx, "SELECT coalesce(max(position), 0) FROM events").Scan(&head); err != nil {
		return "", fmt.Errorf("read the log's head: %w", err)
	}
	views := ViewsPath(path)
	reason, err := migrateViews(ctx, views, logID, head)
	se := unreadable(err)
	if se != nil {
		reason, err = fmt.Sprintf("%s is not a database SQLite can read (%v)", views, se), nil
		if !serving {
			return "", fmt.Errorf("%s; the server makes it again when it starts", reason)
		}
	}
	if err != nil || reason == "" {
		return "", err
	}
	if !serving {
		// The server's views are its own, and a command that only reads
		// (audit verify) must see a tree past the log's head as it is.
		return "", nil
	}
	if se != nil {
		// Anything else in its place (a file copied over it, a damaged
		// disk) is no loss either. Its WAL goes first: a new file beside
		// an old WAL would take the old file's pages from it.
		for _, f := range []string{views + "-wal", views + "-shm", views} {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				return "", fmt.Errorf("delete the views file to fold it again (%s): %w", reason, err)
			}
		}
	} else if err := emptyViews(ctx, views); err != nil {
		return "", fmt.Errorf("empty the views file to fold it again (%s): %w", reason, err)
	}
	if _, err := migrateViews(ctx, views, logID, head); err != nil {
		return "", err
	}
	return reason, nil
}

// emptyViews drops every table of the views file, its migrations' record
// included, in one transaction: a crash leaves the file as it was or
// empty, never half emptied, and the next open migrates it from scratch.
// (Deleting the files could not be one step: the database file and its
// WAL go one at a time.)
func emptyViews(ctx context.Context, views string) error {
	db, err := sql.Open("sqlite", dsn(views, writerConn, viewsSync))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// Full-text tables first: dropping one drops its shadow tables.
	for _, which := range []string{
		"SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'",
		"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
	} {
		var names []string
		rows, err := tx.QueryContext(ctx, which)
		if err != nil {
			return err
		}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				rows.Close()
				return err
			}
			names = append(names, name)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, name := range names {
			if _, err := tx.ExecContext(ctx, `DROP TABLE "`+strings.ReplaceAll(name, `"`, `""`)+`"`); err != nil {
				return fmt.Errorf("drop %s: %w", name, err)
			}
		}
	}
	return tx.Commit()
}

// unreadable is err when it is SQLite's finding that a file is not a
// database, or a damaged one; else nil.
func unreadable(err error) *sqlite.Error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return nil
	}
	if code := se.Code() & 0xff; code != sqlite3.SQLITE_NOTADB && code != sqlite3.SQLITE_CORRUPT { // the primary code
		return nil
	}
	return se
}

// migrateViews creates or migrates the views file and records its origin
// when new. It returns why the file does not belong to the log with
// identity logID and head, or "".
func migrateViews(ctx context.Context, views, logID string, head int64) (mismatch string, err error) {
	db, err := sql.Open("sqlite", dsn(views, writerConn, viewsSync))
	if err != nil {
		return "", err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	provider, err := goose.NewProvider(goose.DialectSQLite3, db, migrations.SQLiteViews())
	if err != nil {
		return "", err
	}
	if err := sqlstore.Migrate(ctx, provider); err != nil {
		return "", fmt.Errorf("the views file %s: %w", views, err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO view_origin (only_row, store_id) VALUES (1, ?) ON CONFLICT (only_row) DO NOTHING", logID); err != nil {
		return "", fmt.Errorf("record the views file's origin: %w", err)
	}
	var origin string
	var folded, tree int64
	err = db.QueryRowContext(ctx, `SELECT (SELECT store_id FROM view_origin WHERE only_row = 1),
		(SELECT coalesce(max(position), 0) FROM view_checkpoints),
		(SELECT size FROM merkle_tree_size WHERE only_row = 1)`).Scan(&origin, &folded, &tree)
	if err != nil {
		return "", fmt.Errorf("read the views file's origin: %w", err)
	}
	switch {
	case origin != logID:
		return fmt.Sprintf("the views were folded from another store (%s, not %s)", origin, logID), nil
	case folded > head:
		return fmt.Sprintf("a view has folded up to position %d, and the log ends at %d", folded, head), nil
	case tree > head:
		return fmt.Sprintf("the Merkle tree has %d leaves, and the log %d events", tree, head), nil
	}
	return "", nil
}
