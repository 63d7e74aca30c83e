-- One user's runs with one status, newest first ("my failed runs") is the
-- commonest combined filter. With only (username, position) a page of it
-- walks the user's runs of every status: for "failed", about nine skipped
-- for each one kept, each a row read from the table. These indexes answer
-- it with one range scan.
-- +goose Up
CREATE INDEX view_history_runs_username_status ON view_history_runs (username, status, position);
CREATE INDEX view_history_runs_user_status ON view_history_runs (user_id, status, position);

-- +goose Down
DROP INDEX view_history_runs_user_status;
DROP INDEX view_history_runs_username_status;
