package dispatch

import (
	"errors"
	"fmt"
)

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
	// KindMessageIDTaken: a message arrived under the id of another
	// sender's request; it is not that request again.
	KindMessageIDTaken
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
	case KindMessageIDTaken:
		return "message id taken"
	}
	return fmt.Sprintf("ErrorKind(%d)", uint8(k))
}

// Error is a dispatch error: a kind and a sentence for people.
type Error struct {
	Kind ErrorKind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// KindOf returns the kind of the first dispatch error in err's chain, or 0.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// MessageIDTaken is the error for a message that reuses the id of another
// sender's request.
func MessageIDTaken(adapter, messageID string) *Error {
	return errorf(KindMessageIDTaken, "the %s message id %q names a request from another sender; send it with a message id of its own", adapter, messageID)
}

func errorf(kind ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}
