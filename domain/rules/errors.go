package rules

import "fmt"

// SyntaxError is a rule that does not parse. Column is the 1-based position,
// in characters (runes) from the start of the rule text, of the first
// character that could not be understood; a newline counts as one character.
// Msg says what was expected and what was found.
type SyntaxError struct {
	Column int
	Msg    string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("column %d: %s", e.Column, e.Msg) }

// NameError is returned by ParseForCommand when the bundle or command name
// it is given cannot form a command name (bundle:command), so a short-form
// rule cannot be expanded. The rule text itself was not at fault.
type NameError struct {
	Bundle  string
	Command string
	Msg     string
}

func (e *NameError) Error() string { return e.Msg }

func syntaxErrorf(column int, format string, args ...any) *SyntaxError {
	return &SyntaxError{Column: column, Msg: fmt.Sprintf(format, args...)}
}
