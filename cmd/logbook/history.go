package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/projections"
)

func init() { register(newHistoryCmd) }

// historyReaderOf and historyTranscriptsOf are the views' readers the
// server's API reads from.
func historyReaderOf(store *sqlstore.Store) *projections.HistoryReader {
	return projections.NewHistoryReader(projections.DBOf(store))
}

func historyTranscriptsOf(store *sqlstore.Store) *projections.TranscriptReader {
	return projections.NewTranscriptReader(projections.DBOf(store))
}

// historyFilters are the flags `history` and `runs` share.
type historyFilters struct {
	user, command, status, provider, room string
	since, until                          string
	limit                                 int
	cursor                                string
	asJSON                                bool
}

func (f *historyFilters) bind(cmd *cobra.Command, what string) {
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", "", "only "+what+" of this Logbook username")
	fl.StringVar(&f.command, "command", "", "only "+what+" of this command (bundle:command)")
	fl.StringVar(&f.status, "status", "", "only "+what+" in this status")
	fl.StringVar(&f.provider, "provider", "", "only "+what+" from this chat provider (slack, irc, web, api)")
	fl.StringVar(&f.room, "room", "", "only "+what+" from this room")
	fl.StringVar(&f.since, "since", "", "only "+what+" since this time: RFC 3339 (2026-01-02T15:04:05Z) or an age (90m, 1h, 7d)")
	fl.StringVar(&f.until, "until", "", "only "+what+" before this time (same forms as --since)")
	fl.IntVar(&f.limit, "limit", httpapi.DefaultListLimit, fmt.Sprintf("at most this many rows (1 to %d)", httpapi.MaxListLimit))
	fl.StringVar(&f.cursor, "cursor", "", "the next page: the cursor the previous page printed")
	fl.BoolVar(&f.asJSON, "json", false, "print the page as JSON (rows and next_cursor)")
}

// query turns the flags into the list endpoint's parameters; now anchors
// ages such as --since 1h.
func (f *historyFilters) query(now time.Time) (url.Values, error) {
	q := url.Values{}
	for name, v := range map[string]string{"user": f.user, "command": f.command, "status": f.status, "provider": f.provider, "room": f.room, "cursor": f.cursor} {
		if v != "" {
			q.Set(name, v)
		}
	}
	for name, v := range map[string]string{"since": f.since, "until": f.until} {
		if v == "" {
			continue
		}
		t, err := historyParseSince(v, now)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", name, err)
		}
		q.Set(name, t.Format(time.RFC3339Nano))
	}
	if f.limit < 1 || f.limit > httpapi.MaxListLimit {
		return nil, fmt.Errorf("--limit %d is not from 1 to %d", f.limit, httpapi.MaxListLimit)
	}
	q.Set("limit", strconv.Itoa(f.limit))
	return q, nil
}

// historySinceError says why a --since or --until value is not a time.
type historySinceError struct {
	Value  string
	Column int // 1-based, where the value stops making sense
}

func (e *historySinceError) Error() string {
	return fmt.Sprintf("%q, column %d: expected an RFC 3339 time (2026-01-02T15:04:05Z) or an age such as 90s, 30m, 1h30m or 7d", e.Value, e.Column)
}

// historyParseSince reads an RFC 3339 time, or an age before now: a Go
// duration (1h30m) or whole days (7d).
func historyParseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok && days != "" {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*366 {
			return time.Time{}, &historySinceError{Value: s, Column: historyFirstNonDigit(days)}
		}
		return now.AddDate(0, 0, -n).UTC(), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		column := 1
		if s != "" && s[0] >= '0' && s[0] <= '9' {
			column = historyFirstNonDigit(s)
		}
		return time.Time{}, &historySinceError{Value: s, Column: column}
	}
	return now.Add(-d).UTC(), nil
}

func historyFirstNonDigit(s string) int {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return i + 1
		}
	}
	return len(s) + 1
}

// historyClient calls the server's read API as LOGBOOK_TOKEN's user.
type historyClient struct {
	cc   clientConfig
	http *http.Client
}

