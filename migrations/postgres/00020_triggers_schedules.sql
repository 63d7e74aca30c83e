-- triggers and schedules: one row per live trigger and schedule, folded
-- from their streams (projections/sources.go).
-- +goose Up
CREATE TABLE view_triggers (
    name             text    PRIMARY KEY,
    pipeline         text    NOT NULL,
    run_as           text    NOT NULL,
    provider         text    NOT NULL, -- the chat provider its redirects post on
    timeout_ms       bigint NOT NULL,
    require_hmac     bigint NOT NULL,
    signature_header text    NOT NULL,
    has_token        bigint NOT NULL,
    secret_version   bigint NOT NULL,
    enabled          bigint NOT NULL,
    created_by       text    NOT NULL,
    created_at       bigint,
    position         bigint NOT NULL -- of its TriggerCreated
);

CREATE TABLE view_schedules (
    name         text    PRIMARY KEY,
    id           text    NOT NULL,
    spec         text    NOT NULL,
    tz           text    NOT NULL,
    pipeline     text    NOT NULL,
    owner        text    NOT NULL,
    provider     text    NOT NULL,
    room         text    NOT NULL,
    missed       text    NOT NULL, -- skip or run-once
    paused       bigint NOT NULL,
    last_tick    bigint,          -- the last tick decided, skipped or abandoned
    last_outcome text    NOT NULL, -- decided, late, skipped N, abandoned
    last_request text    NOT NULL, -- the last tick's request id
    created_by   text    NOT NULL,
    created_at   bigint,
    position     bigint NOT NULL -- of its ScheduleAdded
);

-- +goose Down
DROP TABLE view_schedules;
DROP TABLE view_triggers;
