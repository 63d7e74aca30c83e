package render_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/template"
	"github.com/logbookhq/logbook/domain/template/render"
)

// rendered parses source, runs it over output (a command's JSON) and
// renders it in f.
func rendered(t *testing.T, source, output string, f render.Format) render.Output {
	t.Helper()
	tm, err := template.Parse(source)
	if err != nil {
		t.Fatalf("given the template %q: %v", source, err)
	}
	scope, err := template.CogScope(json.RawMessage(output))
	if err != nil {
		t.Fatalf("given the output %s: %v", output, err)
	}
	return render.Render(tm.Execute(scope), f)
}

func TestRenderingEdgeCases(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		template string
		output   string
		format   render.Format
		want     string
	}{
		{"an unbound variable shows as nothing",
			"Name: ~$results[0].name~.", `[{}]`, render.FormatText, "Name: ."},
		{"a key of a string is unbound",
			"First: ~$results[0].name.first~!", `[{"name": "ada"}]`, render.FormatText, "First: !"},
		{"an index past the end is unbound",
			"~$results[5].name~|", `[{"name": "ada"}]`, render.FormatText, "|"},
		{"null shows as nothing and a number as the JSON wrote it",
			"~$results[0].a~/~$results[0].b~/~$results[0].c~", `[{"a": null, "b": 1.50, "c": 10000000000000001}]`, render.FormatText, "/1.50/10000000000000001"},
		{"an object in text shows as JSON",
			"Tags: ~$results[0].tags~", `[{"tags": {"env": "prod", "team": "<ops>"}}]`, render.FormatText, `Tags: {"env":"prod","team":"<ops>"}`},
		{"an unbound value is not bound, and an empty list is empty",
			"~if cond=$results[0].x bound?~bound~end~~if cond=$results[0].x not_bound?~unbound~end~ ~if cond=$results[0].l empty?~empty~end~",
			`[{"l": []}]`, render.FormatText, "unbound empty"},
		{"each over a list that is not there goes through nothing",
			"Before\n~each var=$results[0].missing~\n* ~$item~\n~end~\nAfter", `[{}]`, render.FormatText, "Before\nAfter"},
		{"each over an object goes through it once",
			"~each var=$results[0].owner as=o~\nOwner: ~$o.name~\n~end~", `[{"owner": {"name": "ada"}}]`, render.FormatText, "Owner: ada"},
		{"each over a string goes through it once",
			"~each var=$results[0].name~\n- ~$item~\n~end~", `[{"name": "web-1"}]`, render.FormatText, "• web-1"},
		{"each over an empty list goes through nothing",
			"Tags:\n~each var=$results[0].tags~\n* ~$item~\n~end~\nEnd", `[{"tags": []}]`, render.FormatText, "Tags:\nEnd"},
		{"three nested eaches and an if reach the innermost values",
			"~each var=$results as=region~\n**~$region.name~**\n~each var=$region.zones as=zone~\n~each var=$zone.hosts as=host~\n~if cond=$host.up == true~\n* ~$zone.name~/~$host.name~\n~end~\n~end~\n~end~\n~end~",
			`[{"name": "eu", "zones": [{"name": "a", "hosts": [{"name": "h1", "up": true}, {"name": "h2", "up": false}]}, {"name": "b", "hosts": []}]}, {"name": "us", "zones": []}]`,
			render.FormatText, "eu\n\n• a/h1\n\nus"},
		{"an each written on one line puts each pass on a line of its own",
			"Links:\n~each var=$results~~$item.url~~end~\nDone", `[{"url": "https://a"}, {"url": "https://b"}]`, render.FormatText, "Links:\nhttps://a\nhttps://b\nDone"},
		{"a false if on its own line leaves no empty line",
			"A\n~if cond=$results[0].x bound?~X: ~$results[0].x~~end~\nB", `[{}]`, render.FormatText, "A\nB"},
		{"comment lines leave nothing behind",
			"# a comment\nA\n#\n# ---\nB", `[]`, render.FormatText, "A\nB"},
		{"Markdown in data is data",
			"~$results[0].v~", `[{"v": "**bold** _it_ ` + "`code`" + ` [a](http://x) | c"}]`, render.FormatHTML,
			"<p>**bold** _it_ `code` [a](http://x) | c</p>\n"},
		{"a list marker and a table row in data stay text",
			"~$results[0].v~", `[{"v": "* item\n| a | b |\n| --- | --- |"}]`, render.FormatHTML, "<p>* item<br>| a | b |<br>| --- | --- |</p>\n"},
		{"a pipe in data stays in its table cell",
			"| Name | Value |\n| --- | --- |\n| ~$results[0].k~ | ~$results[0].v~ |", `[{"k": "a|b", "v": "c"}]`, render.FormatText,
			"Name  Value\n----  -----\na|b   c"},
		{"HTML in data is escaped",
			"~$results[0].v~", `[{"v": "<script>alert(1)</script>"}]`, render.FormatHTML, "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"},
		{"a link to javascript: is not a link",
			"[click](~$results[0].u~)", `[{"u": "javascript:alert(1)"}]`, render.FormatHTML, "<p>click (javascript:alert(1))</p>\n"},
		{"a link to https is a link",
			"[docs](~$results[0].u~)", `[{"u": "https://example.com/a?b=1&c=2"}]`, render.FormatHTML,
			`<p><a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer nofollow">docs</a></p>` + "\n"},
		{"Slack's <!channel> in data is shown, never a mention",
			"Owner: ~$results[0].owner~", `[{"owner": "<!channel> and <@U024BE7LH>"}]`, render.FormatSlack, "Owner: &lt;!channel&gt; and &lt;@U024BE7LH&gt;"},
		{"Slack formatting characters in data cannot open or close a style",
			"~$results[0].v~", `[{"v": "*urgent* _now_ ~gone~ snake_case_name"}]`, render.FormatSlack,
			"\u200b*urgent*\u200b \u200b_now_\u200b \u200b~gone~\u200b snake_case_name"},
		{"a Slack quote at the start of a data line is not a quote",
			"~$results[0].v~", `[{"v": "> quoted"}]`, render.FormatSlack, "\u200b&gt; quoted"},
		{"template markup is Slack markup",
			"**Stack:** ~$results[0].s~ _(~$results[0].st~)_ `~$results[0].id~`", `[{"s": "web", "st": "OK", "id": "i-1"}]`, render.FormatSlack,
			"*Stack:* web _(OK)_ `i-1`"},
		{"a code block in data is not closed early by backticks in data",
			"```\n~$results[0].v~\n```", "[{\"v\": \"a ``` b\"}]", render.FormatSlack, "```\na `\u200b`\u200b` b\n```"},
		{"IRC control codes in data are removed",
			"Name: ~$results[0].v~", `[{"v": "\u0002bold\u0002 \u000304red\u0003 \u0001ACTION x\u0001 \u001dit\u001d\u000f"}]`, render.FormatIRC,
			"Name: bold 04red ACTION x it"},
		{"IRC bold is the template's only",
			"**~$results[0].v~** and _~$results[0].w~_", `[{"v": "x", "w": "y"}]`, render.FormatIRC, "\x02x\x02 and \x1dy\x1d"},
		{"IRC bold across a line break is closed and opened again",
			"**~$results[0].v~**", `[{"v": "one\ntwo"}]`, render.FormatIRC, "\x02one\x02\n\x02two\x02"},
		{"an IRC table is aligned with its header in bold",
			"| Name | State |\n| --- | --- |\n~each var=$results~\n| ~$item.n~ | ~$item.s~ |\n~end~", `[{"n": "web-10", "s": "up"}, {"n": "db", "s": "down"}]`, render.FormatIRC,
			"\x02Name    State\x02\nweb-10  up\ndb      down"},
		{"an IRC attachment is a title over an indented body",
			"~attachment title=$results[0].t color=\"red\" Owner=$results[0].o~\nBody ~$results[0].b~\n~end~", `[{"t": "web", "o": "ada", "b": "text"}]`, render.FormatIRC,
			"\x02web\x02\n  Owner: ada\n  Body text"},
		{"title makes a heading, bold on Slack",
			"~title~Deploys of ~$results[0].app~~end~\nDone", `[{"app": "web"}]`, render.FormatSlack, "*Deploys of web*\n\nDone"},
		{"title makes a heading in HTML",
			"~title~Deploys~end~", `[]`, render.FormatHTML, "<h3>Deploys</h3>\n"},
		{"count counts a list, an object's keys, nothing as 0, and anything else as N/A",
			"~count var=$results~ ~count var=$results[0].o~ ~count var=$results[0].missing~ ~count var=$results[0].s~", `[{"o": {"a": 1, "b": 2}, "s": "x"}]`, render.FormatText, "1 2 0 N/A"},
		{"join puts its separator between passes",
			"Zones: ~join var=$results[0].z with=\" / \"~~$item~~end~.", `[{"z": ["a", "b", "c"]}]`, render.FormatText, "Zones: a / b / c."},
		{"br breaks a line",
			"a~br~b", `[]`, render.FormatText, "a\nb"},
		{"json shows a value as indented JSON in a code block",
			"~json var=$results[0]~", `[{"a": [1, "<x>"]}]`, render.FormatSlack, "```\n{\n  \"a\": [\n    1,\n    \"&lt;x&gt;\"\n  ]\n}\n```"},
		{"wide characters align in a table",
			"| Name | N |\n| --- | --- |\n~each var=$results~\n| ~$item.n~ | ~$item.c~ |\n~end~", `[{"n": "東京", "c": 1}, {"n": "tokyo", "c": 22}]`, render.FormatText,
			"Name   N\n-----  --\n東京   1\ntokyo  22"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := rendered(t, tc.template, tc.output, tc.format)
			if got.Text != tc.want {
				t.Fatalf("given %q over %s, when rendered for %s,\nthen expected %q\n          got %q", tc.template, tc.output, tc.format, tc.want, got.Text)
			}
		})
	}
}

