package bundle

import (
	"fmt"
	"strings"
)

// Kind says which stage of loading found a problem.
type Kind string

const (
	// KindSyntax: the bytes are not one well-formed YAML or JSON document
	// within the size and alias limits.
	KindSyntax Kind = "syntax"
	// KindSchema: a field is unknown, repeated, missing or of the wrong type.
	KindSchema Kind = "schema"
	// KindMeaning: the fields are well-formed but do not make sense
	// together: a rule that does not parse or names an undeclared
	// permission, an invalid name or version, an ambiguous short flag.
	KindMeaning Kind = "meaning"
)

// Problem is one error or warning about a config. Line is 1-based, or 0
// when the problem is about the document as a whole.
type Problem struct {
	Kind    Kind
	Line    int
	Message string
}

func (p Problem) String() string {
	if p.Line == 0 {
		return p.Message
	}
	return fmt.Sprintf("line %d: %s", p.Line, p.Message)
}

// InvalidError is returned by Load for a config with at least one error. It
// carries every error found (loading does not stop at the first) and the
// warnings, so a validator can show both.
type InvalidError struct {
	Errors   []Problem
	Warnings []Problem
}

func (e *InvalidError) Error() string {
	lines := make([]string, len(e.Errors))
	for i, p := range e.Errors {
		lines[i] = p.String()
	}
	noun := "errors"
	if len(e.Errors) == 1 {
		noun = "error"
	}
	return fmt.Sprintf("bundle config has %d %s:\n%s", len(e.Errors), noun, strings.Join(lines, "\n"))
}
