-- search: the command of every document (a run's, bundle:command; a
-- request's own text, its stages' commands separated by spaces), so a
-- search filtered to a command checks each document it walks, where
-- building the set of the command's runs read some 28,000 of them from
-- all over the table (0.7 to 2 s at 1,000,000 runs). The view is emptied
-- and its checkpoint set to 0 as in 00120: the next start folds the log
-- into it again.
-- +goose Up
TRUNCATE view_search_docs, view_search_runs;
ALTER TABLE view_search_docs ADD COLUMN command TEXT NOT NULL DEFAULT '';
ALTER TABLE view_search_runs ADD COLUMN command TEXT NOT NULL DEFAULT '';
UPDATE checkpoints SET position = 0 WHERE name = 'search';

-- +goose Down
ALTER TABLE view_search_runs DROP COLUMN command;
ALTER TABLE view_search_docs DROP COLUMN command;
