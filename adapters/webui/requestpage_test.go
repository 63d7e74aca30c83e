package webui

import (
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain/dispatch"
)

func TestTheRequestPageSaysWhichTemplateAndVariantRenderedTheReply(t *testing.T) {
	t.Parallel()
	pages, err := parsePages(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		posted dispatch.ReplyPosted
		want   string
	}{
		{"a Greenbar template is named with its bundle version",
			dispatch.ReplyPosted{Adapter: "slack", Format: "slack", Rendered: "*Fleet*", Template: "status", Source: "bundle", Bundle: "fleet", BundleVersion: "1.0.0"},
			"slack for slack, template <code>status</code> of bundle fleet 1.0.0"},
		{"a Cog v3 template is named with the variant it was rendered from",
			dispatch.ReplyPosted{Adapter: "irc", Format: "irc", Rendered: "1042 master: success", Template: "list", TemplateVariant: "hipchat", Source: "bundle", Bundle: "circle", BundleVersion: "0.2.0"},
			"irc for irc, template <code>list</code> (its Cog v3 hipchat variant) of bundle circle 0.2.0"},
		{"the default rendering says so",
			dispatch.ReplyPosted{Adapter: "api", Format: "text", Rendered: "hello", Source: "default"},
			"text for api, Cog's default rendering"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out strings.Builder
			if err := pages["request"].Execute(&out, page{Title: "Request", Data: requestData{Posted: postedReplyOf(tc.posted)}}); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Fatalf("given the record %+v, the page lacks %q:\n%s", tc.posted, tc.want, out.String())
			}
		})
	}
}
