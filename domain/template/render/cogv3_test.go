package render_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/template"
	"github.com/logbookhq/logbook/domain/template/render"
)

// renderedVariant parses a Cog v3 variant written in markup, runs it over
// output (a command's JSON) as Cog v3 did and renders it in f.
func renderedVariant(t *testing.T, source string, markup template.Markup, output string, f render.Format) render.Output {
	t.Helper()
	m, err := template.ParseMustache(source)
	if err != nil {
		t.Fatalf("given the variant %q: %v", source, err)
	}
	contexts, err := template.CogV3Contexts(json.RawMessage(output))
	if err != nil {
		t.Fatalf("given the output %s: %v", output, err)
	}
	return render.Render(m.Execute(contexts, markup), f)
}

func TestCogV3VariantEdgeCases(t *testing.T) {
	t.Parallel()
	const slack, plain = template.MarkupMrkdwn, template.MarkupPlain
	cases := []struct {
		name    string
		variant string
		markup  template.Markup
		output  string
		format  render.Format
		want    string
	}{
		{"a name the data does not have shows as nothing",
			"{{status}} - {{stop_time}}", slack, `{"status": "running"}`, render.FormatText, "running -"},
		{"null shows as nothing and a number as the JSON wrote it",
			"{{a}}/{{b}}/{{c}}", plain, `{"a": null, "b": 1.50, "c": 10000000000000001}`, render.FormatText, "/1.50/10000000000000001"},
		{"an object in text shows as JSON",
			"{{vcs}}", plain, `{"vcs": {"revision": "abc", "url": "<x>"}}`, render.FormatText, `{"revision":"abc","url":"<x>"}`},
		{"each element of a list output renders once, on a line of its own",
			"{{#.}}{{build_num}} - {{status}}{{/.}}", slack, `[{"build_num": 12, "status": "success"}, {"build_num": 13, "status": "failed"}]`, render.FormatText,
			"12 - success\n13 - failed"},
		{"an empty list output renders nothing",
			"{{#.}}{{build_num}}{{/.}}", slack, `[]`, render.FormatText, ""},
		{"a section over a list goes through its elements, each the whole context",
			"{{#steps}}{{name}}:{{branch}} {{/steps}}", plain, `{"branch": "main", "steps": [{"name": "test"}, {"name": "deploy"}]}`, render.FormatText, "test: deploy:"},
		{"a section over an object lays it over the context",
			"{{#vcs}}{{revision}} on {{branch}}{{/vcs}}", plain, `{"branch": "main", "vcs": {"revision": "abc"}}`, render.FormatText, "abc on main"},
		{"a section over a string renders once with the same context",
			"{{#author_name}}by {{author_name}}{{/author_name}}", plain, `{"author_name": "Ada"}`, render.FormatText, "by Ada"},
		{"false, null and an empty list render no section; an empty string and zero do, as in FuManchu",
			"[{{#f}}f{{/f}}{{#n}}n{{/n}}{{#l}}l{{/l}}{{#e}}e{{/e}}{{#z}}z{{/z}}]", plain, `{"f": false, "n": null, "l": [], "e": "", "z": 0}`, render.FormatText, "[ez]"},
		{"an inverted section renders when its section would not",
			"{{^steps}}no steps{{/steps}}{{^branch}}no branch{{/branch}}", plain, `{"branch": "main", "steps": []}`, render.FormatText, "no steps"},
		{"deep nesting reaches the innermost values",
			"{{#a}}{{#b}}{{#c}}{{#d}}{{e}}/{{top}}{{/d}}{{/c}}{{/b}}{{/a}}", plain, `{"top": "T", "a": {"b": {"c": {"d": [{"e": 1}, {"e": 2}]}}}}`, render.FormatText, "1/2/"},
		{"a dotted name walks objects, and stops at anything else",
			"{{vcs.commit.sha}}|{{branch.name}}|{{vcs.missing.x}}", plain, `{"branch": "main", "vcs": {"commit": {"sha": "abc"}}}`, render.FormatText, "abc||"},
		{"lines holding only a section tag or a comment leave nothing behind",
			"Steps:\n{{! one per line }}\n{{#steps}}\n- {{name}}\n{{/steps}}\nDone", plain, `{"steps": [{"name": "a"}, {"name": "b"}]}`, render.FormatText, "Steps:\n- a\n- b\nDone"},
		{"Slack's <!channel> in data is shown, never a mention",
			"Author: {{author_name}} {{{author_name}}}", slack, `{"author_name": "<!channel>"}`, render.FormatSlack, "Author: &lt;!channel&gt; &lt;!channel&gt;"},
		{"Slack formatting in data cannot open or close a style",
			"*{{branch}}*", slack, `{"branch": "fix/*urgent* _now_"}`, render.FormatSlack, "*fix/\u200b*urgent*\u200b \u200b_now_\u200b*"},
		{"Mustache in data is data",
			"{{subject}}", slack, `{"subject": "{{#x}}{{y}}{{/x}}"}`, render.FormatText, "{{#x}}{{y}}{{/x}}"},
		{"a Slack variant's own mrkdwn is Slack markup",
			"*Build* <{{build_url}}|#{{build_num}}> _{{status}}_ `{{vcs_revision}}` &lt;ok&gt;", slack,
			`{"build_num": 12, "status": "success", "vcs_revision": "abc", "build_url": "https://circleci.com/gh/acme/web/12"}`, render.FormatSlack,
			"*Build* <https://circleci.com/gh/acme/web/12|#12> _success_ `abc` &lt;ok&gt;"},
		{"a Slack variant's bold and italics are IRC's on IRC",
			"*Build {{build_num}}* _{{status}}_", slack, `{"build_num": 12, "status": "failed"}`, render.FormatIRC, "\x02Build 12\x02 \x1dfailed\x1d"},
		{"a Slack variant's link is an HTML link, and a javascript: one is not",
			"<{{good}}|docs> <{{bad}}|click>", slack, `{"good": "https://circleci.com", "bad": "javascript:alert(1)"}`, render.FormatHTML,
			`<p><a href="https://circleci.com" rel="noopener noreferrer nofollow">docs</a> click (javascript:alert(1))</p>` + "\n"},
		{"a Slack variant's special forms are text, not mentions",
			"<!here> {{status}}", slack, `{"status": "failed"}`, render.FormatSlack, "&lt;!here&gt; failed"},
		{"a Slack variant's code block keeps its data verbatim",
			"```\n{{log}}\n```", slack, `{"log": "$ make\n*** error"}`, render.FormatText, "$ make\n*** error"},
		{"snake_case in a Slack variant is not italics",
			"build_num_{{n}}_x", slack, `{"n": 1}`, render.FormatHTML, "<p>build_num_1_x</p>\n"},
		{"a HipChat variant is plain text: its asterisks are shown",
			"*{{status}}*", plain, `{"status": "failed"}`, render.FormatIRC, "*failed*"},
		{"IRC control codes in data are removed",
			"{{subject}}", plain, `{"subject": "\u0002bold\u0002 \u000304red\u0003 \u0001ACTION x\u0001"}`, render.FormatIRC, "bold 04red ACTION x"},
		{"HTML in data is escaped",
			"{{subject}}", plain, `{"subject": "<script>alert(1)</script>"}`, render.FormatHTML, "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"},
		{"a line break in data stays a line break",
			"{{subject}}", slack, `{"subject": "one\ntwo"}`, render.FormatText, "one\ntwo"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := renderedVariant(t, tc.variant, tc.markup, tc.output, tc.format)
			if got.Text != tc.want {
				t.Fatalf("given %q over %s, when rendered for %s,\nthen expected %q\n          got %q", tc.variant, tc.output, tc.format, tc.want, got.Text)
			}
		})
	}
}

func TestAVeryLargeListThroughACogV3VariantIsCutWithANote(t *testing.T) {
	t.Parallel()
	builds := make([]string, 0, 150_000)
	for i := range 150_000 {
		builds = append(builds, `{"build_num": `+itoa(i)+`, "status": "success"}`)
	}
	got := renderedVariant(t, "{{#.}}{{build_num}} - {{status}}{{/.}}", template.MarkupMrkdwn, "["+strings.Join(builds, ",")+"]", render.FormatText)
	if len(got.Text) > template.MaxOutputBytes*11/10 || !strings.HasSuffix(got.Text, "passes]") {
		t.Fatalf("expected the output cut near %d bytes with a note, got %d bytes ending %q", template.MaxOutputBytes, len(got.Text), got.Text[max(0, len(got.Text)-80):])
	}
}