func historyNewClient(timeout time.Duration) (*historyClient, error) {
	cc, err := loadClientConfig()
	if err != nil {
		return nil, exitWith(2, "%v", err)
	}
	return &historyClient{cc: cc, http: &http.Client{Timeout: timeout}}, nil
}

// get returns a 200 response, or an *exitError carrying the server's
// sentence: exit 1 when what was asked for does not exist, 2 otherwise.
func (c *historyClient) get(ctx context.Context, path string, q url.Values, header http.Header) (*http.Response, error) {
	u := c.cc.URL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, exitWith(2, "%v", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.cc.Token)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, exitWith(2, "cannot reach Logbook at %s (LOGBOOK_URL): %v", c.cc.URL, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var answer struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &answer) != nil || answer.Error == "" {
		answer.Error = fmt.Sprintf("the server answered %s", resp.Status)
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		return nil, exitWith(1, "%s", answer.Error)
	case http.StatusUnauthorized:
		return nil, exitWith(2, "%s (LOGBOOK_TOKEN)", answer.Error)
	}
	return nil, exitWith(2, "%s", answer.Error)
}

// getJSON decodes a 200 answer into v.
func (c *historyClient) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	resp, err := c.get(ctx, path, q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return exitWith(2, "the server's answer to %s is not the JSON expected: %v", path, err)
	}
	return nil
}

func newHistoryCmd() *cobra.Command {
	var f historyFilters
	cmd := &cobra.Command{
		Use:   "history [--user U] [--command C] [--status S] [--since T] [--limit N] [--json]",
		Short: "List requests, newest first, from the server at LOGBOOK_URL",
		Long: `List requests (what people asked Logbook to do), newest first, with who asked,
from where, the status and how long it took. Filters combine. A page holds
--limit rows; when there are more, the cursor for the next page is printed
on stderr (and as next_cursor with --json).

Statuses: received, awaiting-approval, queued, running, completed, failed,
denied, rejected, unknown-user.
Exit 0 on success, 2 when the server cannot be reached, refuses the token or
the input.`,
		Example: `  logbook history --user alice --since 1h
  logbook history --status failed --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			page, printed, err := fetchListPage[httpapi.HistoryPage](cmd, f, "/v1/history")
			if err != nil || printed {
				return err
			}
			if len(page.Requests) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "no requests match")
				return nil
			}
			t := newTable(cmd.OutOrStdout(), "REQUEST", "RECEIVED", "USER", "PROVIDER", "ROOM", "STATUS", "DURATION", "TEXT")
			for _, r := range page.Requests {
				user := r.Username
				if user == "" {
					user = r.ChatUser + "?"
				}
				t.Row(r.RequestID, historyTime(r.Received), user, r.Adapter, r.Room, r.Status, historyDuration(r.Duration), historyClip(r.Text, 60))
			}
			if err := t.Flush(); err != nil {
				return err
			}
			historyMore(cmd, page.NextCursor)
			return nil
		},
	}
	f.bind(cmd, "requests")
	return cmd
}

// fetchListPage reads one page of a history list (requests or runs) with
// the filters, and prints it as JSON when --json asks for that (printed).
func fetchListPage[P any](cmd *cobra.Command, f historyFilters, path string) (page P, printed bool, err error) {
	q, err := f.query(time.Now())
	if err != nil {
		return page, false, exitWith(2, "%v", err)
	}
	client, err := historyNewClient(time.Minute)
	if err != nil {
		return page, false, err
	}
	if err := client.getJSON(cmd.Context(), path, q, &page); err != nil {
		return page, false, err
	}
	if f.asJSON {
		return page, true, writeJSON(cmd.OutOrStdout(), page)
	}
	return page, false, nil
}

func historyMore(cmd *cobra.Command, cursor string) {
	if cursor != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "more: add --cursor %s for the next page\n", cursor)
	}
}

func historyTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func historyDuration(ms *int64) string {
	if ms == nil {
		return "-"
	}
	return (time.Duration(*ms) * time.Millisecond).String()
}

// historyClip keeps a table cell on one line and at most n runes.
func historyClip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
