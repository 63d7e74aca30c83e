-- search: one request's documents. A search with a user filter gathers the
-- user's documents from the user's requests and walks the full-text index
-- keeping only those (projections/search_query.go): without the index, a
-- common word with a user's filter read some 200 documents for each hit it
-- kept. Postgres has had the same index since 00050. ANALYZE as in 00005,
-- so the planner knows it at once.
-- +goose Up
CREATE INDEX view_search_docs_request ON view_search_docs (request_id);
PRAGMA analysis_limit = 2000;
ANALYZE view_search_docs;

-- +goose Down
DROP INDEX view_search_docs_request;
