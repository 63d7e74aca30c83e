-- Views built from the event log by projections/. Every view can be emptied
-- and rebuilt from position 0; times are unix microseconds (bigint) so one
-- SQL text serves both dialects and a rebuild compares byte for byte.
-- +goose Up

-- One row per consumer of the ordered feed: the last position it applied.
-- A view advances its row in the same transaction as its rows.
CREATE TABLE checkpoints (
    name     text   PRIMARY KEY,
    position bigint NOT NULL
);

-- history: one row per request.
CREATE TABLE view_history_requests (
    request_id  text    PRIMARY KEY,
    position    bigint  NOT NULL, -- of RequestReceived (or the first event seen)
    adapter     text    NOT NULL,
    message_id  text    NOT NULL,
    room        text    NOT NULL,
    chat_user   text    NOT NULL,
    text        text    NOT NULL,
    thread      text    NOT NULL,
    user_id     text    NOT NULL,
    username    text    NOT NULL,
    commands    text    NOT NULL, -- the stages' commands, space-separated
    status      text    NOT NULL,
    reason      text    NOT NULL,
    runs        bigint  NOT NULL,
    received_at bigint,
    ended_at    bigint,
    duration_ms bigint
);
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
    request_id text   NOT NULL,
    stage      bigint NOT NULL,
    command    text   NOT NULL,
    position   bigint NOT NULL, -- the request's position
    PRIMARY KEY (request_id, stage)
);
CREATE INDEX view_history_request_commands_command ON view_history_request_commands (command, position);

-- history: one row per run.
CREATE TABLE view_history_runs (
    run_id       text    PRIMARY KEY,
    position     bigint  NOT NULL, -- of RunRequested (or the first event seen)
    request_id   text    NOT NULL,
    stage        bigint  NOT NULL,
    bundle       text    NOT NULL,
    version      text    NOT NULL,
    command      text    NOT NULL, -- bundle:command
    image        text    NOT NULL,
    image_digest text    NOT NULL,
    container_id text    NOT NULL,
    status       text    NOT NULL,
    reason       text    NOT NULL,
    exit_code    bigint,
    oom_killed   boolean NOT NULL,
    signal       text    NOT NULL,
    user_id      text    NOT NULL,
    username     text    NOT NULL,
    adapter      text    NOT NULL,
    room         text    NOT NULL,
    truncated    boolean NOT NULL,
    requested_at bigint,
    started_at   bigint,
    ended_at     bigint,
    duration_ms  bigint
);
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
    run_id   text   NOT NULL,
    seq      bigint NOT NULL,
    stream   text   NOT NULL,
    bytes    bytea  NOT NULL,
    at       bigint NOT NULL, -- the producer's clock
    position bigint NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE view_transcript_runs (
    run_id              text PRIMARY KEY,
    started_at          bigint, -- ContainerStarted, else RunRequested, as recorded
    truncated_limit     bigint,
    truncated_after_seq bigint
);

-- permissions: the access directory as tables.
CREATE TABLE view_access_users (
    user_id  text    PRIMARY KEY,
    username text    NOT NULL,
    email    text    NOT NULL,
    disabled boolean NOT NULL
);
CREATE INDEX view_access_users_username ON view_access_users (username);
CREATE TABLE view_access_handles (
    user_id  text NOT NULL,
    provider text NOT NULL,
    handle   text NOT NULL,
    PRIMARY KEY (user_id, provider)
);
CREATE INDEX view_access_handles_handle ON view_access_handles (provider, handle);
CREATE TABLE view_access_groups (
    group_name text PRIMARY KEY
);
CREATE TABLE view_access_members (
    group_name text NOT NULL,
    user_id    text NOT NULL,
    PRIMARY KEY (group_name, user_id)
);
CREATE INDEX view_access_members_user ON view_access_members (user_id);
CREATE TABLE view_access_roles (
    role text PRIMARY KEY
);
CREATE TABLE view_access_group_roles (
    group_name text NOT NULL,
    role       text NOT NULL,
    PRIMARY KEY (group_name, role)
);
CREATE TABLE view_access_role_permissions (
    role       text NOT NULL,
    permission text NOT NULL,
    PRIMARY KEY (role, permission)
);
-- Permissions that exist: declared by an installed bundle, or site ones.
CREATE TABLE view_access_permissions (
    permission text PRIMARY KEY,
    namespace  text NOT NULL
);
-- What each user may do: the existing permissions of every role of every
-- group they are in; none while disabled.
CREATE TABLE view_access_user_permissions (
    user_id    text NOT NULL,
    permission text NOT NULL,
    PRIMARY KEY (user_id, permission)
);
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
