// Package bundleconfig is a bundle's dynamic configuration, as Cog had it:
// values set per layer (base, room/<room>, group/<group>, user/<user>),
// merged shallowly in that order, and handed to the bundle's commands as
// environment variables. A secret is a kind of configuration whose value
// never enters the event log: its events carry its name, layer and
// version, and the value lives in a secret source (Vault), encrypted.
//
// The events live in the `bundleconfig-<bundle>` stream. Decide and Evolve
// are the pure decider of that stream; Values is the read model deciding
// a run resolves its environment from.
package bundleconfig

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// LayerKind is the kind of a configuration layer.
type LayerKind string

const (
	Base  LayerKind = "base"
	Room  LayerKind = "room"
	Group LayerKind = "group"
	User  LayerKind = "user"
)

// Layer is one configuration layer: base, or a room, group or user of
// that name.
type Layer struct {
	Kind LayerKind
	Name string // empty for base
}

// BaseLayer is the layer every run reads first.
var BaseLayer = Layer{Kind: Base}

// String is the layer's written form: "base", "room/ops", "user/alice".
func (l Layer) String() string {
	if l.Kind == Base {
		return string(Base)
	}
	return string(l.Kind) + "/" + l.Name
}

// rank orders layers by precedence: a later layer's value wins.
func (l Layer) rank() int {
	switch l.Kind {
	case Room:
		return 1
	case Group:
		return 2
	case User:
		return 3
	}
	return 0
}

// MaxLayerNameBytes bounds a room, group or user name in a layer.
const MaxLayerNameBytes = 255

// ParseLayer reads a layer's written form. Room names are the chat
// provider's (printable, no spaces); group and user names follow the
// access rules, which the builtin checks against the directory.
func ParseLayer(s string) (Layer, error) {
	if s == string(Base) {
		return BaseLayer, nil
	}
	kind, name, ok := strings.Cut(s, "/")
	if !ok {
		return Layer{}, invalidf("layer %q is not base, room/ROOM, group/GROUP or user/USER", clip(s))
	}
	l := Layer{Kind: LayerKind(kind), Name: name}
	switch l.Kind {
	case Room, Group, User:
	default:
		return Layer{}, invalidf("layer %q is not base, room/ROOM, group/GROUP or user/USER", clip(s))
	}
	if err := validateLayerName(l); err != nil {
		return Layer{}, err
	}
	return l, nil
}

// NewLayer builds a layer from its parts, as the CLI's --room, --group and
// --user give them.
func NewLayer(kind LayerKind, name string) (Layer, error) {
	if kind == Base {
		if name != "" {
			return Layer{}, invalidf("the base layer has no name")
		}
		return BaseLayer, nil
	}
	return ParseLayer(string(kind) + "/" + name)
}

func validateLayerName(l Layer) error {
	switch {
	case l.Name == "":
		return invalidf("layer %s/ names no %s", l.Kind, l.Kind)
	case len(l.Name) > MaxLayerNameBytes:
		return invalidf("the %s name in layer %s/... is %d bytes long; the limit is %d", l.Kind, l.Kind, len(l.Name), MaxLayerNameBytes)
	case !utf8.ValidString(l.Name):
		return invalidf("the %s name in layer %s/... is not UTF-8", l.Kind, l.Kind)
	}
	for i, r := range l.Name {
		// Names that look alike must be alike: no spaces, control or
		// invisible format characters (bidirectional overrides).
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || !unicode.IsPrint(r) {
			return invalidf("the %s name in layer %s has %q at byte %d; names hold no spaces, control or invisible characters", l.Kind, clip(l.String()), r, i+1)
		}
	}
	return nil
}

// keyPattern is an environment variable name.
var keyPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// MaxKeyBytes and MaxValueBytes bound a key and its value.
const (
	MaxKeyBytes   = 128
	MaxValueBytes = 32 << 10
)

// reservedPrefixes are the environment Logbook itself sets (the Cog
// protocol) or reads: configuration may not shadow them.
var reservedPrefixes = []string{"COG_", "LOGBOOK_"}

// ValidateKey checks a configuration key: an environment variable name,
// not starting with COG_ or LOGBOOK_ in any case.
func ValidateKey(key string) error {
	if len(key) > MaxKeyBytes {
		return invalidf("the key is %d bytes long; the limit is %d", len(key), MaxKeyBytes)
	}
	if !keyPattern.MatchString(key) {
		return invalidf("%q is not an environment variable name: a letter or '_', then letters, digits or '_'", clip(key))
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(strings.ToUpper(key), p) {
			return invalidf("%s starts with %s, which is reserved for what Logbook sets itself", key, p)
		}
	}
	return nil
}

// ValidateValue checks a value: at most MaxValueBytes, and no NUL (an
// environment cannot hold one).
func ValidateValue(key, value string) error {
	if len(value) > MaxValueBytes {
		return invalidf("the value of %s is %d bytes long; the limit is %d", key, len(value), MaxValueBytes)
	}
	if strings.IndexByte(value, 0) >= 0 {
		return invalidf("the value of %s holds a NUL byte, which no environment variable can", key)
	}
	return nil
}

// ParseAssignment reads KEY=VALUE. The value is everything after the
// first '=' and may be empty; the key must be valid.
func ParseAssignment(s string) (key, value string, err error) {
	key, value, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", invalidf("%q is not KEY=VALUE", clip(s))
	}
	if err := ValidateKey(key); err != nil {
		return "", "", err
	}
	if err := ValidateValue(key, value); err != nil {
		return "", "", err
	}
	return key, value, nil
}

// ErrorKind says what went wrong, for callers that branch on it.
type ErrorKind uint8

const (
	// KindInvalid: a malformed layer, key or value.
	KindInvalid ErrorKind = iota + 1
	// KindConflict: the key is held by the other kind (a value where a
	// secret is, or the reverse) in that layer.
	KindConflict
)

// Error is every error this package returns: a kind and a sentence.
type Error struct {
	Kind    ErrorKind
	Message string
}

func (e *Error) Error() string { return e.Message }

// KindOf returns the kind of the first bundleconfig error in err's chain.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

func invalidf(format string, args ...any) error {
	return &Error{Kind: KindInvalid, Message: fmt.Sprintf(format, args...)}
}

// clip shortens what someone typed before it is quoted back to them.
func clip(s string) string {
	if len(s) <= 80 {
		return s
	}
	cut := 80
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
