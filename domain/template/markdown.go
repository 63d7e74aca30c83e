package template

import (
	"strings"
	"unicode"
)

// The Markdown reader works on evaluated pieces, and only characters the
// template wrote can be markup: each character carries whether it is
// literal (template text) or data. A value with "**", "|", "* " or a
// backtick in it is shown as it is, never read as bold, a table cell, a
// list item or code.

// mdLine is one line of evaluated output, or a block that stands alone
// (a ~json~ code block, a ~title~, an ~attachment~).
type mdLine struct {
	r     []rune
	lit   []bool
	block *Directive
}

func (l mdLine) blank() bool {
	if l.block != nil {
		return false
	}
	for _, r := range l.r {
		if !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// indent is how many leading white-space characters the line has (a tab
// counts as four).
func (l mdLine) indent() int {
	n := 0
	for _, r := range l.r {
		switch r {
		case ' ':
			n++
		case '\t':
			n += 4
		default:
			return n
		}
	}
	return n
}

// firstNonSpace is the index of the first character that is not white
// space, or len.
func (l mdLine) firstNonSpace() int {
	for i, r := range l.r {
		if !unicode.IsSpace(r) {
			return i
		}
	}
	return len(l.r)
}

// litAt says whether l.r[i] is literal and equal to c.
func (l mdLine) litAt(i int, c rune) bool { return i >= 0 && i < len(l.r) && l.lit[i] && l.r[i] == c }

// markdown reads evaluated pieces as Markdown blocks.
func markdown(pieces []piece) Document {
	lines := splitLines(pieces)
	p := &blockParser{lines: lines}
	return p.blocks()
}

func splitLines(pieces []piece) []mdLine {
	var lines []mdLine
	var cur mdLine
	endLine := func() {
		lines = append(lines, cur)
		cur = mdLine{}
	}
	addBlock := func(d Directive) {
		if !cur.blank() {
			endLine()
		}
		cur = mdLine{}
		lines = append(lines, mdLine{block: &d})
	}
	for _, pc := range pieces {
		switch pc.kind {
		case pieceLiteral:
			for _, r := range pc.text {
				if r == '\n' {
					endLine()
					continue
				}
				cur.r, cur.lit = append(cur.r, r), append(cur.lit, true)
			}
		case pieceData:
			for _, r := range pc.text {
				if r == '\r' {
					continue
				}
				cur.r, cur.lit = append(cur.r, r), append(cur.lit, false)
			}
		case pieceCode:
			addBlock(Directive{Kind: CodeBlock, Text: pc.text})
		case pieceTitle:
			var title mdLine
			for _, line := range splitLines(pc.children) {
				if line.block != nil {
					continue
				}
				if len(title.r) > 0 {
					title.r, title.lit = append(title.r, ' '), append(title.lit, true)
				}
				title.r, title.lit = append(title.r, line.r...), append(title.lit, line.lit...)
			}
			addBlock(Directive{Kind: Header, Level: 1, Children: inlineLine(title, true)})
		case pieceAttachment:
			addBlock(Directive{Kind: Attachment, Attachment: pc.attachment, Children: markdown(pc.children)})
		}
	}
	if len(cur.r) > 0 {
		endLine()
	}
	return lines
}

type blockParser struct {
	lines []mdLine
	i     int
}

func (p *blockParser) blocks() Document {
	var out Document
	for p.i < len(p.lines) {
		l := p.lines[p.i]
		switch {
		case l.block != nil:
			out = append(out, *l.block)
			p.i++
		case l.blank():
			p.i++
		case fenceStart(l) >= 0:
			out = append(out, p.fence())
		case p.tableStart():
			out = append(out, p.table())
		default:
			if m, ok := listMarker(l); ok {
				out = append(out, p.list(m.indent))
				continue
			}
			out = append(out, p.paragraph())
		}
	}
	return out
}

// interrupts says whether line i starts a block that ends a paragraph.
func (p *blockParser) interrupts(i int) bool {
	l := p.lines[i]
	if l.block != nil || l.blank() || fenceStart(l) >= 0 {
		return true
	}
	if _, ok := listMarker(l); ok {
		return true
	}
	return p.tableStartAt(i)
}

// paragraph: consecutive lines, each a line of its own in the output (a
// line break inside a paragraph is kept, as Cog kept it).
func (p *blockParser) paragraph() Directive {
	para := Directive{Kind: Paragraph}
	for first := true; p.i < len(p.lines) && (first || !p.interrupts(p.i)); first = false {
		if !first {
			para.Children = append(para.Children, Directive{Kind: Newline})
		}
		para.Children = append(para.Children, inlineLine(trimLine(p.lines[p.i]), false)...)
		p.i++
	}
	para.Children = mergeText(para.Children)
	return para
}

func trimLine(l mdLine) mdLine {
	start, end := 0, len(l.r)
	for start < end && unicode.IsSpace(l.r[start]) {
		start++
	}
	for end > start && unicode.IsSpace(l.r[end-1]) {
		end--
	}
	return mdLine{r: l.r[start:end], lit: l.lit[start:end]}
}

// fenceStart returns where the literal ``` run that opens a code block
// begins on the line, or -1.
func fenceStart(l mdLine) int {
	if l.block != nil {
		return -1
	}
	i := l.firstNonSpace()
	if backtickRun(l, i) >= 3 {
		return i
	}
	return -1
}

// backtickRun is the length of the run of literal backticks at i.
func backtickRun(l mdLine, i int) int {
	n := 0
	for l.litAt(i+n, '`') {
		n++
	}
	return n
}

// closingFence returns where a literal run of at least three backticks
// ends the line (trailing blanks aside), or -1.
func closingFence(l mdLine, from int) int {
	end := len(l.r)
	for end > from && unicode.IsSpace(l.r[end-1]) {
		end--
	}
	start := end
	for start > from && l.litAt(start-1, '`') {
		start--
	}
	if end-start >= 3 {
		return start
	}
	return -1
}

// fence reads a code block: ``` to the next line ending in ```. The text
// between, data included, is kept verbatim. On one line, ```text```
// is a code block too (as Slack reads it). A lone word after the opening
// fence is an info string (```json) and is not shown.
func (p *blockParser) fence() Directive {
	l := p.lines[p.i]
	open := fenceStart(l)
	after := open + backtickRun(l, open)
	p.i++
	if closeAt := closingFence(l, after); closeAt >= 0 {
		return Directive{Kind: CodeBlock, Text: string(l.r[after:closeAt])}
	}
	var content []string
	if rest := trimLine(mdLine{r: l.r[after:], lit: l.lit[after:]}); len(rest.r) > 0 && !isInfoString(rest) {
		content = append(content, string(l.r[after:]))
	}
	for p.i < len(p.lines) {
		l := p.lines[p.i]
		if l.block != nil {
			break
		}
		p.i++
		if closeAt := closingFence(l, 0); closeAt >= 0 {
			if before := string(l.r[:closeAt]); strings.TrimSpace(before) != "" {
				content = append(content, before)
			}
			break
		}
		content = append(content, string(l.r))
	}
	return Directive{Kind: CodeBlock, Text: strings.Join(content, "\n")}
}

func isInfoString(l mdLine) bool {
	for i, r := range l.r {
		if !l.lit[i] || !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_+-.#", r)) {
			return false
		}
	}
	return true
}

// A table is a row of cells between literal |, then a delimiter row
// (| --- | :-: |), then any further rows.
func (p *blockParser) tableStart() bool { return p.tableStartAt(p.i) }

func (p *blockParser) tableStartAt(i int) bool {
	return i+1 < len(p.lines) && isRow(p.lines[i]) && isDelimiterRow(p.lines[i+1])
}

func isRow(l mdLine) bool { return l.block == nil && l.litAt(l.firstNonSpace(), '|') }

func isDelimiterRow(l mdLine) bool {
	if !isRow(l) {
		return false
	}
	cells := splitCells(l)
	if len(cells) == 0 {
		return false
	}
	for _, c := range cells {
		s := strings.TrimSpace(string(c.r))
		s = strings.TrimPrefix(strings.TrimSuffix(s, ":"), ":")
		if s == "" || strings.Trim(s, "-") != "" {
			return false
		}
		for i, r := range c.r {
			if !unicode.IsSpace(r) && !c.lit[i] {
				return false
			}
		}
	}
	return true
}

// splitCells cuts a row at its literal, unescaped | characters; \| is a |
// inside a cell.
func splitCells(l mdLine) []mdLine {
	l = trimLine(l)
	var cells []mdLine
	var cur mdLine
	for i := 0; i < len(l.r); i++ {
		if l.litAt(i, '\\') && l.litAt(i+1, '|') {
			cur.r, cur.lit = append(cur.r, '|'), append(cur.lit, false)
			i++
			continue
		}
		if l.litAt(i, '|') {
			if i > 0 {
				cells = append(cells, cur)
			}
			cur = mdLine{}
			continue
		}
		cur.r, cur.lit = append(cur.r, l.r[i]), append(cur.lit, l.lit[i])
	}
	if len(cur.r) > 0 && strings.TrimSpace(string(cur.r)) != "" {
		cells = append(cells, cur)
	}
	return cells
}

func (p *blockParser) table() Directive {
	rowOf := func(kind Kind, l mdLine) Directive {
		row := Directive{Kind: kind}
		for _, c := range splitCells(l) {
			row.Children = append(row.Children, Directive{Kind: TableCell, Children: inlineLine(trimLine(c), true)})
		}
		return row
	}
	table := Directive{Kind: Table, Children: []Directive{rowOf(TableHeader, p.lines[p.i])}}
	p.i += 2
	for p.i < len(p.lines) && isRow(p.lines[p.i]) {
		table.Children = append(table.Children, rowOf(TableRow, p.lines[p.i]))
		p.i++
	}
	width := 0
	for _, row := range table.Children {
		width = max(width, len(row.Children))
	}
	for i := range table.Children {
		for len(table.Children[i].Children) < width {
			table.Children[i].Children = append(table.Children[i].Children, Directive{Kind: TableCell})
		}
	}
	return table
}

type marker struct {
	indent  int
	ordered bool
	content int // index of the item's text on the line
}

// listMarker reads a literal list marker: *, - or + then a blank, or
// digits then . or ) then a blank.
func listMarker(l mdLine) (marker, bool) {
	if l.block != nil {
		return marker{}, false
	}
	i := l.firstNonSpace()
	m := marker{indent: l.indent()}
	switch {
	case l.litAt(i, '*') || l.litAt(i, '-') || l.litAt(i, '+'):
		i++
	default:
		digits := 0
		for i+digits < len(l.r) && l.lit[i+digits] && l.r[i+digits] >= '0' && l.r[i+digits] <= '9' {
			digits++
		}
		if digits == 0 || digits > 9 || !(l.litAt(i+digits, '.') || l.litAt(i+digits, ')')) {
			return marker{}, false
		}
		m.ordered = true
		i += digits + 1
	}
	if i < len(l.r) && !(l.lit[i] && (l.r[i] == ' ' || l.r[i] == '\t')) {
		return marker{}, false
	}
	m.content = i
	return m, true
}

// list reads the items of a list whose markers are indented by about
// indent; a marker indented further starts a list nested in the item
// before it, and an indented line without a marker continues that item.
func (p *blockParser) list(indent int) Directive {
	first, _ := listMarker(p.lines[p.i])
	list := Directive{Kind: UnorderedList}
	if first.ordered {
		list.Kind = OrderedList
	}
	for p.i < len(p.lines) {
		l := p.lines[p.i]
		if l.block != nil || l.blank() {
			break
		}
		m, isItem := listMarker(l)
		last := len(list.Children) - 1
		switch {
		case isItem && m.indent < indent-1:
			return list // an outer list's item
		case isItem && m.indent > indent+1 && last >= 0:
			nested := p.list(m.indent)
			list.Children[last].Children = append(list.Children[last].Children, nested)
		case isItem:
			if m.ordered != first.ordered {
				return list
			}
			item := trimLine(mdLine{r: l.r[m.content:], lit: l.lit[m.content:]})
			list.Children = append(list.Children, Directive{Kind: ListItem, Children: mergeText(inlineLine(item, false))})
			p.i++
		case last >= 0 && l.indent() > indent && fenceStart(l) < 0 && !p.tableStartAt(p.i):
			item := &list.Children[last]
			item.Children = mergeText(append(append(item.Children, Directive{Kind: Newline}), inlineLine(trimLine(l), false)...))
			p.i++
		default:
			return list
		}
	}
	return list
}

// inlineLine reads a line's inline markup: **bold** and __bold__, *italics*
// and _italics_, `code`, [text](url) and \ escapes, all from literal
// characters only. A line break inside data is a Newline (a space in a
// table cell, where a break would split the row).
func inlineLine(l mdLine, cell bool) []Directive {
	return newInlineReader(l, cell, 0).read()
}

// maxInlineDepth bounds how deeply bold, italics and links nest; deeper
// markup is read as text, so a line of thousands of nested [ cannot make
// reading it quadratic.
const maxInlineDepth = 16

// nested reads the inside of a bold, italics or link.
func (in *inlineReader) nested(l mdLine) []Directive {
	if in.depth >= maxInlineDepth {
		return []Directive{{Kind: Text, Text: strings.ReplaceAll(string(l.r), "\n", " ")}}
	}
	return newInlineReader(l, in.cell, in.depth+1).read()
}

// inlineReader reads one line. What a failed search learned is kept, so a
// line of many unmatched delimiters ([[[[, ****) reads in linear time.
type inlineReader struct {
	l     mdLine
	cell  bool
	depth int
	// closingBracket is, for a literal [, the index of the ] that closes
	// it (-1 when none); nextParen, for each index, the next literal ).
	closingBracket []int
	nextParen      []int
	// noCloser: from an opener at or after this index, no closing
	// delimiter of that character and width exists (per char and width).
	noCloser map[[2]int]int
	// noRun: from this index on, there is no backtick run of that length.
	noRun map[int]int
}

func newInlineReader(l mdLine, cell bool, depth int) *inlineReader {
	n := len(l.r)
	in := &inlineReader{l: l, cell: cell, depth: depth, closingBracket: make([]int, n), nextParen: make([]int, n+1),
		noCloser: map[[2]int]int{}, noRun: map[int]int{}}
	var open []int
	for i := range n {
		in.closingBracket[i] = -1
		switch {
		case l.litAt(i, '['):
			open = append(open, i)
		case l.litAt(i, ']') && len(open) > 0:
			in.closingBracket[open[len(open)-1]] = i
			open = open[:len(open)-1]
		}
	}
	in.nextParen[n] = -1
	for i := n - 1; i >= 0; i-- {
		in.nextParen[i] = in.nextParen[i+1]
		if l.litAt(i, ')') {
			in.nextParen[i] = i
		}
	}
	return in
}

func (in *inlineReader) read() []Directive {
	var out []Directive
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			out = append(out, Directive{Kind: Text, Text: text.String()})
			text.Reset()
		}
	}
	l := in.l
	r, lit := l.r, l.lit
	for i := 0; i < len(r); {
		c := r[i]
		switch {
		case !lit[i] && c == '\n':
			if in.cell {
				text.WriteByte(' ')
			} else {
				flush()
				out = append(out, Directive{Kind: Newline})
			}
			i++
			continue
		case !lit[i]:
		case c == '\\' && i+1 < len(r) && lit[i+1] && isASCIIPunct(r[i+1]):
			text.WriteRune(r[i+1])
			i += 2
			continue
		case c == '`':
			n := backtickRun(l, i)
			if end := in.findBacktickRun(i+n, n); end >= 0 {
				flush()
				code := string(r[i+n : end])
				if len(code) > 2 && code[0] == ' ' && code[len(code)-1] == ' ' {
					code = code[1 : len(code)-1]
				}
				if in.cell {
					code = strings.ReplaceAll(code, "\n", " ")
				}
				out = append(out, Directive{Kind: Code, Text: code})
				i = end + n
				continue
			}
			text.WriteString(strings.Repeat("`", n))
			i += n
			continue
		case c == '[':
			if link, next, ok := in.readLink(i); ok {
				flush()
				out = append(out, link)
				i = next
				continue
			}
		case c == '*' || c == '_':
			if em, next, ok := in.readEmphasis(i); ok {
				flush()
				out = append(out, em)
				i = next
				continue
			}
			n := 0
			for l.litAt(i+n, c) {
				n++
			}
			text.WriteString(strings.Repeat(string(c), n))
			i += n
			continue
		}
		text.WriteRune(c)
		i++
	}
	flush()
	return mergeText(out)
}

