package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func init() { register(newHealthCmd) }

// newHealthCmd asks a server whether it is ready: the check a container's
// HEALTHCHECK or a compose file runs, where an image FROM scratch has no
// curl.
func newHealthCmd() *cobra.Command {
	var (
		url     string
		live    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Exit 0 when the server at --url is ready (its /readyz answers 200), else 1 with the reason",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := "/readyz"
			if live {
				path = "/healthz"
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(url, "/")+path, nil)
			if err != nil {
				return exitWith(2, "--url %s: %v", url, err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return exitWith(1, "not healthy: %v", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			if resp.StatusCode == http.StatusOK {
				fmt.Fprintln(cmd.OutOrStdout(), "ok")
				return nil
			}
			var report struct {
				Reason string `json:"reason"`
			}
			reason := strings.TrimSpace(string(body))
			if json.Unmarshal(body, &report) == nil && report.Reason != "" {
				reason = report.Reason
			}
			return exitWith(1, "not ready: %s %s: %s", resp.Status, path, reason)
		},
	}
	cmd.Flags().StringVar(&url, "url", envOr("LOGBOOK_URL", "http://127.0.0.1:8080"), "the server's base URL (LOGBOOK_URL)")
	cmd.Flags().BoolVar(&live, "live", false, "ask /healthz (the process is up) instead of /readyz (it serves)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return cmd
}
