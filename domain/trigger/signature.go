package trigger

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// Signature errors: what a refused call is told, never with the secret or
// the expected value.
var (
	ErrSignatureMissing = errors.New("the call carries no signature")
	ErrSignatureBad     = errors.New("the signature does not match the body")
)

// Sign is the signature of body under secret as GitHub sends it:
// "sha256=" and the hex HMAC-SHA256 of the raw body.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature checks a signature header's value against body, in
// constant time. The value is "sha256=<hex>" (GitHub's form) or the bare
// hex.
func VerifySignature(secret, body []byte, value string) error {
	value = strings.TrimSpace(value)
	if value == "" {
		return ErrSignatureMissing
	}
	hexSum := strings.TrimPrefix(value, "sha256=")
	got, err := hex.DecodeString(hexSum)
	if err != nil || len(got) != sha256.Size {
		return ErrSignatureBad
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrSignatureBad
	}
	return nil
}
