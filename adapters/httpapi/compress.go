package httpapi

import (
	"compress/gzip"
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzhttp"
)

// Compress gzips the answers of h for clients that accept it: pages, JSON
// and transcripts, which are text and shrink several times over (a
// 2,000-line transcript page, docs/benchmarks.md). Answers under 1 KiB
// are sent as they are, where gzip costs more than it saves, and so are
// event streams, whose every event must reach the reader at once. It is
// klauspost/compress's gzhttp, which keeps Flush, sets Vary and drops
// Content-Length, at the default level.
//
// gzhttp holds the headers back until the first bytes, to decide whether
// to compress; an event stream sends its headers at once (the reader's
// EventSource opens on them), so a request for one (asked for with
// Accept: text/event-stream or ?follow) bypasses it.
func Compress(h http.Handler) http.Handler {
	wrap, err := gzhttp.NewWrapper(
		gzhttp.MinSize(1024),
		gzhttp.CompressionLevel(gzip.DefaultCompression),
		gzhttp.ExceptContentTypes([]string{"text/event-stream"}),
	)
	if err != nil {
		panic("httpapi: gzip settings: " + err.Error()) // fixed settings; an error is a build bug
	}
	compressed := wrap(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept"), "text/event-stream") || r.URL.Query().Has("follow") {
			h.ServeHTTP(w, r)
			return
		}
		compressed.ServeHTTP(w, r)
	})
}
