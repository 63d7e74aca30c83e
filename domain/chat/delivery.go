package chat

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/template/render"
)

// Delivery events live in the request stream, next to ReplyPosted, which
// the runner records once every part of every destination is settled.
//
// A part's life: ReplyPartAttempted is recorded before the provider is
// asked to post it, ReplyPartPosted after the provider said it did (or
// after a provider that can look found it already posted), and
// ReplyPartFailed when the provider refused it for good. A part attempted
// but not posted is the window of doubt: it may or may not be in the room.

// ReplyPartAttempted records that a part is about to be posted.
type ReplyPartAttempted struct {
	// Notice is the key of the notice the part belongs to, "" for the
	// reply (as in every delivery event).
	Notice  string               `json:"notice,omitempty"`
	Adapter string               `json:"adapter"`
	To      dispatch.Destination `json:"to"`
	Part    int                  `json:"part"`
	Count   int                  `json:"count"`
	At      time.Time            `json:"at"` // before the post: a lookup searches from here
}

// ReplyPartPosted records that a part is in the room.
type ReplyPartPosted struct {
	Notice    string               `json:"notice,omitempty"`
	Adapter   string               `json:"adapter"`
	To        dispatch.Destination `json:"to"`
	Part      int                  `json:"part"`
	Count     int                  `json:"count"`
	MessageID string               `json:"message_id,omitempty"`
	// Found is true when the part was not posted again because the
	// provider found it posted by an attempt whose result went unrecorded.
	Found bool `json:"found,omitempty"`
}

// ReplyPartFailed records a part the provider refused for good (an unknown
// channel, a message it will never accept). The destination's later parts
// are not posted.
type ReplyPartFailed struct {
	Notice  string               `json:"notice,omitempty"`
	Adapter string               `json:"adapter"`
	To      dispatch.Destination `json:"to"`
	Part    int                  `json:"part"`
	Count   int                  `json:"count"`
	Error   string               `json:"error"`
}

func (ReplyPartAttempted) EventType() string { return "ReplyPartAttempted" }
func (ReplyPartPosted) EventType() string    { return "ReplyPartPosted" }
func (ReplyPartFailed) EventType() string    { return "ReplyPartFailed" }

func init() {
	domain.Register[ReplyPartAttempted]()
	domain.Register[ReplyPartPosted]()
	domain.Register[ReplyPartFailed]()
}

// PartFinder is a Provider that can say whether a part is already posted,
// by looking in the room (Slack: message metadata in the channel history).
// The runner asks before posting again a part that was attempted but not
// recorded as posted, so that such a part is not posted twice.
type PartFinder interface {
	FindPart(ctx context.Context, to dispatch.Destination, p Part, since time.Time) (messageID string, found bool, err error)
}

// PartState is where one part of a reply to one destination stands.
type PartState int

const (
	PartPending   PartState = iota // nothing recorded: never handed to the provider
	PartAttempted                  // handed to the provider; the outcome is not recorded
	PartPosted                     // in the room
	PartFailed                     // refused for good
)

func (s PartState) String() string {
	return [...]string{"pending", "attempted", "posted", "failed"}[s]
}

type partKey struct {
	to   dispatch.Destination
	part int
}

// Delivery is the fold of a request's delivery events of one message (the
// reply, or one notice): which parts stand where. Build it with
// NewDelivery or NewNoticeDelivery; it is not safe for concurrent use.
type Delivery struct {
	notice    string
	parts     map[partKey]PartState
	attempted map[partKey]time.Time
	messageID map[dispatch.Destination]string // of each destination's first part
}

// NewDelivery starts an empty fold of the reply's deliveries.
func NewDelivery() *Delivery { return NewNoticeDelivery("") }

// NewNoticeDelivery starts an empty fold of the deliveries of the notice
// keyed notice ("" is the reply).
func NewNoticeDelivery(notice string) *Delivery {
	return &Delivery{notice: notice, parts: map[partKey]PartState{}, attempted: map[partKey]time.Time{}, messageID: map[dispatch.Destination]string{}}
}

// Apply folds one event; others, and those of other messages, are
// ignored. A later state never goes back to an earlier one (an attempt
// recorded again after a post changes nothing).
func (d *Delivery) Apply(p domain.Payload) {
	switch e := p.(type) {
	case ReplyPartAttempted:
		if e.Notice != d.notice {
			return
		}
		k := partKey{e.To, e.Part}
		if d.parts[k] == PartPending {
			d.parts[k] = PartAttempted
			d.attempted[k] = e.At
		}
	case ReplyPartPosted:
		if e.Notice != d.notice {
			return
		}
		k := partKey{e.To, e.Part}
		if d.parts[k] != PartFailed {
			d.parts[k] = PartPosted
			if e.Part == 0 && e.MessageID != "" {
				d.messageID[e.To] = e.MessageID
			}
		}
	case ReplyPartFailed:
		if e.Notice != d.notice {
			return
		}
		k := partKey{e.To, e.Part}
		if d.parts[k] != PartPosted {
			d.parts[k] = PartFailed
		}
	}
}

