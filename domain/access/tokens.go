package access

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"

	"github.com/logbookhq/logbook/domain"
)

// TokenIssued records an API token for a user. Only the token's SHA-256 is
// stored: the log never holds a credential, and a leaked log grants nothing.
type TokenIssued struct {
	User string `json:"user"`
	Hash string `json:"hash"` // hex SHA-256 of the token
	Note string `json:"note,omitempty"`
}

// TokenRevoked withdraws a token.
type TokenRevoked struct {
	User string `json:"user"`
	Hash string `json:"hash"`
}

func (TokenIssued) EventType() string  { return "TokenIssued" }
func (TokenRevoked) EventType() string { return "TokenRevoked" }

// Stream implements Event: tokens live in their user's stream.
func (e TokenIssued) Stream() string  { return UserStream(e.User) }
func (e TokenRevoked) Stream() string { return UserStream(e.User) }

func init() {
	domain.Register[TokenIssued]()
	domain.Register[TokenRevoked]()
}

// NewToken returns a fresh random API token (32 bytes, URL-safe base64,
// prefixed "lbk_" so it is recognisable in a secret scanner) and its hash.
func NewToken() (token, hash string) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	token = "lbk_" + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token)
}

// HashToken is how a token is looked up: hex SHA-256.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Tokens maps token hashes to users, folded from TokenIssued and
// TokenRevoked. Not safe for concurrent use.
type Tokens map[string]string

// Apply folds one event; others are ignored.
func (t Tokens) Apply(e domain.Payload) {
	switch p := e.(type) {
	case TokenIssued:
		t[p.Hash] = p.User
	case TokenRevoked:
		if t[p.Hash] == p.User {
			delete(t, p.Hash)
		}
	}
}

// User returns the user a token belongs to.
func (t Tokens) User(token string) (string, bool) {
	u, ok := t[HashToken(token)]
	return u, ok
}
