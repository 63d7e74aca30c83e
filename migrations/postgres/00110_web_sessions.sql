-- Web sessions (adapters/webui SQLSessions), shared by every server on the
-- database, so a restart logs nobody out and a session opened on one server
-- works on the others. A row is keyed by the SHA-256 of the session's
-- cookie; the token it logged in with, its CSRF token and the text of its
-- console commands are sealed (AES-GCM) under a key derived from the cookie
-- (HKDF-SHA256), so the tables alone yield neither a usable cookie nor a
-- token. Times are unix microseconds.
-- +goose Up
CREATE TABLE web_sessions (
    id_hash      bytea  PRIMARY KEY,
    user_id      text   NOT NULL, -- bounds each user's sessions
    sealed_token bytea  NOT NULL,
    sealed_csrf  bytea  NOT NULL,
    created_us   bigint NOT NULL,
    seen_us      bigint NOT NULL  -- updated at most once a minute
);
CREATE INDEX web_sessions_user ON web_sessions (user_id, seen_us);
CREATE INDEX web_sessions_seen ON web_sessions (seen_us);
CREATE INDEX web_sessions_created ON web_sessions (created_us);

-- The console's scrollback: each session's last 50 commands, in the order
-- they were stored (seq).
CREATE TABLE web_session_commands (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_hash bytea  NOT NULL REFERENCES web_sessions (id_hash) ON DELETE CASCADE,
    request_id   text   NOT NULL,
    sealed_text  bytea  NOT NULL,
    at_us        bigint NOT NULL
);
CREATE INDEX web_session_commands_session ON web_session_commands (session_hash, seq);

-- +goose Down
DROP TABLE web_session_commands;
DROP TABLE web_sessions;
