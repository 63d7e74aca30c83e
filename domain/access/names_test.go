package access

import (
	"errors"
	"strings"
	"testing"
)

func TestNameRules(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", MaxNameLength)
	cases := []struct {
		name     string
		validate func(string) error
		input    string
		column   int    // 0: valid
		says     string // part of the error sentence
	}{
		{"a plain lowercase username is valid", ValidateUsername, "alice", 0, ""},
		{"digits, dashes, underscores and dots are valid after the first character", ValidateUsername, "a1-b_c.d", 0, ""},
		{"a username may start with a digit", ValidateUsername, "1alice", 0, ""},
		{"a username of exactly 64 characters is valid", ValidateUsername, long, 0, ""},
		{"a UUID is a valid user id", ValidateUserID, "0190f3a2-7c1e-7d2b-9a4e-6f1d2c3b4a59", 0, ""},
		{"an empty username says so", ValidateUsername, "", 1, "username is empty; expected 1 to 64 characters"},
		{"a username of 65 characters is too long at column 65", ValidateUsername, long + "a", 65, "expected at most 64 characters"},
		{"an uppercase letter is named with its column", ValidateUsername, "alIce", 3, "the uppercase letter 'I' at column 3"},
		{"a leading dot is refused", ValidateGroupName, ".ops", 1, "starts with '.' at column 1; expected a lowercase letter or digit"},
		{"a leading underscore is refused", ValidateRoleName, "_x", 1, "starts with '_'"},
		{"a colon is not part of a name", ValidateRoleName, "a:b", 2, "the character ':' at column 2"},
		{"columns count characters, not bytes", ValidateUsername, "éa!", 1, "column 1"},
		{"a non-ASCII letter after ASCII is found at its character column", ValidateUsername, "aéb", 2, "column 2"},
		{"invalid UTF-8 is refused", ValidateUsername, "a\xffb", 2, "an invalid character at column 2"},
		{"a provider name follows the name rules", ValidateProvider, "slack", 0, ""},
		{"a provider name with a space is refused", ValidateProvider, "my slack", 3, "whitespace ' ' at column 3"},
		{"handles link on slack", ValidateLinkableProvider, "slack", 0, ""},
		{"handles link on irc", ValidateLinkableProvider, "irc", 0, ""},
		{"an unknown provider takes no handles", ValidateLinkableProvider, "slak", 1, `"slak" takes no linked handles; expected one of irc, slack`},
		{"api senders are users already and take no handles", ValidateLinkableProvider, "api", 1, "takes no linked handles"},

		{"a Slack user id is a valid handle", ValidateHandle, "U024BE7LH", 0, ""},
		{"an IRC nick with brackets is a valid handle", ValidateHandle, "[alice]^", 0, ""},
		{"a handle may be any printable text", ValidateHandle, "ália@example.com", 0, ""},
		{"an empty handle says so", ValidateHandle, "", 1, "chat handle is empty"},
		{"a handle with a tab is refused", ValidateHandle, "ab\tc", 3, `whitespace '\t' at column 3`},
		{"a handle with a control character is refused", ValidateHandle, "ab\x00", 3, "column 3; expected no whitespace, control or invisible formatting characters"},
		{"a handle with a right-to-left override is refused", ValidateHandle, "bob\u202egpj.exe", 4, "the invisible character U+202E at column 4"},
		{"a handle with a zero-width space is refused", ValidateHandle, "ad\u200bmin", 3, "U+200B at column 3"},
		{"a handle with a left-to-right isolate is refused", ValidateHandle, "\u2066alice", 1, "U+2066 at column 1"},
		{"a handle with invalid UTF-8 is refused", ValidateHandle, "\xc3", 1, "invalid UTF-8 at column 1"},
		{"a handle of 256 bytes is refused", ValidateHandle, strings.Repeat("x", 256), 256, "longer than 255 bytes"},

		{"a plain email is valid", ValidateEmail, "alice@example.com", 0, ""},
		{"an email without an at sign is refused at its end", ValidateEmail, "alice", 6, "has no '@'"},
		{"an email starting with an at sign is refused", ValidateEmail, "@example.com", 1, "nothing before '@'"},
		{"an email ending with an at sign is refused", ValidateEmail, "alice@", 7, "nothing after '@'"},
		{"an email with two at signs names the second", ValidateEmail, "a@b@c", 4, "second '@' at column 4"},
		{"an email with a space is refused", ValidateEmail, "a b@c", 2, "whitespace"},
		{"an email longer than 254 bytes is refused", ValidateEmail, strings.Repeat("a", 250) + "@b.com", 255, "longer than 254 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := c.validate(c.input)
			checkNameError(t, c.input, err, c.column, c.says)
		})
	}
}

