package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/logbookhq/logbook/domain/auditlog"
)

var _ auditlog.TreeStore = (*Store)(nil)

// PackInserter is what a dialect implements to insert a batch of the
// tree's packs in one statement (Postgres: unnest over arrays).
type PackInserter interface {
	InsertPacks(ctx context.Context, tx *sql.Tx, from int64, packs [][]byte) error
}

// packRowsPerStatement keeps an insert of tree packs within SQLite's
// parameter limit the dialects are built for (100).
const packRowsPerStatement = 50

// TreeSize implements auditlog.TreeStore.
func (s *Store) TreeSize(ctx context.Context) (int64, error) {
	var size int64
	if err := s.read.QueryRowContext(ctx, "SELECT size FROM merkle_tree_size WHERE only_row = 1").Scan(&size); err != nil {
		return 0, fmt.Errorf("read the Merkle tree's size: %w", err)
	}
	return size, nil
}

// TreePacks implements auditlog.TreeStore: one query per 100 leaves (a
// proof needs about 2 log2(n)).
func (s *Store) TreePacks(ctx context.Context, leaves []int64) (map[int64][]byte, error) {
	out := make(map[int64][]byte, len(leaves))
	for start := 0; start < len(leaves); start += 100 {
		chunk := leaves[start:min(start+100, len(leaves))]
		args := make([]any, len(chunk))
		for i, l := range chunk {
			args[i] = l
		}
		in := strings.TrimSuffix(strings.TrimPrefix(placeholders(1, len(chunk), 1), "("), ")")
		rows, err := s.reads.QueryContext(ctx, s.dialect.Rebind("SELECT leaf, hashes FROM merkle_tree_packs WHERE leaf IN ("+in+")"), args...)
		if err != nil {
			return nil, fmt.Errorf("read the Merkle tree: %w", err)
		}
		for rows.Next() {
			var (
				leaf int64
				pack []byte
			)
			if err := rows.Scan(&leaf, &pack); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read the Merkle tree: %w", err)
			}
			out[leaf] = pack
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read the Merkle tree: %w", err)
		}
	}
	return out, nil
}

