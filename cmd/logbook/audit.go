package main

import (
	"fmt"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/domain/eventstore"
)

func init() { register(newAuditCmd) }

func newAuditCmd() *cobra.Command {
	audit := &cobra.Command{Use: "audit", Short: "Check the event log's tamper evidence"}
	var (
		asJSON   bool
		database string
	)
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Walk the hash chain; exit 1 naming the first position that was altered, deleted, inserted or reordered",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, name, _, err := openConfiguredStore(cmd.Context(), database)
			if err != nil {
				return err
			}
			defer store.Close()

			head, _, err := store.Head(cmd.Context())
			if err != nil {
				return err
			}
			progress := func(int64) {}
			if !asJSON && isatty.IsTerminal(os.Stderr.Fd()) {
				bar := progressbar.NewOptions64(head, progressbar.OptionSetWriter(os.Stderr),
					progressbar.OptionSetDescription("verifying"), progressbar.OptionShowCount(),
					progressbar.OptionShowIts(), progressbar.OptionSetItsString("events"), progressbar.OptionClearOnFinish())
				progress = func(n int64) { _ = bar.Set64(n) }
				defer bar.Finish() //nolint:errcheck // cosmetic
			}
			start := time.Now()
			report, err := eventstore.Verify(cmd.Context(), store, progress)
			if err != nil {
				return err
			}
			elapsed := time.Since(start)
			out := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(out, struct {
					eventstore.VerifyReport
					Store        string  `json:"store"`
					Seconds      float64 `json:"seconds"`
					EventsPerSec float64 `json:"events_per_s"`
				}{report, name, elapsed.Seconds(), perSecond(report.Checked, elapsed)}); err != nil {
					return err
				}
			} else if report.OK {
				fmt.Fprintf(out, "ok: %d events checked in %s (%.0f events/s); head position %d, hash %s\n",
					report.Checked, elapsed.Round(time.Millisecond), perSecond(report.Checked, elapsed), report.Head, report.HeadHash)
			} else {
				fmt.Fprintf(out, "chain broken at position %d: %s (%d events before it check out)\n", report.FirstBad, report.Problem, report.Checked)
			}
			if !report.OK {
				return exitWith(1, "")
			}
			return nil
		},
	}
	verify.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	verify.Flags().StringVar(&database, "database", "", "database URL (default LOGBOOK_DATABASE_URL, else the embedded SQLite file)")
	audit.AddCommand(verify)
	return audit
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
