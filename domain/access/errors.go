package access

import (
	"errors"
	"fmt"
)

// ErrorKind says what went wrong in a way callers can branch on: a CLI picks
// its exit code from it, an HTTP adapter its status, a chat adapter its tone.
type ErrorKind uint8

const (
	// KindInvalid: the command is malformed (a bad name, a missing field).
	KindInvalid ErrorKind = iota + 1
	// KindNotFound: the command names a user, group, role or permission
	// that does not exist.
	KindNotFound
	// KindAlreadyExists: the command creates something that already exists.
	KindAlreadyExists
	// KindConflict: the command is well formed but would break an invariant
	// (a handle held by someone else, the last admin).
	KindConflict
	// KindForbidden: the user lacks the permission the read or change
	// needs; the sentence names it.
	KindForbidden
)

func (k ErrorKind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindNotFound:
		return "not found"
	case KindAlreadyExists:
		return "already exists"
	case KindConflict:
		return "conflict"
	case KindForbidden:
		return "forbidden"
	default:
		return "unknown"
	}
}

// Error is every error this package returns: a kind and a sentence a person
// can act on, e.g. "handle U123 on slack is already linked to user alice".
type Error struct {
	Kind ErrorKind
	// Column is the 1-based character position of the first offending
	// character when a name is malformed, and 0 otherwise.
	Column  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// KindOf returns the kind of the first access error in err's chain, or 0 when
// err is nil or comes from elsewhere.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

func errorf(kind ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}
