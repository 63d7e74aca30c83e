package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/domain/bundle"
)

// bundleSubcommands is filled by each bundle command file's init (`logbook
// bundle validate`, later install, enable, ...).
var bundleSubcommands []func() *cobra.Command

func bundleRegisterSubcommand(newCmd func() *cobra.Command) {
	bundleSubcommands = append(bundleSubcommands, newCmd)
}

func init() {
	register(bundleNewCmd)
	bundleRegisterSubcommand(bundleNewValidateCmd)
}

func bundleNewCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bundle",
		Short: "Work with bundle configs (Cog cog_bundle_version 3-5, Gort gort_bundle_version 1)",
	}
	for _, newSub := range bundleSubcommands {
		cmd.AddCommand(newSub())
	}
	return cmd
}

// bundleValidateReport is one file's result in `bundle validate --json`.
type bundleValidateReport struct {
	File     string                  `json:"file"`
	OK       bool                    `json:"ok"`
	Errors   []bundleValidateProblem `json:"errors"`
	Warnings []bundleValidateProblem `json:"warnings"`

	unreadable bool
}

type bundleValidateProblem struct {
	Line    int    `json:"line"`
	Message string `json:"message"`
}

func bundleNewValidateCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check bundle configs: schema, then rules, permissions, names and images",
		Long: `Validate loads each bundle config (YAML or JSON) as Logbook would install it
and reports every problem with its line.

It prints "FILE: ok" for a valid file, followed by its warnings, and
"FILE:LINE: message" for each error of an invalid one. It exits 0 when every
file is valid, 1 when any file is invalid, and 2 when any file cannot be
read. A bundle may ask for at most LOGBOOK_MAX_PIDS processes (1024 unless
set), the site's maximum.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			maxPids, err := maxPidsFromEnv()
			if err != nil {
				return exitWith(2, "configuration: %v", err)
			}
			site := bundle.Site{MaxPids: maxPids}
			reports := make([]bundleValidateReport, 0, len(args))
			for _, file := range args {
				reports = append(reports, bundleValidateFile(file, site))
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), reports); err != nil {
					return err
				}
			} else {
				bundleValidatePrint(cmd.OutOrStdout(), cmd.ErrOrStderr(), reports)
			}
			return bundleValidateExit(reports)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON list of {file, ok, errors: [{line, message}], warnings: [{line, message}]}")
	return cmd
}

func bundleValidateFile(file string, site bundle.Site) bundleValidateReport {
	report := bundleValidateReport{File: file, Errors: []bundleValidateProblem{}, Warnings: []bundleValidateProblem{}}
	data, err := bundleReadConfig(file)
	if err != nil {
		report.unreadable = true
		report.Errors = append(report.Errors, bundleValidateProblem{Message: "cannot read: " + err.Error()})
		return report
	}
	b, err := bundle.LoadForSite(data, site)
	var invalid *bundle.InvalidError
	switch {
	case err == nil:
		report.OK = true
		report.Warnings = bundleProblems(b.Warnings())
	case errors.As(err, &invalid):
		report.Errors = bundleProblems(invalid.Errors)
		report.Warnings = bundleProblems(invalid.Warnings)
	default:
		report.Errors = append(report.Errors, bundleValidateProblem{Message: err.Error()})
	}
	return report
}

// bundleReadConfig reads at most one byte past the loader's size cap, so a
// huge file is refused by Load without being read whole.
func bundleReadConfig(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, bundle.MaxConfigSize+1))
}

func bundleProblems(ps []bundle.Problem) []bundleValidateProblem {
	out := make([]bundleValidateProblem, len(ps))
	for i, p := range ps {
		out[i] = bundleValidateProblem{Line: p.Line, Message: p.Message}
	}
	return out
}

// bundleValidatePrint writes the reports the way compilers do, so editors
// can jump to FILE:LINE.
func bundleValidatePrint(stdout, stderr io.Writer, reports []bundleValidateReport) {
	for _, r := range reports {
		switch {
		case r.unreadable:
			fmt.Fprintf(stderr, "%s: %s\n", r.File, r.Errors[0].Message)
			continue
		case r.OK:
			fmt.Fprintf(stdout, "%s: ok\n", r.File)
		default:
			for _, p := range r.Errors {
				fmt.Fprintf(stdout, "%s: %s\n", bundleLocation(r.File, p.Line), p.Message)
			}
		}
		for _, p := range r.Warnings {
			fmt.Fprintf(stdout, "%s: warning: %s\n", bundleLocation(r.File, p.Line), p.Message)
		}
	}
}

func bundleLocation(file string, line int) string {
	if line == 0 {
		return file
	}
	return fmt.Sprintf("%s:%d", file, line)
}

// bundleValidateExit is 2 if any file could not be read, else 1 if any
// was invalid, else success.
func bundleValidateExit(reports []bundleValidateReport) error {
	code := 0
	for _, r := range reports {
		switch {
		case r.unreadable:
			code = 2
		case !r.OK && code == 0:
			code = 1
		}
	}
	if code == 0 {
		return nil
	}
	return exitWith(code, "")
}
