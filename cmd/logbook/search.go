package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/dispatcher/admin"
	"github.com/logbookhq/logbook/projections"
)

func init() { register(newSearchCmd) }

func newSearchCmd() *cobra.Command {
	var f historyFilters
	cmd := &cobra.Command{
		Use:   "search WORDS... [--user U] [--command C] [--since T] [--json]",
		Short: "Find text in requests, command arguments and output, newest first",
		Long: `Search what people typed, the arguments commands ran with and what they
printed, on the server at LOGBOOK_URL. Each argument is a word (whole words,
any case), a prefix (deplo*) or, when it holds anything but letters and
digits, a substring (10.0.3.7, req-42; at least 3 characters); an argument
with spaces is one substring. Every one must match. Without
logbook:read_history you search only your own requests.

Each hit names its request, its run and the output line (the transcript's
#L anchor), with the line. The filters are the history's; when there are
more hits, the cursor for the next page is printed on stderr (and as
next_cursor with --json).
Exit 0 on success (also with no hits), 2 when the server cannot be reached,
refuses the token or the input.`,
		Example: `  logbook search 10.0.3.7 --since 7d
  logbook search "exit status" --command toolbox:sh --json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q, err := f.query(time.Now())
			if err != nil {
				return exitWith(2, "%v", err)
			}
			words := make([]string, len(args))
			for i, a := range args {
				words[i] = a
				if strings.ContainsAny(a, " \t") {
					words[i] = `"` + a + `"`
				}
			}
			text := strings.Join(words, " ")
			if _, err := projections.ParseSearchQuery(text); err != nil {
				return exitWith(2, "%v", err)
			}
			q.Set("q", text)
			client, err := historyNewClient(time.Minute)
			if err != nil {
				return err
			}
			var page httpapi.SearchResults
			if err := client.getJSON(cmd.Context(), "/v1/search", q, &page); err != nil {
				return err
			}
			if f.asJSON {
				return writeJSON(cmd.OutOrStdout(), page)
			}
			if len(page.Hits) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "nothing matches %s\n", page.Query)
				return nil
			}
			t := newTable(cmd.OutOrStdout(), "RECEIVED", "USER", "COMMAND", "REQUEST", "RUN", "LINE", "MATCH")
			for _, h := range page.Hits {
				line := h.Kind
				if h.Kind == projections.SearchKindOutput {
					line = fmt.Sprint(h.Line)
				}
				t.Row(historyTime(h.Received), h.Username, h.Command, h.RequestID, orDash(h.RunID), line, historyClip(admin.SnippetText(h.Snippet), 80))
			}
			if err := t.Flush(); err != nil {
				return err
			}
			historyMore(cmd, page.NextCursor)
			return nil
		},
	}
	f.bind(cmd, "hits in requests")
	return cmd
}
