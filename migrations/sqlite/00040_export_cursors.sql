-- The export stream's cursors (adapters/export): per destination, the
-- last position the destination acknowledged, with its hash and time, and
-- the last failure to deliver. A destination resumes after its position.
-- +goose Up
CREATE TABLE export_cursors (
    destination    TEXT    PRIMARY KEY,
    position       INTEGER NOT NULL,
    hash           TEXT    NOT NULL,
    recorded_at    INTEGER NOT NULL, -- unix microseconds of the event at position (0: none)
    acked_at       INTEGER NOT NULL, -- unix microseconds of the acknowledgement (0: none yet)
    last_error     TEXT    NOT NULL,
    last_error_at  INTEGER NOT NULL  -- unix microseconds (0: no failure since the last delivery)
) STRICT;

-- +goose Down
DROP TABLE export_cursors;
