-- audit: one row per administrative event (logins, grants, tokens, users,
-- bundles, configuration, chain verifications) with its actor, for the
-- audit page's stream filtered by type, actor and time.
-- +goose Up
CREATE TABLE view_audit_events (
    position INTEGER PRIMARY KEY,
    type     TEXT    NOT NULL,
    stream   TEXT    NOT NULL,
    actor    TEXT    NOT NULL,
    at       INTEGER NOT NULL, -- recorded_at, unix microseconds
    summary  TEXT    NOT NULL
) STRICT;
CREATE INDEX view_audit_events_type ON view_audit_events (type, position);
CREATE INDEX view_audit_events_actor ON view_audit_events (actor, position);
CREATE INDEX view_audit_events_at ON view_audit_events (at, position);

-- +goose Down
DROP TABLE view_audit_events;
