package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Bind returns the stage with every variable replaced by its value in input,
// the previous stage's output (one JSON object, as decoded by encoding/json).
// A variable written alone keeps the bound value's JSON type (a whole number
// becomes an int); a template becomes a string, with non-string values written
// as compact JSON; an option name variable must be bound to an option name.
// The stage passed in is not modified. Errors are *BindError.
func Bind(stage Stage, input map[string]any) (Stage, error) {
	out := stage
	out.Args = make([]Value, len(stage.Args))
	for i, a := range stage.Args {
		v, err := bindValue(a, input)
		if err != nil {
			return Stage{}, err
		}
		out.Args[i] = v
	}
	out.OptionList = make([]StageOption, len(stage.OptionList))
	for i, o := range stage.OptionList {
		if o.NameVar != nil {
			name, err := bindOptionName(o.NameVar, input)
			if err != nil {
				return Stage{}, err
			}
			dashes := len(o.Flag) - len(strings.TrimLeft(o.Flag, "-"))
			o.Name, o.Flag, o.NameVar = name, strings.Repeat("-", dashes)+name, nil
		}
		v, err := bindValue(o.Value, input)
		if err != nil {
			return Stage{}, err
		}
		o.Value = v
		out.OptionList[i] = o
	}
	out.Options = collectOptions(out.OptionList)
	return out, nil
}

func bindValue(v Value, input map[string]any) (Value, error) {
	switch v.Kind {
	case KindVariable:
		found, err := resolve(v.Var, input)
		if err != nil {
			return Value{}, err
		}
		bound, err := valueFromJSON(found)
		if err != nil {
			return Value{}, bindErrorf(v.Var, "cannot bind %s: %v", v.Var, err)
		}
		bound.Column, bound.Raw = v.Column, v.Raw
		return bound, nil
	case KindTemplate:
		var b strings.Builder
		for _, seg := range v.Template {
			if seg.Var == nil {
				b.WriteString(seg.Text)
				continue
			}
			found, err := resolve(seg.Var, input)
			if err != nil {
				return Value{}, err
			}
			text, err := stringify(found)
			if err != nil {
				return Value{}, bindErrorf(seg.Var, "cannot bind %s: %v", seg.Var, err)
			}
			b.WriteString(text)
		}
		return Value{Kind: KindString, Str: b.String(), Quoted: true, Column: v.Column, Raw: v.Raw}, nil
	case KindList:
		items := make([]Value, len(v.Items))
		for i, item := range v.Items {
			bound, err := bindValue(item, input)
			if err != nil {
				return Value{}, err
			}
			items[i] = bound
		}
		v.Items = items
		return v, nil
	default:
		return v, nil
	}
}

func bindOptionName(ref *VarRef, input map[string]any) (string, error) {
	found, err := resolve(ref, input)
	if err != nil {
		return "", err
	}
	var name string
	switch x := found.(type) {
	case string:
		name = x
	default:
		name, err = stringify(found)
		if err != nil {
			return "", bindErrorf(ref, "cannot bind %s: %v", ref, err)
		}
	}
	if !isOptionName(name) {
		return "", bindErrorf(ref, "%s is %q, which is not an option name (letters, digits, _, - or .)", ref, name)
	}
	return name, nil
}

func isOptionName(s string) bool {
	for i, r := range s {
		if !isFieldChar(r) && (i == 0 || (r != '-' && r != '.')) {
			return false
		}
	}
	return s != ""
}

// resolve walks ref's path through input.
func resolve(ref *VarRef, input map[string]any) (any, error) {
	var cur any = input
	for i, step := range ref.Path {
		where := VarRef{Path: ref.Path[:i]}
		if step.IsIndex {
			list, ok := asList(cur)
			if !ok {
				return nil, bindErrorf(ref, "cannot bind %s: %s is %s, not a list", ref, &where, describe(cur))
			}
			if step.Index >= len(list) {
				return nil, bindErrorf(ref, "cannot bind %s: %s has %d items, so there is no [%d]", ref, &where, len(list), step.Index)
			}
			cur = list[step.Index]
			continue
		}
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, bindErrorf(ref, "cannot bind %s: %s is %s, not an object", ref, &where, describe(cur))
		}
		next, found := obj[step.Key]
		if !found {
			if i == 0 {
				return nil, bindErrorf(ref, "cannot find the variable %s in the previous stage's output", ref)
			}
			return nil, bindErrorf(ref, "cannot bind %s: %s has no key %q", ref, &where, step.Key)
		}
		cur = next
	}
	return cur, nil
}

func asList(x any) ([]any, bool) {
	switch l := x.(type) {
	case []any:
		return l, true
	case []string:
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out, true
	case []map[string]any:
		out := make([]any, len(l))
		for i, m := range l {
			out[i] = m
		}
		return out, true
	}
	return nil, false
}

func describe(x any) string {
	switch x.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any, []string, []map[string]any:
		return "a list"
	default:
		return "a number"
	}
}

// valueFromJSON types a decoded JSON value. Whole numbers become ints, as
// JSON does not tell 5 from 5.0 and commands expect 5.
func valueFromJSON(x any) (Value, error) {
	switch v := x.(type) {
	case nil:
		return Value{Kind: KindNull}, nil
	case string:
		return Value{Kind: KindString, Str: v}, nil
	case bool:
		return Value{Kind: KindBool, Bool: v}, nil
	case float64:
		return numberValue(v)
	case float32:
		return numberValue(float64(v))
	case int:
		return Value{Kind: KindInt, Int: int64(v)}, nil
	case int32:
		return Value{Kind: KindInt, Int: int64(v)}, nil
	case int64:
		return Value{Kind: KindInt, Int: v}, nil
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return Value{Kind: KindInt, Int: n}, nil
		}
		f, err := v.Float64()
		if err != nil {
			return Value{}, fmt.Errorf("%q is not a number", v.String())
		}
		return numberValue(f)
	case map[string]any:
		return Value{Kind: KindObject, Object: v}, nil
	}
	if list, ok := asList(x); ok {
		items := make([]Value, len(list))
		for i, item := range list {
			iv, err := valueFromJSON(item)
			if err != nil {
				return Value{}, err
			}
			items[i] = iv
		}
		return Value{Kind: KindList, Items: items}, nil
	}
	return Value{}, fmt.Errorf("a %T is not a JSON value", x)
}

func numberValue(f float64) (Value, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return Value{}, fmt.Errorf("%v is not a JSON number", f)
	}
	if f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		return Value{Kind: KindInt, Int: int64(f)}, nil
	}
	return Value{Kind: KindFloat, Float: f}, nil
}

// stringify writes a bound value into text: strings as they are, anything
// else as compact JSON.
func stringify(x any) (string, error) {
	v, err := valueFromJSON(x)
	if err != nil {
		return "", err
	}
	switch v.Kind {
	case KindString:
		return v.Str, nil
	case KindInt:
		return strconv.FormatInt(v.Int, 10), nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v.Literal()); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

func bindErrorf(ref *VarRef, format string, args ...any) *BindError {
	return &BindError{Column: ref.Column, Variable: ref.String(), Msg: fmt.Sprintf(format, args...)}
}
