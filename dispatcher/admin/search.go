package admin

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/projections"
)

// Searcher is what the search builtin reads of the search view
// (projections.SearchReader).
type Searcher interface {
	Search(ctx context.Context, f projections.SearchFilter) (projections.SearchPage, error)
}

// searchUsage is the search builtin's usage line.
const searchUsage = "search WORDS... [--user=USER] [--command=BUNDLE:COMMAND] [--limit=N]"

// DefaultSearchLimit is how many hits search shows without --limit.
const DefaultSearchLimit = 10

// search finds text in requests, command arguments and output, under the
// history rule: without logbook:read_history, only the caller's own.
func (a *admin) search(c *adminCall) (run.Result, error) {
	if len(c.Args) == 0 {
		return run.Result{}, errors.New("usage: " + searchUsage)
	}
	// Arguments the pipeline parser unquoted keep their spaces as one
	// quoted substring.
	words := make([]string, len(c.Args))
	for i, arg := range c.Args {
		words[i] = arg
		if strings.ContainsAny(arg, " \t") {
			words[i] = `"` + arg + `"`
		}
	}
	query, err := projections.ParseSearchQuery(strings.Join(words, " "))
	if err != nil {
		return run.Result{}, err
	}
	username, _, err := stringOption(c, "user")
	if err != nil {
		return run.Result{}, err
	}
	if username, err = c.historyReader().ListFilter(username); err != nil {
		return run.Result{}, err
	}
	command, _, err := stringOption(c, "command")
	if err != nil {
		return run.Result{}, err
	}
	limit := DefaultSearchLimit
	if raw, ok := c.Options["limit"]; ok {
		n, err := strconv.Atoi(fmt.Sprint(raw))
		if err != nil || n < 1 || n > 50 {
			return run.Result{}, errors.New("--limit=N takes a number from 1 to 50")
		}
		limit = n
	}
	page, err := a.cfg.Search.Search(c.ctx, projections.SearchFilter{Query: query, Username: username, Command: command, Limit: limit})
	if err != nil {
		return run.Result{}, fmt.Errorf("searching: %v", err)
	}
	whose := "everyone's history"
	if username != "" {
		whose = username + "'s history"
	}
	if len(page.Hits) == 0 {
		return dispatch.BodyResult(fmt.Sprintf("Nothing in %s matches %s.", whose, query)), nil
	}
	lines := []string{fmt.Sprintf("%d matches of %s in %s, newest first:", len(page.Hits), query, whose)}
	for _, h := range page.Hits {
		where := "request " + h.RequestID
		switch h.Kind {
		case projections.SearchKindCommand:
			where = "run " + h.RunID + " (arguments)"
		case projections.SearchKindOutput:
			where = fmt.Sprintf("run %s line %d", h.RunID, h.Line)
		}
		lines = append(lines, fmt.Sprintf("%s  %s  %s  %s: %s", h.Received().UTC().Format(time.DateTime), h.Username, h.Command, where, SnippetText(h.Snippet)))
	}
	if page.Next != "" {
		lines = append(lines, "More in `logbook search` and the web UI's search page.")
	}
	return dispatch.BodyResult(lines...), nil
}

// SnippetText is a snippet as plain text.
func SnippetText(fragments []projections.Fragment) string {
	var b strings.Builder
	for _, f := range fragments {
		b.WriteString(f.Text)
	}
	return b.String()
}
