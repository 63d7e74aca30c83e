package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/adapters/httpapi"
)

func init() { register(newExecutorsCmd) }

func newExecutorsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "executors [--json]",
		Short: "List the live executors of the server at LOGBOOK_URL (on a NATS bus)",
		Long: `List the executors whose heartbeats reach the server: id, host, relay groups,
version, the runs each holds, its slots and the warm and single-use containers
it keeps, and when it was last heard. Needs logbook:manage_bundles.

Exit 0 on success, 2 when the server cannot be reached, refuses the token, or
runs its commands in-process (no LOGBOOK_BUS_URL).`,
		Example: "  logbook executors\n  logbook executors --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := historyNewClient(time.Minute)
			if err != nil {
				return err
			}
			var list httpapi.ExecutorsList
			if err := client.getJSON(cmd.Context(), "/v1/executors", nil, &list); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), list)
			}
			if len(list.Executors) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "no executor is live")
				return nil
			}
			t := newTable(cmd.OutOrStdout(), "ID", "HOST", "GROUPS", "VERSION", "RUNS", "SLOTS", "POOL", "SINCE", "LAST SEEN")
			for _, e := range list.Executors {
				t.Row(e.ID, e.Host, strings.Join(e.Groups, ","), e.Version, len(e.Runs), e.Slots, e.PoolContainers, historyTime(&e.Since), historyTime(&e.LastSeen))
			}
			return t.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the executors as JSON")
	return cmd
}
