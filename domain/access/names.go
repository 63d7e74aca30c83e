package access

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Name rules. Usernames, user ids, group and role names, chat provider names
// and both halves of a permission share one charset so they are safe in
// stream ids, URLs and chat without quoting.
const (
	MaxNameLength   = 64
	MaxHandleLength = 255 // bytes; the longest chat user id we know of is far shorter
	MaxEmailLength  = 254 // bytes, RFC 5321's path limit
)

const nameExpectation = "a lowercase letter, digit, '-', '_' or '.'"

// ValidateUserID checks a user id: the part after "user-" in the stream id.
func ValidateUserID(id string) error { return checkName("user id", id, id, 0) }

// ValidateUsername checks a username: 1 to 64 lowercase letters, digits,
// '-', '_' or '.', starting with a letter or digit.
func ValidateUsername(username string) error {
	return checkName("username", username, username, 0)
}

// ValidateGroupName checks a group name; same rules as usernames.
func ValidateGroupName(name string) error { return checkName("group name", name, name, 0) }

// ValidateRoleName checks a role name; same rules as usernames.
func ValidateRoleName(name string) error { return checkName("role name", name, name, 0) }

// ValidateProvider checks a chat provider name ("slack", "irc", "web").
func ValidateProvider(provider string) error {
	return checkName("chat provider", provider, provider, 0)
}

// LinkableProviders are the chat providers a handle can be linked on:
// those that name a person by the provider's own id. api and web senders
// are Logbook users already (a token, a web session), so nothing is
// linked there.
var LinkableProviders = []string{"irc", "slack"}

// ValidateLinkableProvider checks that handles can be linked on provider,
// so a typo ("slak") or a provider this build does not have is refused
// instead of recording a handle no message will ever carry.
func ValidateLinkableProvider(provider string) error {
	if err := ValidateProvider(provider); err != nil {
		return err
	}
	if !slices.Contains(LinkableProviders, provider) {
		return &Error{Kind: KindInvalid, Column: 1,
			Message: fmt.Sprintf("chat provider %s takes no linked handles; expected one of %s", quoteShort(provider), strings.Join(LinkableProviders, ", "))}
	}
	return nil
}

// ValidateHandle checks a chat handle: the provider's own id for a person
// (Slack's U024BE7LH, an IRC nick). Handles are provider-defined, so only
// what would break storage or display is refused: emptiness, invalid UTF-8,
// whitespace and control characters, and more than 255 bytes. Handles are
// compared exactly, case included.
func ValidateHandle(handle string) error {
	if handle == "" {
		return &Error{Kind: KindInvalid, Column: 1, Message: "chat handle is empty; expected the provider's id for the person"}
	}
	if err := checkText("chat handle", handle); err != nil {
		return err
	}
	if len(handle) > MaxHandleLength {
		return &Error{Kind: KindInvalid, Column: utf8.RuneCountInString(handle[:MaxHandleLength]) + 1,
			Message: fmt.Sprintf("chat handle %s is longer than %d bytes", quoteShort(handle), MaxHandleLength)}
	}
	return nil
}

// ValidateEmail checks an email address loosely: one '@' with something on
// both sides, no whitespace or control characters, at most 254 bytes. Whether
// it receives mail is not this package's business.
func ValidateEmail(email string) error {
	if email == "" {
		return &Error{Kind: KindInvalid, Column: 1, Message: "email is empty; expected an address like alice@example.com"}
	}
	if err := checkText("email", email); err != nil {
		return err
	}
	if len(email) > MaxEmailLength {
		return &Error{Kind: KindInvalid, Column: utf8.RuneCountInString(email[:MaxEmailLength]) + 1,
			Message: fmt.Sprintf("email %s is longer than %d bytes", quoteShort(email), MaxEmailLength)}
	}
	at := strings.IndexByte(email, '@')
	switch {
	case at < 0:
		return &Error{Kind: KindInvalid, Column: utf8.RuneCountInString(email) + 1,
			Message: fmt.Sprintf("email %s has no '@'; expected an address like alice@example.com", quoteShort(email))}
	case at == 0:
		return &Error{Kind: KindInvalid, Column: 1,
			Message: fmt.Sprintf("email %s has nothing before '@'; expected a mailbox name at column 1", quoteShort(email))}
	case at == len(email)-1:
		return &Error{Kind: KindInvalid, Column: utf8.RuneCountInString(email) + 1,
			Message: fmt.Sprintf("email %s has nothing after '@'; expected a domain", quoteShort(email))}
	}
	if second := strings.IndexByte(email[at+1:], '@'); second >= 0 {
		col := utf8.RuneCountInString(email[:at+1+second]) + 1
		return &Error{Kind: KindInvalid, Column: col,
			Message: fmt.Sprintf("email %s has a second '@' at column %d; expected exactly one", quoteShort(email), col)}
	}
	return nil
}

