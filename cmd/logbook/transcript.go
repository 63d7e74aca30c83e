package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/adapters/httpapi"
)

func init() { register(newTranscriptCmd) }

func newTranscriptCmd() *cobra.Command {
	var (
		follow bool
		asJSON bool
		stream string
	)
	cmd := &cobra.Command{
		Use:   "transcript RUN [--follow] [--json] [--stream stdout|stderr]",
		Short: "Print a run's output exactly as the command printed it",
		Long: `Print the output of run RUN (see ` + "`logbook runs`" + `) byte for byte: both streams
interleaved as produced, or one with --stream. --json prints the chunks with
their seq, stream, offset from the run's start (offset_ms) and base64 bytes.
--follow prints the output as it is produced until the run ends (with
--json, one chunk per line and a last line {"run_id", "status"}); a run that
ended other than succeeded is named on stderr. A dropped connection is
resumed where it stopped.

Exit 0 when the output was printed, 1 when there is no such run, 2 when the
server cannot be reached or refuses the token.`,
		Example: `  logbook transcript 0f3c...-s0-i0
  logbook transcript --follow --stream stderr 0f3c...-s0-i0`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(args[0]) == "" {
				return exitWith(2, "RUN is empty; `logbook runs` lists run ids")
			}
			if stream != "" && stream != "stdout" && stream != "stderr" {
				return exitWith(2, "--stream %q is not stdout or stderr", stream)
			}
			timeout := time.Minute
			if follow {
				timeout = 0 // a followed run may take as long as it takes
			}
			client, err := historyNewClient(timeout)
			if err != nil {
				return err
			}
			path := "/v1/runs/" + url.PathEscape(args[0]) + "/transcript"
			q := url.Values{}
			if stream != "" {
				q.Set("stream", stream)
			}
			if follow {
				return transcriptFollow(cmd, client, path, q, asJSON)
			}
			if asJSON {
				q.Set("format", "chunks")
			}
			resp, err := client.get(cmd.Context(), path, q, nil)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if _, err := io.Copy(cmd.OutOrStdout(), resp.Body); err != nil {
				return exitWith(2, "the transcript was cut off: %v", err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "print output as it is produced until the run ends")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print chunks as JSON (with --follow, one per line)")
	cmd.Flags().StringVar(&stream, "stream", "", "only this stream: stdout or stderr")
	return cmd
}

// transcriptMaxRetries bounds reconnects that make no progress.
const transcriptMaxRetries = 5

// transcriptFollow reads the server's event stream, reconnecting after the
// last chunk it printed when the connection drops, until the end event.
func transcriptFollow(cmd *cobra.Command, client *historyClient, path string, q url.Values, asJSON bool) error {
	q.Set("follow", "1")
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	lastSeq := int64(-1)
	failures := 0
	retry := backoff.NewExponentialBackOff()
	retry.InitialInterval, retry.MaxInterval = 500*time.Millisecond, 5*time.Second
	for {
		header := http.Header{}
		if lastSeq >= 0 {
			header.Set("Last-Event-ID", strconv.FormatInt(lastSeq, 10))
		}
		resp, err := client.get(ctx, path, q, header)
		if err != nil {
			return err
		}
		before := lastSeq
		end, err := transcriptReadEvents(resp.Body, func(event, data string) error {
			switch event {
			case httpapi.SSEChunk:
				var c httpapi.ChunkView
				if err := json.Unmarshal([]byte(data), &c); err != nil {
					return fmt.Errorf("a chunk that is not JSON: %w", err)
				}
				lastSeq = c.Seq
				if asJSON {
					_, err := fmt.Fprintf(out, "%s\n", data)
					return err
				}
				_, err := out.Write(c.Bytes)
				return err
			case httpapi.SSEEnd:
				if asJSON {
					_, err := fmt.Fprintf(out, "%s\n", data)
					return err
				}
				var e httpapi.TranscriptEnd
				if json.Unmarshal([]byte(data), &e) == nil && e.Status != "succeeded" {
					fmt.Fprintf(cmd.ErrOrStderr(), "run %s ended: %s\n", e.RunID, e.Status)
				}
			}
			return nil
		})
		resp.Body.Close()
		if end {
			return nil
		}
		var local *transcriptLocalError
		if errors.As(err, &local) {
			return exitWith(2, "%v", local.err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if lastSeq != before {
			failures = 0
			retry.Reset()
		}
		if failures++; failures > transcriptMaxRetries {
			return exitWith(2, "the transcript stream kept dropping (%v); printed up to chunk %d", err, lastSeq)
		}
		wait := time.NewTimer(retry.NextBackOff())
		select {
		case <-ctx.Done():
			wait.Stop()
			return ctx.Err()
		case <-wait.C:
		}
	}
}

// transcriptLocalError is a failure on this side (a closed stdout, a bad
// chunk), which no reconnect would fix.
type transcriptLocalError struct{ err error }

func (e *transcriptLocalError) Error() string { return e.err.Error() }

// transcriptReadEvents calls handle for each Server-Sent Event in r and
// reports whether the end event came.
func transcriptReadEvents(r io.Reader, handle func(event, data string) error) (bool, error) {
	scanner := bufio.NewScanner(r)
	// An event carries at most one stored chunk (4 MiB) in base64.
	scanner.Buffer(make([]byte, 64<<10), 8<<20)
	var event string
	var data strings.Builder
	for scanner.Scan() {
		line := scanner.Text()
		if line == "" {
			if event != "" || data.Len() > 0 {
				if err := handle(event, data.String()); err != nil {
					return false, &transcriptLocalError{err}
				}
				if event == httpapi.SSEEnd {
					return true, nil
				}
			}
			event = ""
			data.Reset()
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			event = value
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(value)
		}
	}
	if err := scanner.Err(); err != nil {
		return false, err
	}
	return false, io.ErrUnexpectedEOF
}
