-- Leases elect one holder per role among the processes sharing this file,
-- by the database's clock; see migrations/postgres/00080_leases.sql.
-- +goose Up
CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    term       INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE leases;
