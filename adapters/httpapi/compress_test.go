package httpapi_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/httpapi"
)

func TestCompressGzipsTextButNotEventStreamsOrSmallAnswers(t *testing.T) {
	page := strings.Repeat("<div class=\"line\">line of output 10.0.3.7</div>\n", 2000)
	events := make(chan string)
	srv := httptest.NewServer(httpapi.Compress(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/page":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, page)
		case "/small":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ok":true}`)
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			for e := range events {
				_, _ = io.WriteString(w, "data: "+e+"\n\n")
				w.(http.Flusher).Flush()
			}
		}
	})))
	t.Cleanup(srv.Close)
	get := func(path, encoding string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if encoding != "" {
			req.Header.Set("Accept-Encoding", encoding)
		}
		// Set explicitly, Go's transport leaves the body compressed.
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	resp := get("/page", "gzip")
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") || len(raw) > len(page)/10 {
		t.Fatalf("the page: %s, Vary %q, %d bytes of %d", resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"), len(raw), len(page))
	}
	zr, err := gzip.NewReader(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if plain, _ := io.ReadAll(zr); string(plain) != page {
		t.Fatal("the page does not decompress to what was written")
	}
	for _, tc := range []struct{ path, encoding string }{{"/page", ""}, {"/small", "gzip"}} {
		resp := get(tc.path, tc.encoding)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Content-Encoding") != "" || (tc.path == "/page" && string(body) != page) {
			t.Fatalf("%s with Accept-Encoding %q came %q", tc.path, tc.encoding, resp.Header.Get("Content-Encoding"))
		}
	}

	// An event stream is sent as it is, its headers at once and each event
	// as it is written.
	// The headers come before any event: without them this request
	// times out.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("Accept", "text/event-stream")
	resp, err = http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("the event stream is %s-encoded", resp.Header.Get("Content-Encoding"))
	}
	lines := bufio.NewReader(resp.Body)
	for _, e := range []string{"one", "two"} {
		events <- e
		line, err := lines.ReadString('\n')
		if err != nil || line != "data: "+e+"\n" {
			t.Fatalf("event %q arrived as %q, %v", e, line, err)
		}
		_, _ = lines.ReadString('\n')
	}
	close(events)
}
