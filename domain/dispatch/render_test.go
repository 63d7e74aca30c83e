package dispatch

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/template"
	"github.com/logbookhq/logbook/domain/template/render"
)

// templatedOps is the ops bundle of these tests with a template, at a
// version: each version's status template writes its version.
func templatedOps(t *testing.T, version string) *bundle.Bundle {
	t.Helper()
	text := strings.Replace(opsBundle, `version: "1.2.0"`, `version: "`+version+`"`, 1) + `
templates:
  status:
    body: |
      **Status (` + version + `):**
      ~each var=$results~
      * ~$item.name~ is ~$item.state~
      ~end~
`
	return loadBundle(t, text)
}

// versions is a TemplateSource over bundles by name and version.
type versions map[string]*bundle.Bundle

func (v versions) BundleVersion(name, version string) (*bundle.Bundle, bool) {
	if version == "" {
		version = "enabled"
	}
	b, ok := v[name+"@"+version]
	return b, ok
}

// completedWith runs ops:status to completion with output and template and
// returns the reply.
func completedWith(t *testing.T, output, templateName string) Reply {
	t.Helper()
	s, id := started(t, "U1", "ops:status")
	d := s.then(RunEvent{RunID: RunID(id, 0, 0), Event: run.RunSucceeded{Result: run.Result{Value: json.RawMessage(output), Template: templateName}}})
	return wantReply(t, d)
}

func TestTheStageRecordsTheBundleVersionItsRunUses(t *testing.T) {
	t.Parallel()
	trigger := received("U1", "ops:status")
	d := given(t).then(trigger)
	if started := find[StageStarted](t, d.Request); started.Version != "1.2.0" {
		t.Fatalf("StageStarted %+v, want version 1.2.0", started)
	}
}

func TestAReplyIsRenderedWithTheTemplateOfTheVersionItsRunUsed(t *testing.T) {
	t.Parallel()
	// Given ops 1.2.0 ran the command, and 1.3.0 is enabled since
	src := versions{"ops@1.2.0": templatedOps(t, "1.2.0"), "ops@enabled": templatedOps(t, "1.3.0")}
	reply := completedWith(t, `[{"name": "web", "state": "up"}, {"name": "db", "state": "down"}]`, "status")
	// When the reply is rendered for Slack
	got := RenderReply(reply, src, render.FormatSlack).Rendered
	// Then 1.2.0's template renders it, and the rendering says so
	if got.Text != "*Status (1.2.0):*\n\n• web is up\n• db is down" {
		t.Fatalf("rendered %q", got.Text)
	}
	if got.Template != "status" || got.Bundle != "ops" || got.Version != "1.2.0" || got.Source != SourceBundle || got.Error != "" || got.Directives != nil {
		t.Fatalf("rendered %+v", got)
	}
	// And the raw text stays as the command printed it
	if !strings.Contains(reply.Text, `"name": "web"`) {
		t.Fatalf("raw text %q", reply.Text)
	}
}

func TestRenderingReplies(t *testing.T) {
	t.Parallel()
	src := versions{"ops@1.2.0": templatedOps(t, "1.2.0")}
	cases := []struct {
		name     string
		reply    func(t *testing.T) Reply
		format   render.Format
		text     string
		template string
		source   string
		errText  string
	}{
		{"output naming no template gets the default rendering",
			func(t *testing.T) Reply {
				return completedWith(t, `[{"name": "web", "state": "up"}, {"name": "db", "state": "down"}]`, "")
			},
			render.FormatText, "name  state\n----  -----\nweb   up\ndb    down", "", SourceDefault, ""},
		{"a template the bundle does not have falls back to the default rendering, and says so",
			func(t *testing.T) Reply { return completedWith(t, `{"name": "web"}`, "nope") },
			render.FormatText, "name: web", "nope", SourceDefault, "bundle ops 1.2.0 has no template nope"},
		{"no output still says the request completed",
			func(t *testing.T) Reply { return completedWith(t, `null`, "") },
			render.FormatIRC, NoOutput, "", SourceDefault, ""},
		{"a failed run goes through Logbook's error template, with its output",
			func(t *testing.T) Reply {
				s, id := started(t, "U1", "ops:status")
				d := s.then(RunEvent{RunID: RunID(id, 0, 0), Event: run.RunFailed{Reason: "exit status 2", Result: run.Result{Value: json.RawMessage(`[{"body": ["no such service"]}]`)}}})
				return wantReply(t, d)
			},
			render.FormatText, "Failed\n  stage 1 (ops:status) run ", template.ErrorTemplateName, SourceLogbook, ""},
		{"a denial goes through Logbook's error template",
			func(t *testing.T) Reply {
				return wantReply(t, given(t).then(received("U2", "ops:deploy staging")))
			},
			render.FormatIRC, "\x02Denied\x02\n  ", template.ErrorTemplateName, SourceLogbook, ""},
		{"an unknown sender is told what an admin can run, as code",
			func(t *testing.T) Reply { return wantReply(t, given(t).then(received("U99", "ops:status"))) },
			render.FormatSlack, "", template.ErrorTemplateName, SourceLogbook, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := RenderReply(tc.reply(t), src, tc.format).Rendered
			if !strings.HasPrefix(got.Text, tc.text) || got.Template != tc.template || got.Source != tc.source || got.Error != tc.errText || got.Format != tc.format {
				t.Fatalf("rendered %+v\nwant text starting %q, template %q, source %q, error %q", got, tc.text, tc.template, tc.source, tc.errText)
			}
		})
	}
}

