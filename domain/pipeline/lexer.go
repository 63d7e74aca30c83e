package pipeline

import (
	"strconv"
	"strings"
	"unicode"
)

// Limits that keep every input cheap to reject.
const (
	MaxTextBytes  = 16 << 10 // longest pipeline text accepted, in bytes
	MaxStages     = 64       // most stages in one pipeline
	MaxPathLength = 32       // most steps in one variable path ($a.b[0] is 3)
)

// charKind records how a character of a word was written, which decides
// whether it is typed, whether it may start an option, and so on.
type charKind uint8

const (
	bareChar    charKind = iota // unquoted, unescaped
	escapedChar                 // \x outside quotes, or \" \\ \$ inside double quotes
	singleChar                  // inside single quotes
	doubleChar                  // inside double quotes
)

// wchar is one character of a word, or a variable reference standing in
// place of the characters that wrote it.
type wchar struct {
	r    rune
	col  int
	kind charKind
	// quoteMark is a zero-width marker at each opening quote, so that an
	// empty quoted part ("") still marks the word as quoted.
	quoteMark bool
	// ref is a variable reference. interp is true for the ${path} form,
	// which joins text; the bare $path form must stand alone.
	ref    *VarRef
	interp bool
	raw    string // the reference as written
}

type tokenKind uint8

const (
	tokWord tokenKind = iota
	tokPipe
	tokRedirectOne
	tokRedirectMany
	tokEOF
)

type token struct {
	kind  tokenKind
	col   int
	text  string // source text of the token
	chars []wchar
}

type lexer struct {
	src  []rune
	pos  int
	toks []token
}

// lex splits src (starting at index start) into words and operators. Columns
// are index+1 into src, so they count from the start of the original text.
func lex(src []rune, start int) ([]token, error) {
	lx := &lexer{src: src, pos: start}
	for {
		lx.skipSpace()
		if lx.pos >= len(lx.src) {
			lx.toks = append(lx.toks, token{kind: tokEOF, col: len(lx.src) + 1})
			return lx.toks, nil
		}
		if kind, width := lx.operatorAt(lx.pos); width > 0 {
			lx.toks = append(lx.toks, token{kind: kind, col: lx.pos + 1, text: string(lx.src[lx.pos : lx.pos+width])})
			lx.pos += width
			continue
		}
		if err := lx.word(); err != nil {
			return nil, err
		}
	}
}

func (lx *lexer) skipSpace() {
	for lx.pos < len(lx.src) && unicode.IsSpace(lx.src[lx.pos]) {
		lx.pos++
	}
}

// operatorAt reports the unquoted operator starting at i, if any.
func (lx *lexer) operatorAt(i int) (tokenKind, int) {
	switch lx.src[i] {
	case '|':
		return tokPipe, 1
	case '>':
		return tokRedirectOne, 1
	case '&':
		if i+1 < len(lx.src) && lx.src[i+1] == '&' {
			return tokPipe, 2
		}
	case '*':
		if i+1 < len(lx.src) && lx.src[i+1] == '>' {
			return tokRedirectMany, 2
		}
	}
	return 0, 0
}

