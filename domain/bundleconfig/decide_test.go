package bundleconfig

import (
	"reflect"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain"
)

// gwt is a given-when-then test of one command on the bundle "aws": given
// these past events of its stream, when the command is decided, then
// these events (none: a no-op) or an error of this kind saying msg.
type gwt struct {
	name  string
	given []domain.Payload
	when  Command
	then  []domain.Payload
	err   ErrorKind
	msg   string
}

func runScenarios(t *testing.T, cases []gwt) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			state := Fold(c.given)
			got, err := Decide(state, c.when)
			again, againErr := Decide(state, c.when)
			if !reflect.DeepEqual(got, again) || (err == nil) != (againErr == nil) {
				t.Fatalf("deciding twice gave different answers: %v, %v then %v, %v", got, err, again, againErr)
			}
			if c.err != 0 {
				if err == nil {
					t.Fatalf("got events %#v, want a %d error", got, c.err)
				}
				if KindOf(err) != c.err || !strings.Contains(err.Error(), c.msg) {
					t.Fatalf("got error %q (kind %d), want kind %d saying %q", err, KindOf(err), c.err, c.msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if len(got) == 0 && len(c.then) == 0 {
				return
			}
			if !reflect.DeepEqual(got, c.then) {
				t.Fatalf("got  %#v\nwant %#v", got, c.then)
			}
		})
	}
}

func evs(p ...domain.Payload) []domain.Payload { return p }

var (
	base     = BaseLayer
	roomOps  = Layer{Kind: Room, Name: "ops"}
	userBob  = Layer{Kind: User, Name: "bob"}
	regionEU = ConfigSet{Bundle: "aws", Layer: "base", Key: "REGION", Value: "eu-west-1"}
	keyV1    = SecretSet{Bundle: "aws", Layer: "base", Key: "AWS_SECRET", Version: 1}
)

func TestSetValue(t *testing.T) {
	t.Parallel()
	runScenarios(t, []gwt{
		{name: "setting a new key records ConfigSet",
			when: SetValue{Bundle: "aws", Layer: base, Key: "REGION", Value: "eu-west-1"},
			then: evs(regionEU)},
		{name: "setting the value a key has records nothing",
			given: evs(regionEU),
			when:  SetValue{Bundle: "aws", Layer: base, Key: "REGION", Value: "eu-west-1"}},
		{name: "setting another value records the change",
			given: evs(regionEU),
			when:  SetValue{Bundle: "aws", Layer: base, Key: "REGION", Value: "us-east-1"},
			then:  evs(ConfigSet{Bundle: "aws", Layer: "base", Key: "REGION", Value: "us-east-1"})},
		{name: "a room layer is its own place",
			given: evs(regionEU),
			when:  SetValue{Bundle: "aws", Layer: roomOps, Key: "REGION", Value: "eu-west-1"},
			then:  evs(ConfigSet{Bundle: "aws", Layer: "room/ops", Key: "REGION", Value: "eu-west-1"})},
		{name: "an empty value is a value",
			when: SetValue{Bundle: "aws", Layer: base, Key: "EMPTY", Value: ""},
			then: evs(ConfigSet{Bundle: "aws", Layer: "base", Key: "EMPTY", Value: ""})},
		{name: "a COG_ key is refused",
			when: SetValue{Bundle: "aws", Layer: base, Key: "COG_ROOM", Value: "x"},
			err:  KindInvalid, msg: "COG_ROOM starts with COG_, which is reserved"},
		{name: "a LOGBOOK_ key is refused in any case",
			when: SetValue{Bundle: "aws", Layer: base, Key: "logbook_token", Value: "x"},
			err:  KindInvalid, msg: "starts with LOGBOOK_"},
		{name: "a key that is no environment variable name is refused",
			when: SetValue{Bundle: "aws", Layer: base, Key: "A-B", Value: "x"},
			err:  KindInvalid, msg: `"A-B" is not an environment variable name`},
		{name: "a value with a NUL byte is refused",
			when: SetValue{Bundle: "aws", Layer: base, Key: "K", Value: "a\x00b"},
			err:  KindInvalid, msg: "NUL"},
		{name: "a layer of an unknown kind is refused",
			when: SetValue{Bundle: "aws", Layer: Layer{Kind: "team", Name: "x"}, Key: "K", Value: "v"},
			err:  KindInvalid, msg: "is not base, room/ROOM"},
		{name: "a bad bundle name is refused",
			when: SetValue{Bundle: "a/b", Layer: base, Key: "K", Value: "v"},
			err:  KindInvalid, msg: `"a/b" is not a bundle name`},
		{name: "a key that is a secret in that layer is not overwritten by a plain value",
			given: evs(keyV1),
			when:  SetValue{Bundle: "aws", Layer: base, Key: "AWS_SECRET", Value: "oops"},
			err:   KindConflict, msg: "AWS_SECRET is a secret in base of bundle aws"},
	})
}

