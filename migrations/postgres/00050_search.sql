-- search: the text people typed, the commands and arguments that ran, and
-- what they printed, indexed for full-text search (projections/search.go).
-- A document is one piece of text from one event, keyed by that event's
-- position, so a rebuild gives every document the same key and a page
-- ordered by it is newest first. words (a tsvector with a GIN index) finds
-- terms; a pg_trgm GIN index on body finds substrings such as addresses
-- and ids (ILIKE).
-- +goose Up
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

CREATE TABLE view_search_docs (
    position   BIGINT PRIMARY KEY, -- of the event the text came in
    request_id TEXT   NOT NULL,
    run_id     TEXT   NOT NULL,    -- '' for the request's own text
    kind       TEXT   NOT NULL,    -- request, command or output
    line       BIGINT NOT NULL,    -- output: the line (1-based) the text starts on; else 0
    body       TEXT   NOT NULL,
    words      tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED
);
CREATE INDEX view_search_docs_words ON view_search_docs USING gin (words);
CREATE INDEX view_search_docs_trigrams ON view_search_docs USING gin (body public.gin_trgm_ops);
-- One user's documents: with a user filter and a common word, walking the
-- user's requests and their documents beats gathering every match of the
-- word (42 ms to 2 ms at 20,000 runs).
CREATE INDEX view_search_docs_request ON view_search_docs (request_id);

-- search: a run's output not yet indexed (after its last newline), and
-- where it stands, so output is indexed in whole lines as it arrives.
CREATE TABLE view_search_runs (
    run_id     TEXT   PRIMARY KEY,
    request_id TEXT   NOT NULL,
    last_seq   BIGINT NOT NULL, -- the last chunk folded (-1 before any)
    line       BIGINT NOT NULL, -- the line the tail starts on
    tail       BYTEA  NOT NULL,
    pending    BYTEA  NOT NULL  -- chunks recorded ahead of their turn (projections/search.go)
);

-- +goose Down
DROP TABLE view_search_runs;
DROP TABLE view_search_docs;
DELETE FROM checkpoints WHERE name = 'search';
