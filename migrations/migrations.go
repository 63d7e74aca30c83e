// Package migrations holds the numbered SQL migrations of each dialect,
// embedded in the binary and applied at start.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed postgres/*.sql sqlite/*.sql sqlite-views/*.sql
var files embed.FS

// Postgres returns the PostgreSQL migrations.
func Postgres() fs.FS { return sub("postgres") }

// SQLite returns the SQLite migrations of the main file: the log and
// what is not derived from it.
func SQLite() fs.FS { return sub("sqlite") }

// SQLiteViews returns the migrations of SQLite's views file: the views
// and the Merkle tree, all derived from the log.
func SQLiteViews() fs.FS { return sub("sqlite-views") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		panic(err) // the directory is embedded at build time; its absence is a build bug
	}
	return f
}
