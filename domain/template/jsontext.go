package template

import (
	"bytes"
	"encoding/json"
)

// jsonText encodes v as JSON the way a person reads it: <, > and & as they
// are (encoding/json would write \u003c), indented when indent is set.
func jsonText(v any, indent bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if indent {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return "null"
	}
	return string(bytes.TrimRight(b.Bytes(), "\n"))
}