func (lx *lexer) word() error {
	start := lx.pos
	var chars []wchar
	for lx.pos < len(lx.src) {
		c := lx.src[lx.pos]
		if unicode.IsSpace(c) {
			break
		}
		if _, width := lx.operatorAt(lx.pos); width > 0 {
			break
		}
		switch {
		case c == '\\':
			if lx.pos+1 >= len(lx.src) {
				return syntaxErrorf(lx.pos+1, `expected a character after \ (a backslash at the end makes nothing literal)`)
			}
			chars = append(chars, wchar{r: lx.src[lx.pos+1], col: lx.pos + 2, kind: escapedChar})
			lx.pos += 2
		case c == '\'':
			var err error
			if chars, err = lx.singleQuoted(chars); err != nil {
				return err
			}
		case c == '"':
			var err error
			if chars, err = lx.doubleQuoted(chars); err != nil {
				return err
			}
		case c == '$' && lx.pos+1 < len(lx.src) && lx.src[lx.pos+1] == '{':
			ch, err := lx.interpolation(bareChar)
			if err != nil {
				return err
			}
			chars = append(chars, ch)
		case c == '$' && lx.pos+1 < len(lx.src) && isNameStart(lx.src[lx.pos+1]):
			col := lx.pos + 1
			ref, end, err := parsePath(lx.src, lx.pos+1, col)
			if err != nil {
				return err
			}
			chars = append(chars, wchar{col: col, kind: bareChar, ref: ref, raw: string(lx.src[lx.pos:end])})
			lx.pos = end
		default:
			chars = append(chars, wchar{r: c, col: lx.pos + 1, kind: bareChar})
			lx.pos++
		}
	}
	lx.toks = append(lx.toks, token{kind: tokWord, col: start + 1, text: string(lx.src[start:lx.pos]), chars: chars})
	return nil
}

// singleQuoted keeps everything literal up to the closing quote. \' is a
// quote; a backslash before anything else stays, together with that
// character, so JSON escapes pass through and \\ never swallows the quote.
func (lx *lexer) singleQuoted(chars []wchar) ([]wchar, error) {
	open := lx.pos
	chars = append(chars, wchar{col: open + 1, kind: singleChar, quoteMark: true})
	i := open + 1
	for i < len(lx.src) {
		c := lx.src[i]
		switch {
		case c == '\'':
			lx.pos = i + 1
			return chars, nil
		case c == '\\' && i+1 < len(lx.src):
			if lx.src[i+1] == '\'' {
				chars = append(chars, wchar{r: '\'', col: i + 2, kind: singleChar})
			} else {
				chars = append(chars,
					wchar{r: '\\', col: i + 1, kind: singleChar},
					wchar{r: lx.src[i+1], col: i + 2, kind: singleChar})
			}
			i += 2
		default:
			chars = append(chars, wchar{r: c, col: i + 1, kind: singleChar})
			i++
		}
	}
	return nil, syntaxErrorf(open+1, "expected a closing ' for the quote opened here")
}

// doubleQuoted keeps everything literal up to the closing quote except the
// escapes \" \\ \$ and ${path} interpolation. A plain $name stays text, as in
// Cog.
func (lx *lexer) doubleQuoted(chars []wchar) ([]wchar, error) {
	open := lx.pos
	chars = append(chars, wchar{col: open + 1, kind: doubleChar, quoteMark: true})
	lx.pos = open + 1
	for lx.pos < len(lx.src) {
		c := lx.src[lx.pos]
		switch {
		case c == '"':
			lx.pos++
			return chars, nil
		case c == '\\' && lx.pos+1 < len(lx.src) && strings.ContainsRune(`"\$`, lx.src[lx.pos+1]):
			chars = append(chars, wchar{r: lx.src[lx.pos+1], col: lx.pos + 2, kind: escapedChar})
			lx.pos += 2
		case c == '$' && lx.pos+1 < len(lx.src) && lx.src[lx.pos+1] == '{':
			ch, err := lx.interpolation(doubleChar)
			if err != nil {
				return nil, err
			}
			chars = append(chars, ch)
		default:
			chars = append(chars, wchar{r: c, col: lx.pos + 1, kind: doubleChar})
			lx.pos++
		}
	}
	return nil, syntaxErrorf(open+1, `expected a closing " for the quote opened here`)
}