func TestASlackAttachmentKeepsItsColourTitleAndFields(t *testing.T) {
	t.Parallel()
	got := rendered(t, "~each var=$results as=i~\n~attachment title=$i.name color=$i.state.color title_url=$i.url Zone-short=$i.zone~\n**State:** ~$i.state.name~\n~end~\n~end~",
		`[{"name": "web <1>", "state": {"name": "running", "color": "green"}, "url": "https://console/web", "zone": "eu-1a"},
		  {"name": "db", "state": {"name": "stopped", "color": "#c00"}, "url": "javascript:x", "zone": "eu-1b"}]`, render.FormatSlack)
	if got.Text != "" || len(got.Attachments) != 2 {
		t.Fatalf("expected two attachments and no text, got %q and %+v", got.Text, got.Attachments)
	}
	web, db := got.Attachments[0], got.Attachments[1]
	if web.Color != "#008000" || web.Title != "web &lt;1&gt;" || web.TitleLink != "https://console/web" || web.Text != "*State:* running" {
		t.Errorf("first attachment: %+v", web)
	}
	if len(web.Fields) != 1 || web.Fields[0] != (render.Field{Title: "Zone", Value: "eu-1a", Short: true}) {
		t.Errorf("first attachment's fields: %+v", web.Fields)
	}
	if db.Color != "#cc0000" || db.TitleLink != "" {
		t.Errorf("second attachment: a #rgb colour widens and a javascript: link is dropped, got %+v", db)
	}
	if !strings.Contains(web.Fallback, "web &lt;1&gt;") || !strings.Contains(web.Fallback, "State: running") {
		t.Errorf("fallback: %q", web.Fallback)
	}
}

