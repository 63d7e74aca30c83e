package render_test

import (
	"encoding/json"
	"testing"

	"github.com/logbookhq/logbook/domain/template"
	"github.com/logbookhq/logbook/domain/template/render"
)

func TestOutputWithoutATemplateGetsCogsDefaultRendering(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		output string
		format render.Format
		want   string
	}{
		{"nothing renders as nothing", ``, render.FormatText, ""},
		{"null renders as nothing", `null`, render.FormatText, ""},
		{"one line of text is a paragraph", `[{"body": ["hello"]}]`, render.FormatSlack, "hello"},
		{"several lines of text are a code block, so columns align", `[{"body": ["a  1", "bb 2"]}]`, render.FormatSlack, "```\na  1\nbb 2\n```"},
		{"a JSON string is its text", `"done <!here>"`, render.FormatSlack, "done &lt;!here&gt;"},
		{"objects sharing keys are a table in the first object's key order",
			`[{"name": "web", "state": "up", "tags": ["a"]}, {"state": "down", "name": "db", "tags": []}]`, render.FormatText,
			"name  state  tags\n----  -----  -----\nweb   up     [\"a\"]\ndb    down   []"},
		{"one object is a block of keys and values", `{"id": 7, "owner": {"name": "ada"}, "gone": null}`, render.FormatText,
			"id: 7\nowner: {\"name\":\"ada\"}\ngone:"},
		{"objects with different keys are a block each", `[{"a": 1}, {"b": 2}]`, render.FormatText, "a: 1\n\nb: 2"},
		{"keys in bold on IRC", `{"id": 7}`, render.FormatIRC, "\x02id:\x02 7"},
		{"a list of numbers is a line each", `[1, 2.50, true]`, render.FormatText, "1\n2.50\ntrue"},
		{"a key that looks like markup is data", `{"**x**": "_y_"}`, render.FormatSlack, "**\u200b*x*\u200b*:* \u200b_y_\u200b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := render.Render(template.Default(json.RawMessage(tc.output)), tc.format).Text
			if got != tc.want {
				t.Fatalf("given the output %s, when rendered by default for %s,\nthen expected %q\n          got %q", tc.output, tc.format, tc.want, got)
			}
		})
	}
}

func TestLogbooksOwnErrorsRenderTheSameWayOnEveryProvider(t *testing.T) {
	t.Parallel()
	doc := template.ErrorDocument("Denied", "You need toolbox:loud to run toolbox:shout.", "!role grant ops toolbox:loud", []string{"line <1>", "line 2"})
	cases := []struct {
		format render.Format
		want   string
	}{
		{render.FormatText, "Denied\n  You need toolbox:loud to run toolbox:shout.\n  !role grant ops toolbox:loud\n\n  line <1>\n  line 2"},
		{render.FormatIRC, "\x02Denied\x02\n  You need toolbox:loud to run toolbox:shout.\n  !role grant ops toolbox:loud\n\n  line <1>\n  line 2"},
		{render.FormatHTML, "<div class=\"attachment color-red\" data-color=\"#d93f3f\">\n<div class=\"attachment-title\">Denied</div>\n<p>You need toolbox:loud to run toolbox:shout.<br><code>!role grant ops toolbox:loud</code></p>\n<pre><code>line &lt;1&gt;\nline 2</code></pre>\n</div>\n"},
	}
	for _, tc := range cases {
		if got := render.Render(doc, tc.format).Text; got != tc.want {
			t.Errorf("when rendered for %s,\nthen expected %q\n          got %q", tc.format, tc.want, got)
		}
	}
	slack := render.Render(doc, render.FormatSlack)
	if slack.Text != "" || len(slack.Attachments) != 1 {
		t.Fatalf("on Slack, expected one attachment, got %+v", slack)
	}
	if a := slack.Attachments[0]; a.Color != "#d93f3f" || a.Title != "Denied" || a.Text != "You need toolbox:loud to run toolbox:shout.\n`!role grant ops toolbox:loud`\n\n```\nline &lt;1&gt;\nline 2\n```" {
		t.Fatalf("on Slack, the attachment is %+v", a)
	}
}
