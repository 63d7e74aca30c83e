package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/adapters/httpapi"
)

func init() { register(accessNewCmd) }

func accessNewCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "access", Short: "Ask the server who may run what"}
	cmd.AddCommand(accessNewExplainCmd())
	return cmd
}

func accessNewExplainCmd() *cobra.Command {
	var (
		user   string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "explain [--user U] [--json] 'PIPELINE'",
		Short: "Dry-run the permission check of a pipeline: which rule decides each stage, and why",
		Long: `Ask the server at LOGBOOK_URL how it would decide PIPELINE sent by --user
(default: LOGBOOK_TOKEN's user) right now: aliases and "!!" expanded, each
stage's command resolved, its rules evaluated against the user's
permissions. Nothing runs and nothing is recorded. Explaining another user
needs logbook:admin.

Exit 0 when every stage would be allowed, 1 when the request would be
denied or does not parse, 2 when the question could not be asked.`,
		Example: `  logbook access explain --user bob 'toolbox:echo hi | toolbox:shout'`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var e httpapi.AccessExplanation
			if err := postJSON(cmd, "/v1/access/explain", map[string]string{"user": user, "text": args[0]}, &e); err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), e); err != nil {
					return err
				}
			} else if err := accessPrint(cmd.OutOrStdout(), e); err != nil {
				return err
			}
			if !e.Allowed {
				return exitWith(1, "")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "the user whose request to explain (default: yours)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the whole explanation, every rule of every stage, as JSON")
	return cmd
}

// accessPrint writes the verdict, then a table of the stages, then each
// stage's full explanation.
func accessPrint(w io.Writer, e httpapi.AccessExplanation) error {
	verdict := "denied"
	switch {
	case e.Allowed && len(e.Approvals) > 0:
		verdict = "allowed once approved"
	case e.Allowed:
		verdict = "allowed"
	}
	fmt.Fprintf(w, "%s would be %s for %s\n", accessQuote(e.Text), verdict, e.User)
	switch {
	case e.Alias != "":
		fmt.Fprintf(w, "alias %s expands to: %s\n", e.Alias, e.Expanded)
	case e.Expanded != "":
		fmt.Fprintf(w, "it runs the previous request again: %s\n", e.Expanded)
	}
	if e.Rejected != "" {
		if e.Column > 0 {
			fmt.Fprintf(w, "it cannot run: column %d: %s\n", e.Column, e.Rejected)
		} else {
			fmt.Fprintf(w, "it cannot run: %s\n", e.Rejected)
		}
	}
	if len(e.Stages) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, "STAGE", "COMMAND", "DECISION", "RULE", "REQUIRES")
		for _, s := range e.Stages {
			decision := "denied"
			if s.Allowed {
				decision = "allowed"
			}
			rule, requires := s.Rule, s.Requires
			if rule == "" {
				rule, requires = "(no rule matches)", "-"
			}
			t.Row(s.Stage, s.Command, decision, rule, requires)
		}
		if err := t.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
		for _, s := range e.Stages {
			why := s.Detail.Summary
			if why == "" {
				why = s.Reason
			}
			fmt.Fprintf(w, "stage %d (%s): %s\n", s.Stage, s.Command, why)
		}
	}
	if len(e.Approvals) > 0 {
		needs := make([]string, len(e.Approvals))
		for i, a := range e.Approvals {
			noun := "approvals"
			if a.Needed == 1 {
				noun = "approval"
			}
			needs[i] = fmt.Sprintf("%d %s from %s", a.Needed, noun, a.Permission)
		}
		fmt.Fprintf(w, "before anything runs it needs %s, never %s's own", strings.Join(needs, " and "), e.User)
		if len(e.Approvers) > 0 {
			fmt.Fprintf(w, " (may approve now: %s)", strings.Join(e.Approvers, ", "))
		}
		fmt.Fprintln(w)
	}
	if e.Denied != "" && e.Rejected == "" {
		fmt.Fprintf(w, "denied: %s\n", e.Denied)
	}
	return nil
}

func accessQuote(s string) string { return fmt.Sprintf("%q", s) }
