package irc

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/irc/ircdtest"
	"github.com/logbookhq/logbook/domain/chat"
)

// BenchmarkPostAcknowledgedLines measures what the PING after every line
// costs: lines per second through a real ngircd on loopback with the
// throttle out of the way (production throttles to 1 line/s).
func BenchmarkPostAcknowledgedLines(b *testing.B) {
	srv := ircdtest.Start(b, ircdtest.Options{})
	p, err := New(Config{Server: srv.Addr, Nick: "logbook", Channels: []string{"#ops"},
		LinesPerSecond: 1e9, Burst: 1 << 20, Timeout: 5 * time.Second, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx, func(context.Context, chat.Message) error { return nil })
	deadline := time.Now().Add(10 * time.Second)
	for !p.CanPost(ops) || p.channelReady("#ops") != nil {
		if time.Now().After(deadline) {
			b.Fatal("the bot did not join #ops")
		}
		time.Sleep(10 * time.Millisecond)
	}
	text := strings.TrimSpace(strings.Repeat("a line of output from a command\n", 100))
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := p.Post(ctx, ops, chat.Part{Text: text}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(100*b.N)/time.Since(start).Seconds(), "lines/s")
}

// BenchmarkLinesOf is the cost of cutting and cleaning a 4 KiB part.
func BenchmarkLinesOf(b *testing.B) {
	text := strings.Repeat("héhé some output \x1b[1mbold\x1b[0m with\ttabs and a long line that goes on ", 60)
	b.SetBytes(int64(len(text)))
	for range b.N {
		linesOf(text, 400, false)
	}
}
