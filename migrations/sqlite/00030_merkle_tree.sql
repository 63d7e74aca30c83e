-- The Merkle tree over the log (domain/auditlog): one row per leaf holding
-- the stored hashes its append made (tlog.StoredHashes, concatenated), and
-- the tree's size, moved by compare-and-set in the transaction that adds
-- the rows. It is derived from the events and can be rebuilt from them.
-- The checkpoints the server signed, and the witnesses' cosignatures of
-- them. Checkpoints are append-only, as the events are: a rebuilt tree is
-- checked against them.
-- +goose Up
CREATE TABLE merkle_tree_packs (
    leaf   INTEGER PRIMARY KEY,
    hashes BLOB    NOT NULL
) STRICT;
CREATE TABLE merkle_tree_size (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    size     INTEGER NOT NULL
) STRICT;
INSERT INTO merkle_tree_size (only_row, size) VALUES (1, 0);
CREATE TABLE audit_checkpoints (
    size       INTEGER PRIMARY KEY,
    root       BLOB    NOT NULL,
    note       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE TABLE audit_cosignatures (
    size    INTEGER NOT NULL REFERENCES audit_checkpoints (size),
    witness TEXT    NOT NULL,
    line    TEXT    NOT NULL,
    PRIMARY KEY (size, witness)
) STRICT;
-- +goose StatementBegin
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only: UPDATE is not allowed');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only: DELETE is not allowed');
END;
-- +goose StatementEnd

-- +goose Down
DROP TABLE audit_cosignatures;
DROP TABLE audit_checkpoints;
DROP TABLE merkle_tree_size;
DROP TABLE merkle_tree_packs;
