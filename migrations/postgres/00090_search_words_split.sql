-- search: words as SQLite's unicode61 reads them. The default parser read
-- `web-1234` as `web` and `-1234` (a signed integer) and `10.0.3.7` as one
-- host name, so the terms `1234` and `3` were never found; and a term the
-- index never holds is the worst search there is, since the planner walks
-- every document newest first looking for it. ASCII punctuation becomes a
-- space before the parser reads the text.
-- +goose Up
DROP INDEX view_search_docs_words;
ALTER TABLE view_search_docs DROP COLUMN words;
ALTER TABLE view_search_docs ADD COLUMN words tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', regexp_replace(body, '[[:punct:]]', ' ', 'g'))) STORED;
CREATE INDEX view_search_docs_words ON view_search_docs USING gin (words);
ANALYZE view_search_docs;

-- +goose Down
DROP INDEX view_search_docs_words;
ALTER TABLE view_search_docs DROP COLUMN words;
ALTER TABLE view_search_docs ADD COLUMN words tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED;
CREATE INDEX view_search_docs_words ON view_search_docs USING gin (words);
