package export_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/export"
)

// BenchmarkExport measures how fast a destination catches up on a stored
// log of 20,000 events (SQLite), from position 1 to the head, per kind,
// against a baseline that reads and encodes the records and sends them
// nowhere: events/s is the figure (go test ./adapters/export -run '^$'
// -bench Export -benchtime 3x).
func BenchmarkExport(b *testing.B) {
	const events = 20000
	dir := b.TempDir()
	store := openSQLiteAt(b, filepath.Join(dir, "logbook.db"))
	appendEvents(b, store, events)
	sink := func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go sink(ln)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	keyFile := writeKeyFile(b, 0o600)
	kinds := []export.Config{
		// The baseline: reading the log and making records, sent nowhere.
		{Kind: "discard", Batch: 1000},
		{Kind: export.KindFile, RotateBytes: 128 << 20, Batch: 1000},
		{Kind: export.KindSyslog, Addr: ln.Addr().String(), Facility: 13, MaxMessage: 64 << 10, ResendWindow: 10 * time.Second, Batch: 500},
		{Kind: export.KindWebhook, URL: hook.URL, SecretFile: keyFile, Timeout: 10 * time.Second, Batch: 100},
	}
	for _, c := range kinds {
		b.Run(string(c.Kind), func(b *testing.B) {
			cursors := export.CursorsOf(store)
			for i := 0; b.Loop(); i++ {
				c.Name = fmt.Sprintf("%s_%d", c.Kind, i)
				c.Dir = filepath.Join(b.TempDir(), "files")
				opts := export.Options{Store: store, Cursors: cursors, Logger: zerolog.Nop()}
				if c.Kind == "discard" {
					opts.NewSink = func(context.Context) (export.Sink, error) { return discard{}, nil }
				}
				x, err := export.New(c, opts)
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- x.Run(ctx) }()
				for {
					cur, _, err := cursors.Load(ctx, c.Name)
					if err != nil {
						b.Fatal(err)
					}
					if cur.Position == events {
						break
					}
					time.Sleep(time.Millisecond)
				}
				cancel()
				<-done
			}
			b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

type discard struct{}

func (discard) Send(context.Context, []export.Record) error { return nil }
func (discard) Close() error                                { return nil }
