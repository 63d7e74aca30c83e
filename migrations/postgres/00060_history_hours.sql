-- history: hourly roll-ups of the requests and runs, for the dashboard.
-- The history view keeps them as it writes its rows (each row's old key
-- counted out, its new one counted in), so the dashboard sums a few rows
-- per hour however many requests and runs there are. Hours are unix
-- microseconds at the start of the UTC hour of received_at/requested_at.
-- +goose Up
CREATE TABLE view_history_request_hours (
    hour     bigint NOT NULL,
    username TEXT    NOT NULL,
    status   TEXT    NOT NULL,
    requests bigint NOT NULL,
    PRIMARY KEY (hour, username, status)
);

-- duration_bucket is projections.DurationBucket(duration_ms): the
-- milliseconds below 16 as they are, then eight buckets per doubling
-- (12.5% wide), up to 239; -1 when the run has no duration yet.
CREATE TABLE view_history_run_hours (
    hour            bigint NOT NULL,
    command         TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    duration_bucket bigint NOT NULL,
    runs            bigint NOT NULL,
    PRIMARY KEY (hour, command, status, duration_bucket)
);

-- A database whose history view is already built gets its roll-ups from
-- its rows, as the view would have written them.
INSERT INTO view_history_request_hours (hour, username, status, requests)
SELECT received_at - received_at % 3600000000, username, status, count(*)
FROM view_history_requests WHERE received_at IS NOT NULL
GROUP BY received_at - received_at % 3600000000, username, status;

INSERT INTO view_history_run_hours (hour, command, status, duration_bucket, runs)
SELECT hour, command, status, duration_bucket, count(*) FROM (
    SELECT requested_at - requested_at % 3600000000 AS hour, command, status,
    -- duration-bucket begin
    CASE
        WHEN duration_ms IS NULL THEN -1
        WHEN duration_ms < 0 THEN 0
        WHEN duration_ms < 16 THEN duration_ms
        WHEN duration_ms < 32 THEN 16 + (duration_ms - 16) / 2
        WHEN duration_ms < 64 THEN 24 + (duration_ms - 32) / 4
        WHEN duration_ms < 128 THEN 32 + (duration_ms - 64) / 8
        WHEN duration_ms < 256 THEN 40 + (duration_ms - 128) / 16
        WHEN duration_ms < 512 THEN 48 + (duration_ms - 256) / 32
        WHEN duration_ms < 1024 THEN 56 + (duration_ms - 512) / 64
        WHEN duration_ms < 2048 THEN 64 + (duration_ms - 1024) / 128
        WHEN duration_ms < 4096 THEN 72 + (duration_ms - 2048) / 256
        WHEN duration_ms < 8192 THEN 80 + (duration_ms - 4096) / 512
        WHEN duration_ms < 16384 THEN 88 + (duration_ms - 8192) / 1024
        WHEN duration_ms < 32768 THEN 96 + (duration_ms - 16384) / 2048
        WHEN duration_ms < 65536 THEN 104 + (duration_ms - 32768) / 4096
        WHEN duration_ms < 131072 THEN 112 + (duration_ms - 65536) / 8192
        WHEN duration_ms < 262144 THEN 120 + (duration_ms - 131072) / 16384
        WHEN duration_ms < 524288 THEN 128 + (duration_ms - 262144) / 32768
        WHEN duration_ms < 1048576 THEN 136 + (duration_ms - 524288) / 65536
        WHEN duration_ms < 2097152 THEN 144 + (duration_ms - 1048576) / 131072
        WHEN duration_ms < 4194304 THEN 152 + (duration_ms - 2097152) / 262144
        WHEN duration_ms < 8388608 THEN 160 + (duration_ms - 4194304) / 524288
        WHEN duration_ms < 16777216 THEN 168 + (duration_ms - 8388608) / 1048576
        WHEN duration_ms < 33554432 THEN 176 + (duration_ms - 16777216) / 2097152
        WHEN duration_ms < 67108864 THEN 184 + (duration_ms - 33554432) / 4194304
        WHEN duration_ms < 134217728 THEN 192 + (duration_ms - 67108864) / 8388608
        WHEN duration_ms < 268435456 THEN 200 + (duration_ms - 134217728) / 16777216
        WHEN duration_ms < 536870912 THEN 208 + (duration_ms - 268435456) / 33554432
        WHEN duration_ms < 1073741824 THEN 216 + (duration_ms - 536870912) / 67108864
        WHEN duration_ms < 2147483648 THEN 224 + (duration_ms - 1073741824) / 134217728
        WHEN duration_ms < 4294967296 THEN 232 + (duration_ms - 2147483648) / 268435456
        ELSE 239
    END
    -- duration-bucket end
    AS duration_bucket
    FROM view_history_runs WHERE requested_at IS NOT NULL
) AS runs
GROUP BY hour, command, status, duration_bucket;

-- +goose Down
DROP TABLE view_history_run_hours;
DROP TABLE view_history_request_hours;
