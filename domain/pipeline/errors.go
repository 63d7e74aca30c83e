package pipeline

import (
	"errors"
	"fmt"
)

// SyntaxError is text that does not parse. Column is 1-based and counts
// characters from the start of the text; Msg says what was expected there.
type SyntaxError struct {
	Column int
	Msg    string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("column %d: %s", e.Column, e.Msg) }

// BindError is a variable that cannot be bound to the previous stage's
// output. Variable is the reference as written (for example "$a.b[0]") and
// Column is where it was written.
type BindError struct {
	Column   int
	Variable string
	Msg      string
}

func (e *BindError) Error() string { return fmt.Sprintf("column %d: %s", e.Column, e.Msg) }

// ErrRerun is what Parse returns for the text "!!": the person asks to run
// their previous pipeline again. It is not a syntax error; the dispatcher
// detects it with errors.Is and looks the previous pipeline up.
var ErrRerun = errors.New("!! asks to run the previous pipeline again")

func syntaxErrorf(column int, format string, args ...any) *SyntaxError {
	return &SyntaxError{Column: column, Msg: fmt.Sprintf(format, args...)}
}
