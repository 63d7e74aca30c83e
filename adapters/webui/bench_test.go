package webui_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/logbookhq/logbook/domain/dispatch"
)

// BenchmarkHistoryPage renders a full history page (50 requests, each
// with its run looked up) on SQLite.
func BenchmarkHistoryPage(b *testing.B) {
	f := newFixture(b)
	br := f.login(b, f.adminToken)
	for i := range 60 {
		id := br.say(fmt.Sprintf("echo %d", i))
		br.follow(id)
	}
	b.ResetTimer()
	for b.Loop() {
		resp, _ := br.get("/history?provider=web")
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("history answered %d", resp.StatusCode)
		}
	}
}

// BenchmarkConsoleEcho is a console command's round trip: POST !echo,
// then its event stream from the first byte to the end (reply included),
// with the dispatcher, views and store of the embedded default.
func BenchmarkConsoleEcho(b *testing.B) {
	f := newFixture(b)
	br := f.login(b, f.adminToken)
	b.ResetTimer()
	for b.Loop() {
		events := br.follow(br.say("!echo hello"))
		if len(events) == 0 || events[len(events)-1].Event != "end" || events[len(events)-1].Data["status"] != string(dispatch.StatusCompleted) {
			b.Fatalf("the stream ended with %+v", events)
		}
	}
}

// BenchmarkDashboardPage renders the dashboard (every chart, from the
// history roll-ups) over 60 requests on SQLite; bench dashboard times its
// queries over a million runs.
func BenchmarkDashboardPage(b *testing.B) {
	f := newFixture(b)
	br := f.login(b, f.adminToken)
	for i := range 60 {
		br.follow(br.say(fmt.Sprintf("echo %d", i)))
	}
	b.ResetTimer()
	for b.Loop() {
		resp, _ := br.get("/")
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("the dashboard answered %d", resp.StatusCode)
		}
	}
}
