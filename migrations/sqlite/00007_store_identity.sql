-- The store's identity: one random id, made once, when the database is
-- created or first upgraded to this version. The Docker runtime puts it in
-- the owner label of every container it makes, so Logbook servers of
-- different stores that share a Docker host settle only their own
-- containers. A copy of the database (a restored backup) has the same id.
-- +goose Up
CREATE TABLE store_identity (
    only_row INTEGER NOT NULL PRIMARY KEY CHECK (only_row = 1),
    id       TEXT    NOT NULL
) STRICT;
INSERT INTO store_identity (only_row, id) VALUES (1, lower(hex(randomblob(16))));

-- +goose Down
DROP TABLE store_identity;
