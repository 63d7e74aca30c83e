package main

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/adapters/export"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain/bundleconfig"
	"github.com/logbookhq/logbook/internal/supervisor"
)

func init() { register(newExportCmd) }

// startExports runs one part of the supervisor per configured export
// destination, "export:<name>". None is essential: a destination that is
// down is degraded and retried, and the server stays ready.
func startExports(ctx context.Context, sup partStarter, cfg config, store *sqlstore.Store, vault bundleconfig.Vault, log zerolog.Logger) error {
	for _, c := range cfg.Exports {
		x, err := export.New(c, export.Options{Store: store, Cursors: export.CursorsOf(store), Vault: vault, Logger: log})
		if err != nil {
			return err
		}
		sup.Start(ctx, supervisor.Part{Name: "export:" + c.Name, ReportsReady: true, StopTimeout: 15 * time.Second, Run: x.Run})
	}
	return nil
}

// exportStatus answers GET /v1/export/status for the server's destinations.
type exportStatus struct {
	store   *sqlstore.Store
	configs []export.Config
}

func (e exportStatus) ExportStatus(ctx context.Context) ([]export.Status, error) {
	return export.StatusOf(ctx, e.store, export.CursorsOf(e.store), e.configs, time.Now())
}

func newExportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "The export stream: the event log sent to files, syslog or a webhook (LOGBOOK_EXPORT)",
	}
	var database string
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show each export destination's cursor against the log's head, its lag and last error",
		Long: `Show each export destination: the last position it acknowledged, the log's
head, how many events and how long it is behind (the age of the oldest event
it has not taken), and its last failure since it last took a batch. The
destinations are those LOGBOOK_EXPORT lists, and any cursor stored for one it
no longer lists. It reads the database, so it works with the server running
or stopped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, _, cfg, err := openConfiguredStore(cmd.Context(), database)
			if err != nil {
				return err
			}
			defer store.Close()
			statuses, err := export.StatusOf(cmd.Context(), store, export.CursorsOf(store), cfg.Exports, time.Now())
			if err != nil {
				return redactErr(err, cfg.DatabaseURL)
			}
			if asJSON {
				if statuses == nil {
					statuses = []export.Status{}
				}
				return writeJSON(cmd.OutOrStdout(), statuses)
			}
			if len(statuses) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no export destinations: set LOGBOOK_EXPORT (see the README)")
				return nil
			}
			t := newTable(cmd.OutOrStdout(), "DESTINATION", "TYPE", "TARGET", "POSITION", "HEAD", "LAG", "LAG TIME", "ACKED", "LAST ERROR")
			for _, s := range statuses {
				kind := s.Type
				if !s.Configured {
					kind = "(not configured)"
				}
				acked := "-"
				if s.AckedAt != nil {
					acked = s.AckedAt.Local().Format(time.DateTime)
				}
				lastError := s.LastError
				if s.LastErrorAt != nil {
					lastError = s.LastErrorAt.Local().Format(time.TimeOnly) + " " + lastError
				}
				t.Row(s.Destination, kind, s.Target, s.Position, s.Head, s.LagEvents, (time.Duration(s.LagSeconds * float64(time.Second))).Round(time.Millisecond), acked, lastError)
			}
			return t.Flush()
		},
	}
	status.Flags().StringVar(&database, "database", "", "database URL (default LOGBOOK_DATABASE_URL, else the embedded SQLite file)")
	status.Flags().BoolVar(&asJSON, "json", false, "print the statuses as JSON")
	cmd.AddCommand(status)
	return cmd
}