func TestAVeryLargeListIsCutAtTheEvaluationLimitWithANote(t *testing.T) {
	t.Parallel()
	items := make([]string, 0, 50_000)
	for range 50_000 {
		items = append(items, `{"name": "`+strings.Repeat("x", 40)+`"}`)
	}
	got := rendered(t, "~each var=$results~\n* ~$item.name~\n~end~", "["+strings.Join(items, ",")+"]", render.FormatText)
	// The bound is on what the template produces; a renderer's markup
	// (a bullet per item) comes on top.
	if len(got.Text) > template.MaxOutputBytes*11/10 || !strings.HasSuffix(got.Text, "passes]") {
		t.Fatalf("expected the output cut near %d bytes with a note, got %d bytes ending %q", template.MaxOutputBytes, len(got.Text), got.Text[max(0, len(got.Text)-80):])
	}
}

func TestFormatForNamesEachAdaptersMarkup(t *testing.T) {
	t.Parallel()
	for adapter, want := range map[string]render.Format{"slack": render.FormatSlack, "irc": render.FormatIRC, "web": render.FormatHTML, "api": render.FormatText, "other": render.FormatText} {
		if got := render.FormatFor(adapter); got != want {
			t.Errorf("FormatFor(%q) = %s, want %s", adapter, got, want)
		}
	}
}
