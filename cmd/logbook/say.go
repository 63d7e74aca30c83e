package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/template/render"
)

func init() { register(newSayCmd) }

// clientConfig is how the CLI for people reaches the server.
type clientConfig struct {
	URL   string // LOGBOOK_URL
	Token string // LOGBOOK_TOKEN
}

func loadClientConfig() (clientConfig, error) {
	c := clientConfig{URL: strings.TrimRight(envOr("LOGBOOK_URL", "http://127.0.0.1:8080"), "/"), Token: os.Getenv("LOGBOOK_TOKEN")}
	if c.Token == "" {
		return c, fmt.Errorf("LOGBOOK_TOKEN is not set: use the token `logbook serve` printed as \"admin token: ...\" on its first start")
	}
	return c, nil
}

func newSayCmd() *cobra.Command {
	var (
		as     string
		room   string
		asJSON bool
		noWait bool
	)
	cmd := &cobra.Command{
		Use:   "say [--as USER] 'TEXT'",
		Short: "Issue a command as your user (provider api) and print the reply when it is done",
		Long: `Send TEXT to the server at LOGBOOK_URL (default http://127.0.0.1:8080) with
LOGBOOK_TOKEN, wait for the request to end, and print its reply as rendered
for the API: plain text, through the template the command named (or Cog's
default rendering, or Logbook's error template). --json prints the request
id and the whole reply instead: the output as the command printed it
(text, value), and the rendering (rendered.text, rendered.directives).
Exit 1 when the request failed or was denied. --as runs it as another user
(needs the logbook:admin permission). --no-wait prints the request id at
once, without waiting: for a request that waits for approval (logbook
approvals).`,
		Example: `  logbook say 'echo hello'
  logbook say '!echo hello | wc'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var answer struct {
				RequestID string          `json:"request_id"`
				Reply     *dispatch.Reply `json:"reply,omitempty"`
			}
			body := map[string]string{"text": args[0], "as": as, "room": room}
			path := "/v1/requests?wait=1"
			if noWait {
				path = "/v1/requests"
			}
			if err := postJSON(cmd, path, body, &answer); err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), answer); err != nil {
					return err
				}
			} else if answer.Reply == nil && noWait {
				fmt.Fprintf(cmd.OutOrStdout(), "request %s recorded; see `logbook history`\n", answer.RequestID)
			} else if answer.Reply == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "request %s is still running; see `logbook history`\n", answer.RequestID)
			} else {
				fmt.Fprintln(cmd.OutOrStdout(), strings.TrimRight(replyText(answer.Reply), "\n"))
			}
			if answer.Reply != nil && answer.Reply.Failed {
				return exitWith(1, "")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&as, "as", "", "run as this user (needs logbook:admin)")
	cmd.Flags().StringVar(&room, "room", "", "the room the request says it came from (default api)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the request id and the whole reply as JSON")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "print the request id once it is recorded, without waiting for the reply")
	return cmd
}

// replyText is what the CLI prints of a reply: its text as rendered for
// the API (plain text, laid out by its template), or, from a server that
// sent no rendering, the reply's raw text.
func replyText(r *dispatch.Reply) string {
	if r.Rendered != nil && r.Rendered.Format == render.FormatText {
		return r.Rendered.Text
	}
	return r.Text
}
