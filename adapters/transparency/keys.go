// Package transparency holds the I/O of the tree's evidence: signing key
// files, the witness (a C2SP tlog-witness HTTP server with a file-backed
// state), and the destinations checkpoints are published to (a file, an
// HTTP endpoint, witnesses).
package transparency

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// EnsureKeyFile creates path holding a new Ed25519 note signing key named
// name (mode 0600), unless it exists. It reports whether it created it.
func EnsureKeyFile(path, name string) (bool, error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	skey, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return false, fmt.Errorf("make a signing key named %q: %w", name, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil // another process made it first
	}
	if err != nil {
		return false, err
	}
	if _, err := f.WriteString(skey + "\n"); err != nil {
		f.Close()
		return false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return false, err
	}
	return true, f.Close()
}

// Key is a signing key read from its file.
type Key struct {
	skey string
	// Verifier is the public key as a note verifier string.
	Verifier string
	Name     string
}

// ReadKeyFile reads a note signing key (PRIVATE+KEY+name+hash+key). The
// error never holds the key.
func ReadKeyFile(path string) (Key, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Key{}, err
	}
	skey := strings.TrimSpace(string(raw))
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return Key{}, fmt.Errorf("%s does not hold a note signing key (PRIVATE+KEY+name+hash+key)", path)
	}
	if _, err := note.NewSigner(skey); err != nil {
		return Key{}, fmt.Errorf("%s does not hold a valid Ed25519 note signing key", path)
	}
	seed, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(seed) != 1+ed25519.SeedSize || seed[0] != 1 {
		return Key{}, fmt.Errorf("%s does not hold an Ed25519 note signing key", path)
	}
	pub := ed25519.NewKeyFromSeed(seed[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(parts[2], pub)
	if err != nil {
		return Key{}, err
	}
	return Key{skey: skey, Verifier: vkey, Name: parts[2]}, nil
}

// Signer signs checkpoints (the log's key).
func (k Key) Signer() (note.Signer, error) { return note.NewSigner(k.skey) }

// Cosigner signs cosignature/v1 cosignatures (a witness's key).
func (k Key) Cosigner() (note.Signer, error) { return fnote.NewSignerForCosignatureV1(k.skey) }

// CosignatureVerifier is the witness key's verifier string in its
// cosignature/v1 form, the one a verification policy names.
func (k Key) CosignatureVerifier() (string, error) { return fnote.VKeyToCosignatureV1(k.Verifier) }
