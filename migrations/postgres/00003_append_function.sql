-- logbook_append inserts a batch of events in one round trip, but only if
-- nothing changed since the caller's last commit: under the append lock the
-- head must still be p_head, every stream must be at the version the caller
-- assumed (-1 for none), and no id may be stored. Otherwise it writes
-- nothing and says why; the caller then takes the locked path. Hashes are
-- computed by the caller (domain/eventstore.ChainHash), so there is one
-- definition of the chain. The function is VOLATILE, so each statement after
-- the lock takes a fresh snapshot and sees the previous holder's commit.
-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION logbook_append(
    p_lock bigint, p_head bigint, p_streams text[], p_versions bigint[],
    p_position bigint[], p_stream text[], p_version bigint[], p_id uuid[], p_type text[],
    p_data text[], p_metadata text[], p_recorded_at timestamptz[], p_prev_hash bytea[], p_hash bytea[],
    p_channel text
) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    current_head bigint;
    moved text;
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock);
    SELECT coalesce((SELECT position FROM events ORDER BY position DESC LIMIT 1), 0) INTO current_head;
    IF current_head <> p_head THEN
        RETURN 'the head moved from ' || p_head || ' to ' || current_head;
    END IF;
    SELECT s.stream_id INTO moved
    FROM unnest(p_streams, p_versions) AS s(stream_id, version)
    WHERE coalesce((SELECT e.version FROM events e WHERE e.stream_id = s.stream_id ORDER BY e.version DESC LIMIT 1), -1) <> s.version
    LIMIT 1;
    IF moved IS NOT NULL THEN
        RETURN 'stream ' || moved || ' moved';
    END IF;
    IF EXISTS (SELECT 1 FROM events WHERE id = ANY(p_id)) THEN
        RETURN 'an event id is already stored';
    END IF;
    INSERT INTO events (position, stream_id, version, id, type, data, metadata, recorded_at, prev_hash, hash)
    SELECT p, s, v, i, t, d::json, m::json, r, ph, h
    FROM unnest(p_position, p_stream, p_version, p_id, p_type, p_data, p_metadata, p_recorded_at, p_prev_hash, p_hash)
        AS u(p, s, v, i, t, d, m, r, ph, h);
    PERFORM pg_notify(p_channel, p_position[array_length(p_position, 1)]::text);
    RETURN 'ok';
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION logbook_append(bigint, bigint, text[], bigint[], bigint[], text[], bigint[], uuid[], text[], text[], text[], timestamptz[], bytea[], bytea[], text);
