package chat_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/template/render"
)

// slackLimits and ircLimits are the providers' (adapters/slack, adapters/irc)
// as the tests of planning need them.
var (
	slackLimits = chat.Limits{MaxMessageBytes: 3500, MaxParts: 4, UploadFiles: true}
	ircLimits   = chat.Limits{MaxMessageBytes: 400, MaxParts: 10, MaxLines: 30}
)

// renderedReply is a completed reply of output, rendered by default for f.
func renderedReply(output string, f render.Format) dispatch.Reply {
	return dispatch.RenderReply(dispatch.Reply{Value: json.RawMessage(output), Text: "raw"}, nil, f)
}

func TestARenderedReplyIsPostedAsRendered(t *testing.T) {
	t.Parallel()
	// Given a reply rendered for Slack
	reply := renderedReply(`"ready <!here>"`, render.FormatSlack)
	// When it is planned
	parts := chat.Plan("r", reply, slackLimits, "")
	// Then its one part holds the rendered text, marked formatted
	if len(parts) != 1 || !parts[0].Formatted || parts[0].Text != "ready &lt;!here&gt;" {
		t.Fatalf("parts = %+v", parts)
	}
}

func TestAttachmentsFollowTheTextWithinEachPartsBudget(t *testing.T) {
	t.Parallel()
	// Given a reply with a line of text and 45 attachments of 100 bytes
	var attachments []render.Attachment
	for range 45 {
		attachments = append(attachments, render.Attachment{Title: "t", Text: strings.Repeat("x", 99)})
	}
	reply := dispatch.Reply{Rendered: &dispatch.Rendered{Format: render.FormatSlack, Text: "Instances:", Attachments: attachments}}
	// When it is planned with room for 1,000 bytes and 10 parts
	parts := chat.Plan("r", reply, chat.Limits{MaxMessageBytes: 1000, MaxParts: 10, UploadFiles: true}, "")
	// Then the text's part takes 9 attachments, and the others 10 each
	var counts []int
	for _, p := range parts {
		counts = append(counts, len(p.Attachments))
	}
	if len(parts) != 5 || parts[0].Text != "Instances:" || counts[0] != 9 || counts[1] != 10 || counts[4] != 6 || parts[4].Count != 5 {
		t.Fatalf("attachments per part = %v, parts = %d", counts, len(parts))
	}
}

func TestAtMostTwentyAttachmentsGoInOnePart(t *testing.T) {
	t.Parallel()
	attachments := make([]render.Attachment, 25)
	reply := dispatch.Reply{Rendered: &dispatch.Rendered{Format: render.FormatSlack, Attachments: attachments}}
	parts := chat.Plan("r", reply, slackLimits, "")
	if len(parts) != 2 || len(parts[0].Attachments) != 20 || len(parts[1].Attachments) != 5 || parts[0].Text != "" {
		t.Fatalf("parts = %+v", parts)
	}
}

func TestASlackCodeBlockCutBetweenPartsIsClosedAndOpenedAgain(t *testing.T) {
	t.Parallel()
	// Given a rendered Slack code block of 30 lines of 20 bytes
	var lines []string
	for range 30 {
		lines = append(lines, strings.Repeat("x", 19))
	}
	reply := dispatch.Reply{Rendered: &dispatch.Rendered{Format: render.FormatSlack, Text: "```\n" + strings.Join(lines, "\n") + "\n```"}}
	// When it is planned into parts of 300 bytes
	parts := chat.Plan("r", reply, chat.Limits{MaxMessageBytes: 300, MaxParts: 10, UploadFiles: true}, "")
	// Then every part is a whole code block within the limit
	if len(parts) < 2 {
		t.Fatalf("expected several parts, got %+v", parts)
	}
	for _, p := range parts {
		if !strings.HasPrefix(p.Text, "```\n") || !strings.HasSuffix(p.Text, "\n```") || len(p.Text) > 300 {
			t.Fatalf("part %d is not a whole code block within 300 bytes: %q", p.Index, p.Text)
		}
	}
}

func TestTheReplyLimitsApplyToAVeryLargeRenderedList(t *testing.T) {
	t.Parallel()
	items := make([]string, 5000)
	for i := range items {
		items[i] = `{"name": "host-` + strings.Repeat("x", 20) + `", "state": "running"}`
	}
	output := "[" + strings.Join(items, ",") + "]"
	t.Run("on Slack, beyond four messages the plain text is uploaded as a file", func(t *testing.T) {
		t.Parallel()
		reply := renderedReply(output, render.FormatSlack)
		parts := chat.Plan("req", reply, slackLimits, "http://logbook/runs/r/transcript")
		if len(parts) != 1 || !parts[0].Attachment || parts[0].Formatted || strings.Contains(parts[0].Text, "```") ||
			!strings.HasPrefix(parts[0].Text, "name") || strings.Count(parts[0].Text, "\n") != 5001 {
			t.Fatalf("expected one file of the plain table (header, rule, 5000 rows), got %d parts, first %.200q", len(parts), parts[0].Text)
		}
	})
	t.Run("on IRC, the reply is cut at 30 lines with a notice", func(t *testing.T) {
		t.Parallel()
		reply := renderedReply(output, render.FormatIRC)
		parts := chat.Plan("req", reply, ircLimits, "http://logbook/runs/r/transcript")
		lines := 0
		for _, p := range parts {
			lines += strings.Count(p.Text, "\n") + 1
		}
		last := parts[len(parts)-1]
		if lines != 30 || !strings.Contains(last.Text, "[output cut:") || last.Link == "" {
			t.Fatalf("expected 30 lines ending with the cut notice, got %d lines, last part %q", lines, last.Text)
		}
	})
}
