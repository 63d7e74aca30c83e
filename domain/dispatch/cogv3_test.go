package dispatch

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/template/render"
	"github.com/logbookhq/logbook/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files from what the renderers produce")

// cogV3Ops is the ops bundle as Cog bundle version 3, whose status
// template has the variants given (slack:, hipchat:) and no body.
func cogV3Ops(t *testing.T, variants string) *bundle.Bundle {
	t.Helper()
	text := strings.Replace(opsBundle, "cog_bundle_version: 4", "cog_bundle_version: 3", 1) + "\ntemplates:\n  status:\n" + variants
	return loadBundle(t, text)
}

func TestACogV3TemplateIsRenderedFromTheVariantEachProviderTakes(t *testing.T) {
	t.Parallel()
	const both = `    slack: "*{{name}}* is _{{state}}_"
    hipchat: "{{name}}: {{state}}"
`
	const slackOnly = `    slack: "*{{name}}* is _{{state}}_"
`
	const hipchatOnly = `    hipchat: "{{name}}: {{state}}"
`
	output := `[{"name": "web", "state": "up"}, {"name": "db", "state": "down"}]`
	cases := []struct {
		name     string
		variants string
		format   render.Format
		variant  string
		text     string
	}{
		{"Slack takes its own variant, as mrkdwn", both, render.FormatSlack, "slack", "*web* is _up_\n*db* is _down_"},
		{"IRC takes HipChat's plain-text variant", both, render.FormatIRC, "hipchat", "web: up\ndb: down"},
		{"the web UI takes HipChat's plain-text variant", both, render.FormatHTML, "hipchat", "<p>web: up<br>db: down</p>\n"},
		{"the API takes HipChat's plain-text variant", both, render.FormatText, "hipchat", "web: up\ndb: down"},
		{"IRC without a HipChat variant takes Slack's, its mrkdwn as IRC's bold and italics", slackOnly, render.FormatIRC, "slack", "\x02web\x02 is \x1dup\x1d\n\x02db\x02 is \x1ddown\x1d"},
		{"the API without a HipChat variant takes Slack's, as plain text", slackOnly, render.FormatText, "slack", "web is up\ndb is down"},
		{"Slack without its own variant takes HipChat's", hipchatOnly, render.FormatSlack, "hipchat", "web: up\ndb: down"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Given a Cog v3 bundle ran the command, which named the template
			src := versions{"ops@1.2.0": cogV3Ops(t, tc.variants)}
			reply := completedWith(t, output, "status")
			// When the reply is rendered for the provider
			got := RenderReply(reply, src, tc.format).Rendered
			// Then the variant it takes renders it, and the record names it
			if got.Text != tc.text || got.Variant != tc.variant || got.Template != "status" || got.Source != SourceBundle || got.Error != "" {
				t.Fatalf("rendered %+v\nwant text %q from the %s variant", got, tc.text, tc.variant)
			}
			if posted := NewReplyPosted(RenderReply(reply, src, tc.format), "ops", ""); posted.TemplateVariant != tc.variant || posted.Template != "status" {
				t.Fatalf("recorded %+v, want the %s variant of status", posted, tc.variant)
			}
		})
	}
}

func TestACogV3VariantThatCannotBeUsedLeavesTheDefaultRenderingAndSaysWhy(t *testing.T) {
	t.Parallel()
	// Given a stored bundle whose variant no longer parses (validation
	// refuses it at install, so only a record from an older build holds one)
	b := cogV3Ops(t, "    slack: \"{{name}}\"\n")
	tpl, _ := b.Template("status")
	tpl.Providers["slack"] = bundle.Variant{Source: "{{#name}}"}
	// When the reply is rendered
	got := RenderReply(completedWith(t, `{"name": "web"}`, "status"), versions{"ops@1.2.0": b}, render.FormatText).Rendered
	// Then the default rendering stands in, and the record says why
	if got.Text != "name: web" || got.Source != SourceDefault || !strings.Contains(got.Error, "the slack variant of template status of bundle ops 1.2.0 does not parse: line 1, column 1") {
		t.Fatalf("rendered %+v", got)
	}
}

// cogV3GoldenCases are the corpus's two Cog v3 templates (circle's list
// and status, read from the shared corpus at test time) with output of
// the shape CircleCI's recent-builds API returns, written for these tests
// in testdata/golden/<case>.json: fields missing and null among them.
var cogV3GoldenCases = []struct {
	golden, command, template string
}{
	{"circle__list", "list", "list"},
	{"circle__status", "status", "status"},
	{"circle__status_running", "status", "status"},
}

// TestThePublishedCogV3TemplatesRenderAsTheirGoldenFiles renders each case
// for every provider through CommandOutputDocument, as a reply is: the
// variant each takes, its text, Slack's attachments, and the API's
// directives. Run with -update to rewrite the files after a change that
// is meant, and read the diff.
func TestThePublishedCogV3TemplatesRenderAsTheirGoldenFiles(t *testing.T) {
	t.Parallel()
	config, err := os.ReadFile(filepath.Join(testenv.CogBundlesDir(t), "cogcmd__circle__config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Load(config)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cogV3GoldenCases {
		t.Run(tc.golden, func(t *testing.T) {
			t.Parallel()
			output, err := os.ReadFile(filepath.Join("testdata", "golden", tc.golden+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var got strings.Builder
			for _, f := range []render.Format{render.FormatSlack, render.FormatIRC, render.FormatHTML, render.FormatText} {
				doc, info := CommandOutputDocument(b, tc.command, tc.template, output, f)
				if info.Error != "" || info.Source != SourceBundle {
					t.Fatalf("%s: rendered with %+v", f, info)
				}
				out := render.Render(doc, f)
				got.WriteString("=== " + string(f) + " (the " + info.Variant + " variant)\n" + strings.NewReplacer("\x02", "<B>", "\x1d", "<I>").Replace(out.Text))
				if !strings.HasSuffix(out.Text, "\n") {
					got.WriteString("\n")
				}
				if len(out.Attachments) > 0 {
					t.Errorf("%s: a Cog v3 variant made attachments: %+v", f, out.Attachments)
				}
				if f == render.FormatText {
					directives, err := json.MarshalIndent(doc, "", "  ")
					if err != nil {
						t.Fatal(err)
					}
					got.WriteString("=== directives (the API's)\n" + string(directives) + "\n")
				}
			}
			path := filepath.Join("testdata", "golden", tc.golden+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if got.String() != string(want) {
				t.Errorf("%s renders differently from %s; got:\n%s", tc.template, path, got.String())
			}
		})
	}
}
