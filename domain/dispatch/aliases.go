package dispatch

import (
	"fmt"
	"unicode/utf8"

	"github.com/logbookhq/logbook/domain"
)

// AliasStreamPrefix is the category of alias streams: a user's aliases live
// in "alias-<user id>", the site's in "alias-site".
const AliasStreamPrefix = "alias-"

// SiteAliasOwner is the owner id of site aliases, which every user may run.
// User ids are UUIDs, so it never names a user.
const SiteAliasOwner = "site"

// AliasStream names the stream of owner's aliases: a user id, or
// SiteAliasOwner.
func AliasStream(owner string) string { return AliasStreamPrefix + owner }

// AliasCreated records an alias: the first word of a request equal to Name
// is replaced by Pipeline (see expandAlias). Owner is the user id, or
// SiteAliasOwner for a site alias.
type AliasCreated struct {
	Owner    string `json:"owner"`
	Name     string `json:"name"`
	Pipeline string `json:"pipeline"`
}

// AliasDeleted removes an alias.
type AliasDeleted struct {
	Owner string `json:"owner"`
	Name  string `json:"name"`
}

func (AliasCreated) EventType() string { return "AliasCreated" }
func (AliasDeleted) EventType() string { return "AliasDeleted" }

func init() {
	domain.Register[AliasCreated]()
	domain.Register[AliasDeleted]()
}

// MaxAliasNameLength bounds an alias name, in characters.
const MaxAliasNameLength = 64

// AliasNameError says why a name cannot be an alias: Column is the 1-based
// character of the first offending character (0 for an empty or overlong
// name).
type AliasNameError struct {
	Name   string
	Column int
	Msg    string
}

func (e *AliasNameError) Error() string {
	if e.Column > 0 {
		return fmt.Sprintf("alias name %q, column %d: %s", e.Name, e.Column, e.Msg)
	}
	return fmt.Sprintf("alias name %q: %s", e.Name, e.Msg)
}

// ValidateAliasName checks that name can stand as the first word of a
// request and be expanded: letters, digits, '-', '_' and '.', starting with
// a letter or digit. A ':' would make it a bundle command, and whitespace,
// '|', '>' or '*' would end the word early, so the alias could never match.
func ValidateAliasName(name string) error {
	if name == "" {
		return &AliasNameError{Name: name, Msg: "expected a name of letters, digits, '-', '_' or '.', got nothing"}
	}
	if !utf8.ValidString(name) {
		return &AliasNameError{Name: name, Msg: "expected UTF-8 text"}
	}
	if n := utf8.RuneCountInString(name); n > MaxAliasNameLength {
		return &AliasNameError{Name: name, Msg: fmt.Sprintf("expected at most %d characters, got %d", MaxAliasNameLength, n)}
	}
	col := 0
	for _, r := range name {
		col++
		letterOrDigit := r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
		switch {
		case letterOrDigit:
		case col == 1:
			return &AliasNameError{Name: name, Column: col, Msg: fmt.Sprintf("expected an ASCII letter or digit first, got %q", r)}
		case r == '-' || r == '_' || r == '.':
		default:
			return &AliasNameError{Name: name, Column: col, Msg: fmt.Sprintf("expected an ASCII letter, digit, '-', '_' or '.', got %q", r)}
		}
	}
	return nil
}

// Aliases is the fold of AliasCreated and AliasDeleted: owner → name →
// pipeline text. Not safe for concurrent use.
type Aliases map[string]map[string]string

// Apply folds one event; others are ignored.
func (a Aliases) Apply(e domain.Payload) {
	switch p := e.(type) {
	case AliasCreated:
		if a[p.Owner] == nil {
			a[p.Owner] = map[string]string{}
		}
		a[p.Owner][p.Name] = p.Pipeline
	case AliasDeleted:
		delete(a[p.Owner], p.Name)
		if len(a[p.Owner]) == 0 {
			delete(a, p.Owner)
		}
	}
}

// Lookup returns the pipeline text of owner's alias name.
func (a Aliases) Lookup(owner, name string) (string, bool) {
	text, ok := a[owner][name]
	return text, ok
}
