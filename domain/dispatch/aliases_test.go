package dispatch

import (
	"errors"
	"testing"
)

func TestAliasNames(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		alias  string
		column int // 0: valid; -1: invalid without a column
	}{
		{"a word with dashes is a name", "deploy-prod", 0},
		{"letters, digits, '_' and '.' are a name", "Ab_9.z", 0},
		{"an empty name is refused", "", -1},
		{"a namespaced name would be a bundle command", "ops:deploy", 4},
		{"a leading dash would read as an option", "-x", 1},
		{"a space would end the word early", "a b", 2},
		{"a pipe would end the word early", "x|y", 2},
		{"a non-ASCII letter is refused at its column", "dé", 2},
		{"a name over 64 characters is refused", string(make([]byte, 65)), -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateAliasName(c.alias)
			if c.column == 0 {
				if err != nil {
					t.Fatalf("ValidateAliasName(%q) = %v, want nil", c.alias, err)
				}
				return
			}
			var ne *AliasNameError
			if !errors.As(err, &ne) {
				t.Fatalf("ValidateAliasName(%q) = %v, want an *AliasNameError", c.alias, err)
			}
			if c.column > 0 && ne.Column != c.column {
				t.Fatalf("column = %d, want %d (%v)", ne.Column, c.column, err)
			}
		})
	}
}

func TestAliasEventsFoldIntoLookups(t *testing.T) {
	t.Parallel()
	a := Aliases{}
	a.Apply(AliasCreated{Owner: "u1", Name: "st", Pipeline: "ops:status"})
	a.Apply(AliasCreated{Owner: SiteAliasOwner, Name: "st", Pipeline: "echo site"})
	a.Apply(AliasCreated{Owner: "u1", Name: "st", Pipeline: "ops:status --all"})
	if text, ok := a.Lookup("u1", "st"); !ok || text != "ops:status --all" {
		t.Fatalf("a re-created alias = %q, %v; want the newest text", text, ok)
	}
	a.Apply(AliasDeleted{Owner: "u1", Name: "st"})
	if _, ok := a.Lookup("u1", "st"); ok {
		t.Fatal("a deleted alias still answers")
	}
	if text, ok := a.Lookup(SiteAliasOwner, "st"); !ok || text != "echo site" {
		t.Fatalf("deleting a user alias touched the site alias of the same name: %q, %v", text, ok)
	}
	if AliasStream(SiteAliasOwner) != "alias-site" {
		t.Fatalf("site alias stream = %s", AliasStream(SiteAliasOwner))
	}
}

// FuzzValidateAliasName: no input panics, and every accepted name is the
// whole first word the dispatcher expands.
func FuzzValidateAliasName(f *testing.F) {
	for _, seed := range []string{"deploy-prod", "", "a:b", "-x", "é", "a b", "x|y", "Ab_9.z"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateAliasName(name) != nil {
			return
		}
		facts := &StaticFacts{UserAliases: map[string]map[string]string{"u": {name: "echo expanded"}}}
		got, expanded, ok := expandAlias("u", name+" tail", facts)
		if !ok || got != name || expanded != "echo expanded tail" {
			t.Fatalf("valid alias %q does not expand as the first word: %q %q %v", name, got, expanded, ok)
		}
	})
}
