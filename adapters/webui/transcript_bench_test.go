package webui_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/adapters/httpapi"
)

// BenchmarkTranscriptPage2000Lines renders the transcript page of a run
// that printed 2,000 lines (50 chunks of 40, a tenth on stderr), as
// served: its weight plain and gzipped (httpapi.Compress, as serve
// mounts it) and the time to render and compress it.
func BenchmarkTranscriptPage2000Lines(b *testing.B) {
	f := newFixture(b)
	br := f.login(b, f.adminToken)
	var chunks [][2]string
	output := 0
	for c := range 50 {
		var text strings.Builder
		for l := range 40 {
			fmt.Fprintf(&text, "checking status healthy pod node latency host web-%d 10.0.%d.%d trace=%016x\n", c*40+l, c, l, uint64(c*40+l)*0x9e3779b97f4a7c15)
		}
		stream := "stdout"
		if c%10 == 9 {
			stream = "stderr"
		}
		chunks = append(chunks, [2]string{stream, text.String()})
		output += text.Len()
	}
	runID := f.containerRun(b, br, "!toolbox:echo 2000 lines", chunks...)
	gz := httptest.NewServer(httpapi.Compress(f.ui))
	b.Cleanup(gz.Close)
	fetch := func(base string, gzip bool) int {
		req, _ := http.NewRequest(http.MethodGet, base+"/runs/"+runID+"/transcript", nil)
		if gzip {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		for _, c := range br.c.Jar.Cookies(req.URL) {
			req.AddCookie(c)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || gzip != (resp.Header.Get("Content-Encoding") == "gzip") {
			b.Fatalf("the transcript answered %d, %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
		}
		return len(body)
	}
	plain, compressed := fetch(f.url, false), fetch(gz.URL, true)
	b.ResetTimer()
	for b.Loop() {
		fetch(gz.URL, true)
	}
	b.ReportMetric(float64(output), "output-bytes")
	b.ReportMetric(float64(plain), "bytes/page")
	b.ReportMetric(float64(compressed), "gzip-bytes/page")
}
