-- The export stream's cursors (adapters/export): per destination, the
-- last position the destination acknowledged, with its hash and time, and
-- the last failure to deliver. A destination resumes after its position.
-- +goose Up
CREATE TABLE export_cursors (
    destination    text   PRIMARY KEY,
    position       bigint NOT NULL,
    hash           text   NOT NULL,
    recorded_at    bigint NOT NULL, -- unix microseconds of the event at position (0: none)
    acked_at       bigint NOT NULL, -- unix microseconds of the acknowledgement (0: none yet)
    last_error     text   NOT NULL,
    last_error_at  bigint NOT NULL  -- unix microseconds (0: no failure since the last delivery)
);

-- +goose Down
DROP TABLE export_cursors;
