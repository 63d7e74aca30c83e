package dispatch

import "fmt"

// ErrorKind classifies what went wrong, for callers that translate errors
// (the chat reply, an exit code) in one place.
type ErrorKind uint8

const (
	// KindUnknownCommand: no builtin or enabled bundle has the command.
	KindUnknownCommand ErrorKind = iota + 1
	// KindAmbiguousCommand: a bare name that several enabled bundles have.
	KindAmbiguousCommand
	// KindDisabledBundle: the command's bundle is installed but disabled.
	KindDisabledBundle
	// KindNotReceived: a trigger for a request whose RequestReceived is not
	// in the state given to Decide.
	KindNotReceived
	// KindBadBuiltin: a builtin was declared wrongly (a rule that does not
	// parse, no run function).
	KindBadBuiltin
)

func (k ErrorKind) String() string {
	switch k {
	case KindUnknownCommand:
		return "unknown command"
	case KindAmbiguousCommand:
		return "ambiguous command"
	case KindDisabledBundle:
		return "disabled bundle"
	case KindNotReceived:
		return "not received"
	case KindBadBuiltin:
		return "bad builtin"
	}
	return fmt.Sprintf("ErrorKind(%d)", uint8(k))
}

// Error is a dispatch error: a kind and a sentence for people.
type Error struct {
	Kind ErrorKind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func errorf(kind ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}
