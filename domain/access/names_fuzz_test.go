package access

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// checkRejection asserts what every refusal must be: an invalid *Error with
// a column inside the input (or just past its end) and a short sentence.
func checkRejection(t *testing.T, input string, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindInvalid {
		t.Fatalf("%q: got %T %v, want an invalid *Error", input, err, err)
	}
	if n := utf8.RuneCountInString(input); e.Column < 1 || e.Column > n+1 {
		t.Fatalf("%q: column %d outside 1..%d", input, e.Column, n+1)
	}
	if e.Message == "" || len(e.Message) > 600 {
		t.Fatalf("%q: message of %d bytes: %q", input, len(e.Message), e.Message)
	}
}

func isNameChars(s string) bool {
	if s == "" || len(s) > MaxNameLength || s[0] == '-' || s[0] == '_' || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func FuzzValidateUsername(f *testing.F) {
	for _, s := range []string{"alice", "", "Alice", "-x", "a.b_c-d", strings.Repeat("a", 65), "é", "a\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateUsername(s)
		if err != nil {
			checkRejection(t, s, err)
			if isNameChars(s) {
				t.Fatalf("%q follows the name rules but was refused: %v", s, err)
			}
			return
		}
		if !isNameChars(s) {
			t.Fatalf("%q breaks the name rules but was accepted", s)
		}
	})
}

func FuzzParsePermission(f *testing.F) {
	for _, s := range []string{"deploy:prod", "site:x", "prod", ":x", "x:", "a:b:c", "Deploy:prod", "ns:" + strings.Repeat("x", 65)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePermission(s)
		if err != nil {
			checkRejection(t, s, err)
			return
		}
		if p.String() != s || !isNameChars(p.Namespace) || !isNameChars(p.Name) {
			t.Fatalf("%q accepted as %#v", s, p)
		}
	})
}

func FuzzValidateHandle(f *testing.F) {
	for _, s := range []string{"U024BE7LH", "[nick]^", "", "a b", "\x00", "\xc3", strings.Repeat("x", 256), "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateHandle(s)
		if err != nil {
			checkRejection(t, s, err)
			return
		}
		if s == "" || len(s) > MaxHandleLength || !utf8.ValidString(s) ||
			strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			t.Fatalf("%q accepted as a handle", s)
		}
	})
}

func FuzzValidateEmail(f *testing.F) {
	for _, s := range []string{"alice@example.com", "alice", "@x", "x@", "a@b@c", "a b@c", "", "é@ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateEmail(s)
		if err != nil {
			checkRejection(t, s, err)
			return
		}
		local, domain, ok := strings.Cut(s, "@")
		if !ok || local == "" || domain == "" || strings.Contains(domain, "@") || len(s) > MaxEmailLength || !utf8.ValidString(s) {
			t.Fatalf("%q accepted as an email", s)
		}
	})
}
