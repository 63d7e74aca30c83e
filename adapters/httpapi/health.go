// Package httpapi serves Logbook's HTTP endpoints.
package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/logbookhq/logbook/internal/supervisor"
)

// ReadinessReport answers /readyz: whether the server can do its work now,
// why not, and the state of each of its parts.
type ReadinessReport struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
	// Leader says whether this server does the single duties (decides,
	// runs the views and the timers): always on a server alone, on the
	// holder of the leader lease when several share one database.
	Leader bool `json:"leader"`
	// Term is the lease's term as this server last saw it, Holder names
	// this server and LeaderHolder the leader (several servers only).
	Term         int64  `json:"term,omitempty"`
	Holder       string `json:"holder,omitempty"`
	LeaderHolder string `json:"leader_holder,omitempty"`
	// Parts are the parts this server runs, the leader's duties among
	// them while it leads.
	Parts []supervisor.Status `json:"parts"`
}

// Readiness reports the server's readiness.
type Readiness func(ctx context.Context) ReadinessReport

// NewHandler returns the server's routes: /healthz answers while the process
// runs; /readyz answers 200 only while ready says so; /v1/ is api's once
// api returns one (503 until then, while the server starts).
func NewHandler(ready Readiness, api func() *API) http.Handler {
	mux := http.NewServeMux()
	v1 := http.NewServeMux()
	var register sync.Once
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		a := api()
		if a == nil {
			writeJSON(w, http.StatusServiceUnavailable, apiError{"Logbook is starting: the database is not connected yet"})
			return
		}
		register.Do(func() { a.Register(v1) })
		v1.ServeHTTP(w, r)
	})
	// The public routes answer while the server starts, too.
	for _, r := range Routes() {
		if !r.isV1() {
			mux.HandleFunc(r.Pattern(), r.public(nil, ready))
		}
	}
	return mux
}

func readyz(ready Readiness) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		report := ready(ctx)
		if report.Parts == nil {
			report.Parts = []supervisor.Status{}
		}
		status := http.StatusOK
		if !report.Ready {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, report)
	}
}
