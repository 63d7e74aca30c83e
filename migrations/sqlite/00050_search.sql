-- search: the text people typed, the commands and arguments that ran, and
-- what they printed, indexed for full-text search (projections/search.go).
-- A document is one piece of text from one event, keyed by that event's
-- position, so a rebuild gives every document the same key and a page
-- ordered by it is newest first. Two FTS5 indexes read the documents as
-- external content: words (unicode61) for terms, trigrams for substrings
-- such as addresses and ids. Triggers keep both in step with the rows.
-- +goose Up
CREATE TABLE view_search_docs (
    position   INTEGER PRIMARY KEY, -- of the event the text came in
    request_id TEXT    NOT NULL,
    run_id     TEXT    NOT NULL,    -- '' for the request's own text
    kind       TEXT    NOT NULL,    -- request, command or output
    line       INTEGER NOT NULL,    -- output: the line (1-based) the text starts on; else 0
    body       TEXT    NOT NULL
) STRICT;

-- search: a run's output not yet indexed (after its last newline), and
-- where it stands, so output is indexed in whole lines as it arrives.
CREATE TABLE view_search_runs (
    run_id     TEXT    PRIMARY KEY,
    request_id TEXT    NOT NULL,
    last_seq   INTEGER NOT NULL, -- the last chunk folded (-1 before any)
    line       INTEGER NOT NULL, -- the line the tail starts on
    tail       BLOB    NOT NULL,
    pending    BLOB    NOT NULL  -- chunks recorded ahead of their turn (projections/search.go)
) STRICT;

CREATE VIRTUAL TABLE view_search_words USING fts5(
    body, content = 'view_search_docs', content_rowid = 'position',
    tokenize = 'unicode61 remove_diacritics 0');
CREATE VIRTUAL TABLE view_search_trigrams USING fts5(
    body, content = 'view_search_docs', content_rowid = 'position',
    tokenize = 'trigram');

-- +goose StatementBegin
CREATE TRIGGER view_search_docs_indexed AFTER INSERT ON view_search_docs BEGIN
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
-- +goose StatementBegin
CREATE TRIGGER view_search_docs_reindexed AFTER UPDATE OF body ON view_search_docs BEGIN
    INSERT INTO view_search_words (view_search_words, rowid, body) VALUES ('delete', old.position, old.body);
    INSERT INTO view_search_trigrams (view_search_trigrams, rowid, body) VALUES ('delete', old.position, old.body);
    INSERT INTO view_search_words (rowid, body) VALUES (new.position, new.body);
    INSERT INTO view_search_trigrams (rowid, body) VALUES (new.position, new.body);
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER view_search_docs_reindexed;
DROP TRIGGER view_search_docs_unindexed;
DROP TRIGGER view_search_docs_indexed;
DROP TABLE view_search_trigrams;
DROP TABLE view_search_words;
DROP TABLE view_search_runs;
DROP TABLE view_search_docs;
DELETE FROM checkpoints WHERE name = 'search';
