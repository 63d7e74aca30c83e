package chat

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/pipeline"
)

var ops = dispatch.Destination{Kind: pipeline.DestinationRoom, Name: "ops"}

func TestPlanShortReplyIsOnePart(t *testing.T) {
	// Given a reply that fits one message
	reply := dispatch.Reply{Adapter: "slack", Text: "hello", Thread: "1700000000.000100", Failed: true}
	// When it is planned
	parts := Plan("r1", reply, Limits{MaxMessageBytes: 100, MaxParts: 3}, "http://x/runs/a/transcript")
	// Then it is one part carrying the thread, the failure mark and no link
	if len(parts) != 1 {
		t.Fatalf("parts = %+v, want one", parts)
	}
	p := parts[0]
	if p.Text != "hello" || p.Index != 0 || p.Count != 1 || p.Thread != reply.Thread || !p.Failed || p.Link != "" || p.Attachment || p.RequestID != "r1" {
		t.Fatalf("part = %+v", p)
	}
}

func TestPlanLongReplyIsNumberedParts(t *testing.T) {
	// Given a reply of three lines of 8 bytes and a limit of 10 bytes
	reply := dispatch.Reply{Text: "aaaaaaaa\nbbbbbbbb\ncccccccc"}
	// When it is planned with room for 3 parts
	parts := Plan("r1", reply, Limits{MaxMessageBytes: 10, MaxParts: 3}, "")
	// Then each line is a part, numbered in order
	want := []string{"aaaaaaaa", "bbbbbbbb", "cccccccc"}
	if len(parts) != len(want) {
		t.Fatalf("parts = %+v", parts)
	}
	for i, p := range parts {
		if p.Text != want[i] || p.Index != i || p.Count != 3 {
			t.Fatalf("part %d = %+v, want text %q of 3", i, p, want[i])
		}
	}
}

func TestPlanBeyondMaxPartsUploadsAFile(t *testing.T) {
	// Given a provider that uploads files and a reply of 5 parts' worth
	reply := dispatch.Reply{Text: strings.Repeat("line of output\n", 20)}
	limits := Limits{MaxMessageBytes: 64, MaxParts: 2, UploadFiles: true}
	// When it is planned
	parts := Plan("req-9", reply, limits, "http://logbook/runs/x/transcript")
	// Then the whole text is one attachment named after the request, with the link
	if len(parts) != 1 || !parts[0].Attachment || parts[0].Text != reply.Text ||
		parts[0].AttachmentName != "logbook-req-9.txt" || parts[0].Link == "" || parts[0].Count != 1 {
		t.Fatalf("parts = %+v", parts)
	}
}

func TestPlanBeyondMaxPartsWithoutFilesCutsWithALink(t *testing.T) {
	// Given a provider without files and a reply far over its limits
	reply := dispatch.Reply{Text: strings.Repeat("0123456789 ", 100)}
	limits := Limits{MaxMessageBytes: 120, MaxParts: 3}
	link := "http://logbook/runs/x/transcript"
	// When it is planned
	parts := Plan("r", reply, limits, link)
	// Then there are MaxParts parts, each within the limit, and the last
	// says how much was cut and links the transcript
	if len(parts) != 3 {
		t.Fatalf("got %d parts, want 3", len(parts))
	}
	shown := 0
	for _, p := range parts {
		if len(p.Text) > limits.MaxMessageBytes {
			t.Fatalf("part %d has %d bytes, over %d: %q", p.Index, len(p.Text), limits.MaxMessageBytes, p.Text)
		}
		shown += len(p.Text)
	}
	last := parts[2]
	if !strings.Contains(last.Text, "[output cut: ") || !strings.Contains(last.Text, link) || last.Link != link {
		t.Fatalf("last part = %q (link %q), want the cut notice with the link", last.Text, last.Link)
	}
	if parts[0].Link != "" {
		t.Fatal("only the cut part carries the link")
	}
}

