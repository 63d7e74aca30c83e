package runbus

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/nacl/box"
)

// GroupKey is a relay group's key pair for sealing run secrets (NaCl box,
// Curve25519). The server holds only the public half; the executors of the
// group hold the private one.
type GroupKey struct {
	Public  *[32]byte
	Private *[32]byte // nil on the server
}

// NewGroupKey makes a fresh key pair.
func NewGroupKey() (GroupKey, error) {
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return GroupKey{}, err
	}
	return GroupKey{Public: pub, Private: priv}, nil
}

// EncodeKey writes a key as base64.
func EncodeKey(k *[32]byte) string { return base64.StdEncoding.EncodeToString(k[:]) }

// DecodeKey reads a base64 key of 32 bytes.
func DecodeKey(s string) (*[32]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != 32 {
		return nil, errors.New("not a base64 key of 32 bytes")
	}
	var k [32]byte
	copy(k[:], b)
	return &k, nil
}

// Seal moves r's Env into SealedEnv, sealed to pub.
func (r *RunRequest) Seal(pub *[32]byte) error {
	if len(r.Env) == 0 {
		return nil
	}
	plain, err := json.Marshal(r.Env)
	if err != nil {
		return err
	}
	sealed, err := box.SealAnonymous(nil, plain, pub, rand.Reader)
	if err != nil {
		return err
	}
	r.SealedEnv, r.Env = sealed, nil
	return nil
}

// Open moves SealedEnv back into Env with the group's key pair.
func (r *RunRequest) Open(key GroupKey) error {
	if len(r.SealedEnv) == 0 {
		return nil
	}
	if key.Private == nil {
		return errors.New("no private key to open the run's secrets")
	}
	plain, ok := box.OpenAnonymous(nil, r.SealedEnv, key.Public, key.Private)
	if !ok {
		return errors.New("the run's secrets are sealed to another key")
	}
	env := map[string]string{}
	if err := json.Unmarshal(plain, &env); err != nil {
		return fmt.Errorf("the run's sealed secrets: %w", err)
	}
	r.Env, r.SealedEnv = env, nil
	return nil
}
