// Package secretvault is Logbook's own secret source
// (bundleconfig.Vault): each value encrypted with AES-256-GCM under a key
// from a key file, with a random nonce each, in the secret_values table
// beside the events. Rows are bound to their secret (bundle, layer, name,
// version) as the cipher's additional data, so a row moved to another
// secret does not decrypt. The key never enters the database, and nothing
// of a value but its ciphertext does.
package secretvault

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/logbookhq/logbook/domain/bundleconfig"
)

// Config configures a Vault.
type Config struct {
	// Read and Write are the database pools (the store's read and write
	// pools; on SQLite the write pool is its single writer).
	Read, Write *sql.DB
	// Rebind turns a query written with $1, $2 into the dialect's
	// placeholders (nil: as written, for PostgreSQL).
	Rebind func(string) string
	// KeyFile is the key file (LOGBOOK_SECRET_KEY_FILE, or the one made
	// under the data directory).
	KeyFile string
}

// Validate reports what is missing.
func (c Config) Validate() error {
	var errs []error
	if c.Read == nil || c.Write == nil {
		errs = append(errs, errors.New("secret vault config: Read and Write are required"))
	}
	if c.KeyFile == "" {
		errs = append(errs, errors.New("secret vault config: KeyFile is required"))
	}
	return errors.Join(errs...)
}

// Vault keeps secret values encrypted in the database.
type Vault struct {
	cfg Config
	// mu is held for reading by every use of the keys and for writing by
	// a rotation, which changes them and every row.
	mu   sync.RWMutex
	keys []key // current first
}

var _ bundleconfig.Vault = (*Vault)(nil)

// Open loads the key file and returns the vault.
func Open(cfg Config) (*Vault, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Rebind == nil {
		cfg.Rebind = func(q string) string { return q }
	}
	keys, err := readKeyFile(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	return &Vault{cfg: cfg, keys: keys}, nil
}

// KeyID names the key new values are encrypted under.
func (v *Vault) KeyID() string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.keys[0].id
}

func additionalData(ref bundleconfig.SecretRef) []byte {
	return []byte("logbook secret\x00" + ref.Bundle + "\x00" + ref.Layer + "\x00" + ref.Key + "\x00" + strconv.Itoa(ref.Version))
}

func seal(k key, ref bundleconfig.SecretRef, value []byte) (nonce, ciphertext []byte, err error) {
	nonce = make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	return nonce, k.aead.Seal(nil, nonce, value, additionalData(ref)), nil
}

func (v *Vault) open(keyID string, ref bundleconfig.SecretRef, nonce, ciphertext []byte) ([]byte, error) {
	for _, k := range v.keys {
		if k.id != keyID {
			continue
		}
		plain, err := k.aead.Open(nil, nonce, ciphertext, additionalData(ref))
		if err != nil {
			return nil, fmt.Errorf("the stored value of secret %s does not decrypt: it was altered or moved", ref)
		}
		return plain, nil
	}
	return nil, fmt.Errorf("the value of secret %s is encrypted under key %s, which the key file %s does not hold", ref, keyID, v.cfg.KeyFile)
}

// Put implements bundleconfig.Vault.
func (v *Vault) Put(ctx context.Context, ref bundleconfig.SecretRef, value string) error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	k := v.keys[0]
	nonce, ciphertext, err := seal(k, ref, []byte(value))
	if err != nil {
		return err
	}
	_, err = v.cfg.Write.ExecContext(ctx, v.cfg.Rebind(`INSERT INTO secret_values (bundle, layer, name, version, key_id, nonce, ciphertext)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (bundle, layer, name, version) DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext`),
		ref.Bundle, ref.Layer, ref.Key, ref.Version, k.id, nonce, ciphertext)
	if err != nil {
		return fmt.Errorf("store secret %s: %w", ref, err)
	}
	return nil
}

// Reveal implements bundleconfig.Vault.
func (v *Vault) Reveal(ctx context.Context, ref bundleconfig.SecretRef) (string, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var keyID string
	var nonce, ciphertext []byte
	err := v.cfg.Read.QueryRowContext(ctx, v.cfg.Rebind(`SELECT key_id, nonce, ciphertext FROM secret_values
		WHERE bundle = $1 AND layer = $2 AND name = $3 AND version = $4`), ref.Bundle, ref.Layer, ref.Key, ref.Version).Scan(&keyID, &nonce, &ciphertext)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("secret %s: %w", ref, bundleconfig.ErrSecretNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read secret %s: %w", ref, err)
	}
	plain, err := v.open(keyID, ref, nonce, ciphertext)
	if err != nil {
		return "", err
	}
	return string(plain), nil
}

