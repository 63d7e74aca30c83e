-- The Merkle tree over the log (domain/auditlog): one row per leaf holding
-- the stored hashes its append made (tlog.StoredHashes, concatenated), and
-- the tree's size, moved by compare-and-set in the transaction that adds
-- the rows. It is derived from the events and can be rebuilt from them.
-- The checkpoints the server signed, and the witnesses' cosignatures of
-- them. Checkpoints are append-only, as the events are: a rebuilt tree is
-- checked against them.
-- +goose Up
CREATE TABLE merkle_tree_packs (
    leaf   bigint PRIMARY KEY,
    hashes bytea  NOT NULL
);
CREATE TABLE merkle_tree_size (
    only_row integer PRIMARY KEY CHECK (only_row = 1),
    size     bigint  NOT NULL
);
INSERT INTO merkle_tree_size (only_row, size) VALUES (1, 0);
CREATE TABLE audit_checkpoints (
    size       bigint PRIMARY KEY,
    root       bytea  NOT NULL,
    note       text   NOT NULL,
    created_at bigint NOT NULL
);
CREATE TABLE audit_cosignatures (
    size    bigint NOT NULL REFERENCES audit_checkpoints (size),
    witness text   NOT NULL,
    line    text   NOT NULL,
    PRIMARY KEY (size, witness)
);
-- +goose StatementBegin
CREATE FUNCTION audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_checkpoints is append-only: % is not allowed', TG_OP;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_append_only();

-- +goose Down
DROP TABLE audit_cosignatures;
DROP TABLE audit_checkpoints;
DROP FUNCTION audit_checkpoints_append_only();
DROP TABLE merkle_tree_size;
DROP TABLE merkle_tree_packs;