func TestAnUnknownSenderSeesTheLinkCommandAsCodeOnSlack(t *testing.T) {
	t.Parallel()
	reply := wantReply(t, given(t).then(received("U99", "ops:status")))
	got := RenderReply(reply, nil, render.FormatSlack).Rendered
	if len(got.Attachments) != 1 || !strings.Contains(got.Attachments[0].Text, "`!user link USERNAME slack U99`") || got.Attachments[0].Color != "#d93f3f" {
		t.Fatalf("rendered %+v", got)
	}
}

func TestTheAPIGetsTheDirectivesBesideItsText(t *testing.T) {
	t.Parallel()
	reply := completedWith(t, `{"name": "web"}`, "")
	got := RenderReply(reply, nil, render.FormatText).Rendered
	if len(got.Directives) != 1 || got.Directives[0].Kind != template.Paragraph || got.Text != "name: web" {
		t.Fatalf("rendered %+v", got)
	}
}

func TestARegistrationNoticeComesFirst(t *testing.T) {
	t.Parallel()
	reply := Reply{Notice: "Welcome: I registered you.", Value: json.RawMessage(`"done"`)}
	got := RenderReply(reply, nil, render.FormatText).Rendered
	if got.Text != "Welcome: I registered you.\n\ndone" {
		t.Fatalf("rendered %q", got.Text)
	}
}

const gortOps = `gort_bundle_version: 1
name: ops
description: Operations
version: 1.2.0
image: acme/ops:1.2.0
commands:
  status:
    executable: [ "/bin/status" ]
    rules:
      - allow
    templates:
      command: |-
        {{ text | title "Services" }}{{ range .Payload }}{{ .name }} is {{ .state }}
        {{ end }}{{ endtext }}
      message: |-
        {{ text }}ops:status says: {{ .Response.Out }}{{ endtext }}
  uptime:
    executable: [ "/bin/uptime" ]
    rules:
      - allow
  deploy:
    executable: [ "/bin/deploy" ]
    rules:
      - must have ops:deploy
permissions:
  - deploy
templates:
  command_error: |-
    {{ header | color "#FF0000" | title .Response.Title }}{{ text | monospace true }}{{ .Response.Out }}{{ endtext }}
  message: |-
    {{ text }}ops says: {{ .Response.Out }}{{ endtext }}
  message_error: |-
    {{ header | color "#FFA500" | title .Response.Title }}{{ text }}{{ .Request.Bundle.Name }}:{{ .Request.Command.Name }} refused: {{ .Response.Out }}{{ endtext }}
`

func TestAGortBundlesTemplatesAreChosenByPurpose(t *testing.T) {
	t.Parallel()
	src := versions{"ops@1.2.0": loadBundle(t, gortOps)}
	t.Run("a completed command uses the command's command template", func(t *testing.T) {
		t.Parallel()
		reply := Reply{Command: "ops:status", Version: "1.2.0", Value: json.RawMessage(`[{"body": ["[{\"name\": \"web\", \"state\": \"up\"}]"]}]`)}
		got := RenderReply(reply, src, render.FormatText).Rendered
		if got.Text != "Services\n\nweb is up" || got.Source != SourceGort || got.Template != template.GortCommand {
			t.Fatalf("rendered %+v", got)
		}
	})
	t.Run("a failed command uses the bundle's command_error template", func(t *testing.T) {
		t.Parallel()
		reply := Reply{Command: "ops:status", Version: "1.2.0", Value: json.RawMessage(`[{"body": ["boom"]}]`),
			Problem: &Problem{Status: StatusFailed, Title: "Failed", Message: "exit status 1", Output: []string{"boom"}}}
		got := RenderReply(reply, src, render.FormatSlack).Rendered
		if len(got.Attachments) != 1 || got.Attachments[0].Color != "#ff0000" || got.Attachments[0].Title != "Failed" || got.Attachments[0].Text != "```\nboom\n```" {
			t.Fatalf("rendered %+v", got)
		}
	})
}

