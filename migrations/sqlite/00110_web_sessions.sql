-- Web sessions (adapters/webui SQLSessions); see
-- migrations/postgres/00110_web_sessions.sql. SQLite does not enforce the
-- foreign key here (foreign_keys is off): SQLSessions deletes a session's
-- commands with it, in one transaction on the single write connection.
-- +goose Up
CREATE TABLE web_sessions (
    id_hash      BLOB    PRIMARY KEY,
    user_id      TEXT    NOT NULL,
    sealed_token BLOB    NOT NULL,
    sealed_csrf  BLOB    NOT NULL,
    created_us   INTEGER NOT NULL,
    seen_us      INTEGER NOT NULL
) STRICT;
CREATE INDEX web_sessions_user ON web_sessions (user_id, seen_us);
CREATE INDEX web_sessions_seen ON web_sessions (seen_us);
CREATE INDEX web_sessions_created ON web_sessions (created_us);

CREATE TABLE web_session_commands (
    seq          INTEGER PRIMARY KEY,
    session_hash BLOB    NOT NULL REFERENCES web_sessions (id_hash) ON DELETE CASCADE,
    request_id   TEXT    NOT NULL,
    sealed_text  BLOB    NOT NULL,
    at_us        INTEGER NOT NULL
) STRICT;
CREATE INDEX web_session_commands_session ON web_session_commands (session_hash, seq);

-- +goose Down
DROP TABLE web_session_commands;
DROP TABLE web_sessions;
