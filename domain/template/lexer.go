package template

import (
	"strings"
	"unicode/utf8"
)

// MaxSourceBytes bounds a template's source. Cog bundles' templates are a
// few hundred bytes; the bound keeps a hostile config from making parsing
// expensive.
const MaxSourceBytes = 256 << 10

type tokenKind int

const (
	tokText    tokenKind = iota // literal text without a line break
	tokNewline                  // one line break ("\n" or "\r\n")
	tokTag                      // ~...~: text holds what is between the tildes
	tokComment                  // # to the end of the line, line break excluded
)

type token struct {
	kind tokenKind
	text string
	pos  Pos // of the token's first character (the opening ~ of a tag)
	// dropped is set by the line pass: the token is layout only (the
	// indentation and line break of a line that holds nothing but tags).
	dropped bool
}

// lex cuts source into tokens in one forward pass. Tags must close on the
// line they open on, so a missing ~ is reported where it was left out,
// rather than at the far end of the template.
func lex(source string) ([]token, error) {
	var toks []token
	line, col := 1, 1
	var text strings.Builder
	textPos := Pos{1, 1}
	flush := func() {
		if text.Len() > 0 {
			toks = append(toks, token{kind: tokText, text: text.String(), pos: textPos})
			text.Reset()
		}
	}
	addText := func(s string, at Pos) {
		if text.Len() == 0 {
			textPos = at
		}
		text.WriteString(s)
	}
	for i := 0; i < len(source); {
		r, size := utf8.DecodeRuneInString(source[i:])
		here := Pos{line, col}
		switch {
		case r == '\r' && strings.HasPrefix(source[i:], "\r\n"), r == '\n':
			flush()
			toks = append(toks, token{kind: tokNewline, text: "\n", pos: here})
			if r == '\r' {
				size = 2
			}
			i += size
			line, col = line+1, 1
			continue
		case r == '\\' && i+1 < len(source) && (source[i+1] == '~' || source[i+1] == '#'):
			addText(source[i+1:i+2], here)
			i, col = i+2, col+2
			continue
		case r == '#':
			flush()
			end := strings.IndexAny(source[i:], "\r\n")
			if end < 0 {
				end = len(source) - i
			}
			toks = append(toks, token{kind: tokComment, text: source[i : i+end], pos: here})
			col += utf8.RuneCountInString(source[i : i+end])
			i += end
			continue
		case r == '~':
			flush()
			inner, n, err := scanTag(source[i+1:], here)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tokTag, text: inner, pos: here})
			col += 2 + utf8.RuneCountInString(inner)
			i += n + 1
			continue
		}
		addText(source[i:i+size], here)
		i, col = i+size, col+1
	}
	flush()
	return toks, nil
}

// scanTag finds the ~ that closes a tag opened at open; rest starts just
// after the opening ~. A ~ inside a double-quoted string does not close
// it. It returns the tag's inside and how many bytes of rest it took,
// closing ~ included.
func scanTag(rest string, open Pos) (string, int, error) {
	quoted, quoteAt := false, 0
	unclosed := func(j int) error {
		if quoted {
			return syntaxErrorf(Pos{open.Line, open.Column + 1 + utf8.RuneCountInString(rest[:quoteAt])}, "the string that starts here has no closing \"")
		}
		if j < len(rest) {
			return syntaxErrorf(open, "the tag that opens here is not closed on its line: a ~ is missing")
		}
		return syntaxErrorf(open, "the tag that opens here is not closed: a ~ is missing")
	}
	for j := 0; j < len(rest); j++ {
		switch c := rest[j]; {
		case c == '\n' || c == '\r':
			return "", 0, unclosed(j)
		case quoted && c == '\\' && j+1 < len(rest) && rest[j+1] != '\n':
			j++
		case c == '"':
			quoted, quoteAt = !quoted, j
		case c == '~' && !quoted:
			if j == 0 {
				return "", 0, syntaxErrorf(open, "an empty tag ~~: write \\~ for a literal tilde")
			}
			return rest[:j], j + 1, nil
		}
	}
	return "", 0, unclosed(len(rest))
}
