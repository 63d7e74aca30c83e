package secretvault_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/adapters/postgres"
	"github.com/logbookhq/logbook/adapters/secretvault"
	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain/bundleconfig"
	"github.com/logbookhq/logbook/internal/testenv"
)

const value = "AKIA-the-value-of-a-secret-0001"

type backend struct {
	vault *secretvault.Vault
	store *sqlstore.Store
	// rawDB lists every file of the database, for a raw-bytes search.
	files func() [][]byte
}

// backends opens a fresh store of each kind with a vault on it.
func backends(t *testing.T) map[string]func(t *testing.T) backend {
	return map[string]func(t *testing.T) backend{
		"sqlite": func(t *testing.T) backend {
			dir := t.TempDir()
			s, err := sqlite.OpenWith(context.Background(), filepath.Join(dir, "logbook.db"), sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return backend{vault: openVault(t, s.Store, sqlstore.RebindQuestion), store: s.Store, files: func() [][]byte {
				var all [][]byte
				for _, f := range []string{"logbook.db", "logbook.db-wal"} {
					b, _ := os.ReadFile(filepath.Join(dir, f))
					all = append(all, b)
				}
				return all
			}}
		},
		"postgres": func(t *testing.T) backend {
			s, err := postgres.OpenWith(context.Background(), testenv.PostgresSchema(t), postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return backend{vault: openVault(t, s.Store, nil), store: s.Store}
		},
	}
}

func openVault(t *testing.T, s *sqlstore.Store, rebind func(string) string) *secretvault.Vault {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "secret.key")
	if created, err := secretvault.EnsureKeyFile(keyFile); err != nil || !created {
		t.Fatalf("EnsureKeyFile = %v, %v", created, err)
	}
	v, err := secretvault.Open(secretvault.Config{Read: s.DB(), Write: s.WriteDB(), Rebind: rebind, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var ref = bundleconfig.SecretRef{Bundle: "aws", Layer: "base", Key: "AWS_SECRET", Version: 1}

func TestVaultKeepsValuesEncrypted(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := open(t)
			if err := b.vault.Put(ctx, ref, value); err != nil {
				t.Fatal(err)
			}
			got, err := b.vault.Reveal(ctx, ref)
			if err != nil || got != value {
				t.Fatalf("Reveal = %q, %v", got, err)
			}
			other := ref
			other.Version = 2
			if _, err := b.vault.Reveal(ctx, other); !errors.Is(err, bundleconfig.ErrSecretNotFound) {
				t.Fatalf("Reveal of a version never stored = %v, want ErrSecretNotFound", err)
			}
			// Two puts of one value give two ciphertexts: nonces are random.
			var first, second []byte
			read := func(into *[]byte) {
				if err := b.store.DB().QueryRowContext(ctx, `SELECT ciphertext FROM secret_values WHERE version = 1`).Scan(into); err != nil {
					t.Fatal(err)
				}
			}
			read(&first)
			if err := b.vault.Put(ctx, ref, value); err != nil {
				t.Fatal(err)
			}
			read(&second)
			if bytes.Equal(first, second) || bytes.Contains(first, []byte(value)) {
				t.Fatal("a value was stored in the clear, or twice with the same nonce")
			}
			if b.files != nil {
				for _, f := range b.files() {
					if bytes.Contains(f, []byte(value)) {
						t.Fatal("the database file holds the value in the clear")
					}
				}
			}
		})
	}
}

func TestVaultRefusesARowMovedToAnotherSecret(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := open(t)
			if err := b.vault.Put(ctx, ref, value); err != nil {
				t.Fatal(err)
			}
			if _, err := b.store.WriteDB().ExecContext(ctx, `UPDATE secret_values SET layer = 'user/mallory'`); err != nil {
				t.Fatal(err)
			}
			moved := ref
			moved.Layer = "user/mallory"
			if _, err := b.vault.Reveal(ctx, moved); err == nil || !strings.Contains(err.Error(), "does not decrypt") {
				t.Fatalf("Reveal of a moved row = %v, want a refusal", err)
			}
		})
	}
}

func TestVaultDeletesThroughAVersion(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := open(t)
			for v := 1; v <= 3; v++ {
				r := ref
				r.Version = v
				if err := b.vault.Put(ctx, r, value); err != nil {
					t.Fatal(err)
				}
			}
			two := ref
			two.Version = 2
			if err := b.vault.DeleteThrough(ctx, two); err != nil {
				t.Fatal(err)
			}
			if n, _ := b.vault.Count(ctx); n != 1 {
				t.Fatalf("%d values left, want version 3 alone", n)
			}
		})
	}
}

// Rotation encrypts every value again under a new key, leaves the key
// file holding that key alone, and every value still reads.
func TestVaultRotation(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := open(t)
			refs := []bundleconfig.SecretRef{ref, {Bundle: "gh", Layer: "user/bob", Key: "TOKEN", Version: 7}}
			for _, r := range refs {
				if err := b.vault.Put(ctx, r, value+r.Key); err != nil {
					t.Fatal(err)
				}
			}
			before := b.vault.KeyID()
			id, n, err := b.vault.Rotate(ctx)
			if err != nil || n != 2 || id == before || id != b.vault.KeyID() {
				t.Fatalf("Rotate = %s, %d, %v (key before %s)", id, n, err, before)
			}
			var stale int
			if err := b.store.DB().QueryRowContext(ctx, `SELECT count(*) FROM secret_values WHERE key_id <> '`+id+`'`).Scan(&stale); err != nil || stale != 0 {
				t.Fatalf("%d rows not under the new key (%v)", stale, err)
			}
			for _, r := range refs {
				if got, err := b.vault.Reveal(ctx, r); err != nil || got != value+r.Key {
					t.Fatalf("after rotation Reveal(%s) = %q, %v", r, got, err)
				}
			}
		})
	}
}

func TestKeyFileMustBeTheOwnersAlone(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "secret.key")
	if _, err := secretvault.EnsureKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(keyFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", info.Mode().Perm(), err)
	}
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = secretvault.Open(secretvault.Config{Read: nil, Write: nil, KeyFile: keyFile})
	if err == nil {
		t.Fatal("opened without a database")
	}
	s, err := sqlite.OpenWith(context.Background(), filepath.Join(t.TempDir(), "x.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := secretvault.Open(secretvault.Config{Read: s.DB(), Write: s.WriteDB(), KeyFile: keyFile}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("Open with a world-readable key file = %v, want a refusal", err)
	}
}
