package render

import (
	"net/url"
	"strings"
)

// linkable returns u when it may be linked: an absolute http, https or
// mailto URL without white space. Anything else (javascript:, a relative
// path, a value with spaces) is shown as text, never linked.
func linkable(u string) (string, bool) {
	u = strings.TrimSpace(u)
	if u == "" || strings.ContainsFunc(u, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", false
	}
	parsed, err := url.Parse(u)
	if err != nil {
		return "", false
	}
	switch strings.ToLower(parsed.Scheme) {
	case "http", "https":
		if parsed.Host == "" {
			return "", false
		}
		return u, true
	case "mailto":
		return u, true
	}
	return "", false
}
