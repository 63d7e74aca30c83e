-- triggers and schedules: one row per live trigger and schedule, folded
-- from their streams (projections/sources.go).
-- +goose Up
CREATE TABLE view_triggers (
    name             TEXT    PRIMARY KEY,
    pipeline         TEXT    NOT NULL,
    run_as           TEXT    NOT NULL,
    provider         TEXT    NOT NULL, -- the chat provider its redirects post on
    timeout_ms       INTEGER NOT NULL,
    require_hmac     INTEGER NOT NULL,
    signature_header TEXT    NOT NULL,
    has_token        INTEGER NOT NULL,
    secret_version   INTEGER NOT NULL,
    enabled          INTEGER NOT NULL,
    created_by       TEXT    NOT NULL,
    created_at       INTEGER,
    position         INTEGER NOT NULL -- of its TriggerCreated
) STRICT;

CREATE TABLE view_schedules (
    name         TEXT    PRIMARY KEY,
    id           TEXT    NOT NULL,
    spec         TEXT    NOT NULL,
    tz           TEXT    NOT NULL,
    pipeline     TEXT    NOT NULL,
    owner        TEXT    NOT NULL,
    provider     TEXT    NOT NULL,
    room         TEXT    NOT NULL,
    missed       TEXT    NOT NULL, -- skip or run-once
    paused       INTEGER NOT NULL,
    last_tick    INTEGER,          -- the last tick decided, skipped or abandoned
    last_outcome TEXT    NOT NULL, -- decided, late, skipped N, abandoned
    last_request TEXT    NOT NULL, -- the last tick's request id
    created_by   TEXT    NOT NULL,
    created_at   INTEGER,
    position     INTEGER NOT NULL -- of its ScheduleAdded
) STRICT;

-- +goose Down
DROP TABLE view_schedules;
DROP TABLE view_triggers;
