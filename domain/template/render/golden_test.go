package render_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/template"
	"github.com/logbookhq/logbook/domain/template/render"
	"github.com/logbookhq/logbook/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files from what the renderers produce")

// goldenCases are published templates, read from the shared corpus at
// test time, each with output of the shape its command returns (written
// for these tests, in testdata/golden/<case>.json): fields missing, lists
// empty and lists nested among them.
var goldenCases = []struct {
	golden, config, template string
}{
	{"cfn__stack_list", "cogcmd__aws-cfn__config.yaml", "stack_list"},
	{"cfn__stack_show", "cogcmd__aws-cfn__config.yaml", "stack_show"},
	{"cfn__stack_show_verbose", "cogcmd__aws-cfn__config.yaml", "stack_show_verbose"},
	{"cfn__stack_event_list", "cogcmd__aws-cfn__config.yaml", "stack_event_list"},
	{"cfn__changeset_show", "cogcmd__aws-cfn__config.yaml", "changeset_show"},
	{"cfn__definition_show", "cogcmd__aws-cfn__config.yaml", "definition_show"},
	{"ec2__instance_list", "cogcmd__aws-ec2__config.yaml", "instance_list"},
	{"ec2__keypair_list", "cogcmd__aws-ec2__config.yaml", "keypair_list"},
	{"ec2__instance_tag", "cogcmd__aws-ec2__config.yaml", "instance_tag"},
	{"ec2__vpc_list", "cogcmd__aws-ec2__config.yaml", "vpc_list"},
	{"ecs__service_show", "cogcmd__aws-ecs__config.yaml", "service_show"},
	{"ecs__task_show", "cogcmd__aws-ecs__config.yaml", "task_show"},
	{"ecs__definition_table", "cogcmd__aws-ecs__config.yaml", "definition_table"},
	{"s3__file_info", "cogcmd__aws-s3__config.yaml", "file_info"},
	{"s3__bucket_acl", "cogcmd__aws-s3__config.yaml", "bucket_acl"},
	{"heroku__app_info", "cogcmd__heroku__config.yaml", "app_info"},
	{"heroku__release_info", "cogcmd__heroku__config.yaml", "release_info"},
	{"net__dig", "cogcmd__net__config.yaml", "dig"},
	{"pagerduty__oncall", "cogcmd__pagerduty__config.yaml", "oncall"},
	{"pagerduty__incidents", "cogcmd__pagerduty__config.yaml", "incidents"},
	{"groove__ticket", "cogcmd__groove__config.yaml", "ticket"},
	{"github__merge", "cogcmd__github__config.yaml", "merge"},
	{"jumpcloud__systems", "davejlong__cog-jumpcloud__config.yaml", "systems"},
	{"pipewrench__dump", "cogcmd__pipewrench__config.yaml", "dump"},
	{"imbriaco__service", "imbriaco__cog-imbriaco__config.yml", "service"},
	{"format__fields", "cog-bundles__format__config.yaml", "fields"},
	{"statuspage__incidents_list", "cogcmd__statuspage__config.yaml", "incidents_list"},
	{"twitter__tweet", "cogcmd__twitter__config.yaml", "tweet"},
}

// TestPublishedTemplatesRenderAsTheirGoldenFiles renders each case for
// every provider: Slack's text and attachments, IRC, HTML, plain text and
// the directives. Run with -update to rewrite the files after a change
// that is meant, and read the diff.
func TestPublishedTemplatesRenderAsTheirGoldenFiles(t *testing.T) {
	t.Parallel()
	dir := testenv.CogBundlesDir(t)
	bundles := map[string]int{}
	for _, tc := range goldenCases {
		bundles[tc.config]++
	}
	if len(goldenCases) < 20 || len(bundles) < 8 {
		t.Fatalf("the golden set must cover at least 20 templates of 8 bundles; it has %d of %d", len(goldenCases), len(bundles))
	}
	for _, tc := range goldenCases {
		t.Run(tc.golden, func(t *testing.T) {
			t.Parallel()
			config, err := os.ReadFile(filepath.Join(dir, tc.config))
			if err != nil {
				t.Fatal(err)
			}
			b, err := bundle.Load(config)
			if err != nil {
				t.Fatal(err)
			}
			source, ok := b.Template(tc.template)
			if !ok {
				t.Fatalf("%s has no template %s", tc.config, tc.template)
			}
			tm, err := template.Parse(source.Body)
			if err != nil {
				t.Fatal(err)
			}
			output, err := os.ReadFile(filepath.Join("testdata", "golden", tc.golden+".json"))
			if err != nil {
				t.Fatal(err)
			}
			scope, err := template.CogScope(output)
			if err != nil {
				t.Fatal(err)
			}
			got := goldenText(t, tm.Execute(scope))
			path := filepath.Join("testdata", "golden", tc.golden+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if got != string(want) {
				t.Errorf("%s renders differently from %s:\n%s", tc.template, path, firstDifference(string(want), got))
			}
		})
	}
}

// goldenText lays every rendering of a document out in sections.
func goldenText(t *testing.T, doc template.Document) string {
	t.Helper()
	var b strings.Builder
	section := func(name, body string) {
		b.WriteString("=== " + name + "\n" + body)
		if !strings.HasSuffix(body, "\n") {
			b.WriteString("\n")
		}
	}
	slack := render.Render(doc, render.FormatSlack)
	section("slack text", slack.Text)
	attachments, err := json.MarshalIndent(slack.Attachments, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	section("slack attachments", string(attachments))
	section("irc", strings.NewReplacer("\x02", "<B>", "\x1d", "<I>").Replace(render.Render(doc, render.FormatIRC).Text))
	section("html", render.Render(doc, render.FormatHTML).Text)
	section("text", render.Render(doc, render.FormatText).Text)
	directives, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	section("directives", string(directives))
	return b.String()
}

func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + itoa(i+1) + ":\n  want " + quote(wl) + "\n  got  " + quote(gl)
		}
	}
	return "(no line differs)"
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
