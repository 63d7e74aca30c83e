-- The views file: everything Logbook derives from the event log, in a
-- SQLite file of its own beside it (<database>-views), so that writing a
-- view never holds the one write lock the log's appends wait for
-- (docs/ARCHITECTURE.md, "The views file"). All of it can be emptied and
-- folded again from the log: deleting the file loses nothing.
--
-- The tables are those the main file's migrations 00002 to 00121 made, as
-- they stood at 00121 (their history and the reasons for their indexes
-- are there); the main file's 00130 drops them. Later changes to a view's
-- tables go here, numbered on from this file.
-- +goose Up

-- Which log these views were folded from: the store's identity
-- (store_identity in the main file). A views file beside a different log
-- is emptied when the server opens it (adapters/sqlite).
CREATE TABLE view_origin (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    store_id TEXT    NOT NULL
) STRICT;

-- One row per view: the last position it applied, advanced in the same
-- transaction as its rows.
CREATE TABLE view_checkpoints (
    name     TEXT    PRIMARY KEY,
    position INTEGER NOT NULL
) STRICT;

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
CREATE TABLE view_history_request_commands (
    request_id TEXT   NOT NULL,
    stage      INTEGER NOT NULL,
    command    TEXT   NOT NULL,
    position   INTEGER NOT NULL, -- the request's
    user_id    TEXT    NOT NULL,
    username   TEXT    NOT NULL,
    PRIMARY KEY (request_id, stage)
) STRICT;
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
CREATE TABLE view_access_users (
    user_id  TEXT    PRIMARY KEY,
    username TEXT    NOT NULL,
    email    TEXT    NOT NULL,
    disabled INTEGER NOT NULL
) STRICT;
CREATE TABLE view_access_handles (
    user_id  TEXT NOT NULL,
    provider TEXT NOT NULL,
    handle   TEXT NOT NULL,
    PRIMARY KEY (user_id, provider)
) STRICT;
CREATE TABLE view_access_groups (
    group_name TEXT PRIMARY KEY
) STRICT;
CREATE TABLE view_access_members (
    group_name TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    PRIMARY KEY (group_name, user_id)
) STRICT;
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
CREATE TABLE view_access_permissions (
    permission TEXT PRIMARY KEY,
    namespace  TEXT NOT NULL
) STRICT;
CREATE TABLE view_access_user_permissions (
    user_id    TEXT NOT NULL,
    permission TEXT NOT NULL,
    PRIMARY KEY (user_id, permission)
) STRICT;
CREATE TABLE view_deferred_indexes (
    name       TEXT PRIMARY KEY,
    table_name TEXT NOT NULL,
    ddl        TEXT NOT NULL
) STRICT;
CREATE TABLE view_approvals (
    request_id   TEXT    PRIMARY KEY,
    position     INTEGER NOT NULL, -- of ApprovalRequested
    requester_id TEXT    NOT NULL,
    requester    TEXT    NOT NULL,
    text         TEXT    NOT NULL, -- what runs once approved
    needs        TEXT    NOT NULL, -- "2 approvals from deploy:approver"
    approvers    TEXT    NOT NULL, -- who could approve when asked, comma-separated
    status       TEXT    NOT NULL, -- pending, approved, rejected, expired
    approved_by  TEXT    NOT NULL, -- whose approvals counted, comma-separated, in order
    rejected_by  TEXT    NOT NULL,
    reason       TEXT    NOT NULL, -- the rejection's
    requested_at INTEGER,
    expires_at   INTEGER,
    decided_at   INTEGER
) STRICT;
CREATE TABLE view_approval_permissions (
    request_id TEXT    NOT NULL,
    permission TEXT    NOT NULL,
    needed     INTEGER NOT NULL,
    position   INTEGER NOT NULL, -- the request's
    PRIMARY KEY (request_id, permission)
) STRICT;
CREATE TABLE view_approval_answers (
    request_id TEXT    NOT NULL,
    position   INTEGER NOT NULL, -- of the judgement
    username   TEXT    NOT NULL,
    verdict    TEXT    NOT NULL, -- approve or reject
    outcome    TEXT    NOT NULL, -- counted, refused or rejected
    reason     TEXT    NOT NULL, -- the approver's
    refusal    TEXT    NOT NULL, -- why it did not count
    at         INTEGER,
    PRIMARY KEY (request_id, position)
) STRICT;
CREATE TABLE view_triggers (
    name             TEXT    PRIMARY KEY,
    pipeline         TEXT    NOT NULL,
    run_as           TEXT    NOT NULL,
    provider         TEXT    NOT NULL, -- the chat provider its redirects post on
    timeout_ms       INTEGER NOT NULL,
    require_hmac     INTEGER NOT NULL,
    signature_header TEXT    NOT NULL,
    has_token        INTEGER NOT NULL,
    secret_version   INTEGER NOT NULL,
    enabled          INTEGER NOT NULL,
    created_by       TEXT    NOT NULL,
    created_at       INTEGER,
    position         INTEGER NOT NULL -- of its TriggerCreated
) STRICT;
CREATE TABLE view_schedules (
    name         TEXT    PRIMARY KEY,
    id           TEXT    NOT NULL,
    spec         TEXT    NOT NULL,
    tz           TEXT    NOT NULL,
    pipeline     TEXT    NOT NULL,
    owner        TEXT    NOT NULL,
    provider     TEXT    NOT NULL,
    room         TEXT    NOT NULL,
    missed       TEXT    NOT NULL, -- skip or run-once
    paused       INTEGER NOT NULL,
    last_tick    INTEGER,          -- the last tick decided, skipped or abandoned
    last_outcome TEXT    NOT NULL, -- decided, late, skipped N, abandoned
    last_request TEXT    NOT NULL, -- the last tick's request id
    created_by   TEXT    NOT NULL,
    created_at   INTEGER,
    position     INTEGER NOT NULL -- of its ScheduleAdded
) STRICT;
CREATE TABLE merkle_tree_packs (
    leaf   INTEGER PRIMARY KEY,
    hashes BLOB    NOT NULL
) STRICT;
CREATE TABLE merkle_tree_size (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    size     INTEGER NOT NULL
) STRICT;
CREATE TABLE view_search_docs (
    position   INTEGER PRIMARY KEY, -- of the event the text came in
    request_id TEXT    NOT NULL,
    run_id     TEXT    NOT NULL,    -- '' for the request's own text
    kind       TEXT    NOT NULL,    -- request, command or output
    line       INTEGER NOT NULL,    -- output: the line (1-based) the text starts on; else 0
    body       TEXT    NOT NULL,
    username   TEXT    NOT NULL,
    command    TEXT    NOT NULL
) STRICT;
CREATE TABLE view_search_runs (
    run_id     TEXT    PRIMARY KEY,
    request_id TEXT    NOT NULL,
    last_seq   INTEGER NOT NULL, -- the last chunk folded (-1 before any)
    line       INTEGER NOT NULL, -- the line the tail starts on
    tail       BLOB    NOT NULL,
    pending    BLOB    NOT NULL, -- chunks recorded ahead of their turn (projections/search.go)
    username   TEXT    NOT NULL,
    command    TEXT    NOT NULL
) STRICT;
CREATE VIRTUAL TABLE view_search_words USING fts5(
    body, content = 'view_search_docs', content_rowid = 'position',
    tokenize = 'unicode61 remove_diacritics 0');
