package render_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/template"
	"github.com/logbookhq/logbook/domain/template/render"
)

// The markup each renderer may write itself; anything else in its output
// came from data, escaped.
var (
	htmlTags      = regexp.MustCompile(`</?(p|br|strong|em|code|pre|ul|ol|li|table|thead|tbody|tr|th|td|h3|dl|dt|dd)>|<a href="[^"<>]*" rel="noopener noreferrer nofollow">|</a>|<div class="attachment[-a-z]*( color-[a-z]+)?"( data-color="#[0-9a-f]{6}")?>|</div>|<(dt|dd) class="short">`)
	slackLinks    = regexp.MustCompile(`<https?://[^|<>\s]+(\|[^<>]*)?>|<mailto:[^|<>\s]+(\|[^<>]*)?>`)
	valueVariant  = mustParseMustache("{{v}} *{{v}}* _{{v}}_ <{{v}}|{{v}}> <https://circleci.com|{{v}}> `{{v}}` {{{v}}}\n```\n{{v}}\n```\n{{#l}}{{.}}{{/l}}")
	valueTemplate = mustParse("~$results[0].v~ **~$results[0].v~** [~$results[0].v~](~$results[0].v~)\n| ~$results[0].v~ | x |\n| --- | --- |\n~attachment title=$results[0].v color=$results[0].v~\n`~$results[0].v~`\n~end~")
)

func mustParse(source string) *template.Template {
	t, err := template.Parse(source)
	if err != nil {
		panic(err)
	}
	return t
}

func mustParseMustache(source string) *template.Mustache {
	m, err := template.ParseMustache(source)
	if err != nil {
		panic(err)
	}
	return m
}

// FuzzRenderedDataIsEscaped puts any value everywhere a template can (text,
// bold, a link's text and target, a table cell, an attachment's title and
// colour, code) and checks each renderer's output: HTML holds no tag but
// its own, Slack no <...> but a link it wrote, IRC no control code but
// its bold and italics.
func FuzzRenderedDataIsEscaped(f *testing.F) {
	f.Fuzz(func(t *testing.T, value string) {
		doc := valueTemplate.Execute(map[string]any{"results": []any{map[string]any{"v": value}}})
		checkEscaped(t, value, doc)
	})
}

// FuzzRenderedCogV3DataIsEscaped does the same for a Cog v3 variant: any
// value, in text, bold, italics, a link's target and text, code, a code
// block and a section, read as Slack's mrkdwn and as HipChat's plain
// text, comes out of every renderer escaped.
func FuzzRenderedCogV3DataIsEscaped(f *testing.F) {
	f.Fuzz(func(t *testing.T, value string) {
		contexts := []any{map[string]any{"v": value, "l": []any{value}}}
		for _, markup := range []template.Markup{template.MarkupMrkdwn, template.MarkupPlain} {
			checkEscaped(t, value, valueVariant.Execute(contexts, markup))
		}
	})
}

// checkEscaped fails when a renderer's output of doc holds markup the
// renderer did not write: HTML a tag, Slack a <...> that is not its link,
// IRC a control code other than bold and italics.
func checkEscaped(t *testing.T, value string, doc template.Document) {
	t.Helper()
	if html := htmlTags.ReplaceAllString(render.HTML(doc), ""); strings.ContainsAny(html, "<>") {
		t.Fatalf("value %q left markup in the HTML: %q", value, html)
	}
	slack := render.Slack(doc)
	texts := []string{slack.Text}
	for _, a := range slack.Attachments {
		texts = append(texts, a.Title, a.Text, a.Fallback, a.Pretext)
	}
	for _, s := range texts {
		if rest := slackLinks.ReplaceAllString(s, ""); strings.ContainsAny(rest, "<>") {
			t.Fatalf("value %q left a raw < or > for Slack: %q", value, s)
		}
	}
	for _, r := range render.IRC(doc) {
		if r < 0x20 && r != '\n' && r != '\x02' && r != '\x1d' || r == 0x7f {
			t.Fatalf("value %q left control code %U in the IRC lines", value, r)
		}
	}
}
