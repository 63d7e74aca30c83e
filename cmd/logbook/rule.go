package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/pipeline"
	"github.com/logbookhq/logbook/domain/rules"
)

func init() { register(newRuleCmd) }

func newRuleCmd() *cobra.Command {
	rule := &cobra.Command{Use: "rule", Short: "Work with Cog-style permission rules"}
	var (
		ruleText string
		perms    []string
		asJSON   bool
	)
	check := &cobra.Command{
		Use:   "check --rule 'RULE' [--perm ns:p ...] -- 'INVOCATION'",
		Short: "Evaluate one rule against one single-stage invocation",
		Long: `Evaluate one rule against one invocation, as if the user held exactly the
--perm permissions. Prints allowed, denied or no match on stdout (an allowed invocation the rule
asks approval for: "allowed once approved: 2 approvals from ns:perm") and
the explanation on stderr (with --json, the whole explanation, approvals
included, on stdout).
Exit 0 when allowed, 1 when denied or no rule matches, 2 when the rule or the
invocation does not parse. Write the invocation's command in full (ns:cmd).`,
		Example: `  logbook rule check --rule 'when command is ops:deploy with arg[0] == "prod" must have ops:prod' --perm ops:prod -- 'ops:deploy prod'`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ruleText == "" {
				return exitWith(2, "--rule is required")
			}
			r, err := rules.Parse(ruleText)
			if err != nil {
				return exitWith(2, "rule: %v", err)
			}
			inv, err := ruleInvocation(args[0])
			if err != nil {
				return exitWith(2, "invocation: %v", err)
			}
			held := map[string]bool{}
			for _, p := range perms {
				held[p] = true
			}
			decision := rules.Evaluate([]*rules.Rule{r}, inv, func(p string) bool { return held[p] })
			verdict := "denied"
			switch {
			case decision.Allowed && len(decision.Approvals) > 0:
				verdict = "allowed once approved: " + approvalsSentence(decision.Approvals)
			case decision.Allowed:
				verdict = "allowed"
			case decision.Reason == rules.ReasonNoMatchingRule || decision.Reason == rules.ReasonNoRules:
				verdict = "no match"
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), decision.Explanation()); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(cmd.OutOrStdout(), verdict)
				fmt.Fprintln(cmd.ErrOrStderr(), decision.Explain())
			}
			if !decision.Allowed {
				return exitWith(1, "")
			}
			return nil
		},
	}
	check.Flags().StringVar(&ruleText, "rule", "", "the rule, in full form: when command is ns:cmd ...")
	check.Flags().StringArrayVar(&perms, "perm", nil, "a permission the user holds (repeatable)")
	check.Flags().BoolVar(&asJSON, "json", false, "print the explanation as JSON")
	rule.AddCommand(check)
	return rule
}

// approvalsSentence writes approval clauses as people read them: "2
// approvals from ops:approver and 1 approval from site:dba".
func approvalsSentence(approvals []rules.Approval) string {
	words := make([]string, len(approvals))
	for i, a := range approvals {
		words[i] = a.String()
		if a.Count == 1 {
			words[i] = "1 " + words[i]
		}
	}
	return strings.Join(words, " and ")
}

// ruleInvocation parses a single-stage pipeline into what rules evaluate.
func ruleInvocation(text string) (rules.Invocation, error) {
	pl, err := pipeline.Parse(text)
	if err != nil {
		return rules.Invocation{}, err
	}
	if len(pl.Stages) != 1 || len(pl.Redirects) > 0 {
		return rules.Invocation{}, errors.New("write exactly one command, without pipes or redirects")
	}
	stage := pl.Stages[0]
	if stage.Bundle == "" {
		return rules.Invocation{}, fmt.Errorf("column %d: write the command in full as bundle:%s", stage.Column, stage.Name)
	}
	// The same conversion the dispatcher decides with, so a rule checked
	// here decides as it would on a real request.
	return dispatch.StageInvocation(stage), nil
}