// interpolation reads ${path} at lx.pos. Spaces inside the braces are
// allowed; another ${ inside is not.
func (lx *lexer) interpolation(kind charKind) (wchar, error) {
	open := lx.pos
	i := open + 2
	for i < len(lx.src) && lx.src[i] == ' ' {
		i++
	}
	if i >= len(lx.src) || !isNameStart(lx.src[i]) {
		if i < len(lx.src) && lx.src[i] == '}' {
			return wchar{}, syntaxErrorf(i+1, "expected a variable name inside ${}")
		}
		return wchar{}, syntaxErrorf(i+1, "expected a variable name after ${ (a letter or _)")
	}
	ref, end, err := parsePath(lx.src, i, open+1)
	if err != nil {
		return wchar{}, err
	}
	for end < len(lx.src) && lx.src[end] == ' ' {
		end++
	}
	if end >= len(lx.src) || lx.src[end] != '}' {
		return wchar{}, syntaxErrorf(end+1, "expected } to close the ${ opened at column %d", open+1)
	}
	lx.pos = end + 1
	return wchar{col: open + 1, kind: kind, ref: ref, interp: true, raw: string(lx.src[open:lx.pos])}, nil
}

// parsePath reads a variable path whose root name starts at src[i]: name,
// then any of .field, [index], ["key"], ['key']. It returns the reference and
// the index just past it. A "." not followed by a field name ends the path
// (the caller decides what the dot means).
func parsePath(src []rune, i, col int) (*VarRef, int, error) {
	name, end := scanName(src, i)
	ref := &VarRef{Path: []PathStep{{Key: name}}, Column: col}
	i = end
	for i < len(src) {
		switch {
		case src[i] == '.' && i+1 < len(src) && isFieldChar(src[i+1]):
			field, end := scanName(src, i+1)
			ref.Path = append(ref.Path, PathStep{Key: field})
			i = end
		case src[i] == '[':
			step, end, err := parseBracket(src, i)
			if err != nil {
				return nil, 0, err
			}
			ref.Path = append(ref.Path, step)
			i = end
		default:
			return ref, i, nil
		}
		if len(ref.Path) > MaxPathLength {
			return nil, 0, syntaxErrorf(col, "variable path is too deep: more than %d steps", MaxPathLength)
		}
	}
	return ref, i, nil
}

// parseBracket reads [digits], ["key"] or ['key'] at src[i] == '['.
func parseBracket(src []rune, i int) (PathStep, int, error) {
	open := i
	i++
	if i >= len(src) {
		return PathStep{}, 0, syntaxErrorf(i+1, `expected an index or a quoted key after [`)
	}
	switch c := src[i]; {
	case c >= '0' && c <= '9':
		start := i
		for i < len(src) && src[i] >= '0' && src[i] <= '9' {
			i++
		}
		n, err := strconv.Atoi(string(src[start:i]))
		if err != nil {
			return PathStep{}, 0, syntaxErrorf(start+1, "index %s is too large", string(src[start:i]))
		}
		if i >= len(src) || src[i] != ']' {
			return PathStep{}, 0, syntaxErrorf(i+1, "expected ] to close the [ at column %d", open+1)
		}
		return PathStep{Index: n, IsIndex: true}, i + 1, nil
	case c == '"' || c == '\'':
		quote := c
		var key strings.Builder
		i++
		for {
			if i >= len(src) {
				return PathStep{}, 0, syntaxErrorf(open+2, "expected a closing %c for the key opened here", quote)
			}
			if src[i] == '\\' && i+1 < len(src) && (src[i+1] == quote || src[i+1] == '\\') {
				key.WriteRune(src[i+1])
				i += 2
				continue
			}
			if src[i] == quote {
				break
			}
			key.WriteRune(src[i])
			i++
		}
		i++
		if i >= len(src) || src[i] != ']' {
			return PathStep{}, 0, syntaxErrorf(i+1, "expected ] to close the [ at column %d", open+1)
		}
		return PathStep{Key: key.String()}, i + 1, nil
	default:
		return PathStep{}, 0, syntaxErrorf(i+1, `expected an index (digits) or a quoted key after [`)
	}
}

// scanName reads [A-Za-z0-9_-]* from i; the caller has checked the first
// character.
func scanName(src []rune, i int) (string, int) {
	start := i
	for i < len(src) && (isFieldChar(src[i]) || src[i] == '-') {
		i++
	}
	return string(src[start:i]), i
}

func isNameStart(r rune) bool {
	return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
}

func isFieldChar(r rune) bool { return isNameStart(r) || (r >= '0' && r <= '9') }