func TestAGortBundlesMessageTemplateShowsLogbooksOwnMessagesAboutItsCommands(t *testing.T) {
	t.Parallel()
	src := versions{"ops@1.2.0": loadBundle(t, gortOps), "ops@enabled": loadBundle(t, gortOps)}
	cases := []struct {
		name     string
		reply    Reply
		format   render.Format
		text     string
		template string
	}{
		{"a command's empty output is said through the bundle's message template",
			Reply{Command: "ops:uptime", Version: "1.2.0", Value: json.RawMessage(`null`)},
			render.FormatText, "ops says: " + NoOutput, template.GortMessage},
		{"a welcome to a new user goes through the command's own message template, before the output",
			Reply{Command: "ops:status", Version: "1.2.0", Notice: "Welcome: I registered you as Logbook user ada.", Value: json.RawMessage(`[{"body": ["[{\"name\": \"web\", \"state\": \"up\"}]"]}]`)},
			render.FormatText, "ops:status says: Welcome: I registered you as Logbook user ada.\n\nServices\n\nweb is up", template.GortCommand},
		{"a denial of the command is said through the bundle's message_error template",
			Reply{Command: "ops:deploy", Problem: &Problem{Status: StatusDenied, Title: "Denied", Message: "stage 1 (ops:deploy): missing permission ops:deploy"}},
			render.FormatIRC, "\x02Denied\x02\n  ops:deploy refused: stage 1 (ops:deploy): missing permission ops:deploy", template.GortMessageError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := RenderReply(tc.reply, src, tc.format).Rendered
			if got.Text != tc.text || got.Template != tc.template || got.Source != SourceGort || got.Error != "" {
				t.Fatalf("rendered %+v\nwant %q from template %s", got, tc.text, tc.template)
			}
		})
	}
	t.Run("a Cog bundle's welcome stays Logbook's own paragraph", func(t *testing.T) {
		t.Parallel()
		got := RenderReply(Reply{Command: "ops:status", Version: "1.2.0", Notice: "Welcome.", Value: json.RawMessage(`"done"`)}, versions{"ops@1.2.0": templatedOps(t, "1.2.0")}, render.FormatText).Rendered
		if got.Text != "Welcome.\n\ndone" {
			t.Fatalf("rendered %q", got.Text)
		}
	})
}

func TestADenialNamesTheCommandItDenied(t *testing.T) {
	t.Parallel()
	// Given U2 may not deploy, when U2 asks to, then the reply is about
	// ops:deploy, so the command's bundle can show the denial.
	reply := wantReply(t, given(t).then(received("U2", "ops:deploy staging")))
	if reply.Command != "ops:deploy" || reply.Problem == nil || reply.Problem.Status != StatusDenied {
		t.Fatalf("reply %+v", reply)
	}
}

func TestTheReplyRecordKeepsWhatWasPostedAndWhereItsTemplateCameFrom(t *testing.T) {
	t.Parallel()
	src := versions{"ops@1.2.0": templatedOps(t, "1.2.0")}
	reply := RenderReply(completedWith(t, `[{"name": "web", "state": "up"}]`, "status"), src, render.FormatIRC)
	posted := NewReplyPosted(reply, "ops", "m1")
	if posted.Rendered != "\x02Status (1.2.0):\x02\n\n• web is up" || posted.Format != "irc" || posted.Template != "status" ||
		posted.Bundle != "ops" || posted.BundleVersion != "1.2.0" || posted.Source != SourceBundle || posted.Room != "ops" || posted.MessageID != "m1" {
		t.Fatalf("record %+v", posted)
	}
	t.Run("a rendering over the record's bound is cut, and says so", func(t *testing.T) {
		t.Parallel()
		big := reply
		big.Rendered = &Rendered{Format: render.FormatText, Recorded: strings.Repeat("é", MaxRecordedRender)}
		p := NewReplyPosted(big, "ops", "")
		if len(p.Rendered) > MaxRecordedRender+100 || !strings.Contains(p.Rendered, "[recorded text cut at") {
			t.Fatalf("record of %d bytes ending %q", len(p.Rendered), p.Rendered[len(p.Rendered)-60:])
		}
	})
}

func TestAReplyWhoseOutputWasCutEndsWithTheNoticeOnEveryProvider(t *testing.T) {
	t.Parallel()
	link := "https://logbook.example/runs/r1/transcript"
	cases := []struct {
		name   string
		reply  Reply
		format render.Format
		ending string
	}{
		{"Slack links the transcript", Reply{Value: json.RawMessage(`"1\n2"`), CutRunID: "r1", Transcript: link}, render.FormatSlack,
			"[output cut: this is its start; the whole transcript: <" + link + "|" + link + ">]"},
		{"IRC shows its address", Reply{Value: json.RawMessage(`"1\n2"`), CutRunID: "r1", Transcript: link}, render.FormatIRC,
			"[output cut: this is its start; the whole transcript: " + link + "]"},
		{"without an address, the command that prints it", Reply{Value: json.RawMessage(`"1\n2"`), CutRunID: "r1"}, render.FormatText,
			"[output cut: this is its start; the whole transcript: logbook transcript r1]"},
		{"a failed run's cut output says so too", Reply{Value: json.RawMessage(`"boom"`), CutRunID: "r1", Transcript: link,
			Problem: &Problem{Status: StatusFailed, Title: "Failed", Message: "exit status 1", Output: []string{"boom"}}}, render.FormatText,
			"[output cut: this is its start; the whole transcript: " + link + "]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := RenderReply(tc.reply, nil, tc.format).Rendered.Text; !strings.HasSuffix(got, tc.ending) {
				t.Fatalf("rendered %q, want it to end with %q", got, tc.ending)
			}
		})
	}
}
