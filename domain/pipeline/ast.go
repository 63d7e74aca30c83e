package pipeline

import (
	"encoding/json"
	"sort"
)

// Pipeline is a parsed chat command: its stages in order and where the output
// of the last one goes. No Redirects means "here", where the command was typed.
type Pipeline struct {
	Stages    []Stage    `json:"stages"`
	Redirects []Redirect `json:"redirects,omitempty"`
}

// Stage is one command invocation.
type Stage struct {
	Command string `json:"command"` // as written: "bundle:cmd" or "cmd"
	Bundle  string `json:"bundle"`  // "" when the command was written bare
	Name    string `json:"name"`
	Args    []Value
	// Options collects OptionList by name. An option given once maps to its
	// value; an option given several times (-t a -t b) maps to a KindList
	// value holding every occurrence's value in order, as Cog does.
	Options    map[string]Value
	OptionList []StageOption // every option in the order written
	Column     int           // of the command name
}

// StageOption is one option as written on a stage.
type StageOption struct {
	// Name is the option's canonical name: the declared long name when an
	// OptionSpec maps a short flag to it, otherwise the name as written
	// without dashes. Empty while NameVar is unbound.
	Name string `json:"name"`
	// Flag is how it was written, dashes included: "-r", "--region".
	Flag string `json:"flag"`
	// NameVar is set for --$var, an option name taken from the previous
	// stage's output; Bind replaces it with the bound name.
	NameVar *VarRef `json:"name_var,omitempty"`
	Value   Value   `json:"value"`
	// Implicit is true for a flag written without a value, which is boolean
	// true.
	Implicit bool `json:"implicit,omitempty"`
	Column   int  `json:"column"`
}

// ValueKind says what a Value holds.
type ValueKind string

// Value kinds. Parsing yields string, int, float, bool, variable and
// template values; repeated options yield list; binding can also yield null,
// list and object from the previous stage's JSON.
const (
	KindString   ValueKind = "string"
	KindInt      ValueKind = "int"
	KindFloat    ValueKind = "float"
	KindBool     ValueKind = "bool"
	KindNull     ValueKind = "null"
	KindList     ValueKind = "list"
	KindObject   ValueKind = "object"
	KindVariable ValueKind = "variable" // $a.b: bound later, keeps the bound JSON type
	KindTemplate ValueKind = "template" // text with ${a.b}: bound later, always a string
)

// Value is an argument or option value: a typed literal, a variable waiting
// to be bound, or text with interpolations.
type Value struct {
	Kind     ValueKind      `json:"kind"`
	Str      string         `json:"str,omitempty"`
	Int      int64          `json:"int,omitempty"`
	Float    float64        `json:"float,omitempty"`
	Bool     bool           `json:"bool,omitempty"`
	Items    []Value        `json:"items,omitempty"`    // KindList
	Object   map[string]any `json:"object,omitempty"`   // KindObject, as decoded from JSON
	Var      *VarRef        `json:"var,omitempty"`      // KindVariable
	Template []Segment      `json:"template,omitempty"` // KindTemplate
	// Quoted is true when the value was written with quotes or backslash
	// escapes, which is why it was not typed: "123" is a string.
	Quoted bool `json:"quoted,omitempty"`
	// Raw is the value as written, for messages and display.
	Raw    string `json:"raw,omitempty"`
	Column int    `json:"column"`
}

// Segment is one piece of a template: literal text, or a variable to
// interpolate.
type Segment struct {
	Text string  `json:"text,omitempty"`
	Var  *VarRef `json:"var,omitempty"`
}

// VarRef is a variable reference: a root name and the steps into the value.
type VarRef struct {
	Path   []PathStep `json:"path"` // Path[0] is the root name
	Column int        `json:"column"`
}

// PathStep is one step of a variable path: a key into an object (.name,
// ["name"]) or an index into a list ([0]).
type PathStep struct {
	Key     string `json:"key,omitempty"`
	Index   int    `json:"index,omitempty"`
	IsIndex bool   `json:"is_index,omitempty"`
}

// DestinationKind types a redirect destination.
type DestinationKind string

// Destination kinds.
const (
	DestinationRoom DestinationKind = "room" // #ops, or a bare room name
	DestinationUser DestinationKind = "user" // @alice
	DestinationHere DestinationKind = "here" // where the command was typed
	DestinationMe   DestinationKind = "me"   // the person who typed it
	DestinationURL  DestinationKind = "url"  // chat://#ops
)

// Redirect is one destination of the pipeline's output.
type Redirect struct {
	Target string          `json:"target"` // as written: "#ops", "@alice", "chat://#ops"
	Kind   DestinationKind `json:"kind"`
	// Name is the room or user without its sigil, or what follows chat://.
	Name   string `json:"name,omitempty"`
	Column int    `json:"column"`
}

