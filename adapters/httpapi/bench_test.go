package httpapi_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/projections"
)

// cannedHistory answers every list with the same page of 50 rows, so a
// benchmark measures the handler, not the database.
type cannedHistory struct{ page projections.RequestPage }

func (h cannedHistory) Requests(context.Context, projections.RequestFilter) (projections.RequestPage, error) {
	return h.page, nil
}
func (cannedHistory) Runs(context.Context, projections.RunFilter) (projections.RunPage, error) {
	return projections.RunPage{}, nil
}
func (cannedHistory) Request(context.Context, string) (projections.RequestRow, error) {
	return projections.RequestRow{}, projections.ErrNotFound
}
func (cannedHistory) Run(context.Context, string) (projections.RunRow, error) {
	return projections.RunRow{}, projections.ErrNotFound
}

// stillStore is a store whose head never moves.
type stillStore struct{ eventstore.Store }

func (stillStore) Head(context.Context) (int64, []byte, error) { return 1000, nil, nil }
func (stillStore) Changed() <-chan struct{}                    { return make(chan struct{}) }

type caughtUp struct{}

func (caughtUp) WaitFor(context.Context, string, int64) error { return nil }

// BenchmarkHistoryHandler is GET /v1/history without the database: token,
// query parsing, the view catch-up check and encoding a page of 50.
func BenchmarkHistoryHandler(b *testing.B) {
	var page projections.RequestPage
	for i := range 50 {
		page.Requests = append(page.Requests, projections.RequestRow{
			RequestID: fmt.Sprintf("0193-%d", i), Position: int64(1000 - i), Adapter: "slack", MessageID: "m", Room: "#ops",
			ChatUser: "alice", Text: "toolbox:echo hello", Username: "alice", Commands: "toolbox:echo", Status: "completed", Runs: 1,
			ReceivedAt: sql.NullInt64{Int64: 1_700_000_000_000_000, Valid: true}, EndedAt: sql.NullInt64{Int64: 1_700_000_000_100_000, Valid: true},
			DurationMS: sql.NullInt64{Int64: 100, Valid: true},
		})
	}
	page.Next = "951"
	api := &httpapi.API{Users: oneUser{}, History: cannedHistory{page}, Transcripts: projections.NewTranscriptReader(projections.DB{}), Events: stillStore{}, Views: caughtUp{}}
	handler := httpapi.NewHandler(alwaysReady, func() *httpapi.API { return api })
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, "/v1/history?user=alice&status=completed&limit=50&cursor=1001", nil)
			req.Header.Set("Authorization", "Bearer "+goodToken)
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	})
}