// SiteNamespace is the namespace of permissions operators create by hand;
// no bundle may use it.
const SiteNamespace = "site"

// Permission is a namespaced permission such as "deploy:prod". Bundles
// declare permissions in their own namespace; operators create them in
// "site".
type Permission struct {
	Namespace string
	Name      string
}

func (p Permission) String() string { return p.Namespace + ":" + p.Name }

// ParsePermission parses "namespace:name"; both halves follow the name rules.
func ParsePermission(s string) (Permission, error) {
	namespace, name, ok := strings.Cut(s, ":")
	if !ok {
		if err := checkName("permission", s, s, 0); err != nil {
			return Permission{}, err
		}
		return Permission{}, &Error{Kind: KindInvalid, Column: utf8.RuneCountInString(s) + 1,
			Message: fmt.Sprintf("permission %s has no namespace; expected \"namespace:name\", e.g. \"site:%s\"", quoteShort(s), s)}
	}
	if namespace == "" {
		return Permission{}, &Error{Kind: KindInvalid, Column: 1,
			Message: fmt.Sprintf("permission %s has an empty namespace; expected %s before ':'", quoteShort(s), nameExpectation)}
	}
	if err := checkName("permission", s, namespace, 0); err != nil {
		return Permission{}, err
	}
	offset := utf8.RuneCountInString(namespace) + 1
	if name == "" {
		return Permission{}, &Error{Kind: KindInvalid, Column: offset + 1,
			Message: fmt.Sprintf("permission %s has an empty name; expected %s after ':'", quoteShort(s), nameExpectation)}
	}
	if err := checkName("permission", s, name, offset); err != nil {
		return Permission{}, err
	}
	return Permission{Namespace: namespace, Name: name}, nil
}

// checkName checks part, which starts offset characters into full, against
// the name rules; errors quote full and give columns within it.
func checkName(label, full, part string, offset int) error {
	if part == "" {
		return &Error{Kind: KindInvalid, Column: offset + 1,
			Message: fmt.Sprintf("%s is empty; expected 1 to %d characters, each %s", label, MaxNameLength, nameExpectation)}
	}
	n := 0
	for _, r := range part {
		n++
		col := offset + n
		if n > MaxNameLength {
			return &Error{Kind: KindInvalid, Column: col,
				Message: fmt.Sprintf("%s %s is too long at column %d; expected at most %d characters", label, quoteShort(full), col, MaxNameLength)}
		}
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
		case r == '-' || r == '_' || r == '.':
			if n == 1 {
				// A leading '-' reads as a flag on a command line; a
				// leading '.' as a hidden or relative path.
				return &Error{Kind: KindInvalid, Column: col,
					Message: fmt.Sprintf("%s %s starts with %q at column %d; expected a lowercase letter or digit", label, quoteShort(full), r, col)}
			}
		default:
			return &Error{Kind: KindInvalid, Column: col,
				Message: fmt.Sprintf("%s %s has %s at column %d; expected %s", label, quoteShort(full), describeRune(r), col, nameExpectation)}
		}
	}
	return nil
}

// checkText refuses invalid UTF-8, whitespace, control characters and
// invisible format characters (Unicode's Cf: bidirectional overrides such
// as U+202E, zero-width spaces and joiners), which would let one handle
// display as another in a list or a log.
func checkText(label, s string) error {
	col := 0
	for i, r := range s {
		col++
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return &Error{Kind: KindInvalid, Column: col,
					Message: fmt.Sprintf("%s %s has invalid UTF-8 at column %d; expected text", label, quoteShort(s), col)}
			}
		}
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return &Error{Kind: KindInvalid, Column: col,
				Message: fmt.Sprintf("%s %s has %s at column %d; expected no whitespace, control or invisible formatting characters", label, quoteShort(s), describeRune(r), col)}
		}
	}
	return nil
}

func describeRune(r rune) string {
	switch {
	case r == utf8.RuneError:
		return "an invalid character"
	case unicode.IsSpace(r):
		return fmt.Sprintf("whitespace %q", r)
	case 'A' <= r && r <= 'Z':
		return fmt.Sprintf("the uppercase letter %q", r)
	case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
		return fmt.Sprintf("the invisible character U+%04X", r)
	default:
		return fmt.Sprintf("the character %q", r)
	}
}

// quoteShort quotes s for an error message, cut to a readable length so a
// hostile multi-megabyte input does not become a multi-megabyte message.
func quoteShort(s string) string {
	const limit = 80
	n := 0
	for i := range s {
		if n == limit {
			return fmt.Sprintf("%q…", s[:i])
		}
		n++
	}
	return fmt.Sprintf("%q", s)
}

// ValidateName checks any other name kept to the same rules (a trigger's,
// a schedule's); label says what it names in the error.
func ValidateName(label, name string) error { return checkName(label, name, name, 0) }