// Delete implements bundleconfig.Vault.
func (v *Vault) Delete(ctx context.Context, ref bundleconfig.SecretRef) error {
	_, err := v.cfg.Write.ExecContext(ctx, v.cfg.Rebind(`DELETE FROM secret_values WHERE bundle = $1 AND layer = $2 AND name = $3 AND version = $4`),
		ref.Bundle, ref.Layer, ref.Key, ref.Version)
	if err != nil {
		return fmt.Errorf("delete secret %s: %w", ref, err)
	}
	return nil
}

// DeleteThrough implements bundleconfig.Vault.
func (v *Vault) DeleteThrough(ctx context.Context, ref bundleconfig.SecretRef) error {
	_, err := v.cfg.Write.ExecContext(ctx, v.cfg.Rebind(`DELETE FROM secret_values WHERE bundle = $1 AND layer = $2 AND name = $3 AND version <= $4`),
		ref.Bundle, ref.Layer, ref.Key, ref.Version)
	if err != nil {
		return fmt.Errorf("delete secret %s: %w", ref, err)
	}
	return nil
}

// Count is how many values the vault holds.
func (v *Vault) Count(ctx context.Context) (int, error) {
	var n int
	err := v.cfg.Read.QueryRowContext(ctx, `SELECT count(*) FROM secret_values`).Scan(&n)
	return n, err
}

// Rotate encrypts every value again under a new key and makes it the only
// one in the key file. The steps keep every value readable whatever stops
// them: the new key is added to the file first (the old one kept), then
// every row is encrypted again in one transaction, and only after its
// commit is the old key dropped from the file. It returns the new key's
// id and how many values it encrypted again. A key file Logbook cannot
// write (one mounted read-only) fails the rotation before anything
// changes.
func (v *Vault) Rotate(ctx context.Context) (string, int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	fresh, err := generateKey()
	if err != nil {
		return "", 0, err
	}
	if err := writeKeyFile(v.cfg.KeyFile, append([]key{fresh}, v.keys...)); err != nil {
		return "", 0, err
	}
	both := append([]key{fresh}, v.keys...)
	n, err := v.reencrypt(ctx, fresh, both)
	if err != nil {
		// The file holds both keys and the rows are as they were: every
		// value reads, and new ones go under the new key.
		v.keys = both
		return "", 0, fmt.Errorf("encrypt the secrets again: %w", err)
	}
	v.keys = []key{fresh}
	if err := writeKeyFile(v.cfg.KeyFile, v.keys); err != nil {
		v.keys = both
		return fresh.id, n, fmt.Errorf("every secret is under the new key, but the old key could not be dropped from the key file: %w", err)
	}
	return fresh.id, n, nil
}

func (v *Vault) reencrypt(ctx context.Context, fresh key, keys []key) (int, error) {
	tx, err := v.cfg.Write.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT bundle, layer, name, version, key_id, nonce, ciphertext FROM secret_values`)
	if err != nil {
		return 0, err
	}
	type row struct {
		ref               bundleconfig.SecretRef
		keyID             string
		nonce, ciphertext []byte
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.ref.Bundle, &r.ref.Layer, &r.ref.Key, &r.ref.Version, &r.keyID, &r.nonce, &r.ciphertext); err != nil {
			rows.Close()
			return 0, err
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	ring := &Vault{cfg: v.cfg, keys: keys}
	for _, r := range all {
		plain, err := ring.open(r.keyID, r.ref, r.nonce, r.ciphertext)
		if err != nil {
			return 0, err
		}
		nonce, ciphertext, err := seal(fresh, r.ref, plain)
		clear(plain)
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, v.cfg.Rebind(`UPDATE secret_values SET key_id = $1, nonce = $2, ciphertext = $3
			WHERE bundle = $4 AND layer = $5 AND name = $6 AND version = $7`),
			fresh.id, nonce, ciphertext, r.ref.Bundle, r.ref.Layer, r.ref.Key, r.ref.Version); err != nil {
			return 0, err
		}
	}
	return len(all), tx.Commit()
}
