package projections

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/rs/zerolog"
)

// A rebuild from position 0 writes every row of a view again. Keeping a
// table's secondary indexes current row by row costs far more than
// building each once, sorted, at the end, so a rebuild drops them with the
// rows it empties and recreates them when it has caught up. What it
// dropped is recorded in view_deferred_indexes in the same transaction, so
// a rebuild that stops half way (a crash, ^C) leaves the statements to
// recreate them, and the next runner to open the view runs them. Unique
// indexes (primary keys included) stay: upserts rely on them.

// deferIndexes drops table's secondary indexes inside tx, recording how to
// recreate each.
func deferIndexes(ctx context.Context, tx *sql.Tx, db DB, table string) error {
	var query string
	switch db.Dialect {
	case "postgres":
		query = `SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x
			JOIN pg_class i ON i.oid = x.indexrelid
			WHERE x.indrelid = $1::regclass AND NOT x.indisunique AND NOT x.indisprimary`
	default:
		// Indexes SQLite makes for constraints have no sql; unique ones
		// declared with CREATE UNIQUE INDEX are kept too.
		query = `SELECT name, sql FROM sqlite_master
			WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL AND upper(sql) NOT LIKE 'CREATE UNIQUE%'`
	}
	rows, err := tx.QueryContext(ctx, db.rebind(query), table)
	if err != nil {
		return fmt.Errorf("list the indexes of %s: %w", table, err)
	}
	type index struct{ name, ddl string }
	var indexes []index
	for rows.Next() {
		var ix index
		if err := rows.Scan(&ix.name, &ix.ddl); err != nil {
			rows.Close()
			return fmt.Errorf("list the indexes of %s: %w", table, err)
		}
		indexes = append(indexes, ix)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list the indexes of %s: %w", table, err)
	}
	for _, ix := range indexes {
		if _, err := tx.ExecContext(ctx, db.rebind("INSERT INTO view_deferred_indexes (name, table_name, ddl) VALUES ($1, $2, $3)"), ix.name, table, ix.ddl); err != nil {
			return fmt.Errorf("record index %s of %s: %w", ix.name, table, err)
		}
		if _, err := tx.ExecContext(ctx, "DROP INDEX "+quoteIdent(ix.name)); err != nil {
			return fmt.Errorf("drop index %s of %s: %w", ix.name, table, err)
		}
	}
	return nil
}

// restoreIndexes recreates the deferred indexes of tables, each in its own
// transaction that also deletes its record. A runner doing the same at the
// same time waits on the record and then finds it gone.
func restoreIndexes(ctx context.Context, db DB, tables []string) error {
	for _, table := range tables {
		rows, err := db.Read.QueryContext(ctx, db.rebind("SELECT name FROM view_deferred_indexes WHERE table_name = $1 ORDER BY name"), table)
		if err != nil {
			return fmt.Errorf("list the deferred indexes of %s: %w", table, err)
		}
		var names []string
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
			return fmt.Errorf("list the deferred indexes of %s: %w", table, err)
		}
		for _, name := range names {
			if err := restoreIndex(ctx, db, table, name); err != nil {
				return err
			}
		}
	}
	return nil
}

func restoreIndex(ctx context.Context, db DB, table, name string) error {
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var ddl string
	err = tx.QueryRowContext(ctx, db.rebind("DELETE FROM view_deferred_indexes WHERE name = $1 RETURNING ddl"), name).Scan(&ddl)
	if err == sql.ErrNoRows {
		return nil // another runner recreated it
	}
	if err != nil {
		return fmt.Errorf("take deferred index %s of %s: %w", name, table, err)
	}
	if db.Dialect == "postgres" {
		// Sorting in memory instead of in temporary files.
		if _, err := tx.ExecContext(ctx, "SET LOCAL maintenance_work_mem = '256MB'"); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, ddl); err != nil {
		return fmt.Errorf("recreate index %s of %s: %w", name, table, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("recreate index %s of %s: %w", name, table, err)
	}
	zerolog.Ctx(ctx).Debug().Str("index", name).Str("table", table).Msg("view index recreated")
	return nil
}

// quoteIdent quotes a name for SQL (both dialects use double quotes).
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// analyze refreshes the query planner's statistics of tables. SQLite has
// none until asked, and without them it picks among a table's indexes by
// their order in the schema: for a page of one user's succeeded runs it
// could walk every succeeded run instead of that user's. The sample is
// bounded, so this takes milliseconds however big the tables are.
func analyze(ctx context.Context, db DB, tables []string) error {
	conn, err := db.Write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if db.Dialect == "sqlite" {
		if _, err := conn.ExecContext(ctx, "PRAGMA analysis_limit = 2000"); err != nil {
			return err
		}
	}
	for _, table := range tables {
		if _, err := conn.ExecContext(ctx, "ANALYZE "+quoteIdent(table)); err != nil {
			return fmt.Errorf("analyze %s: %w", table, err)
		}
	}
	zerolog.Ctx(ctx).Debug().Strs("tables", tables).Msg("view statistics refreshed")
	return nil
}
