-- Views built from the event log by projections/. Every view can be emptied
-- and rebuilt from position 0; times are unix microseconds and booleans 0
-- or 1, so one SQL text serves both dialects and a rebuild compares exactly.
-- +goose Up

-- One row per consumer of the ordered feed: the last position it applied.
-- A view advances its row in the same transaction as its rows.
CREATE TABLE checkpoints (
    name     TEXT   PRIMARY KEY,
    position INTEGER NOT NULL
) STRICT;

-- history: one row per request.
CREATE TABLE view_history_requests (
    request_id  TEXT    PRIMARY KEY,
    position    INTEGER  NOT NULL, -- of RequestReceived (or the first event seen)
    adapter     TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    room        TEXT    NOT NULL,
    chat_user   TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    thread      TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    username    TEXT    NOT NULL,
    commands    TEXT    NOT NULL, -- the stages' commands, space-separated
    status      TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    runs        INTEGER  NOT NULL,
    received_at INTEGER,
    ended_at    INTEGER,
    duration_ms INTEGER
) STRICT;
CREATE INDEX view_history_requests_position ON view_history_requests (position);
CREATE INDEX view_history_requests_user ON view_history_requests (user_id, position);
CREATE INDEX view_history_requests_username ON view_history_requests (username, position);
CREATE INDEX view_history_requests_status ON view_history_requests (status, position);
CREATE INDEX view_history_requests_adapter ON view_history_requests (adapter, position);
CREATE INDEX view_history_requests_room ON view_history_requests (room, position);
CREATE INDEX view_history_requests_received ON view_history_requests (received_at, position);

-- history: the commands of each request, one row per stage, for the
-- command filter.
CREATE TABLE view_history_request_commands (
    request_id TEXT   NOT NULL,
    stage      INTEGER NOT NULL,
    command    TEXT   NOT NULL,
    position   INTEGER NOT NULL, -- the request's position
    PRIMARY KEY (request_id, stage)
) STRICT;
CREATE INDEX view_history_request_commands_command ON view_history_request_commands (command, position);

-- history: one row per run.
CREATE TABLE view_history_runs (
    run_id       TEXT    PRIMARY KEY,
    position     INTEGER  NOT NULL, -- of RunRequested (or the first event seen)
    request_id   TEXT    NOT NULL,
    stage        INTEGER  NOT NULL,
    bundle       TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    command      TEXT    NOT NULL, -- bundle:command
    image        TEXT    NOT NULL,
    image_digest TEXT    NOT NULL,
    container_id TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    exit_code    INTEGER,
    oom_killed   INTEGER NOT NULL,
    signal       TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    username     TEXT    NOT NULL,
    adapter      TEXT    NOT NULL,
    room         TEXT    NOT NULL,
    truncated    INTEGER NOT NULL,
    requested_at INTEGER,
    started_at   INTEGER,
    ended_at     INTEGER,
    duration_ms  INTEGER
) STRICT;
CREATE INDEX view_history_runs_position ON view_history_runs (position);
CREATE INDEX view_history_runs_user ON view_history_runs (user_id, position);
CREATE INDEX view_history_runs_username ON view_history_runs (username, position);
CREATE INDEX view_history_runs_command ON view_history_runs (command, position);
CREATE INDEX view_history_runs_status ON view_history_runs (status, position);
CREATE INDEX view_history_runs_adapter ON view_history_runs (adapter, position);
CREATE INDEX view_history_runs_room ON view_history_runs (room, position);
CREATE INDEX view_history_runs_requested ON view_history_runs (requested_at, position);
CREATE INDEX view_history_runs_request ON view_history_runs (request_id);

-- transcripts: every output chunk, exact bytes, and when each run started.
CREATE TABLE view_transcript_chunks (
    run_id   TEXT   NOT NULL,
    seq      INTEGER NOT NULL,
    stream   TEXT   NOT NULL,
    bytes    BLOB  NOT NULL,
    at       INTEGER NOT NULL, -- the producer's clock
    position INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
) STRICT;
CREATE TABLE view_transcript_runs (
    run_id              TEXT PRIMARY KEY,
    started_at          INTEGER, -- ContainerStarted, else RunRequested, as recorded
    truncated_limit     INTEGER,
    truncated_after_seq INTEGER
) STRICT;

-- permissions: the access directory as tables.
CREATE TABLE view_access_users (
    user_id  TEXT    PRIMARY KEY,
    username TEXT    NOT NULL,
    email    TEXT    NOT NULL,
    disabled INTEGER NOT NULL
) STRICT;
CREATE INDEX view_access_users_username ON view_access_users (username);
CREATE TABLE view_access_handles (
    user_id  TEXT NOT NULL,
    provider TEXT NOT NULL,
    handle   TEXT NOT NULL,
    PRIMARY KEY (user_id, provider)
) STRICT;
CREATE INDEX view_access_handles_handle ON view_access_handles (provider, handle);
CREATE TABLE view_access_groups (
    group_name TEXT PRIMARY KEY
) STRICT;
CREATE TABLE view_access_members (
    group_name TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    PRIMARY KEY (group_name, user_id)
) STRICT;
CREATE INDEX view_access_members_user ON view_access_members (user_id);
CREATE TABLE view_access_roles (
    role TEXT PRIMARY KEY
) STRICT;
CREATE TABLE view_access_group_roles (
    group_name TEXT NOT NULL,
    role       TEXT NOT NULL,
    PRIMARY KEY (group_name, role)
) STRICT;
CREATE TABLE view_access_role_permissions (
    role       TEXT NOT NULL,
    permission TEXT NOT NULL,
    PRIMARY KEY (role, permission)
) STRICT;
-- Permissions that exist: declared by an installed bundle, or site ones.
CREATE TABLE view_access_permissions (
    permission TEXT PRIMARY KEY,
    namespace  TEXT NOT NULL
) STRICT;
-- What each user may do: the existing permissions of every role of every
-- group they are in; none while disabled.
CREATE TABLE view_access_user_permissions (
    user_id    TEXT NOT NULL,
    permission TEXT NOT NULL,
    PRIMARY KEY (user_id, permission)
) STRICT;
CREATE INDEX view_access_user_permissions_permission ON view_access_user_permissions (permission);

-- +goose Down
DROP TABLE view_access_user_permissions;
DROP TABLE view_access_permissions;
DROP TABLE view_access_role_permissions;
DROP TABLE view_access_group_roles;
DROP TABLE view_access_roles;
DROP TABLE view_access_members;
DROP TABLE view_access_groups;
DROP TABLE view_access_handles;
DROP TABLE view_access_users;
DROP TABLE view_transcript_runs;
DROP TABLE view_transcript_chunks;
DROP TABLE view_history_runs;
DROP TABLE view_history_request_commands;
DROP TABLE view_history_requests;
DROP TABLE checkpoints;
