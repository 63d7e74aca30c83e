package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
)

func init() { register(newEventsCmd) }

func newEventsCmd() *cobra.Command {
	events := &cobra.Command{Use: "events", Short: "Read the event log"}
	var (
		from     int64
		last     int64
		asJSON   bool
		noFollow bool
		database string
	)
	tail := &cobra.Command{
		Use:   "tail",
		Short: "Print events from a position on, then follow new ones as they are appended",
		Long: `Print events in global order, then keep printing new ones until interrupted.
Without --from it starts with the last 10 events. --json prints one JSON object
per line (the whole envelope, data and metadata as stored).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, _, _, err := openConfiguredStore(cmd.Context(), database)
			if err != nil {
				return err
			}
			defer store.Close()
			start := from
			if !cmd.Flags().Changed("from") {
				head, _, err := store.Head(cmd.Context())
				if err != nil {
					return err
				}
				start = max(head-last+1, 1)
			}
			out := cmd.OutOrStdout()
			var head int64
			if noFollow {
				if head, _, err = store.Head(cmd.Context()); err != nil {
					return err
				}
				if head < start {
					return nil
				}
			}
			for e, err := range eventstore.Follow(cmd.Context(), store, start, eventstore.FeedOptions{}) {
				if err != nil {
					return err
				}
				if err := printEvent(out, e, asJSON); err != nil {
					return err
				}
				if noFollow && e.Position >= head {
					break
				}
			}
			return nil
		},
	}
	tail.Flags().Int64Var(&from, "from", 1, "first global position to print")
	tail.Flags().Int64VarP(&last, "last", "n", 10, "without --from, start this many events before the head")
	tail.Flags().BoolVar(&asJSON, "json", false, "one JSON object per event per line")
	tail.Flags().BoolVar(&noFollow, "no-follow", false, "stop at the head instead of following")
	tail.Flags().StringVar(&database, "database", "", "database URL (default LOGBOOK_DATABASE_URL, else the embedded SQLite file)")
	events.AddCommand(tail)
	return events
}

// eventJSON is the --json form of a recorded event.
type eventJSON struct {
	Position   int64           `json:"position"`
	Stream     string          `json:"stream"`
	Version    int64           `json:"version"`
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Data       json.RawMessage `json:"data"`
	Metadata   json.RawMessage `json:"metadata"`
	RecordedAt time.Time       `json:"recorded_at"`
	Hash       string          `json:"hash"`
}

func printEvent(w io.Writer, e domain.RecordedEvent, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(eventJSON{e.Position, e.Stream, e.Version, e.ID.String(), e.Type, e.Data, e.RawMetadata, e.RecordedAt, fmt.Sprintf("%x", e.Hash)})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	data := string(e.Data)
	if len(data) > 120 {
		data = data[:117] + "..."
	}
	_, err := fmt.Fprintf(w, "%6d  %s  %s@%d  %s  %s\n", e.Position, e.RecordedAt.Local().Format("2006-01-02 15:04:05.000"), e.Stream, e.Version, e.Type, data)
	return err
}
