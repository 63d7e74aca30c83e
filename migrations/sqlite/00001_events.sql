-- The event log: the system of record. data and metadata are the exact JSON
-- bytes the hash chain covers; recorded_at is UTC text with microseconds.
-- +goose Up
CREATE TABLE events (
    position    INTEGER PRIMARY KEY,
    stream_id   TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    id          TEXT    NOT NULL UNIQUE,
    type        TEXT    NOT NULL,
    data        BLOB    NOT NULL,
    metadata    BLOB    NOT NULL,
    recorded_at TEXT    NOT NULL,
    prev_hash   BLOB    NOT NULL,
    hash        BLOB    NOT NULL,
    UNIQUE (stream_id, version)
) STRICT;

-- Append-only by construction: changing history needs a deliberate DROP
-- TRIGGER, and even then `logbook audit verify` finds it.
-- +goose StatementBegin
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events is append-only: UPDATE is not allowed');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events is append-only: DELETE is not allowed');
END;
-- +goose StatementEnd

-- +goose Down
DROP TABLE events;