func TestUnsetValue(t *testing.T) {
	t.Parallel()
	runScenarios(t, []gwt{
		{name: "unsetting a set key records ConfigUnset",
			given: evs(regionEU),
			when:  UnsetValue{Bundle: "aws", Layer: base, Key: "REGION"},
			then:  evs(ConfigUnset{Bundle: "aws", Layer: "base", Key: "REGION"})},
		{name: "unsetting a key not set records nothing",
			when: UnsetValue{Bundle: "aws", Layer: base, Key: "REGION"}},
		{name: "unsetting a key of another layer records nothing",
			given: evs(regionEU),
			when:  UnsetValue{Bundle: "aws", Layer: userBob, Key: "REGION"}},
		{name: "a secret is not unset as a plain value",
			given: evs(keyV1),
			when:  UnsetValue{Bundle: "aws", Layer: base, Key: "AWS_SECRET"},
			err:   KindConflict, msg: "remove it with secret unset"},
	})
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	runScenarios(t, []gwt{
		{name: "the first set of a secret is version 1",
			when: SetSecret{Bundle: "aws", Layer: base, Key: "AWS_SECRET"},
			then: evs(keyV1)},
		{name: "setting it again is a new version, whatever the value",
			given: evs(keyV1),
			when:  SetSecret{Bundle: "aws", Layer: base, Key: "AWS_SECRET"},
			then:  evs(SecretSet{Bundle: "aws", Layer: "base", Key: "AWS_SECRET", Version: 2})},
		{name: "a version is never reused after an unset",
			given: evs(keyV1, SecretUnset{Bundle: "aws", Layer: "base", Key: "AWS_SECRET", Version: 1}),
			when:  SetSecret{Bundle: "aws", Layer: base, Key: "AWS_SECRET"},
			then:  evs(SecretSet{Bundle: "aws", Layer: "base", Key: "AWS_SECRET", Version: 2})},
		{name: "versions count per layer",
			given: evs(keyV1),
			when:  SetSecret{Bundle: "aws", Layer: userBob, Key: "AWS_SECRET"},
			then:  evs(SecretSet{Bundle: "aws", Layer: "user/bob", Key: "AWS_SECRET", Version: 1})},
		{name: "unsetting a secret names the version removed",
			given: evs(keyV1, SecretSet{Bundle: "aws", Layer: "base", Key: "AWS_SECRET", Version: 2}),
			when:  UnsetSecret{Bundle: "aws", Layer: base, Key: "AWS_SECRET"},
			then:  evs(SecretUnset{Bundle: "aws", Layer: "base", Key: "AWS_SECRET", Version: 2})},
		{name: "unsetting a secret not set records nothing",
			when: UnsetSecret{Bundle: "aws", Layer: base, Key: "AWS_SECRET"}},
		{name: "a plain value is not turned into a secret",
			given: evs(regionEU),
			when:  SetSecret{Bundle: "aws", Layer: base, Key: "REGION"},
			err:   KindConflict, msg: "REGION is a plain value in base"},
		{name: "a secret's key follows the key rules",
			when: SetSecret{Bundle: "aws", Layer: base, Key: "COG_SECRET"},
			err:  KindInvalid, msg: "reserved"},
	})
}

