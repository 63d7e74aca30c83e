package runbus

import (
	"bytes"
	"testing"
)

func TestSealedSecretsOpenOnlyWithTheGroupKey(t *testing.T) {
	prod, err := NewGroupKey()
	if err != nil {
		t.Fatal(err)
	}
	staging, err := NewGroupKey()
	if err != nil {
		t.Fatal(err)
	}
	r := RunRequest{RunID: "r", Env: map[string]string{"TOKEN": "hunter2"}}
	if err := r.Seal(prod.Public); err != nil {
		t.Fatal(err)
	}
	if r.Env != nil || len(r.SealedEnv) == 0 || bytes.Contains(r.SealedEnv, []byte("hunter2")) {
		t.Fatalf("sealed request: env %v, sealed %q", r.Env, r.SealedEnv)
	}
	wrong := r
	if err := wrong.Open(staging); err == nil {
		t.Fatal("another group's key opened the secrets")
	}
	if err := r.Open(GroupKey{Public: prod.Public}); err == nil {
		t.Fatal("a public key alone opened the secrets")
	}
	if err := r.Open(prod); err != nil || r.Env["TOKEN"] != "hunter2" {
		t.Fatalf("open with the group's key: %v, env %v", err, r.Env)
	}
	k, err := DecodeKey(EncodeKey(prod.Public))
	if err != nil || *k != *prod.Public {
		t.Fatalf("key round trip: %v", err)
	}
}