func TestDeliveryNextPostsInOrderAndResumesAfterPosted(t *testing.T) {
	// Given part 0 posted and part 1 attempted without an outcome
	d := NewDelivery()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d.Apply(ReplyPartAttempted{To: ops, Part: 0, Count: 3, At: at})
	d.Apply(ReplyPartPosted{To: ops, Part: 0, Count: 3, MessageID: "m0"})
	d.Apply(ReplyPartAttempted{To: ops, Part: 1, Count: 3, At: at.Add(time.Second)})
	// When the next step is asked
	step := d.Next(ops, 3)
	// Then part 1 is next, and it must be looked up before posting again
	if step != (Step{Part: 1, Lookup: true}) {
		t.Fatalf("step = %+v", step)
	}
	if d.AttemptedAt(ops, 1) != at.Add(time.Second) || d.MessageID(ops) != "m0" {
		t.Fatalf("attempted at %v, message id %q", d.AttemptedAt(ops, 1), d.MessageID(ops))
	}
	// And another destination is untouched
	other := dispatch.Destination{Kind: pipeline.DestinationUser, Name: "U1"}
	if step := d.Next(other, 3); step != (Step{Part: 0}) {
		t.Fatalf("other destination step = %+v", step)
	}
}

func TestDeliveryAllPostedIsDone(t *testing.T) {
	d := NewDelivery()
	for i := range 2 {
		d.Apply(ReplyPartPosted{To: ops, Part: i, Count: 2})
	}
	// An attempt recorded again after the post does not reopen the part.
	d.Apply(ReplyPartAttempted{To: ops, Part: 1, Count: 2})
	if step := d.Next(ops, 2); !step.Done {
		t.Fatalf("step = %+v, want done", step)
	}
}

func TestDeliveryFailedPartEndsTheDestination(t *testing.T) {
	// Given part 0 refused for good
	d := NewDelivery()
	d.Apply(ReplyPartAttempted{To: ops, Part: 0, Count: 2})
	d.Apply(ReplyPartFailed{To: ops, Part: 0, Count: 2, Error: "channel_not_found"})
	// Then nothing more is posted there, and a late "posted" does not undo it
	d.Apply(ReplyPartPosted{To: ops, Part: 0, Count: 2})
	if step := d.Next(ops, 2); !step.Done || d.State(ops, 0) != PartFailed {
		t.Fatalf("step = %+v, state = %v", step, d.State(ops, 0))
	}
}

// FuzzPlan: whatever the text and limits, the plan has parts numbered
// 0..n-1, each within the byte limit unless it is an attachment, no more
// than MaxParts, and without a cut it gives the text back.
func TestPlanBeyondMaxLinesWithoutFilesCutsWithALink(t *testing.T) {
	// Given a provider that posts every line as a message, and 1,000 short lines
	var b strings.Builder
	for i := 1; i <= 1000; i++ {
		fmt.Fprintf(&b, "%d\n", i)
	}
	reply := dispatch.Reply{Text: strings.TrimSuffix(b.String(), "\n")}
	limits := Limits{MaxMessageBytes: 400, MaxParts: 10, MaxLines: 20}
	link := "http://logbook/runs/x/transcript"
	// When it is planned
	parts := Plan("r", reply, limits, link)
	// Then the reply shows 19 lines of output and a last line that says
	// how much was cut and links the transcript
	var shown []string
	for _, p := range parts {
		shown = append(shown, strings.Split(p.Text, "\n")...)
	}
	if len(shown) != 20 {
		t.Fatalf("reply shows %d lines, want 20: %q", len(shown), shown)
	}
	if shown[18] != "19" {
		t.Fatalf("line 19 is %q, want 19", shown[18])
	}
	wantLeft := len(reply.Text) - len("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n16\n17\n18\n19\n")
	if want := cutNotice(wantLeft, link); shown[19] != want {
		t.Fatalf("last line %q, want %q", shown[19], want)
	}
	if parts[len(parts)-1].Link != link {
		t.Fatalf("the last part does not carry the link: %+v", parts[len(parts)-1])
	}
}

func TestPlanBeyondMaxLinesWithFilesUploads(t *testing.T) {
	// Given a provider that uploads files and more lines than it posts
	reply := dispatch.Reply{Text: strings.Repeat("x\n", 50)}
	// When it is planned
	parts := Plan("r", reply, Limits{MaxMessageBytes: 4000, MaxParts: 4, MaxLines: 30, UploadFiles: true}, "")
	// Then it is one attachment with the whole text
	if len(parts) != 1 || !parts[0].Attachment || parts[0].Text != reply.Text {
		t.Fatalf("parts = %+v", parts)
	}
}

func TestFirstLines(t *testing.T) {
	for _, c := range []struct {
		text string
		n    int
		want string
	}{{"a\nb\nc", 1, "a"}, {"a\nb\nc", 2, "a\nb"}, {"a\nb\nc", 3, "a\nb\nc"}, {"a\nb", 5, "a\nb"}, {"a", 0, ""}, {"\n\n", 2, "\n"}} {
		if got := firstLines(c.text, c.n); got != c.want {
			t.Errorf("firstLines(%q, %d) = %q, want %q", c.text, c.n, got, c.want)
		}
	}
}

