package access

import (
	"strings"
	"testing"
)

func TestTokensResolveIssuedTokensUntilRevoked(t *testing.T) {
	t.Parallel()
	token, hash := NewToken()
	other, _ := NewToken()
	if !strings.HasPrefix(token, "lbk_") || token == other || hash != HashToken(token) || strings.Contains(hash, token) {
		t.Fatalf("token %q hash %q", token, hash)
	}
	tokens := Tokens{}
	tokens.Apply(TokenIssued{User: "u-1", Hash: hash})
	if u, ok := tokens.User(token); !ok || u != "u-1" {
		t.Fatalf("issued token resolves to %q, %v", u, ok)
	}
	if _, ok := tokens.User(other); ok {
		t.Fatal("an unissued token resolves")
	}
	tokens.Apply(TokenRevoked{User: "u-2", Hash: hash})
	if _, ok := tokens.User(token); !ok {
		t.Fatal("a revocation naming another user revoked the token")
	}
	tokens.Apply(TokenRevoked{User: "u-1", Hash: hash})
	if _, ok := tokens.User(token); ok {
		t.Fatal("a revoked token still resolves")
	}
}
