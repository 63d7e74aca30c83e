package webui

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/logbookhq/logbook/projections"
)

// paramError is a filter the history page cannot use: it names the
// parameter and says what was expected.
type paramError struct {
	Param   string
	Message string
}

func (e *paramError) Error() string { return e.Param + ": " + e.Message }

func badParam(param, format string, args ...any) *paramError {
	return &paramError{Param: param, Message: fmt.Sprintf(format, args...)}
}

// historyQuery is the history page's filters: the API's, as a GET form
// sends them (an empty field filters nothing).
type historyQuery struct {
	User, Room, Provider, Command, Status string
	Since, Until                          time.Time
	Cursor                                string
}

var historyParams = []string{"user", "room", "provider", "command", "status", "since", "until", "cursor"}

// requestStatuses are the values of the status filter, as the history view
// names them.
var requestStatuses = []string{
	projections.RequestReceived, projections.RequestAwaitingApproval, projections.RequestQueued, projections.RequestRunning,
	projections.RequestCompleted, projections.RequestFailed, projections.RequestDenied, projections.RequestRejected, projections.RequestUnknownUser,
}

// timeLayouts are the forms since and until take besides a duration ago:
// RFC 3339, and what a datetime-local field or a person types (UTC).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"}

// parseHistoryQuery reads the history page's query string. An unknown or
// repeated parameter, a status that does not exist, a command with a
// space or a time that does not parse is a *paramError naming the
// parameter, so a typo never silently widens the list; every bad one is
// named (errors.Join), not only the first.
func parseHistoryQuery(q url.Values, now time.Time) (historyQuery, error) {
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names) // the bad ones are named in the same order every time
	var errs []error
	for _, name := range names {
		if !slices.Contains(historyParams, name) {
			if name == "" {
				errs = append(errs, badParam(`""`, "a parameter has no name (a stray '=' in the address)"))
				continue
			}
			errs = append(errs, badParam(name, "is not a filter here; the filters are %s", strings.Join(historyParams, ", ")))
			continue
		}
		if len(q[name]) > 1 {
			errs = append(errs, badParam(name, "is given %d times; give it once", len(q[name])))
		}
	}
	get := func(name string) string { return strings.TrimSpace(q.Get(name)) }
	hq := historyQuery{User: get("user"), Room: get("room"), Provider: get("provider"), Command: strings.TrimPrefix(get("command"), "!"), Status: get("status")}
	if hq.Status != "" && !slices.Contains(requestStatuses, hq.Status) {
		errs = append(errs, badParam("status", "%q is not one of %s", hq.Status, strings.Join(requestStatuses, ", ")))
	}
	if strings.ContainsAny(hq.Command, " \t\n") {
		errs = append(errs, badParam("command", "%q has a space; give one command name such as toolbox:echo", hq.Command))
	}
	var err error
	sinceOK, untilOK := true, true
	if hq.Since, err = parseWhen("since", get("since"), now); err != nil {
		errs, sinceOK = append(errs, err), false
	}
	if hq.Until, err = parseWhen("until", get("until"), now); err != nil {
		errs, untilOK = append(errs, err), false
	}
	if sinceOK && untilOK && !hq.Since.IsZero() && !hq.Until.IsZero() && !hq.Since.Before(hq.Until) {
		errs = append(errs, badParam("until", "%s is not after since (%s)", hq.Until.Format(time.RFC3339), hq.Since.Format(time.RFC3339)))
	}
	if raw := get("cursor"); raw != "" {
		if n, err := strconv.ParseInt(raw, 10, 64); err != nil || n < 1 {
			errs = append(errs, badParam("cursor", "%q is not a page this site linked to", raw))
		}
		hq.Cursor = raw
	}
	if len(errs) > 0 {
		return historyQuery{}, errors.Join(errs...)
	}
	return hq, nil
}

// filterErrors lists what is wrong with the filters, one sentence each.
func filterErrors(err error) []string {
	var out []string
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			out = append(out, filterErrors(e)...)
		}
		return out
	}
	return []string{"The filter " + err.Error() + "."}
}

// parseWhen reads a time: one of timeLayouts (UTC unless it says), or an
// age such as 90m, 24h or 7d meaning that long before now (the CLI's
// --since takes the same ages).
func parseWhen(param, raw string, now time.Time) (time.Time, error) {
	if raw == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(raw, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil {
			if n <= 0 || n > 100*366 {
				return time.Time{}, badParam(param, "%q is not a number of days from 1 to 36600", raw)
			}
			return now.AddDate(0, 0, -n).UTC(), nil
		}
	}
	if d, err := time.ParseDuration(raw); err == nil {
		if d <= 0 {
			return time.Time{}, badParam(param, "%q is not a positive duration", raw)
		}
		return now.Add(-d).UTC(), nil
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, raw); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, badParam(param, "%q is not a time such as 2026-01-02T15:04:05Z or 2026-01-02 15:04, nor an age such as 90m, 24h or 7d", raw)
}

// filter is the history view's filter for the query.
func (hq historyQuery) filter() projections.RequestFilter {
	return projections.RequestFilter{
		Username: hq.User, Command: hq.Command, Status: hq.Status, Adapter: hq.Provider, Room: hq.Room,
		From: hq.Since, To: hq.Until, Limit: historyPageSize, Cursor: hq.Cursor,
	}
}

// historyPageSize is the rows on one history page.
const historyPageSize = 50
