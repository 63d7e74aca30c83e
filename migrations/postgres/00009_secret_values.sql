-- The values of secrets, outside the event log: each encrypted with
-- AES-256-GCM under the key named by key_id (a fingerprint; the key itself
-- lives in LOGBOOK_SECRET_KEY_FILE, never here), with a random nonce. The
-- log records only a secret's name, layer and version (SecretSet).
-- +goose Up
CREATE TABLE secret_values (
    bundle     text    NOT NULL,
    layer      text    NOT NULL,
    name       text    NOT NULL,
    version    integer NOT NULL,
    key_id     text    NOT NULL,
    nonce      bytea   NOT NULL,
    ciphertext bytea   NOT NULL,
    PRIMARY KEY (bundle, layer, name, version)
);

-- +goose Down
DROP TABLE secret_values;