// State says where part stands for destination to.
func (d *Delivery) State(to dispatch.Destination, part int) PartState {
	return d.parts[partKey{to, part}]
}

// AttemptedAt is when part was first attempted (zero if never).
func (d *Delivery) AttemptedAt(to dispatch.Destination, part int) time.Time {
	return d.attempted[partKey{to, part}]
}

// MessageID is the provider's id of the first part posted to to.
func (d *Delivery) MessageID(to dispatch.Destination) string { return d.messageID[to] }

// Step is what to do next for a destination whose reply has count parts.
type Step struct {
	Done bool // every part is posted, or one failed: nothing more to do
	Part int  // the next part to handle, when not Done
	// Lookup is true when the part was attempted without its outcome being
	// recorded: ask a PartFinder before posting it again.
	Lookup bool
}

// Next decides the next step for a destination: the first part not
// posted, in order, so parts arrive in the room in their order.
func (d *Delivery) Next(to dispatch.Destination, count int) Step {
	for i := range count {
		switch d.State(to, i) {
		case PartPosted:
			continue
		case PartFailed:
			return Step{Done: true}
		case PartAttempted:
			return Step{Part: i, Lookup: true}
		default:
			return Step{Part: i}
		}
	}
	return Step{Done: true}
}

// Plan cuts a reply into the parts one destination receives, by the
// provider's limits. Up to MaxParts parts are posted as they are; beyond,
// the whole text goes as one file when the provider uploads files, else
// the last part is cut short and ends with a notice naming how much was
// left out and the link to the whole transcript (when there is one). The
// plan is a pure function of its inputs, so a runner that restarts plans
// the same parts again.
//
// A rendered reply (reply.Rendered) is planned from its rendered text,
// its parts marked Formatted; its attachments follow the text, as many in
// a part as its byte budget and maxAttachmentsPerPart allow, and count
// toward MaxParts. A file holds the reply's plain text, where markup would
// not render. A Slack code block cut between two parts is closed at the
// end of the first and opened again in the second.
func Plan(requestID string, reply dispatch.Reply, limits Limits, link string) []Part {
	base := Part{RequestID: requestID, Thread: reply.Thread, Failed: reply.Failed, Approval: reply.Approval}
	text, plain := reply.Text, reply.Text
	var attachments []render.Attachment
	fences := false
	if rr := reply.Rendered; rr != nil {
		text, plain, attachments = rr.Text, rr.Plain, rr.Attachments
		base.Formatted = true
		fences = rr.Format == render.FormatSlack
	}
	maxBytes := limits.MaxMessageBytes
	if maxBytes <= 0 {
		maxBytes = len(text) + 1
	}
	splitAt := maxBytes
	if fences {
		splitAt = max(maxBytes-len(fenceOpen)-len(fenceClose), 1)
	}
	pieces := Split(text, splitAt)
	if fences {
		pieces = balanceFences(pieces)
	}
	if text == "" && len(attachments) > 0 {
		pieces = nil
	}
	grouped := groupAttachments(pieces, attachments, maxBytes)
	overParts := limits.MaxParts > 0 && len(grouped) > limits.MaxParts
	overLines := limits.MaxLines > 0 && lineCount(text) > limits.MaxLines
	if !overParts && !overLines {
		return numberedWith(base, grouped, link, false)
	}
	if limits.UploadFiles {
		p := base
		p.Count, p.Text, p.Link = 1, plain, link
		p.Attachment, p.AttachmentName, p.Formatted = true, AttachmentName(requestID), false
		return []Part{p}
	}
	// Keep what fits in all parts but the last and all lines but the last;
	// the last part holds what still fits and the notice of the cut.
	var kept []string
	linesLeft := limits.MaxLines - 1
	for _, piece := range pieces {
		if limits.MaxParts > 0 && len(kept) == limits.MaxParts-1 {
			break
		}
		if limits.MaxLines > 0 {
			if linesLeft <= 0 {
				break
			}
			if n := lineCount(piece); n > linesLeft {
				kept = append(kept, firstLines(piece, linesLeft))
				linesLeft = 0
				break
			} else {
				linesLeft -= n
			}
		}
		kept = append(kept, piece)
	}
	rest := text[min(offsetAfter(text, kept), len(text)):]
	// The last part leaves room for the notice; the notice's byte count is
	// computed on the longest it can be, so the cut holds.
	notice := cutNotice(len(rest), link)
	lastPiece := ""
	if limits.MaxLines <= 0 || linesLeft > 0 {
		lastPiece = Split(rest, max(maxBytes-len(notice)-1, 1))[0]
		if limits.MaxLines > 0 {
			lastPiece = firstLines(lastPiece, linesLeft)
		}
	}
	left := len(rest) - len(lastPiece)
	if lastPiece != "" && left > 0 && rest[len(lastPiece)] == '\n' {
		left-- // the break the cut dropped is not output left out
	}
	last := cutNotice(left, link)
	if lastPiece != "" {
		last = lastPiece + "\n" + last
	}
	return numbered(base, append(kept, last), link, true)
}

