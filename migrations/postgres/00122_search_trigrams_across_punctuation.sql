-- search: substrings found by trigrams that run across punctuation.
-- pg_trgm reads words of letters and digits only, so `10.0.10.188` was
-- the trigrams of `10`, `0` and `188`, found together in some 21,000
-- documents of 2,900,000, each read from the table to check it (0.7 to
-- 0.9 s). Indexed with the marks that join the parts of addresses, ids,
-- paths and key=value pairs (. : = - / _ , @) read as `q`, the substring
-- is one word, `10q0q10q188`, whose trigrams (`q10`, `q18`) narrow it to
-- some 4,000; the text itself is still checked with ILIKE
-- (projections/search_query.go writes the same expression). Nested
-- replace, not translate: the index's expression is computed again for
-- every candidate, and translate over all 32 marks cost 24 µs a document,
-- ten times ILIKE's.
-- +goose Up
DROP INDEX view_search_docs_trigrams;
CREATE INDEX view_search_docs_trigrams ON view_search_docs USING gin
    ((replace(replace(replace(replace(replace(replace(replace(replace(body, '.', 'q'), ':', 'q'), '=', 'q'), '-', 'q'), '/', 'q'), '_', 'q'), ',', 'q'), '@', 'q')) public.gin_trgm_ops);
ANALYZE view_search_docs;

-- +goose Down
DROP INDEX view_search_docs_trigrams;
CREATE INDEX view_search_docs_trigrams ON view_search_docs USING gin (body public.gin_trgm_ops);
