-- The values of secrets, outside the event log: each encrypted with
-- AES-256-GCM under the key named by key_id (a fingerprint; the key itself
-- lives in LOGBOOK_SECRET_KEY_FILE, never here), with a random nonce. The
-- log records only a secret's name, layer and version (SecretSet).
-- +goose Up
CREATE TABLE secret_values (
    bundle     TEXT    NOT NULL,
    layer      TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    key_id     TEXT    NOT NULL,
    nonce      BLOB    NOT NULL,
    ciphertext BLOB    NOT NULL,
    PRIMARY KEY (bundle, layer, name, version)
) STRICT;

-- +goose Down
DROP TABLE secret_values;
