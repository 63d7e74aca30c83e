package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/adapters/httpapi"
)

func init() { register(newRunsCmd) }

func newRunsCmd() *cobra.Command {
	var f historyFilters
	cmd := &cobra.Command{
		Use:   "runs [--user U] [--command C] [--status S] [--since T] [--limit N] [--json]",
		Short: "List command runs, newest first, from the server at LOGBOOK_URL",
		Long: `List runs (one per command invocation of a request's stage), newest first,
with the command, status, exit code and duration. Filters combine, as in
` + "`logbook history`" + `; see a run's output with ` + "`logbook transcript RUN`" + `.

Statuses: requested, running, succeeded, failed, timed_out, cancelled, lost.
Exit 0 on success, 2 when the server cannot be reached, refuses the token or
the input.`,
		Example: `  logbook runs --command toolbox:echo --since 1h
  logbook runs --status failed --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			page, printed, err := fetchListPage[httpapi.RunsPage](cmd, f, "/v1/runs")
			if err != nil || printed {
				return err
			}
			if len(page.Runs) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "no runs match")
				return nil
			}
			t := newTable(cmd.OutOrStdout(), "RUN", "REQUESTED", "USER", "COMMAND", "STATUS", "EXIT", "DURATION")
			for _, r := range page.Runs {
				exit := "-"
				if r.Exit != nil {
					exit = strconv.FormatInt(*r.Exit, 10)
				}
				t.Row(r.RunID, historyTime(r.Requested), r.Username, r.Command, r.Status, exit, historyDuration(r.Duration))
			}
			if err := t.Flush(); err != nil {
				return err
			}
			historyMore(cmd, page.NextCursor)
			return nil
		},
	}
	f.bind(cmd, "runs")
	return cmd
}
