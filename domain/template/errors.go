package template

import "fmt"

// Pos is a place in a template's source: a 1-based line and a 1-based
// column counted in characters (runes) from the start of that line.
type Pos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

func (p Pos) String() string { return fmt.Sprintf("line %d, column %d", p.Line, p.Column) }

// SyntaxError is a template that does not parse: where, and what was
// expected there.
type SyntaxError struct {
	Pos
	Msg string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

func syntaxErrorf(p Pos, format string, args ...any) *SyntaxError {
	return &SyntaxError{Pos: p, Msg: fmt.Sprintf(format, args...)}
}