// Literal returns the value as plain Go data: string, int64, float64, bool,
// nil, []any or map[string]any. A variable or template, not yet bound,
// returns its text as written ("$a.b", "owner=${user}").
func (v Value) Literal() any {
	switch v.Kind {
	case KindString:
		return v.Str
	case KindInt:
		return v.Int
	case KindFloat:
		return v.Float
	case KindBool:
		return v.Bool
	case KindList:
		items := make([]any, len(v.Items))
		for i, item := range v.Items {
			items[i] = item.Literal()
		}
		return items
	case KindObject:
		return v.Object
	case KindVariable:
		return v.Var.String()
	case KindTemplate:
		return templateText(v.Template)
	default:
		return nil
	}
}

// NeedsBinding reports whether the value refers to the previous stage's
// output.
func (v Value) NeedsBinding() bool {
	switch v.Kind {
	case KindVariable, KindTemplate:
		return true
	case KindList:
		for _, item := range v.Items {
			if item.NeedsBinding() {
				return true
			}
		}
	}
	return false
}

// Variables lists every variable the stage refers to, in the order written.
func (s Stage) Variables() []VarRef {
	var out []VarRef
	collect := func(v Value) {
		switch v.Kind {
		case KindVariable:
			out = append(out, *v.Var)
		case KindTemplate:
			for _, seg := range v.Template {
				if seg.Var != nil {
					out = append(out, *seg.Var)
				}
			}
		}
	}
	type positioned struct {
		column int
		value  Value
		name   *VarRef
	}
	var all []positioned
	for _, a := range s.Args {
		all = append(all, positioned{column: a.Column, value: a})
	}
	for _, o := range s.OptionList {
		if o.NameVar != nil {
			all = append(all, positioned{column: o.Column, name: o.NameVar})
		}
		all = append(all, positioned{column: o.Value.Column, value: o.Value})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].column < all[j].column })
	for _, p := range all {
		if p.name != nil {
			out = append(out, *p.name)
			continue
		}
		collect(p.value)
	}
	return out
}

// NeedsBinding reports whether any argument, option value or option name of
// the stage refers to the previous stage's output.
func (s Stage) NeedsBinding() bool { return len(s.Variables()) > 0 }

// UnmarshalJSON rebuilds Options from OptionList, which is what is stored.
func (s *Stage) UnmarshalJSON(data []byte) error {
	var wire stageWire
	if err := json.Unmarshal(data, &wire); err != nil {
		return err
	}
	*s = Stage{
		Command: wire.Command,
		Bundle:  wire.Bundle,
		Name:    wire.Name,
		Column:  wire.Column,
	}
	// Parse leaves empty lists nil; decoding does the same.
	if len(wire.Args) > 0 {
		s.Args = wire.Args
	}
	if len(wire.Options) > 0 {
		s.OptionList = wire.Options
	}
	s.Options = collectOptions(s.OptionList)
	return nil
}

// MarshalJSON stores the ordered option list; Options is derived from it.
func (s Stage) MarshalJSON() ([]byte, error) {
	args := s.Args
	if args == nil {
		args = []Value{}
	}
	opts := s.OptionList
	if opts == nil {
		opts = []StageOption{}
	}
	return json.Marshal(stageWire{
		Command: s.Command,
		Bundle:  s.Bundle,
		Name:    s.Name,
		Args:    args,
		Options: opts,
		Column:  s.Column,
	})
}

type stageWire struct {
	Command string        `json:"command"`
	Bundle  string        `json:"bundle"`
	Name    string        `json:"name"`
	Args    []Value       `json:"args"`
	Options []StageOption `json:"options"`
	Column  int           `json:"column"`
}

// collectOptions keys options by name; an option given more than once
// becomes a list of its values, in the order written. Options whose name is
// an unbound variable are left out until Bind names them.
func collectOptions(list []StageOption) map[string]Value {
	byName := make(map[string][]Value, len(list))
	order := make([]string, 0, len(list))
	for _, o := range list {
		if o.NameVar != nil {
			continue
		}
		if _, seen := byName[o.Name]; !seen {
			order = append(order, o.Name)
		}
		byName[o.Name] = append(byName[o.Name], o.Value)
	}
	out := make(map[string]Value, len(order))
	for _, name := range order {
		values := byName[name]
		if len(values) == 1 {
			out[name] = values[0]
			continue
		}
		out[name] = Value{Kind: KindList, Items: values, Column: values[0].Column}
	}
	return out
}

// PostsToChat reports whether a redirect names a room or a person of a
// chat provider, rather than where the request came from.
func (r Redirect) PostsToChat() bool {
	return r.Kind == DestinationRoom || r.Kind == DestinationUser || r.Kind == DestinationURL
}
