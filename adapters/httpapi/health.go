// Package httpapi serves Logbook's HTTP endpoints.
package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// Readiness says whether the server can do its work now; nil means ready.
type Readiness func(ctx context.Context) error

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
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	}
}
