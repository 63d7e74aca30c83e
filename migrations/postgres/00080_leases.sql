-- Leases elect one holder per role (the dispatcher, say) among the servers
-- sharing this database, by the database's clock. term grows by one each
-- time a role changes hands; an append made under a lease checks, under the
-- append lock, that its term is still the current one (fencing).
-- +goose Up
CREATE TABLE leases (
    name       text   PRIMARY KEY,
    holder     text   NOT NULL,
    term       bigint NOT NULL,
    expires_ms bigint NOT NULL
);

-- +goose Down
DROP TABLE leases;
