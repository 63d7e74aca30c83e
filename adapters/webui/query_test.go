package webui

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC)

func TestParseHistoryQuery(t *testing.T) {
	cases := []struct {
		name      string
		query     string
		want      historyQuery
		wantParam string // the parameter the error names; "" for no error
	}{
		{name: "no filters", query: "", want: historyQuery{}},
		{name: "empty fields filter nothing", query: "user=&room=&provider=&command=&status=&since=&until=&cursor=", want: historyQuery{}},
		{name: "every filter", query: "user=alice&room=%23ops&provider=web&command=toolbox:echo&status=failed&since=2026-01-02T03:04:05Z&until=2026-01-03&cursor=42",
			want: historyQuery{User: "alice", Room: "#ops", Provider: "web", Command: "toolbox:echo", Status: "failed",
				Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Until: time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC), Cursor: "42"}},
		{name: "a command typed with the chat prefix", query: "command=!toolbox:echo", want: historyQuery{Command: "toolbox:echo"}},
		{name: "a datetime-local value is UTC", query: "since=2026-05-06T07:08", want: historyQuery{Since: time.Date(2026, 5, 6, 7, 8, 0, 0, time.UTC)}},
		{name: "a duration means that long ago", query: "since=90m", want: historyQuery{Since: now.Add(-90 * time.Minute)}},
		{name: "an age in days, as the CLI takes it", query: "since=7d", want: historyQuery{Since: now.AddDate(0, 0, -7)}},
		{name: "zero days is no age", query: "since=0d", wantParam: "since"},
		{name: "an offset is kept", query: "since=2026-01-02T03:04:05%2B02:00", want: historyQuery{Since: time.Date(2026, 1, 2, 1, 4, 5, 0, time.UTC)}},
		{name: "an unknown status", query: "status=done", wantParam: "status"},
		{name: "an unknown parameter", query: "colour=red", wantParam: "colour"},
		{name: "a nameless parameter", query: "=x", wantParam: `""`},
		{name: "a repeated parameter", query: "room=a&room=b", wantParam: "room"},
		{name: "a command with a space", query: "command=echo+hi", wantParam: "command"},
		{name: "a time that is none", query: "until=soon", wantParam: "until"},
		{name: "a negative duration", query: "since=-5m", wantParam: "since"},
		{name: "until before since", query: "since=2026-02-01&until=2026-01-01", wantParam: "until"},
		{name: "until equal to since", query: "since=2026-02-01&until=2026-02-01", wantParam: "until"},
		{name: "a cursor this site never gave", query: "cursor=abc", wantParam: "cursor"},
		{name: "a cursor below one", query: "cursor=0", wantParam: "cursor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := url.ParseQuery(c.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseHistoryQuery(q, now)
			if c.wantParam != "" {
				var pe *paramError
				if !errors.As(err, &pe) || pe.Param != c.wantParam {
					t.Fatalf("given %q, the error is %v; want one naming %s", c.query, err, c.wantParam)
				}
				return
			}
			if err != nil {
				t.Fatalf("given %q: %v", c.query, err)
			}
			if got != c.want {
				t.Fatalf("given %q, got %+v, want %+v", c.query, got, c.want)
			}
		})
	}
}

func TestSafeNextStaysOnThisSite(t *testing.T) {
	t.Parallel()
	kept := []string{
		"/",
		"/history?user=a",
		"/history?user=admin&since=24h#top",
		"/runs/7c9e6679-7425-40de-944b-e07fc1f90ae7-s0-i0/transcript",
		"/history?room=%23ops&text=%C3%A9t%C3%A9", // escaped, as RequestURI is
		"/https://evil.example",                   // a path on this site
	}
	for _, next := range kept {
		if got := safeNext(next); got != next {
			t.Errorf("safeNext(%q) = %q, want it kept", next, got)
		}
	}
	refused := map[string]string{
		"empty":                       "",
		"relative":                    "history",
		"an absolute URL":             "https://evil.example",
		"a scheme alone":              "https:evil.example",
		"javascript":                  "javascript:alert(1)",
		"data":                        "data:text/html,<script>alert(1)</script>",
		"protocol-relative":           "//evil.example/x",
		"three slashes":               "///evil.example",
		"a backslash after the slash": "/\\evil.example",
		"slash backslash slash":       "/\\/evil.example",
		"backslash slash":             "\\/evil.example",
		"a tab between the slashes":   "/\t/evil.example",
		"a vertical tab":              "/\v/evil.example",
		"a form feed":                 "/\f/evil.example",
		"a NUL":                       "/\x00/evil.example",
		"CR LF":                       "/x\r\nSet-Cookie: a=b",
		"a newline between slashes":   "/\n/evil.example",
		"a leading space":             " //evil.example",
		"leading spaces then a path":  "  /history",
		"a leading tab":               "\t//evil.example",
		"a DEL":                       "/\x7f/evil.example",
		"encoded slashes":             "/%2F%2Fevil.example",
		"an encoded second slash":     "/%2Fevil.example",
		"an encoded backslash":        "/%5Cevil.example",
		"an encoded tab":              "/%09/evil.example",
		"user info":                   "//user@evil.example",
		"a fullwidth solidus":         "/\uff0fevil.example",
		"a division slash":            "/\u2215evil.example",
		"a fullwidth reverse solidus": "/\uff3cevil.example",
		"a non-breaking space":        "/\u00a0/evil.example",
		"a bad escape":                "/%zz",
	}
	for name, next := range refused {
		if got := safeNext(next); got != "/" {
			t.Errorf("%s: safeNext(%q) = %q, want / (the dashboard)", name, next, got)
		}
	}
}

// FuzzParseHistoryQuery: any query string is either refused with an error
// naming a parameter, or read into filters the history view accepts.
func FuzzParseHistoryQuery(f *testing.F) {
	for _, seed := range []string{
		"", "user=alice&status=failed", "since=90m&until=2026-01-03", "command=echo+hi", "=x", "cursor=-1",
		"since=2026-01-02T03:04:05Z&until=2026-01-02T03:04:05Z", "status=", "room=a&room=b", "since=9999999h",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		hq, err := parseHistoryQuery(q, now)
		if err != nil {
			var pe *paramError
			if !errors.As(err, &pe) || pe.Param == "" || pe.Message == "" {
				t.Fatalf("given %q, the error %v names no parameter", raw, err)
			}
			return
		}
		if hq.Status != "" && !slices.Contains(requestStatuses, hq.Status) {
			t.Fatalf("given %q, status %q passed", raw, hq.Status)
		}
		if strings.ContainsAny(hq.Command, " \t\n") {
			t.Fatalf("given %q, command %q passed", raw, hq.Command)
		}
		if !hq.Since.IsZero() && !hq.Until.IsZero() && !hq.Since.Before(hq.Until) {
			t.Fatalf("given %q, since %v is not before until %v", raw, hq.Since, hq.Until)
		}
	})
}
