package rules

import (
	"strings"
	"unicode"
)

type tokenKind uint8

const (
	tokEOF      tokenKind = iota
	tokWord               // keyword, name, bare value or number: classified by the parser
	tokString             // '...' or "...", Value holds the text without quotes and escapes
	tokRegex              // /.../, Value holds the pattern with \/ turned into /
	tokOp                 // comparison operator, Value holds its canonical spelling
	tokLParen             // (
	tokRParen             // )
	tokLBracket           // [
	tokRBracket           // ]
	tokComma              // ,
)

type token struct {
	Kind  tokenKind
	Text  string // as written in the rule
	Value string
	Col   int // 1-based rune column of the first character
}

// describe names a token the way an error message should show it.
func (t token) describe() string {
	switch t.Kind {
	case tokEOF:
		return "the end of the rule"
	case tokString:
		return "the string " + t.Text
	case tokRegex:
		return "the regular expression " + t.Text
	default:
		return "`" + t.Text + "`"
	}
}

// isWordRune reports whether r may appear in a bare word: names (ns:perm,
// arg), numbers (-1.5) and unquoted values (us-east-1, v1.2.3).
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-' || r == '.' || r == ':'
}

// lex splits a rule into tokens. Columns count runes from 1.
func lex(text string) ([]token, error) {
	src := []rune(text)
	var toks []token
	for i := 0; i < len(src); {
		r := src[i]
		col := i + 1
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '(':
			toks = append(toks, token{Kind: tokLParen, Text: "(", Col: col})
			i++
		case r == ')':
			toks = append(toks, token{Kind: tokRParen, Text: ")", Col: col})
			i++
		case r == '[':
			toks = append(toks, token{Kind: tokLBracket, Text: "[", Col: col})
			i++
		case r == ']':
			toks = append(toks, token{Kind: tokRBracket, Text: "]", Col: col})
			i++
		case r == ',':
			toks = append(toks, token{Kind: tokComma, Text: ",", Col: col})
			i++
		case r == '\'' || r == '"':
			tok, next, err := lexString(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, tok)
			i = next
		case r == '/':
			tok, next, err := lexRegex(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, tok)
			i = next
		case r == '=' || r == '!' || r == '<' || r == '>':
			tok, next, err := lexOperator(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, tok)
			i = next
		case isWordRune(r):
			j := i
			for j < len(src) && isWordRune(src[j]) {
				j++
			}
			toks = append(toks, token{Kind: tokWord, Text: string(src[i:j]), Col: col})
			i = j
		default:
			return nil, syntaxErrorf(col, "unexpected character %q", r)
		}
	}
	return append(toks, token{Kind: tokEOF, Col: len(src) + 1}), nil
}

// lexString reads a quoted string starting at src[start]. A backslash makes
// the next character literal, so \' and \" put a quote in the string and \\ a
// backslash.
func lexString(src []rune, start int) (token, int, error) {
	quote := src[start]
	var b strings.Builder
	for i := start + 1; i < len(src); i++ {
		switch r := src[i]; {
		case r == '\\' && i+1 < len(src):
			i++
			b.WriteRune(src[i])
		case r == quote:
			return token{Kind: tokString, Text: string(src[start : i+1]), Value: b.String(), Col: start + 1}, i + 1, nil
		default:
			b.WriteRune(r)
		}
	}
	return token{}, 0, syntaxErrorf(start+1, "string is not closed: expected a closing %c", quote)
}

// lexRegex reads a /regular expression/ starting at src[start]. \/ stands for
// a slash; every other backslash sequence is kept for the regexp engine.
func lexRegex(src []rune, start int) (token, int, error) {
	var b strings.Builder
	for i := start + 1; i < len(src); i++ {
		switch r := src[i]; {
		case r == '\\' && i+1 < len(src):
			if src[i+1] != '/' {
				b.WriteRune('\\')
			}
			i++
			b.WriteRune(src[i])
		case r == '/':
			return token{Kind: tokRegex, Text: string(src[start : i+1]), Value: b.String(), Col: start + 1}, i + 1, nil
		default:
			b.WriteRune(r)
		}
	}
	return token{}, 0, syntaxErrorf(start+1, "regular expression is not closed: expected a closing /")
}

// lexOperator reads a comparison operator. Cog writes less-or-equal as =<;
// <= is accepted too, and likewise >= and =>.
func lexOperator(src []rune, start int) (token, int, error) {
	r := src[start]
	var next rune
	if start+1 < len(src) {
		next = src[start+1]
	}
	op := func(canonical string, width int) (token, int, error) {
		return token{Kind: tokOp, Text: string(src[start : start+width]), Value: canonical, Col: start + 1}, start + width, nil
	}
	switch {
	case r == '=' && next == '=':
		return op("==", 2)
	case r == '=' && next == '<':
		return op("<=", 2)
	case r == '=' && next == '>':
		return op(">=", 2)
	case r == '!' && next == '=':
		return op("!=", 2)
	case r == '<' && next == '=':
		return op("<=", 2)
	case r == '>' && next == '=':
		return op(">=", 2)
	case r == '<':
		return op("<", 1)
	case r == '>':
		return op(">", 1)
	case r == '=':
		return token{}, 0, syntaxErrorf(start+1, "unexpected `=`: equality is written ==")
	default:
		return token{}, 0, syntaxErrorf(start+1, "unexpected `!`: inequality is written != (there is no `not`)")
	}
}