func FuzzPlan(f *testing.F) {
	f.Add("hello", 10, 3, false)
	f.Add(strings.Repeat("word ", 200), 50, 2, false)
	f.Add(strings.Repeat("line\n", 200), 40, 4, true)
	f.Add("héllo wörld ✓✓✓", 5, 0, false)
	f.Fuzz(func(t *testing.T, text string, maxBytes, maxParts int, upload bool) {
		if maxBytes < 0 || maxBytes > 1<<16 || maxParts < 0 || maxParts > 64 {
			return
		}
		// The line bound rides on the part bound, so the seeds cover it too.
		maxLines := 0
		if maxParts%2 == 1 {
			maxLines = maxParts + 1
		}
		limits := Limits{MaxMessageBytes: maxBytes, MaxParts: maxParts, MaxLines: maxLines, UploadFiles: upload}
		link := "http://logbook/runs/r/transcript"
		parts := Plan("r", dispatch.Reply{Text: text}, limits, link)
		if len(parts) == 0 {
			t.Fatal("no parts")
		}
		if maxParts > 0 && len(parts) > maxParts {
			t.Fatalf("%d parts, over MaxParts %d", len(parts), maxParts)
		}
		if lines := 0; maxLines > 0 && !parts[0].Attachment {
			for _, p := range parts {
				lines += lineCount(p.Text)
			}
			if lines > maxLines {
				t.Fatalf("%d lines, over MaxLines %d", lines, maxLines)
			}
		}
		cut := false
		for i, p := range parts {
			if p.Index != i || p.Count != len(parts) {
				t.Fatalf("part %d numbered %d of %d", i, p.Index, p.Count)
			}
			if p.Attachment {
				if p.Text != text {
					t.Fatal("an attachment holds less than the whole text")
				}
				continue
			}
			limit := max(maxBytes, 4)
			noticeRoom := len(cutNotice(len(text), link)) + 1
			if maxBytes > 0 && len(p.Text) > limit && len(p.Text) > noticeRoom+utf8Max {
				t.Fatalf("part %d has %d bytes, over %d", i, len(p.Text), limit)
			}
			cut = cut || p.Link != ""
		}
		if !cut && !parts[0].Attachment {
			var b strings.Builder
			for _, p := range parts {
				b.WriteString(p.Text)
			}
			if strings.ReplaceAll(b.String(), "\n", "") != strings.ReplaceAll(text, "\n", "") {
				t.Fatal("parts do not give the text back")
			}
		}
	})
}

const utf8Max = 4

func TestANoticesDeliveriesAreFoldedApartFromTheReplys(t *testing.T) {
	// Given the approval notice posted to #ops and the reply attempted there
	events := []domain.Payload{
		ReplyPartAttempted{Notice: dispatch.ApprovalNoticeKey, Adapter: "slack", To: ops, Part: 0, Count: 1},
		ReplyPartPosted{Notice: dispatch.ApprovalNoticeKey, Adapter: "slack", To: ops, Part: 0, Count: 1, MessageID: "n1"},
		ReplyPartAttempted{Adapter: "slack", To: ops, Part: 0, Count: 2},
	}
	reply, notice := NewDelivery(), NewNoticeDelivery(dispatch.ApprovalNoticeKey)
	for _, e := range events {
		reply.Apply(e)
		notice.Apply(e)
	}
	// Then each message's fold sees only its own parts
	if got := notice.Next(ops, 1); !got.Done || notice.MessageID(ops) != "n1" {
		t.Fatalf("notice: %+v, message %q", got, notice.MessageID(ops))
	}
	if got := reply.Next(ops, 2); got.Done || got.Part != 0 || !got.Lookup || reply.MessageID(ops) != "" {
		t.Fatalf("reply: %+v", got)
	}
}

func TestAPlannedNoticeCarriesItsKeyAndTheRequestToAnswer(t *testing.T) {
	n := dispatch.Notice{Key: "approval", Reply: dispatch.Reply{Adapter: "slack", To: []dispatch.Destination{ops}, Text: "alice asks", Approval: "req-1"}}
	parts := PlanNotice("req-1", n, Limits{MaxMessageBytes: 100, MaxParts: 2})
	if len(parts) != 1 || parts[0].Notice != "approval" || parts[0].Approval != "req-1" || parts[0].Text != "alice asks" {
		t.Fatalf("parts = %+v", parts)
	}
}
