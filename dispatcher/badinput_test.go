package dispatcher_test

import (
	"context"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/internal/samplebundle"
	"github.com/logbookhq/logbook/internal/testenv"
)

// Every kind of bad input gets a failed reply that says what was wrong and
// where, and the request is recorded: received, decided, replied.
func TestEveryBadInputGetsAClearReplyAndIsRecorded(t *testing.T) {
	h := startAdmin(t)
	if _, err := dispatcher.InstallBundle(context.Background(), h.store, samplebundle.Config, "test"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the sample bundle", func() bool { return h.facts.BundleInstalled("toolbox") })
	h.must(t, "admin", "user create bob")
	h.must(t, "admin", "bundle install --base64="+disabledBundleBase64)
	h.must(t, "admin", "bundle disable quiet")

	cases := []struct {
		name, user, text string
		mention          []string
		recorded         string // the request's event types, in order
	}{
		{"an unknown command suggests the closest name", "admin", "ehco hi",
			[]string{"column 1", "did you mean echo?"}, "RequestReceived IdentityResolved PipelineRejected ReplyPosted"},
		{"a pipeline that does not parse says the column", "admin", `echo "unterminated`,
			[]string{"column 6", "quote"}, "RequestReceived IdentityResolved PipelineRejected ReplyPosted"},
		{"a disabled bundle says so and who can enable it", "admin", "quiet:hush",
			[]string{"the bundle quiet is disabled", "an admin can enable it"}, "RequestReceived IdentityResolved PipelineRejected ReplyPosted"},
		{"a request over 16 KiB says its size and the limit", "admin", "echo " + strings.Repeat("x", 17<<10),
			[]string{"17413 bytes long", "the limit is 16384 bytes"}, "RequestReceived IdentityResolved PipelineRejected ReplyPosted"},
		{"a redirect to a room the bot cannot post in names it and its column", "admin", "echo hi > #ops",
			[]string{"cannot post to #ops (column 11)"}, "RequestReceived IdentityResolved PipelineParsed PermissionChecked RequestDenied ReplyPosted"},
		{"a user without permission is told which permission is missing", "bob", "user list",
			[]string{"Denied", "logbook:manage_users"}, "RequestReceived IdentityResolved PipelineParsed PermissionChecked RequestDenied ReplyPosted"},
		{"an unknown user is told how to get access", "mallory", "echo hi",
			[]string{"there is no enabled Logbook user named mallory"}, "RequestReceived IdentityUnknown ReplyPosted"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			messageID := "bad-input-" + string(rune('a'+i))
			reply := h.say(t, messageID, c.user, c.text)
			if !reply.Failed {
				t.Fatalf("reply = %+v, want a failure", reply)
			}
			for _, m := range c.mention {
				if !strings.Contains(reply.Text, m) {
					t.Fatalf("reply %q does not say %q", reply.Text, m)
				}
			}
			stream := dispatch.Stream(apiRequestID(c.user, messageID))
			var types []string
			testenv.Eventually(t, "the reply to be recorded", func() bool {
				types = eventTypes(t, h, stream)
				return len(types) > 0 && types[len(types)-1] == "ReplyPosted"
			})
			if got := strings.Join(types, " "); got != c.recorded {
				t.Fatalf("%s = %s, want %s", stream, got, c.recorded)
			}
		})
	}
}

// disabledBundleBase64 is a small bundle config, installed and then
// disabled by the test above.
const disabledBundleBase64 = "Y29nX2J1bmRsZV92ZXJzaW9uOiA0Cm5hbWU6IHF1aWV0CmRlc2NyaXB0aW9uOiBBIGJ1bmRsZSB0aGF0IGlzIGRpc2FibGVkCnZlcnNpb246ICIxLjAuMCIKZG9ja2VyOgogIGltYWdlOiBxdWlldAogIHRhZzogIjEuMC4wIgpjb21tYW5kczoKICBodXNoOgogICAgZXhlY3V0YWJsZTogL2Jpbi90cnVlCiAgICBkZXNjcmlwdGlvbjogU2F5cyBub3RoaW5nCiAgICBydWxlczoKICAgICAgLSBhbGxvdwo="
