-- The event log: the system of record. data and metadata are `json`, not
-- `jsonb`, because the hash chain covers the exact stored bytes and jsonb
-- rewrites text.
-- +goose Up
CREATE TABLE events (
    position    bigint      PRIMARY KEY,
    stream_id   text        NOT NULL,
    version     bigint      NOT NULL,
    id          uuid        NOT NULL UNIQUE,
    type        text        NOT NULL,
    data        json        NOT NULL,
    metadata    json        NOT NULL,
    recorded_at timestamptz NOT NULL,
    prev_hash   bytea       NOT NULL,
    hash        bytea       NOT NULL,
    UNIQUE (stream_id, version)
);

-- Append-only by construction: changing history needs a deliberate
-- ALTER TABLE ... DISABLE TRIGGER, and even then `logbook audit verify` finds it.
-- +goose StatementBegin
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events is append-only: % is not allowed', TG_OP;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

-- +goose Down
DROP TABLE events;
DROP FUNCTION events_append_only();
