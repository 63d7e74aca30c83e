package secretvault

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the size of a key: AES-256.
const KeySize = 32

// A key file holds one base64 key a line; the first is the one values are
// encrypted under, the others are older keys still read. Blank lines and
// lines starting with # are ignored. During a rotation the file holds the
// new key and the old one, so a crash at any point leaves a file that
// reads every stored value.

// key is one AES-256-GCM key and its id.
type key struct {
	id   string
	raw  []byte
	aead cipher.AEAD
}

// keyID names a key by a fingerprint that reveals nothing usable of it.
func keyID(raw []byte) string {
	sum := sha256.Sum256(append([]byte("logbook secret key id\x00"), raw...))
	return hex.EncodeToString(sum[:8])
}

func newKey(raw []byte) (key, error) {
	if len(raw) != KeySize {
		return key{}, fmt.Errorf("a key is %d bytes, not %d", len(raw), KeySize)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return key{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return key{}, err
	}
	return key{id: keyID(raw), raw: raw, aead: aead}, nil
}

// parseKeyFile reads a key file's keys, current first. Errors name the
// line, never a key.
func parseKeyFile(data []byte) ([]key, error) {
	var keys []key
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return nil, fmt.Errorf("line %d is not a base64 key", line)
		}
		k, err := newKey(raw)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", line, err)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("it holds no key")
	}
	return keys, nil
}

func formatKeyFile(keys []key) []byte {
	var b bytes.Buffer
	b.WriteString("# Logbook's secret keys (AES-256, base64): the first encrypts, the others are still read.\n")
	for _, k := range keys {
		b.WriteString(base64.StdEncoding.EncodeToString(k.raw))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func generateKey() (key, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return key{}, err
	}
	return newKey(raw)
}

// writeKeyFile replaces path with keys atomically, mode 0600: written to a
// temporary file beside it, synced, renamed over it, and the directory
// synced, so a crash leaves the old file or the new one.
func writeKeyFile(path string, keys []key) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".logbook-key-*")
	if err != nil {
		return fmt.Errorf("write the key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(formatKeyFile(keys)); err != nil {
		tmp.Close()
		return fmt.Errorf("write the key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace the key file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// EnsureKeyFile creates path with a new random key, mode 0600, unless it
// exists. It reports whether it created it.
func EnsureKeyFile(path string) (bool, error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, err
	}
	k, err := generateKey()
	if err != nil {
		return false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil // another process made it first
	}
	if err != nil {
		return false, err
	}
	if _, err := f.Write(formatKeyFile([]key{k})); err != nil {
		f.Close()
		return false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return false, err
	}
	return true, f.Close()
}

// readKeyFile loads path, refusing a file others may read: the key is
// the one thing between the database and every secret.
func readKeyFile(path string) ([]key, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secret key file %s: %w", path, err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret key file %s is mode %04o; make it readable by its owner only (chmod 600)", path, info.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret key file %s: %w", path, err)
	}
	keys, err := parseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("secret key file %s: %v", path, err)
	}
	return keys, nil
}
