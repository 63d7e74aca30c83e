package chat

import (
	"strings"
	"unicode/utf8"
)

// Split cuts text into pieces of at most maxBytes bytes each. It cuts at the
// last line break that fits, else at the last space, else inside the line,
// and never inside a UTF-8 sequence. Joining the pieces gives the text back
// exactly, except for the line breaks it cut at, which end a piece and are
// dropped. An empty text is one empty piece. maxBytes below 4 is taken as 4,
// so every rune fits.
func Split(text string, maxBytes int) []string {
	if maxBytes < utf8.UTFMax {
		maxBytes = utf8.UTFMax
	}
	if len(text) <= maxBytes {
		return []string{text}
	}
	var pieces []string
	for len(text) > maxBytes {
		window := text[:maxBytes]
		cut, skip := strings.LastIndexByte(window, '\n'), 1
		if cut <= 0 {
			cut, skip = strings.LastIndexByte(window, ' ')+1, 0
		}
		if cut <= 0 {
			cut, skip = maxBytes, 0
			for cut > 0 && !utf8.RuneStart(text[cut]) {
				cut--
			}
			if cut == 0 { // not UTF-8 here: any cut is as good as another
				cut = maxBytes
			}
		}
		pieces = append(pieces, text[:cut])
		text = text[cut+skip:]
	}
	return append(pieces, text)
}
