package template

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	gotemplate "text/template"
)

// safeSprig is the part of the Sprig library Gort templates may use in
// Logbook: pure string and list functions. Sprig's env, expandenv, file,
// date, now, random and crypto functions are left out on purpose: a
// template must not read the server's environment (its secrets), and a
// rendering must be a function of the output.
func safeSprig() gotemplate.FuncMap {
	return gotemplate.FuncMap{
		"upper":      strings.ToUpper,
		"lower":      strings.ToLower,
		"trim":       strings.TrimSpace,
		"trimAll":    func(cut, s string) string { return strings.Trim(s, cut) },
		"trimPrefix": func(prefix, s string) string { return strings.TrimPrefix(s, prefix) },
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"replace":    func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
		"contains":   func(sub, s string) bool { return strings.Contains(s, sub) },
		"hasPrefix":  func(prefix, s string) bool { return strings.HasPrefix(s, prefix) },
		"hasSuffix":  func(suffix, s string) bool { return strings.HasSuffix(s, suffix) },
		"repeat": func(n int, s string) string {
			if n < 0 || n*len(s) > MaxOutputBytes {
				return ""
			}
			return strings.Repeat(s, n)
		},
		"quote":   func(s any) string { return fmt.Sprintf("%q", fmt.Sprint(s)) },
		"squote":  func(s any) string { return "'" + fmt.Sprint(s) + "'" },
		"indent":  func(n int, s string) string { return indentLines(n, s) },
		"nindent": func(n int, s string) string { return "\n" + indentLines(n, s) },
		"join": func(sep string, v any) string {
			var parts []string
			for _, e := range listOf(v) {
				parts = append(parts, fmt.Sprint(e))
			}
			return strings.Join(parts, sep)
		},
		"splitList": func(sep, s string) []string { return strings.Split(s, sep) },
		"list":      func(v ...any) []any { return v },
		"first": func(v any) any {
			if l := listOf(v); len(l) > 0 {
				return l[0]
			}
			return nil
		},
		"last": func(v any) any {
			if l := listOf(v); len(l) > 0 {
				return l[len(l)-1]
			}
			return nil
		},
		"default": func(d any, v ...any) any {
			if len(v) == 0 || isEmptyValue(v[0]) {
				return d
			}
			return v[0]
		},
		"empty":        isEmptyValue,
		"toJson":       func(v any) string { return jsonText(v, false) },
		"toPrettyJson": func(v any) string { return jsonText(v, true) },
		"add":          func(a, b int) int { return a + b },
		"sub":          func(a, b int) int { return a - b },
	}
}

func indentLines(n int, s string) string {
	if n < 0 || n > 64 {
		n = 0
	}
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

func listOf(v any) []any {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		if v == nil {
			return nil
		}
		return []any{v}
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out
}

func isEmptyValue(v any) bool {
	if v == nil {
		return true
	}
	if n, ok := v.(json.Number); ok {
		f, err := n.Float64()
		return err == nil && f == 0
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String, reflect.Slice, reflect.Map, reflect.Array:
		return rv.Len() == 0
	case reflect.Bool:
		return !rv.Bool()
	case reflect.Int, reflect.Int64, reflect.Int32:
		return rv.Int() == 0
	case reflect.Float64, reflect.Float32:
		return rv.Float() == 0
	case reflect.Pointer, reflect.Interface:
		return rv.IsNil()
	}
	return false
}
