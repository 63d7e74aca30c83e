package template

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// Default renders output that names no template, as Cog's default did:
//
//   - plain text ([{"body": [lines]}], what a command that prints no JSON
//     gives) and a JSON string are their lines: one line as a paragraph,
//     several as a code block, so columns stay aligned;
//   - a list of objects that all have the same keys is a table, columns in
//     the first object's key order;
//   - any other object, or list of objects, is a text block per object, one
//     "key: value" line per key;
//   - a number, a boolean, or a list of them is the values, a line each.
//
// A nested list or object shows as compact JSON. Keys and values are
// data, so nothing in them is markup.
func Default(output json.RawMessage) Document {
	trimmed := bytes.TrimSpace(output)
	if len(trimmed) == 0 {
		return nil
	}
	v, err := decodeOrdered(trimmed)
	if err != nil {
		return linesDocument(strings.Split(string(trimmed), "\n"))
	}
	if lines, ok := bodyLines(v); ok {
		return linesDocument(lines)
	}
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return linesDocument(strings.Split(x, "\n"))
	case *object:
		return Document{objectBlock(x)}
	case []any:
		if table, ok := sharedKeysTable(x); ok {
			return Document{table}
		}
		var doc Document
		var scalars []string
		flushScalars := func() {
			if len(scalars) > 0 {
				doc = append(doc, textLines(scalars))
				scalars = nil
			}
		}
		for _, item := range x {
			if obj, ok := item.(*object); ok {
				flushScalars()
				doc = append(doc, objectBlock(obj))
				continue
			}
			scalars = append(scalars, orderedText(item))
		}
		flushScalars()
		return doc
	}
	return Document{textLines([]string{orderedText(v)})}
}

// TextDocument is plain text (a builtin's or a failed command's lines) as
// Default shows it.
func TextDocument(text string) Document {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	return linesDocument(strings.Split(strings.TrimRight(text, "\n"), "\n"))
}

func linesDocument(lines []string) Document {
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	switch len(lines) {
	case 0:
		return nil
	case 1:
		return Document{textLines(lines)}
	}
	return Document{{Kind: CodeBlock, Text: strings.Join(lines, "\n")}}
}

func textLines(lines []string) Directive {
	p := Directive{Kind: Paragraph}
	for i, l := range lines {
		if i > 0 {
			p.Children = append(p.Children, Directive{Kind: Newline})
		}
		p.Children = append(p.Children, Directive{Kind: Text, Text: l})
	}
	return p
}

// bodyLines reads Cog's text shape: a non-empty list of objects whose only
// key is "body", a list of strings (or one string).
func bodyLines(v any) ([]string, bool) {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, false
	}
	var lines []string
	for _, item := range list {
		obj, ok := item.(*object)
		if !ok || len(obj.keys) != 1 || obj.keys[0] != "body" {
			return nil, false
		}
		switch body := obj.values["body"].(type) {
		case string:
			lines = append(lines, body)
		case []any:
			for _, l := range body {
				s, ok := l.(string)
				if !ok {
					return nil, false
				}
				lines = append(lines, s)
			}
		default:
			return nil, false
		}
	}
	return lines, true
}

func objectBlock(obj *object) Directive {
	p := Directive{Kind: Paragraph}
	for i, k := range obj.keys {
		if i > 0 {
			p.Children = append(p.Children, Directive{Kind: Newline})
		}
		p.Children = append(p.Children, Directive{Kind: Bold, Children: []Directive{{Kind: Text, Text: k + ":"}}})
		if v := orderedText(obj.values[k]); v != "" {
			p.Children = append(p.Children, Directive{Kind: Text, Text: " " + v})
		}
	}
	return p
}

// sharedKeysTable makes a table of a list of objects with the same keys.
func sharedKeysTable(list []any) (Directive, bool) {
	if len(list) < 2 {
		return Directive{}, false
	}
	first, ok := list[0].(*object)
	if !ok || len(first.keys) == 0 {
		return Directive{}, false
	}
	for _, item := range list[1:] {
		obj, ok := item.(*object)
		if !ok || len(obj.keys) != len(first.keys) {
			return Directive{}, false
		}
		for _, k := range first.keys {
			if _, has := obj.values[k]; !has {
				return Directive{}, false
			}
		}
	}
	cell := func(s string) Directive {
		return Directive{Kind: TableCell, Children: []Directive{{Kind: Text, Text: s}}}
	}
	header := Directive{Kind: TableHeader}
	for _, k := range first.keys {
		header.Children = append(header.Children, cell(k))
	}
	table := Directive{Kind: Table, Children: []Directive{header}}
	for _, item := range list {
		obj := item.(*object)
		row := Directive{Kind: TableRow}
		for _, k := range first.keys {
			row.Children = append(row.Children, cell(strings.ReplaceAll(orderedText(obj.values[k]), "\n", " ")))
		}
		table.Children = append(table.Children, row)
	}
	return table, true
}

// object is a JSON object that remembers its keys' order.
type object struct {
	keys   []string
	values map[string]any
}

// decodeOrdered decodes one JSON value keeping objects' key order.
func decodeOrdered(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	if depth > 10000 {
		return nil, errors.New("too deeply nested")
	}
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch d := t.(type) {
	case json.Delim:
		switch d {
		case '{':
			obj := &object{values: map[string]any{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				if _, dup := obj.values[k]; !dup {
					obj.keys = append(obj.keys, k)
				}
				obj.values[k] = v
			}
			_, err := dec.Token()
			return obj, err
		case '[':
			list := []any{}
			for dec.More() {
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			_, err := dec.Token()
			return list, err
		}
		return nil, errors.New("unexpected delimiter")
	}
	return t, nil
}

// orderedText is valueText for ordered values: nested values as compact
// JSON in their keys' order.
func orderedText(v any) string {
	switch x := v.(type) {
	case *object, []any:
		var b strings.Builder
		writeOrderedJSON(&b, x)
		return b.String()
	}
	return valueText(v)
}

func writeOrderedJSON(b *strings.Builder, v any) {
	switch x := v.(type) {
	case *object:
		b.WriteByte('{')
		for i, k := range x.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(jsonText(k, false))
			b.WriteByte(':')
			writeOrderedJSON(b, x.values[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, item := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeOrderedJSON(b, item)
		}
		b.WriteByte(']')
	default:
		b.WriteString(jsonText(x, false))
	}
}
