package trigger_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/trigger"
)

func TestDecider(t *testing.T) {
	base := trigger.Created{Name: "deploy", Pipeline: "echo hi", As: "alice", TimeoutMS: 30000, TokenSHA256: access.HashToken("t"), By: "alice"}
	hmacOnly := base
	hmacOnly.TokenSHA256, hmacOnly.RequireHMAC = "", true
	hmacWant := hmacOnly
	hmacWant.SignatureHeader = trigger.DefaultSignatureHeader
	open := base
	open.TokenSHA256 = ""
	asBob := base
	asBob.As = "bob"
	cases := []struct {
		name    string
		given   []domain.Payload
		when    any
		then    []domain.Payload
		wantErr error
	}{
		{"creating records it", nil, trigger.Create{Created: base, Actor: "alice"}, []domain.Payload{base}, nil},
		{"an HMAC trigger gets GitHub's header by default", nil, trigger.Create{Created: hmacOnly, Actor: "alice"}, []domain.Payload{hmacWant}, nil},
		{"a trigger open to anyone is refused", nil, trigger.Create{Created: open, Actor: "alice"}, nil, trigger.ErrInvalid},
		{"running as another user needs admin", nil, trigger.Create{Created: asBob, Actor: "alice"}, nil, trigger.ErrInvalid},
		{"an admin may make it run as another user", nil, trigger.Create{Created: asBob, Actor: "alice", MayRunAsOthers: true}, []domain.Payload{asBob}, nil},
		{"a name taken is refused", []domain.Payload{base}, trigger.Create{Created: base, Actor: "alice"}, nil, trigger.ErrExists},
		{"disabling records it", []domain.Payload{base}, trigger.Disable{By: "bob"}, []domain.Payload{trigger.Disabled{By: "bob"}}, nil},
		{"disabling a disabled one records nothing", []domain.Payload{base, trigger.Disabled{}}, trigger.Disable{By: "bob"}, nil, nil},
		{"enabling a disabled one records it", []domain.Payload{base, trigger.Disabled{}}, trigger.Enable{By: "bob"}, []domain.Payload{trigger.Enabled{By: "bob"}}, nil},
		{"enabling a missing one is refused", nil, trigger.Enable{By: "bob"}, nil, trigger.ErrNotFound},
		{"a secret version is never reused, even after a delete", []domain.Payload{base, trigger.SecretSet{Version: 2}, trigger.Deleted{}, base}, trigger.SetSecret{By: "a"},
			[]domain.Payload{trigger.SecretSet{Version: 3, By: "a"}}, nil},
		{"a new token replaces the old", []domain.Payload{base}, trigger.IssueToken{TokenSHA256: "new", By: "a"},
			[]domain.Payload{trigger.TokenIssued{TokenSHA256: "new", By: "a"}}, nil},
		{"a token for a missing trigger is refused", nil, trigger.IssueToken{TokenSHA256: "new", By: "a"}, nil, trigger.ErrNotFound},
		{"a deleted name may be created again", []domain.Payload{base, trigger.Deleted{}}, trigger.Create{Created: base, Actor: "alice"}, []domain.Payload{base}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := trigger.Decide(trigger.Fold(c.given), c.when)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err = %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.then) {
				t.Fatalf("got %#v, %v; want %#v", got, err, c.then)
			}
		})
	}
}

func TestSignatures(t *testing.T) {
	secret, body := []byte("s3cret"), []byte(`{"ref":"refs/heads/main"}`)
	good := trigger.Sign(secret, body)
	if err := trigger.VerifySignature(secret, body, good); err != nil {
		t.Fatal(err)
	}
	for name, value := range map[string]string{
		"another body's":   trigger.Sign(secret, []byte("{}")),
		"another secret's": trigger.Sign([]byte("other"), body),
		"not hex":          "sha256=zz",
		"too short":        "sha256=abcd",
	} {
		if err := trigger.VerifySignature(secret, body, value); !errors.Is(err, trigger.ErrSignatureBad) {
			t.Errorf("%s signature: %v", name, err)
		}
	}
	if err := trigger.VerifySignature(secret, body, ""); !errors.Is(err, trigger.ErrSignatureMissing) {
		t.Errorf("missing: %v", err)
	}
}

func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte("k"), []byte("body"), "sha256=00")
	f.Add([]byte("k"), []byte(""), "")
	f.Add([]byte("s3cret"), []byte(`{"a":1}`), trigger.Sign([]byte("s3cret"), []byte(`{"a":1}`)))
	f.Fuzz(func(t *testing.T, secret, body []byte, value string) {
		// The right signature is always accepted, bare or with its prefix.
		right := trigger.Sign(secret, body)
		if err := trigger.VerifySignature(secret, body, right); err != nil {
			t.Fatalf("the right signature is refused: %v", err)
		}
		if err := trigger.VerifySignature(secret, body, strings.TrimPrefix(right, "sha256=")); err != nil {
			t.Fatalf("the bare right signature is refused: %v", err)
		}
		// Any value accepted is the right signature, written one of the
		// ways that names it.
		if trigger.VerifySignature(secret, body, value) == nil {
			v := strings.ToLower(strings.TrimSpace(value))
			if v != right && "sha256="+v != right {
				t.Fatalf("%q is accepted for %q", value, right)
			}
		}
	})
}

func TestATriggerThatPostsToARoomNamesItsProvider(t *testing.T) {
	c := trigger.Created{Name: "push", Pipeline: "echo hi > #ops", As: "alice", TokenSHA256: "x", By: "alice"}
	if _, err := trigger.Decide(trigger.Trigger{}, trigger.Create{Created: c, Actor: "alice"}); err == nil || !strings.Contains(err.Error(), "--provider") {
		t.Fatalf("without a provider: %v", err)
	}
	c.Provider = "irc"
	if _, err := trigger.Decide(trigger.Trigger{}, trigger.Create{Created: c, Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
}
