package httpapi

import (
	"errors"
	"net/url"
	"testing"
	"time"
)

func TestListQueriesParseOrNameTheBadParameter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, query string
		want        listQuery
		badParam    string
	}{
		{"no parameters give the first page of 50", "", listQuery{Limit: 50}, ""},
		{"every filter is read", "user=alice&command=toolbox:echo&status=failed&provider=api&room=%23ops&limit=200&cursor=17",
			listQuery{User: "alice", Command: "toolbox:echo", Status: "failed", Provider: "api", Room: "#ops", Limit: 200, Cursor: "17"}, ""},
		{"times are RFC 3339 and become UTC", "since=2026-01-02T03:04:05%2B02:00&until=2026-01-03T00:00:00.5Z",
			listQuery{Limit: 50, Since: time.Date(2026, 1, 2, 1, 4, 5, 0, time.UTC), Until: time.Date(2026, 1, 3, 0, 0, 0, 5e8, time.UTC)}, ""},
		{"a duration is not a time", "since=1h", listQuery{}, "since"},
		{"until must come after since", "since=2026-01-02T00:00:00Z&until=2026-01-02T00:00:00Z", listQuery{}, "until"},
		{"a negative limit is refused", "limit=-1", listQuery{}, "limit"},
		{"a limit over the maximum is refused", "limit=1000", listQuery{}, "limit"},
		{"a zero cursor is refused", "cursor=0", listQuery{}, "cursor"},
		{"a status from another list is refused", "status=completed", listQuery{}, "status"},
		{"a command with a space is refused", "command=echo+hi", listQuery{}, "command"},
		{"an unknown parameter is refused", "offset=10", listQuery{}, "offset"},
		{"a parameter given twice is refused", "room=a&room=b", listQuery{}, "room"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseListQuery(q, runStatuses)
			var pe *ParamError
			if tt.badParam != "" {
				if !errors.As(err, &pe) || pe.Param != tt.badParam {
					t.Fatalf("%q: error %v; want one naming %s", tt.query, err, tt.badParam)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("%q = %+v, %v; want %+v", tt.query, got, err, tt.want)
			}
		})
	}
}

func TestTranscriptQueriesParseOrNameTheBadParameter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, query string
		want        transcriptQuery
		badParam    string
	}{
		{"the default is both streams as text", "", transcriptQuery{}, ""},
		{"chunks of stderr, followed", "format=chunks&stream=stderr&follow=1", transcriptQuery{Stream: "stderr", Chunks: true, Follow: true}, ""},
		{"follow=false does not follow", "follow=false&format=text", transcriptQuery{}, ""},
		{"stdin is not a stream", "stream=stdin", transcriptQuery{}, "stream"},
		{"html is not a format", "format=html", transcriptQuery{}, "format"},
		{"follow takes a boolean", "follow=please", transcriptQuery{}, "follow"},
		{"a list filter is not a transcript parameter", "limit=5", transcriptQuery{}, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q, _ := url.ParseQuery(tt.query)
			got, err := parseTranscriptQuery(q)
			var pe *ParamError
			if tt.badParam != "" {
				if !errors.As(err, &pe) || pe.Param != tt.badParam {
					t.Fatalf("%q: error %v; want one naming %s", tt.query, err, tt.badParam)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("%q = %+v, %v; want %+v", tt.query, got, err, tt.want)
			}
		})
	}
}

// FuzzParseListQuery: any query string parses or names a parameter, and a
// parsed one is always within bounds.
func FuzzParseListQuery(f *testing.F) {
	f.Add("user=alice&limit=10&cursor=5&since=2026-01-02T03:04:05Z")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		got, err := parseListQuery(q, requestStatuses)
		if err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) || pe.Param == "" {
				t.Fatalf("%q: error %v names no parameter", raw, err)
			}
			return
		}
		if got.Limit < 1 || got.Limit > MaxListLimit {
			t.Fatalf("%q: limit %d out of bounds", raw, got.Limit)
		}
		if !got.Since.IsZero() && !got.Until.IsZero() && !got.Since.Before(got.Until) {
			t.Fatalf("%q: since %v is not before until %v", raw, got.Since, got.Until)
		}
	})
}

// FuzzParseTranscriptQuery: any query string parses or names a parameter.
func FuzzParseTranscriptQuery(f *testing.F) {
	f.Add("stream=stdout&format=chunks&follow=1")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		got, err := parseTranscriptQuery(q)
		if err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) || pe.Param == "" {
				t.Fatalf("%q: error %v names no parameter", raw, err)
			}
			return
		}
		if got.Stream != "" && got.Stream != "stdout" && got.Stream != "stderr" {
			t.Fatalf("%q: stream %q", raw, got.Stream)
		}
	})
}
