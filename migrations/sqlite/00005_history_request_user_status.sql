-- One user's requests with one status, newest first ("my denied
-- requests"), as 00004 did for runs. With only (username, position) and
-- (status, position) the planner either walks the user's requests of every
-- status or (Postgres) ANDs two bitmaps and sorts: 17-24 ms over
-- 1,000,000 runs for a rare status, however few rows the page has. These
-- answer it with one range scan.
-- +goose Up
CREATE INDEX view_history_requests_username_status ON view_history_requests (username, status, position);
CREATE INDEX view_history_requests_user_status ON view_history_requests (user_id, status, position);
-- Statistics for the new indexes now, not at the views' next refresh: a
-- database analyzed before this migration has rows for the other indexes
-- only, and until then SQLite would answer "one user's requests" from
-- (username, status, position) and sort them all, instead of reading
-- (username, position) in order. A bounded sample, as the views' refresh
-- takes: milliseconds however big the table is.
PRAGMA analysis_limit = 2000;
ANALYZE view_history_requests;

-- +goose Down
DROP INDEX view_history_requests_user_status;
DROP INDEX view_history_requests_username_status;