func TestParsePermission(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		input  string
		want   Permission
		column int
		says   string
	}{
		{"a bundle permission parses into namespace and name", "deploy:prod", Permission{"deploy", "prod"}, 0, ""},
		{"a site permission parses", "site:restart-web", Permission{"site", "restart-web"}, 0, ""},
		{"a permission without a colon has no namespace", "prod", Permission{}, 5, `has no namespace; expected "namespace:name", e.g. "site:prod"`},
		{"an empty string is refused", "", Permission{}, 1, "permission is empty"},
		{"an empty namespace is refused at column 1", ":prod", Permission{}, 1, "empty namespace"},
		{"an empty name is refused after the colon", "deploy:", Permission{}, 8, "empty name; expected a lowercase letter, digit, '-', '_' or '.' after ':'"},
		{"a second colon is refused where it stands", "a:b:c", Permission{}, 4, "the character ':' at column 4"},
		{"an uppercase letter in the name is found at its column in the whole", "deploy:Prod", Permission{}, 8, "the uppercase letter 'P' at column 8"},
		{"a namespace longer than 64 characters is refused", strings.Repeat("n", 65) + ":x", Permission{}, 65, "too long"},
		{"a name longer than 64 characters is refused at its column", "ns:" + strings.Repeat("x", 65), Permission{}, 68, "too long at column 68"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParsePermission(c.input)
			checkNameError(t, c.input, err, c.column, c.says)
			if err == nil && (got != c.want || got.String() != c.input) {
				t.Fatalf("ParsePermission(%q) = %#v (%s), want %#v", c.input, got, got, c.want)
			}
		})
	}
}

func checkNameError(t *testing.T, input string, err error, column int, says string) {
	t.Helper()
	if column == 0 {
		if err != nil {
			t.Fatalf("%q: unexpected error: %v", input, err)
		}
		return
	}
	var e *Error
	if err == nil {
		t.Fatalf("%q: accepted, want an error at column %d", input, column)
	}
	if !errors.As(err, &e) || e.Kind != KindInvalid {
		t.Fatalf("%q: got %T %v, want an invalid *Error", input, err, err)
	}
	if e.Column != column {
		t.Errorf("%q: column %d, want %d (%s)", input, e.Column, column, e.Message)
	}
	if !strings.Contains(e.Message, says) {
		t.Errorf("%q: message %q does not say %q", input, e.Message, says)
	}
}

func TestErrorMessagesQuoteLongInputsShortly(t *testing.T) {
	t.Parallel()
	err := ValidateUsername(strings.Repeat("A", 10_000))
	if err == nil || len(err.Error()) > 300 {
		t.Fatalf("error for a 10 000 character input is %d bytes long: %v", len(err.Error()), err)
	}
	if !strings.Contains(err.Error(), "…") {
		t.Fatalf("a shortened quote should end with an ellipsis: %v", err)
	}
}

func TestErrorKindsReadAsWords(t *testing.T) {
	t.Parallel()
	for kind, want := range map[ErrorKind]string{
		KindInvalid: "invalid", KindNotFound: "not found", KindAlreadyExists: "already exists",
		KindConflict: "conflict", 0: "unknown",
	} {
		if got := kind.String(); got != want {
			t.Errorf("ErrorKind(%d).String() = %q, want %q", kind, got, want)
		}
	}
	if KindOf(nil) != 0 || KindOf(errors.ErrUnsupported) != 0 {
		t.Error("KindOf must be 0 for errors from elsewhere")
	}
}