// PlanNotice cuts a notice into parts as Plan cuts a reply, each part
// marked with the notice's key.
func PlanNotice(requestID string, n dispatch.Notice, limits Limits) []Part {
	parts := Plan(requestID, n.Reply, limits, "")
	for i := range parts {
		parts[i].Notice = n.Key
	}
	return parts
}

// maxAttachmentsPerPart: Slack shows at most 20 attachments a message
// without folding them away.
const maxAttachmentsPerPart = 20

// partContent is one part's text and attachments before numbering.
type partContent struct {
	text        string
	attachments []render.Attachment
}

// groupAttachments puts the attachments after the text: into the last
// text part while its byte budget and the per-part count allow, then into
// parts of their own.
func groupAttachments(pieces []string, attachments []render.Attachment, maxBytes int) []partContent {
	parts := make([]partContent, len(pieces))
	for i, p := range pieces {
		parts[i] = partContent{text: p}
	}
	if len(parts) == 0 && len(attachments) == 0 {
		return []partContent{{}}
	}
	for _, a := range attachments {
		n := len(parts) - 1
		if n < 0 || len(parts[n].attachments) >= maxAttachmentsPerPart || partSize(parts[n])+a.Size() > maxBytes && partSize(parts[n]) > 0 {
			parts = append(parts, partContent{})
			n++
		}
		parts[n].attachments = append(parts[n].attachments, a)
	}
	return parts
}

func partSize(p partContent) int {
	n := len(p.text)
	for _, a := range p.attachments {
		n += a.Size()
	}
	return n
}

const (
	fenceOpen  = "```\n"
	fenceClose = "\n```"
)

// balanceFences closes a Slack code block a cut left open at the end of a
// piece and opens it again at the start of the next.
func balanceFences(pieces []string) []string {
	open := false
	for i, p := range pieces {
		reopened := open
		for _, line := range strings.Split(p, "\n") {
			if strings.HasPrefix(line, "```") {
				open = !open
				if strings.Count(line, "```") > 1 { // ```x``` opens and closes
					open = !open
				}
			}
		}
		if reopened {
			p = fenceOpen + p
		}
		if open {
			p += fenceClose
		}
		pieces[i] = p
	}
	return pieces
}

// lineCount is how many lines text shows: one more than its line breaks.
func lineCount(text string) int { return strings.Count(text, "\n") + 1 }

// firstLines is text up to (not including) the break that ends its n-th
// line; all of text when it has n lines or fewer.
func firstLines(text string, n int) string {
	if n <= 0 {
		return ""
	}
	end := -1
	for range n {
		j := strings.IndexByte(text[end+1:], '\n')
		if j < 0 {
			return text
		}
		end += 1 + j
	}
	return text[:end]
}

func numbered(base Part, texts []string, link string, cut bool) []Part {
	contents := make([]partContent, len(texts))
	for i, t := range texts {
		contents[i] = partContent{text: t}
	}
	return numberedWith(base, contents, link, cut)
}

func numberedWith(base Part, contents []partContent, link string, cut bool) []Part {
	parts := make([]Part, len(contents))
	for i, c := range contents {
		p := base
		p.Index, p.Count, p.Text, p.Attachments = i, len(contents), c.text, c.attachments
		if cut && i == len(contents)-1 {
			p.Link = link
		}
		parts[i] = p
	}
	return parts
}

// offsetAfter is where the text continues after the pieces Split made of
// it (a piece that ended at a line break dropped that break).
func offsetAfter(text string, pieces []string) int {
	off := 0
	for _, p := range pieces {
		off += len(p)
		if off < len(text) && text[off] == '\n' {
			off++
		}
	}
	return off
}

func cutNotice(leftOut int, link string) string {
	if link == "" {
		return fmt.Sprintf("[output cut: %d more bytes not shown]", leftOut)
	}
	return fmt.Sprintf("[output cut: %d more bytes; the whole transcript: %s]", leftOut, link)
}

// AttachmentName names the file a reply is uploaded as: unique per request,
// so a provider can find it again.
func AttachmentName(requestID string) string {
	return "logbook-" + requestID + ".txt"
}
