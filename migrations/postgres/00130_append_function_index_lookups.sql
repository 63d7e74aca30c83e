-- logbook_append looks events up only by unique keys (the head, a
-- stream's last version, ids), so an index is always the right plan. But
-- PL/pgSQL caches each statement's plan for the connection's life, and a
-- plan made while the log was small chose a sequential scan for the
-- check of ids and kept it as the log grew: in `bench store` that check
-- took 1.6 of the function's 2.0 ms at 25,000 events (docs/benchmarks.md).
-- Without sequential scans inside the function, every plan it caches
-- reads the indexes.
-- +goose Up
ALTER FUNCTION logbook_append(bigint, bigint, text[], bigint[], bigint[], text[], bigint[], uuid[], text[], text[], text[], timestamptz[], bytea[], bytea[], text)
    SET enable_seqscan = off;

-- +goose Down
ALTER FUNCTION logbook_append(bigint, bigint, text[], bigint[], bigint[], text[], bigint[], uuid[], text[], text[], text[], timestamptz[], bytea[], bytea[], text)
    RESET enable_seqscan;