func isASCIIPunct(r rune) bool {
	return r < 128 && unicode.IsPunct(r) || r == '`' || r == '~' || r == '|'
}

// findBacktickRun finds the next literal run of exactly n backticks.
func (in *inlineReader) findBacktickRun(from, n int) int {
	if failed, ok := in.noRun[n]; ok && from >= failed {
		return -1
	}
	for i := from; i < len(in.l.r); {
		if run := backtickRun(in.l, i); run > 0 {
			if run == n {
				return i
			}
			i += run
			continue
		}
		i++
	}
	in.noRun[n] = from
	return -1
}

// readLink reads [text](url) at i.
func (in *inlineReader) readLink(i int) (Directive, int, bool) {
	l := in.l
	j := in.closingBracket[i]
	if j < 0 || !l.litAt(j+1, '(') {
		return Directive{}, 0, false
	}
	k := in.nextParen[j+2]
	if k < 0 {
		return Directive{}, 0, false
	}
	text := mdLine{r: l.r[i+1 : j], lit: l.lit[i+1 : j]}
	url := strings.TrimSpace(string(l.r[j+2 : k]))
	return Directive{Kind: Link, URL: url, Children: in.nested(text)}, k + 1, true
}

// readEmphasis reads **x**, __x__, *x* or _x_ at i. The opening delimiter
// must be followed, and the closing one preceded, by something that is
// not white space; an _ inside a word (snake_case) is not a delimiter.
func (in *inlineReader) readEmphasis(i int) (Directive, int, bool) {
	l := in.l
	c := l.r[i]
	run := 0
	for l.litAt(i+run, c) {
		run++
	}
	width, kind := 1, Italics
	if run >= 2 {
		width, kind = 2, Bold
	}
	start := i + width
	if start >= len(l.r) || unicode.IsSpace(l.r[start]) {
		return Directive{}, 0, false
	}
	if c == '_' && i > 0 && isWordRune(l.r[i-1]) {
		return Directive{}, 0, false
	}
	// Whether a closer at j is valid depends on j alone, so a search that
	// failed from an earlier opener fails from this one too.
	key := [2]int{int(c), width}
	if failed, ok := in.noCloser[key]; ok && i >= failed {
		return Directive{}, 0, false
	}
	// A closer starts after the whole opening run: a lone run of
	// delimiters (****) is text, never bold of nothing.
	for j := max(start+1, i+run); j+width <= len(l.r); j++ {
		if !l.litAt(j, c) {
			continue
		}
		closing := 0
		for l.litAt(j+closing, c) {
			closing++
		}
		switch {
		case closing < width, unicode.IsSpace(l.r[j-1]):
		case c == '_' && j+closing < len(l.r) && isWordRune(l.r[j+closing]):
		case width == 1 && closing == 2:
			// **inner** inside *outer*: skip the inner delimiters.
		default:
			j += closing - width // ***x***: the outer delimiters are the last ones
			inner := mdLine{r: l.r[start:j], lit: l.lit[start:j]}
			return Directive{Kind: kind, Children: in.nested(inner)}, j + width, true
		}
		j += closing - 1
	}
	in.noCloser[key] = i
	return Directive{}, 0, false
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// mergeText joins neighbouring text directives.
func mergeText(ds []Directive) []Directive {
	out := ds[:0:0]
	for _, d := range ds {
		if n := len(out); n > 0 && d.Kind == Text && out[n-1].Kind == Text {
			out[n-1].Text += d.Text
			continue
		}
		out = append(out, d)
	}
	return out
}
