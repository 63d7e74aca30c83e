-- search: the command of every document (a run's, bundle:command; a
-- request's own text, its stages' commands separated by spaces), so a
-- search filtered to a command checks each document it walks without a
-- lookup of its run or its request's commands. The view is emptied and
-- its checkpoint set to 0 as in 00120: the next start folds the log into
-- it again.
-- +goose Up
INSERT INTO view_search_words (view_search_words) VALUES ('delete-all');
INSERT INTO view_search_trigrams (view_search_trigrams) VALUES ('delete-all');
DROP TRIGGER view_search_docs_unindexed;
DELETE FROM view_search_docs;
DELETE FROM view_search_runs;
-- +goose StatementBegin
CREATE TRIGGER view_search_docs_unindexed AFTER DELETE ON view_search_docs BEGIN
    INSERT INTO view_search_words (view_search_words, rowid, body) VALUES ('delete', old.position, old.body);
    INSERT INTO view_search_trigrams (view_search_trigrams, rowid, body) VALUES ('delete', old.position, old.body);
END;
-- +goose StatementEnd
ALTER TABLE view_search_docs ADD COLUMN command TEXT NOT NULL DEFAULT '';
ALTER TABLE view_search_runs ADD COLUMN command TEXT NOT NULL DEFAULT '';
UPDATE checkpoints SET position = 0 WHERE name = 'search';

-- +goose Down
ALTER TABLE view_search_runs DROP COLUMN command;
ALTER TABLE view_search_docs DROP COLUMN command;
