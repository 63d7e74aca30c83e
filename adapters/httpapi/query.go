package httpapi

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Page sizes of the history lists.
const (
	DefaultListLimit = 50
	MaxListLimit     = 200
)

// ParamError is a query parameter the API cannot use: it names the
// parameter and says what was expected.
type ParamError struct {
	Param   string
	Message string
}

func (e *ParamError) Error() string { return "parameter " + e.Param + ": " + e.Message }

func paramError(param, format string, args ...any) *ParamError {
	return &ParamError{Param: param, Message: fmt.Sprintf(format, args...)}
}

// listQuery is the filters and page of GET /v1/history and GET /v1/runs.
type listQuery struct {
	User, Command, Status, Provider, Room string
	Since, Until                          time.Time
	Limit                                 int
	Cursor                                string
}

var listParams = []string{"user", "command", "status", "provider", "room", "since", "until", "limit", "cursor"}

// parseListQuery reads a list's query string. statuses are the values
// status may take; anything else, an unknown parameter or a repeated one is
// a *ParamError, so a typo never silently widens a query.
func parseListQuery(q url.Values, statuses []string) (listQuery, error) {
	if err := onlyParams(q, listParams); err != nil {
		return listQuery{}, err
	}
	lq := listQuery{
		User:     q.Get("user"),
		Command:  q.Get("command"),
		Status:   q.Get("status"),
		Provider: q.Get("provider"),
		Room:     q.Get("room"),
		Limit:    DefaultListLimit,
	}
	if lq.Status != "" && !slices.Contains(statuses, lq.Status) {
		return listQuery{}, paramError("status", "%q is not one of %s", lq.Status, strings.Join(statuses, ", "))
	}
	if lq.Command != "" && strings.ContainsAny(lq.Command, " \t\n") {
		return listQuery{}, paramError("command", "%q has a space; expected one command name such as toolbox:echo", lq.Command)
	}
	var err error
	if lq.Since, err = parseTimeParam(q, "since"); err != nil {
		return listQuery{}, err
	}
	if lq.Until, err = parseTimeParam(q, "until"); err != nil {
		return listQuery{}, err
	}
	if !lq.Since.IsZero() && !lq.Until.IsZero() && !lq.Since.Before(lq.Until) {
		return listQuery{}, paramError("until", "%s is not after since (%s)", lq.Until.Format(time.RFC3339Nano), lq.Since.Format(time.RFC3339Nano))
	}
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > MaxListLimit {
			return listQuery{}, paramError("limit", "%q is not a whole number from 1 to %d", raw, MaxListLimit)
		}
		lq.Limit = n
	}
	if raw := q.Get("cursor"); raw != "" {
		if n, err := strconv.ParseInt(raw, 10, 64); err != nil || n < 1 {
			return listQuery{}, paramError("cursor", "%q is not a cursor this API handed out (next_cursor of a previous page)", raw)
		}
		lq.Cursor = raw
	}
	return lq, nil
}

// onlyParams refuses parameters outside allowed, and any given twice.
func onlyParams(q url.Values, allowed []string) error {
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names) // the first bad one named is the same every time
	for _, name := range names {
		if name == "" {
			return paramError(`""`, "a parameter has no name (a stray '=' in the query)")
		}
		if len(allowed) == 0 {
			return paramError(name, "is not a parameter here; this takes none")
		}
		if !slices.Contains(allowed, name) {
			return paramError(name, "is not a parameter here; expected one of %s", strings.Join(allowed, ", "))
		}
		if len(q[name]) > 1 {
			return paramError(name, "is given %d times; give it once", len(q[name]))
		}
	}
	return nil
}

func parseTimeParam(q url.Values, name string) (time.Time, error) {
	raw := q.Get(name)
	if raw == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return time.Time{}, paramError(name, "%q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", raw)
	}
	return t.UTC(), nil
}

// transcriptQuery is GET /v1/runs/{id}/transcript's query.
type transcriptQuery struct {
	Stream string // "", stdout or stderr
	Chunks bool   // format=chunks: JSON chunks instead of the bytes
	Follow bool
}

var transcriptParams = []string{"stream", "format", "follow"}

func parseTranscriptQuery(q url.Values) (transcriptQuery, error) {
	if err := onlyParams(q, transcriptParams); err != nil {
		return transcriptQuery{}, err
	}
	var tq transcriptQuery
	switch s := q.Get("stream"); s {
	case "", "stdout", "stderr":
		tq.Stream = s
	default:
		return transcriptQuery{}, paramError("stream", "%q is not stdout or stderr", s)
	}
	switch f := q.Get("format"); f {
	case "", "text":
	case "chunks":
		tq.Chunks = true
	default:
		return transcriptQuery{}, paramError("format", "%q is not text or chunks", f)
	}
	if raw := q.Get("follow"); raw != "" {
		follow, err := strconv.ParseBool(raw)
		if err != nil {
			return transcriptQuery{}, paramError("follow", "%q is not 1, 0, true or false", raw)
		}
		tq.Follow = follow
	}
	return tq, nil
}
