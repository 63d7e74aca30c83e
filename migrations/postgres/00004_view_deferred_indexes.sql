-- Secondary indexes of view tables that a rebuild from position 0 dropped,
-- with the statement that recreates each. Filling an unindexed table and
-- building its indexes once at the end is several times faster than
-- keeping them current row by row. The rebuild drops the indexes in the
-- transaction that empties the view and resets its checkpoint, and
-- recreates them (deleting their rows here) when it has caught up; a runner
-- that opens a view with rows here (a rebuild that stopped half way)
-- recreates them first. Unique indexes are never dropped: upserts rely on
-- them.
-- +goose Up
CREATE TABLE view_deferred_indexes (
    name       text PRIMARY KEY,
    table_name text NOT NULL,
    ddl        text NOT NULL
);

-- +goose Down
DROP TABLE view_deferred_indexes;
