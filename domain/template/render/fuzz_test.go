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
	valueTemplate = mustParse("~$results[0].v~ **~$results[0].v~** [~$results[0].v~](~$results[0].v~)\n| ~$results[0].v~ | x |\n| --- | --- |\n~attachment title=$results[0].v color=$results[0].v~\n`~$results[0].v~`\n~end~")
)

func mustParse(source string) *template.Template {
	t, err := template.Parse(source)
	if err != nil {
		panic(err)
	}
	return t
}

// FuzzRenderedDataIsEscaped puts any value everywhere a template can (text,
// bold, a link's text and target, a table cell, an attachment's title and
// colour, code) and checks each renderer's output: HTML holds no tag but
// its own, Slack no <...> but a link it wrote, IRC no control code but
// its bold and italics.
func FuzzRenderedDataIsEscaped(f *testing.F) {
	f.Fuzz(func(t *testing.T, value string) {
		doc := valueTemplate.Execute(map[string]any{"results": []any{map[string]any{"v": value}}})
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
	})
}