// TestLayering: given values in layers, when a run's scope resolves them,
// then each key comes from the last layer that sets it, in the order base,
// room, groups by name, user.
func TestLayering(t *testing.T) {
	t.Parallel()
	set := func(layer, key, value string) domain.Payload {
		return ConfigSet{Bundle: "aws", Layer: layer, Key: key, Value: value}
	}
	cases := []struct {
		name  string
		given []domain.Payload
		scope Scope
		then  map[string]string // key -> "value@layer"
	}{
		{name: "base alone applies to everyone",
			given: evs(set("base", "REGION", "eu")),
			scope: Scope{Room: "ops", User: "bob"},
			then:  map[string]string{"REGION": "eu@base"}},
		{name: "a room's value wins over base in that room",
			given: evs(set("base", "REGION", "eu"), set("room/ops", "REGION", "us")),
			scope: Scope{Room: "ops", User: "bob"},
			then:  map[string]string{"REGION": "us@room/ops"}},
		{name: "another room's value does not apply",
			given: evs(set("base", "REGION", "eu"), set("room/dev", "REGION", "us")),
			scope: Scope{Room: "ops", User: "bob"},
			then:  map[string]string{"REGION": "eu@base"}},
		{name: "a group's value wins over the room's",
			given: evs(set("room/ops", "REGION", "us"), set("group/sre", "REGION", "ap")),
			scope: Scope{Room: "ops", Groups: []string{"sre"}, User: "bob"},
			then:  map[string]string{"REGION": "ap@group/sre"}},
		{name: "of two groups, the later by name wins, whatever order they come in",
			given: evs(set("group/b-team", "REGION", "b"), set("group/a-team", "REGION", "a")),
			scope: Scope{Groups: []string{"b-team", "a-team"}, User: "bob"},
			then:  map[string]string{"REGION": "b@group/b-team"}},
		{name: "the user's value wins over everything",
			given: evs(set("base", "REGION", "eu"), set("room/ops", "REGION", "us"), set("group/sre", "REGION", "ap"), set("user/bob", "REGION", "mine")),
			scope: Scope{Room: "ops", Groups: []string{"sre"}, User: "bob"},
			then:  map[string]string{"REGION": "mine@user/bob"}},
		{name: "another user's value does not apply",
			given: evs(set("base", "REGION", "eu"), set("user/alice", "REGION", "hers")),
			scope: Scope{User: "bob"},
			then:  map[string]string{"REGION": "eu@base"}},
		{name: "merging is shallow: each key on its own",
			given: evs(set("base", "REGION", "eu"), set("base", "ZONE", "a"), set("user/bob", "ZONE", "b")),
			scope: Scope{User: "bob"},
			then:  map[string]string{"REGION": "eu@base", "ZONE": "b@user/bob"}},
		{name: "a secret merges like a value",
			given: evs(set("base", "TOKEN", "plain"), SecretSet{Bundle: "aws", Layer: "user/bob", Key: "TOKEN", Version: 3}),
			scope: Scope{User: "bob"},
			then:  map[string]string{"TOKEN": "secret v3@user/bob"}},
		{name: "an unset key falls back to the layer below",
			given: evs(set("base", "REGION", "eu"), set("user/bob", "REGION", "us"), ConfigUnset{Bundle: "aws", Layer: "user/bob", Key: "REGION"}),
			scope: Scope{User: "bob"},
			then:  map[string]string{"REGION": "eu@base"}},
		{name: "another bundle's values do not apply",
			given: evs(ConfigSet{Bundle: "gcp", Layer: "base", Key: "REGION", Value: "x"}),
			scope: Scope{User: "bob"},
			then:  map[string]string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			values := Values{}
			for _, e := range c.given {
				values.Apply(e)
			}
			got := map[string]string{}
			for _, e := range values.Resolve("aws", c.scope) {
				v := e.Value
				if e.Secret {
					v = "secret v" + string(rune('0'+e.Version))
				}
				got[e.Key] = v + "@" + e.Layer.String()
			}
			if !reflect.DeepEqual(got, c.then) {
				t.Fatalf("resolved %v, want %v", got, c.then)
			}
		})
	}
}

func TestParseLayer(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"base": "base", "room/ops": "room/ops", "group/sre": "group/sre", "user/bob": "user/bob", "room/#ops": "room/#ops", "room/@nick": "room/@nick"} {
		l, err := ParseLayer(in)
		if err != nil || l.String() != want {
			t.Errorf("ParseLayer(%q) = %v, %v; want %s", in, l, err, want)
		}
	}
	for in, msg := range map[string]string{
		"":                                 "is not base",
		"room":                             "is not base",
		"room/":                            "names no room",
		"team/x":                           "is not base",
		"room/a b":                         "no spaces",
		"user/\u202ebob":                   "invisible",
		"room/" + strings.Repeat("x", 256): "limit is 255",
	} {
		if _, err := ParseLayer(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseLayer(%q) = %v; want an error saying %q", in, err, msg)
		}
	}
}

func FuzzParseLayer(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLayer(s)
		if err != nil {
			return
		}
		// A layer that parses writes back as it was read, and again.
		if l.String() != s {
			t.Fatalf("ParseLayer(%q).String() = %q", s, l.String())
		}
		if again, err := ParseLayer(l.String()); err != nil || again != l {
			t.Fatalf("ParseLayer(%q) again = %v, %v", l.String(), again, err)
		}
	})
}

func FuzzParseAssignment(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		key, value, err := ParseAssignment(s)
		if err != nil {
			return
		}
		if key+"="+value != s {
			t.Fatalf("ParseAssignment(%q) = %q, %q: not the input", s, key, value)
		}
		if ValidateKey(key) != nil || strings.ContainsRune(value, 0) {
			t.Fatalf("ParseAssignment(%q) accepted key %q value %q", s, key, value)
		}
	})
}
