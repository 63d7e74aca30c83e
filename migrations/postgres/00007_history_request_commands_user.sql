-- One user's requests with one command, newest first. Driven from
-- (command, position) a page reads the command's requests of every user
-- (some 4,600 for 50 of one user's over 1,000,000 runs); driven from the
-- user's requests it probes the commands of each (some 1,500). With the
-- request's user on each command row, (username, command, position) answers
-- it with one range scan. The projection fills the columns from now on;
-- the UPDATE fills the rows already there.
-- +goose Up
ALTER TABLE view_history_request_commands ADD COLUMN user_id text NOT NULL DEFAULT '';
ALTER TABLE view_history_request_commands ADD COLUMN username text NOT NULL DEFAULT '';
UPDATE view_history_request_commands c SET user_id = r.user_id, username = r.username
    FROM view_history_requests r
    WHERE r.request_id = c.request_id AND (r.user_id <> '' OR r.username <> '');
CREATE INDEX view_history_request_commands_username ON view_history_request_commands (username, command, position);
CREATE INDEX view_history_request_commands_user ON view_history_request_commands (user_id, command, position);

-- +goose Down
DROP INDEX view_history_request_commands_user;
DROP INDEX view_history_request_commands_username;
ALTER TABLE view_history_request_commands DROP COLUMN username;
ALTER TABLE view_history_request_commands DROP COLUMN user_id;
