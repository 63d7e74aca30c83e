package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/projections"
)

func init() {
	register(newApprovalsCmd)
	register(func() *cobra.Command { return newAnswerCmd(dispatch.VerdictApprove) })
	register(func() *cobra.Command { return newAnswerCmd(dispatch.VerdictReject) })
}

func newApprovalsCmd() *cobra.Command {
	var (
		pending, asJSON   bool
		status, requester string
		limit             int
		cursor            string
	)
	cmd := &cobra.Command{
		Use:   "approvals [--pending] [--status S] [--requester U] [--json]",
		Short: "List the requests that asked for approval, newest first, from the server at LOGBOOK_URL",
		Long: `List the requests whose rules asked for approval before they run: who asked,
what will run, what it needs, its state (pending, approved, rejected,
expired), who approved or rejected it, and when it expires. Without
logbook:read_history the list holds your own requests and those you may
answer (you hold an approvers' permission they name). --pending is
--status pending. A page holds --limit rows; when there are more, the cursor
for the next page is printed on stderr (and as next_cursor with --json).

Exit 0 on success, 2 when the server cannot be reached, refuses the token or
the input.`,
		Example: `  logbook approvals --pending
  logbook approvals --requester alice --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pending {
				if status != "" && status != projections.ApprovalPending {
					return exitWith(2, "--pending and --status %s ask for different states", status)
				}
				status = projections.ApprovalPending
			}
			if limit < 1 || limit > httpapi.MaxListLimit {
				return exitWith(2, "--limit %d is not from 1 to %d", limit, httpapi.MaxListLimit)
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			for name, v := range map[string]string{"status": status, "requester": requester, "cursor": cursor} {
				if v != "" {
					q.Set(name, v)
				}
			}
			client, err := historyNewClient(time.Minute)
			if err != nil {
				return err
			}
			var page httpapi.ApprovalsPage
			if err := client.getJSON(cmd.Context(), "/v1/approvals", q, &page); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), page)
			}
			if len(page.Approvals) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "no approvals match")
				return nil
			}
			t := newTable(cmd.OutOrStdout(), "REQUEST", "REQUESTED", "REQUESTER", "STATUS", "NEEDS", "APPROVED BY", "REJECTED BY", "EXPIRES", "TEXT")
			for _, a := range page.Approvals {
				t.Row(a.RequestID, historyTime(a.Requested), a.Requester, a.Status, a.Needs, orDash(a.ApprovedBy), orDash(a.RejectedBy), historyTime(a.Expires), historyClip(a.Text, 60))
			}
			if err := t.Flush(); err != nil {
				return err
			}
			historyMore(cmd, page.NextCursor)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&pending, "pending", false, "only the requests still waiting for approval")
	fl.StringVar(&status, "status", "", "only approvals in this state: "+strings.Join(projections.ApprovalStatuses, ", "))
	fl.StringVar(&requester, "requester", "", "only the requests of this Logbook username")
	fl.IntVar(&limit, "limit", httpapi.DefaultListLimit, fmt.Sprintf("at most this many rows (1 to %d)", httpapi.MaxListLimit))
	fl.StringVar(&cursor, "cursor", "", "the next page: the cursor the previous page printed")
	fl.BoolVar(&asJSON, "json", false, "print the page as JSON (rows and next_cursor)")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// newAnswerCmd is "logbook approve" or "logbook reject": the answer as chat
// sends it, through POST /v1/approvals/{id}/approve or /reject.
func newAnswerCmd(v dispatch.Verdict) *cobra.Command {
	use, short := "approve REQUEST [REASON...]", "Approve a request waiting for approval, as LOGBOOK_TOKEN's user"
	args := cobra.MinimumNArgs(1)
	if v == dispatch.VerdictReject {
		use, short = "reject REQUEST REASON...", "Reject a request waiting for approval, saying why, as LOGBOOK_TOKEN's user"
		args = cobra.MinimumNArgs(2)
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + `. REQUEST is the request's whole id
(logbook approvals --pending lists them). The reply says whether the answer
counts: never your own request, only with a permission the request's
approvers must hold, once per person.

Exit 0 when the answer counts, 1 when it does not (the reply says why), 2
when the server cannot be reached or refuses the token.`,
		Example: `  logbook ` + string(v) + ` 0190f3a2-5c1e-7d4b-9a2f-1c3d5e7f9a0b looks good`,
		Args:    args,
		RunE: func(cmd *cobra.Command, args []string) error {
			var answer httpapi.AnswerResponse
			path := "/v1/approvals/" + url.PathEscape(args[0]) + "/" + string(v)
			if err := postJSON(cmd, path, map[string]string{"reason": strings.Join(args[1:], " ")}, &answer); err != nil {
				return err
			}
			if answer.Reply.Text == "" {
				fmt.Fprintf(cmd.OutOrStdout(), "the answer %s is still being decided; see `logbook approvals`\n", answer.RequestID)
				return nil
			}
			fmt.Fprintln(cmd.OutOrStdout(), strings.TrimRight(replyText(&answer.Reply), "\n"))
			if !answer.Counted {
				return exitWith(1, "")
			}
			return nil
		},
	}
}
