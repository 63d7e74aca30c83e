package bundle

import (
	"math"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// field is one key/value pair of a mapping.
type field struct {
	Key   string
	Line  int // the key's line
	Value *yaml.Node
}

// fields lists a mapping's pairs in order. Pairs with non-string keys are
// skipped and a repeated key keeps its first occurrence (checkStructure
// reported both), except a repeated rules list, whose items are merged into
// the first so that no rule is lost.
func fields(m *yaml.Node) []field {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	at := map[string]int{}
	out := make([]field, 0, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			continue
		}
		if j, seen := at[k.Value]; seen {
			if mergesRepeatedKey(m, k.Value) {
				merged := *out[j].Value
				merged.Content = append(append([]*yaml.Node{}, merged.Content...), v.Content...)
				out[j].Value = &merged
			}
			continue
		}
		at[k.Value] = len(out)
		out = append(out, field{Key: k.Value, Line: k.Line, Value: v})
	}
	return out
}

// mergesRepeatedKey reports whether a key repeated in mapping m is a rules
// list written twice, every occurrence a list. One published Cog bundle does
// this; merging keeps its first, stricter rule in force, where YAML's
// last-one-wins would silently replace it with the second.
func mergesRepeatedKey(m *yaml.Node, key string) bool {
	if key != "rules" {
		return false
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind != yaml.SequenceNode {
			return false
		}
	}
	return true
}

// lookup finds the first value of key in mapping m.
func lookup(m *yaml.Node, key string) (*yaml.Node, bool) {
	for _, f := range fields(m) {
		if f.Key == key {
			return f.Value, true
		}
	}
	return nil, false
}

// describe names what a node is, for "expected X, found Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.ShortTag() {
	case "!!null":
		return "nothing (null)"
	case "!!bool":
		return "a boolean (" + n.Value + ")"
	case "!!int", "!!float":
		return "a number (" + n.Value + ")"
	case "!!str":
		return "a string"
	}
	return "a value tagged " + n.ShortTag()
}

// prefix turns a field path into a message prefix; the root has none.
func prefix(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// typeError reports a node of the wrong kind. Aliases were already
// reported by checkStructure, so they are not reported twice.
func (l *loader) typeError(n *yaml.Node, path, expected string) {
	if n.Kind == yaml.AliasNode {
		return
	}
	l.schemaf(n.Line, "%sexpected %s, found %s", prefix(path), expected, describe(n))
}

// str reads a scalar as text. Numbers and dates are accepted as written
// ("0.1.0", "1.10", "2016-01-01" stay exactly that); booleans and null are
// not strings.
func (l *loader) str(n *yaml.Node, path string) (string, bool) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str", "!!int", "!!float", "!!timestamp":
			return n.Value, true
		}
	}
	l.typeError(n, path, "a string")
	return "", false
}

func (l *loader) integer(n *yaml.Node, path string) (int64, bool) {
	var v int64
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" && n.Decode(&v) == nil {
		return v, true
	}
	l.typeError(n, path, "a whole number")
	return 0, false
}

func (l *loader) number(n *yaml.Node, path string) (float64, bool) {
	var v float64
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") && n.Decode(&v) == nil &&
		!math.IsInf(v, 0) && !math.IsNaN(v) {
		return v, true
	}
	l.typeError(n, path, "a number")
	return 0, false
}

func (l *loader) boolean(n *yaml.Node, path string) (bool, bool) {
	var v bool
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" && n.Decode(&v) == nil {
		return v, true
	}
	l.typeError(n, path, "true or false")
	return false, false
}

func (l *loader) mapping(n *yaml.Node, path string) bool {
	if n.Kind == yaml.MappingNode {
		return true
	}
	l.typeError(n, path, "a mapping")
	return false
}

func (l *loader) sequence(n *yaml.Node, path string) bool {
	if n.Kind == yaml.SequenceNode {
		return true
	}
	l.typeError(n, path, "a list")
	return false
}

// strList reads a list of strings with each entry's line. ok is false if
// the list or any entry had the wrong type; the good entries are returned
// anyway.
func (l *loader) strList(n *yaml.Node, path string) (values []string, lines []int, ok bool) {
	if !l.sequence(n, path) {
		return nil, nil, false
	}
	ok = true
	for i, item := range n.Content {
		s, good := l.str(item, index(path, i))
		if !good {
			ok = false
			continue
		}
		values = append(values, s)
		lines = append(lines, item.Line)
	}
	return values, lines, ok
}

// unknownField reports a field the format does not define. Unknown fields
// are errors, not warnings: a misspelt "rule:" or "permisions:" would
// otherwise load as a bundle without the rules its author wrote.
func (l *loader) unknownField(f field, path string, known []string) {
	msg := prefix(path) + "unknown field " + quote(f.Key)
	if s := closest(f.Key, known); s != "" {
		msg += " (did you mean " + quote(s) + "?)"
	} else {
		sorted := append([]string(nil), known...)
		sort.Strings(sorted)
		msg += "; expected one of " + strings.Join(sorted, ", ")
	}
	l.schemaf(f.Line, "%s", msg)
}

// index names the i-th entry of the list at path.
func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func quote(s string) string { return `"` + s + `"` }

// closest returns the known name within two edits of s, if one is.
func closest(s string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(strings.ToLower(s), k, bestDist); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, or limit when it is
// at least limit (field names are short; the cut-off keeps it cheap).
func editDistance(a, b string, limit int) int {
	if len(a) > 64 || len(b) > 64 {
		return limit
	}
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}

// bodyLine is where a scalar's text starts in the file, and whether its
// lines follow the file's one to one (a literal block, body: |).
func bodyLine(n *yaml.Node) (int, bool) {
	if n.Style&yaml.LiteralStyle != 0 {
		return n.Line + 1, true
	}
	return n.Line, false
}
