package webui_test

import (
	"regexp"
	"strings"
	"testing"
)

// pageWeightBudget bounds what a page and the assets it loads weigh,
// uncompressed: the pages are server-rendered HTML with one style sheet
// and a few small scripts, and must stay that way.
const pageWeightBudget = 64 << 10

// Each page's weight (its HTML plus the style sheet, scripts and icon it
// loads), logged for docs/benchmarks.md (go test ./adapters/webui -run
// TestPageWeights -v) and held under the budget.
func TestPageWeightsStayUnderBudget(t *testing.T) {
	f := newFixture(t)
	running := someHistory(t, f)
	endRun(t, f, running+"-s0-i0", "done\n")
	b := f.login(t, f.adminToken)
	assets := regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`)
	sizes := map[string]int{}
	for _, p := range []struct{ name, path string }{
		{"dashboard", "/"}, {"console", "/console"}, {"history (6 requests)", "/history"}, {"request", "/requests/" + running},
		{"run", "/runs/" + running + "-s0-i0"}, {"transcript", "/runs/" + running + "-s0-i0/transcript"}, {"approvals", "/approvals"},
		{"users", "/users"}, {"user", "/users/admin"}, {"audit", "/audit"}, {"login", "/login"},
	} {
		as := b
		if p.name == "login" {
			as = f.browser(t) // logged in, it redirects
		}
		resp, html := as.get(p.path)
		if resp.StatusCode != 200 {
			t.Fatalf("%s answered %d", p.path, resp.StatusCode)
		}
		total := len(html)
		var loaded []string
		for _, m := range assets.FindAllStringSubmatch(html, -1) {
			if _, ok := sizes[m[1]]; !ok {
				_, body := b.get(m[1])
				sizes[m[1]] = len(body)
			}
			total += sizes[m[1]]
			loaded = append(loaded, strings.TrimPrefix(m[1], "/static/"))
		}
		t.Logf("| %s | %.1f KB | %.1f KB | %s |", p.name, float64(len(html))/1000, float64(total)/1000, strings.Join(loaded, ", "))
		if total > pageWeightBudget {
			t.Errorf("%s weighs %d bytes with its assets, over the %d budget", p.name, total, pageWeightBudget)
		}
	}
}
