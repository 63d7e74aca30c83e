-- The views keep their checkpoints in a table of their own, as on SQLite,
-- where they moved with the views to a file of their own (the SQLite
-- migration 00130): `checkpoints` keeps the dispatcher's. The views keep
-- their positions, so nothing is folded again.
-- +goose Up
CREATE TABLE view_checkpoints (
    name     text   PRIMARY KEY,
    position bigint NOT NULL
);
INSERT INTO view_checkpoints (name, position)
    SELECT name, position FROM checkpoints
    WHERE name IN ('approvals', 'audit', 'history', 'permissions', 'search', 'sources', 'transcripts');
DELETE FROM checkpoints
    WHERE name IN ('approvals', 'audit', 'history', 'permissions', 'search', 'sources', 'transcripts');

-- +goose Down
INSERT INTO checkpoints (name, position) SELECT name, position FROM view_checkpoints
    ON CONFLICT (name) DO UPDATE SET position = excluded.position;
DROP TABLE view_checkpoints;