CREATE VIRTUAL TABLE view_search_trigrams USING fts5(
    body, content = 'view_search_docs', content_rowid = 'position',
    tokenize = 'trigram');
CREATE TABLE view_history_request_hours (
    hour     INTEGER NOT NULL,
    username TEXT    NOT NULL,
    status   TEXT    NOT NULL,
    requests INTEGER NOT NULL,
    PRIMARY KEY (hour, username, status)
) STRICT;
CREATE TABLE view_history_run_hours (
    hour            INTEGER NOT NULL,
    command         TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    duration_bucket INTEGER NOT NULL,
    runs            INTEGER NOT NULL,
    PRIMARY KEY (hour, command, status, duration_bucket)
) STRICT;
CREATE TABLE view_audit_events (
    position INTEGER PRIMARY KEY,
    type     TEXT    NOT NULL,
    stream   TEXT    NOT NULL,
    actor    TEXT    NOT NULL,
    at       INTEGER NOT NULL, -- recorded_at, unix microseconds
    summary  TEXT    NOT NULL
) STRICT;
CREATE INDEX view_history_requests_position ON view_history_requests (position);
CREATE INDEX view_history_requests_user ON view_history_requests (user_id, position);
CREATE INDEX view_history_requests_username ON view_history_requests (username, position);
CREATE INDEX view_history_requests_status ON view_history_requests (status, position);
CREATE INDEX view_history_requests_adapter ON view_history_requests (adapter, position);
CREATE INDEX view_history_requests_room ON view_history_requests (room, position);
CREATE INDEX view_history_requests_received ON view_history_requests (received_at, position);
CREATE INDEX view_history_request_commands_command ON view_history_request_commands (command, position);
CREATE INDEX view_history_runs_position ON view_history_runs (position);
CREATE INDEX view_history_runs_user ON view_history_runs (user_id, position);
CREATE INDEX view_history_runs_username ON view_history_runs (username, position);
CREATE INDEX view_history_runs_command ON view_history_runs (command, position);
CREATE INDEX view_history_runs_status ON view_history_runs (status, position);
CREATE INDEX view_history_runs_adapter ON view_history_runs (adapter, position);
CREATE INDEX view_history_runs_room ON view_history_runs (room, position);
CREATE INDEX view_history_runs_requested ON view_history_runs (requested_at, position);
CREATE INDEX view_history_runs_request ON view_history_runs (request_id);
CREATE INDEX view_access_users_username ON view_access_users (username);
CREATE INDEX view_access_handles_handle ON view_access_handles (provider, handle);
CREATE INDEX view_access_members_user ON view_access_members (user_id);
CREATE INDEX view_access_user_permissions_permission ON view_access_user_permissions (permission);
CREATE INDEX view_history_runs_username_status ON view_history_runs (username, status, position);
CREATE INDEX view_history_runs_user_status ON view_history_runs (user_id, status, position);
CREATE INDEX view_history_requests_username_status ON view_history_requests (username, status, position);
CREATE INDEX view_history_requests_user_status ON view_history_requests (user_id, status, position);
CREATE INDEX view_history_request_commands_username ON view_history_request_commands (username, command, position);
CREATE INDEX view_history_request_commands_user ON view_history_request_commands (user_id, command, position);
CREATE INDEX view_approvals_position ON view_approvals (position);
CREATE INDEX view_approvals_status ON view_approvals (status, position);
CREATE INDEX view_approvals_requester ON view_approvals (requester, position);
CREATE INDEX view_approval_permissions_permission ON view_approval_permissions (permission, position);
CREATE INDEX view_audit_events_type ON view_audit_events (type, position);
CREATE INDEX view_audit_events_actor ON view_audit_events (actor, position);
CREATE INDEX view_audit_events_at ON view_audit_events (at, position);
CREATE INDEX view_search_docs_request ON view_search_docs (request_id);
CREATE INDEX view_search_docs_username ON view_search_docs (username, position);
-- +goose StatementBegin
CREATE TRIGGER view_search_docs_indexed AFTER INSERT ON view_search_docs BEGIN
    INSERT INTO view_search_words (rowid, body) VALUES (new.position, new.body);
    INSERT INTO view_search_trigrams (rowid, body) VALUES (new.position, new.body);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER view_search_docs_reindexed AFTER UPDATE OF body ON view_search_docs BEGIN
    INSERT INTO view_search_words (view_search_words, rowid, body) VALUES ('delete', old.position, old.body);
    INSERT INTO view_search_trigrams (view_search_trigrams, rowid, body) VALUES ('delete', old.position, old.body);
    INSERT INTO view_search_words (rowid, body) VALUES (new.position, new.body);
    INSERT INTO view_search_trigrams (rowid, body) VALUES (new.position, new.body);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER view_search_docs_unindexed AFTER DELETE ON view_search_docs BEGIN
    INSERT INTO view_search_words (view_search_words, rowid, body) VALUES ('delete', old.position, old.body);
    INSERT INTO view_search_trigrams (view_search_trigrams, rowid, body) VALUES ('delete', old.position, old.body);
END;
-- +goose StatementEnd

-- The Merkle tree over the log starts empty: its maintainer adds every
-- event's leaf.
INSERT INTO merkle_tree_size (only_row, size) VALUES (1, 0);