// AppendTree implements auditlog.TreeStore.
func (s *Store) AppendTree(ctx context.Context, from int64, packs [][]byte) error {
	if len(packs) == 0 {
		return nil
	}
	tx, err := s.treeTx(ctx)
	if err != nil {
		return fmt.Errorf("append to the Merkle tree: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	res, err := tx.ExecContext(ctx, s.dialect.Rebind("UPDATE merkle_tree_size SET size = $1 WHERE only_row = 1 AND size = $2"), from+int64(len(packs)), from)
	if err != nil {
		return fmt.Errorf("append to the Merkle tree: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		if err != nil {
			return fmt.Errorf("append to the Merkle tree: %w", err)
		}
		return fmt.Errorf("%w: it is no longer %d leaves", auditlog.ErrTreeMoved, from)
	}
	if bulk, ok := s.dialect.(PackInserter); ok {
		if err := bulk.InsertPacks(ctx, tx, from, packs); err != nil {
			return fmt.Errorf("append to the Merkle tree: %w", err)
		}
		return tx.Commit()
	}
	for start := 0; start < len(packs); start += packRowsPerStatement {
		chunk := packs[start:min(start+packRowsPerStatement, len(packs))]
		args := make([]any, 0, 2*len(chunk))
		for i, p := range chunk {
			args = append(args, from+int64(start+i), p)
		}
		if _, err := tx.ExecContext(ctx, s.dialect.Rebind("INSERT INTO merkle_tree_packs (leaf, hashes) VALUES "+placeholders(len(chunk), 2, 1)), args...); err != nil {
			return fmt.Errorf("append to the Merkle tree: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("append to the Merkle tree: %w", err)
	}
	return nil
}

// treeTx begins a tree transaction whose commit does not wait for the
// disk, as the views' do: on SQLite the views file's connection commits
// with synchronous NORMAL, on Postgres the transaction sets
// synchronous_commit off. The tree is derived from the log, as the views
// are, and lives with them (Pools.Derived). The packs and the size go
// together, so a crash loses at most the last commits whole, and the
// maintainer adds those leaves again from the events.
func (s *Store) treeTx(ctx context.Context) (*sql.Tx, error) {
	tx, err := s.derived.BeginTx(ctx, nil)
	if err != nil || s.dialect.Name() == "sqlite" {
		return tx, err
	}
	if _, err := tx.ExecContext(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
		tx.Rollback() //nolint:errcheck // failing anyway
		return nil, err
	}
	return tx, nil
}

// ResetTree implements auditlog.TreeStore.
func (s *Store) ResetTree(ctx context.Context) error {
	tx, err := s.derived.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	empty := "DELETE FROM merkle_tree_packs"
	if s.dialect.Name() == "postgres" {
		empty = "TRUNCATE merkle_tree_packs"
	}
	if _, err := tx.ExecContext(ctx, empty); err != nil {
		return fmt.Errorf("empty the Merkle tree: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE merkle_tree_size SET size = 0 WHERE only_row = 1"); err != nil {
		return fmt.Errorf("empty the Merkle tree: %w", err)
	}
	return tx.Commit()
}

// AddCheckpoint implements auditlog.TreeStore.
func (s *Store) AddCheckpoint(ctx context.Context, c auditlog.StoredCheckpoint) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var stored string
	err = tx.QueryRowContext(ctx, s.dialect.Rebind("SELECT note FROM audit_checkpoints WHERE size = $1"), c.Size).Scan(&stored)
	switch {
	case err == nil && stored == string(c.Note):
		return nil
	case err == nil:
		return fmt.Errorf("a different checkpoint of size %d is stored already", c.Size)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store the checkpoint of size %d: %w", c.Size, err)
	}
	if _, err := tx.ExecContext(ctx, s.dialect.Rebind("INSERT INTO audit_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4)"),
		c.Size, c.Root[:], string(c.Note), c.CreatedAt.UnixMicro()); err != nil {
		return fmt.Errorf("store the checkpoint of size %d: %w", c.Size, err)
	}
	return tx.Commit()
}

// AddCosignature implements auditlog.TreeStore.
func (s *Store) AddCosignature(ctx context.Context, size int64, witness, line string) error {
	_, err := s.write.ExecContext(ctx, s.dialect.Rebind(`INSERT INTO audit_cosignatures (size, witness, line) VALUES ($1, $2, $3)
		ON CONFLICT (size, witness) DO UPDATE SET line = excluded.line`), size, witness, line)
	if err != nil {
		return fmt.Errorf("store %s's cosignature of the checkpoint of size %d: %w", witness, size, err)
	}
	return nil
}

// Checkpoints implements auditlog.TreeStore.
func (s *Store) Checkpoints(ctx context.Context, limit int) ([]auditlog.StoredCheckpoint, error) {
	query := "SELECT size, root, note, created_at FROM audit_checkpoints ORDER BY size DESC"
	if limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", limit)
	}
	rows, err := s.read.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("read the checkpoints: %w", err)
	}
	defer rows.Close()
	var out []auditlog.StoredCheckpoint
	index := map[int64]int{}
	for rows.Next() {
		var (
			c       auditlog.StoredCheckpoint
			root    []byte
			note    string
			created int64
		)
		if err := rows.Scan(&c.Size, &root, &note, &created); err != nil {
			return nil, fmt.Errorf("read the checkpoints: %w", err)
		}
		if len(root) != tlog.HashSize {
			return nil, fmt.Errorf("the stored checkpoint of size %d has a root of %d bytes", c.Size, len(root))
		}
		c.Root = tlog.Hash(root)
		c.Note, c.CreatedAt = []byte(note), time.UnixMicro(created).UTC()
		c.Cosignatures = map[string]string{}
		index[c.Size] = len(out)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the checkpoints: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	sigs, err := s.read.QueryContext(ctx, s.dialect.Rebind("SELECT size, witness, line FROM audit_cosignatures WHERE size >= $1"), out[len(out)-1].Size)
	if err != nil {
		return nil, fmt.Errorf("read the cosignatures: %w", err)
	}
	defer sigs.Close()
	for sigs.Next() {
		var (
			size          int64
			witness, line string
		)
		if err := sigs.Scan(&size, &witness, &line); err != nil {
			return nil, fmt.Errorf("read the cosignatures: %w", err)
		}
		if i, ok := index[size]; ok {
			out[i].Cosignatures[witness] = line
		}
	}
	return out, sigs.Err()
}
