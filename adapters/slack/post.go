package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/pipeline"
	"github.com/logbookhq/logbook/domain/template/render"
)

// metadataType marks the messages that carry a reply part, so that a part
// whose post went unrecorded can be found in the channel's history.
const metadataType = "logbook_reply_part"

// maxRateLimitWaits is how many 429s one Post sits out (each for its
// Retry-After) before it hands the part back to be retried later.
const maxRateLimitWaits = 3

// Post implements chat.Provider: chat.postMessage (or a file upload for an
// attachment part), one channel at the pace Slack allows, waiting out a
// 429's Retry-After.
func (p *Provider) Post(ctx context.Context, to dispatch.Destination, part chat.Part) (string, error) {
	channel, err := p.channelFor(ctx, to)
	if err != nil {
		return "", err
	}
	for waits := 0; ; waits++ {
		if err := p.paced(ctx, channel); err != nil {
			return "", fmt.Errorf("slack: waiting to post to %s: %w", to.Name, err)
		}
		var id string
		if part.Attachment {
			id, err = p.upload(ctx, channel, part)
		} else {
			id, err = p.postMessage(ctx, channel, part)
		}
		var limited *slack.RateLimitedError
		if errors.As(err, &limited) && waits < maxRateLimitWaits {
			p.log.Warn().Str("channel", channel).Dur("retry_after", limited.RetryAfter).Str("request_id", part.RequestID).Msg("Slack rate-limited a post; waiting as it asks")
			p.holdOff(channel, limited.RetryAfter)
			continue
		}
		if err != nil {
			return "", classify("posting to "+to.Name, err)
		}
		return id, nil
	}
}

func (p *Provider) postMessage(ctx context.Context, channel string, part chat.Part) (string, error) {
	payload := map[string]any{"request_id": part.RequestID, "part": part.Index, "count": part.Count}
	if part.Notice != "" {
		payload["notice"] = part.Notice
	}
	text := formatText(part)
	opts := []slack.MsgOption{
		slack.MsgOptionText(text, false),
		slack.MsgOptionDisableLinkUnfurl(),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: metadataType, EventPayload: payload}),
	}
	if part.Approval != "" && part.Index == part.Count-1 {
		opts = append(opts, slack.MsgOptionBlocks(approvalBlocks(text, part.Approval)...))
	}
	if len(part.Attachments) > 0 {
		opts = append(opts, slack.MsgOptionAttachments(attachments(part.Attachments)...))
	}
	if part.Thread != "" {
		opts = append(opts, slack.MsgOptionTS(part.Thread))
	}
	_, ts, err := p.api.PostMessageContext(ctx, channel, opts...)
	return ts, err
}

// upload sends the whole reply as a file (files.getUploadURLExternal, the
// upload, files.completeUploadExternal) with a comment linking the
// transcript.
func (p *Provider) upload(ctx context.Context, channel string, part chat.Part) (string, error) {
	comment := fmt.Sprintf("The output is %d bytes, too long for messages: attached as a file.", len(part.Text))
	if part.Link != "" {
		comment += " The whole transcript: " + part.Link
	}
	text := part.Text
	if text == "" {
		text = dispatch.NoOutput
	}
	file, err := p.api.UploadFileContext(ctx, slack.UploadFileParameters{
		Channel: channel, Content: text, FileSize: len(text), Filename: part.AttachmentName,
		Title: part.AttachmentName, InitialComment: comment, ThreadTimestamp: part.Thread,
	})
	if err != nil {
		return "", err
	}
	return file.ID, nil
}

// FindPart implements chat.PartFinder: it reads the channel (or the
// thread) from shortly before the attempt for a message carrying the
// part's metadata, or the file an attachment part was uploaded as.
func (p *Provider) FindPart(ctx context.Context, to dispatch.Destination, part chat.Part, since time.Time) (string, bool, error) {
	channel, err := p.channelFor(ctx, to)
	if err != nil {
		return "", false, err
	}
	oldest := ""
	if !since.IsZero() {
		// Slack's clock and ours may differ a little.
		oldest = slackTS(since.Add(-time.Minute))
	}
	cursor := ""
	for page := 0; page < 20; page++ {
		var msgs []slack.Message
		var more bool
		if part.Thread != "" {
			var next string
			msgs, more, next, err = p.api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
				ChannelID: channel, Timestamp: part.Thread, Oldest: oldest, Cursor: cursor, Limit: 200, IncludeAllMetadata: true,
			})
			cursor = next
		} else {
			var res *slack.GetConversationHistoryResponse
			res, err = p.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
				ChannelID: channel, Oldest: oldest, Cursor: cursor, Limit: 200, IncludeAllMetadata: true,
			})
			if res != nil {
				msgs, more, cursor = res.Messages, res.HasMore, res.ResponseMetaData.NextCursor
			}
		}
		if err != nil {
			return "", false, classify("looking for a posted part in "+to.Name, err)
		}
		for _, m := range msgs {
			if id, ok := matchPart(m, part); ok {
				return id, true, nil
			}
		}
		if !more || cursor == "" {
			return "", false, nil
		}
	}
	return "", false, nil
}

// Action ids of the approval buttons; their value is the request's id.
const (
	ActionApprove = "logbook_approve"
	ActionReject  = "logbook_reject"
)

// approvalBlocks shows an approval request's text with approve and reject
// buttons; the text stays the message's fallback.
func approvalBlocks(text, requestID string) []slack.Block {
	if len(text) > maxSectionText {
		text = text[:maxSectionText-1] + "…"
	}
	approve := slack.NewButtonBlockElement(ActionApprove, requestID, slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false))
	approve.Style = slack.StylePrimary
	reject := slack.NewButtonBlockElement(ActionReject, requestID, slack.NewTextBlockObject(slack.PlainTextType, "Reject", false, false))
	reject.Style = slack.StyleDanger
	return []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil),
		slack.NewActionBlock("logbook_approval", approve, reject),
	}
}

// maxSectionText is the most text a section block holds.
const maxSectionText = 3000

// matchPart says whether a message from the history is the part.
func matchPart(m slack.Message, part chat.Part) (string, bool) {
	if part.Attachment {
		for _, f := range m.Files {
			if f.Name == part.AttachmentName || f.Title == part.AttachmentName {
				return f.ID, true
			}
		}
		return "", false
	}
	md := m.Metadata
	if md.EventType != metadataType || md.EventPayload["request_id"] != part.RequestID {
		return "", false
	}
	// A notice's parts and the reply's share the request id.
	if notice, _ := md.EventPayload["notice"].(string); notice != part.Notice {
		return "", false
	}
	switch index := md.EventPayload["part"].(type) {
	case float64:
		return m.Timestamp, int(index) == part.Index
	case string:
		n, err := strconv.Atoi(index)
		return m.Timestamp, err == nil && n == part.Index
	}
	return "", false
}

// channelFor is the channel id to post a destination to: a channel by
// name or id, or a person's direct message (conversations.open).
func (p *Provider) channelFor(ctx context.Context, to dispatch.Destination) (string, error) {
	name := strings.TrimPrefix(to.Name, "#")
	if to.Kind == pipeline.DestinationURL {
		return "", fmt.Errorf("slack cannot post to a URL (%s): %w", to.Name, chat.ErrUnknownRoom)
	}
	if isUserID(name) {
		return p.directChannel(ctx, name)
	}
	if to.Kind == pipeline.DestinationUser {
		u, err := p.LookupUser(ctx, name)
		if err != nil {
			return "", err
		}
		return p.directChannel(ctx, u.Handle)
	}
	if isSlackID(name) {
		return name, nil
	}
	room, err := p.LookupRoom(ctx, name)
	if err != nil {
		return "", err
	}
	return room.ID, nil
}

func (p *Provider) directChannel(ctx context.Context, user string) (string, error) {
	p.mu.RLock()
	id, ok := p.ims[user]
	p.mu.RUnlock()
	if ok {
		return id, nil
	}
	ch, _, _, err := p.api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{user}, ReturnIM: true})
	if err != nil {
		if isSlackError(err, "user_not_found") {
			return "", fmt.Errorf("slack user %s: %w", user, chat.ErrUnknownUser)
		}
		return "", classify("conversations.open", err)
	}
	p.mu.Lock()
	p.ims[user] = ch.ID
	p.mu.Unlock()
	return ch.ID, nil
}

// limiter paces one channel: one post per PostInterval.
func (p *Provider) limiter(channel string) *rate.Limiter {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.limiters[channel]
	if !ok {
		l = rate.NewLimiter(rate.Every(p.cfg.PostInterval), 1)
		p.limiters[channel] = l
	}
	return l
}

// holdOff makes the channel's posts wait d (a 429's Retry-After).
func (p *Provider) holdOff(channel string, d time.Duration) {
	if d <= 0 {
		d = time.Second
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked[channel] = p.cfg.Now().Add(d)
}

// paced waits until the channel may be posted to: past any Retry-After,
// then its turn at the per-channel pace.
func (p *Provider) paced(ctx context.Context, channel string) error {
	p.mu.RLock()
	until := p.blocked[channel]
	p.mu.RUnlock()
	if wait := until.Sub(p.cfg.Now()); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return p.limiter(channel).Wait(ctx)
}

// formatText escapes what Slack would read as markup and sets multi-line
// output in a code block, so columns line up. A formatted part is mrkdwn
// rendered from a template, its data escaped already: it is posted as it
// is.
func formatText(part chat.Part) string {
	if part.Formatted {
		if part.Text == "" && len(part.Attachments) == 0 {
			return dispatch.NoOutput
		}
		return part.Text
	}
	text := slackEscaper.Replace(part.Text)
	if strings.Contains(text, "\n") {
		text = "```\n" + text + "\n```"
	}
	if text == "" {
		text = dispatch.NoOutput
	}
	return text
}

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// attachments are a part's legacy attachments, with their text, pretext
// and fields read as mrkdwn (their titles are plain text).
func attachments(as []render.Attachment) []slack.Attachment {
	out := make([]slack.Attachment, 0, len(as))
	for _, a := range as {
		sa := slack.Attachment{
			Color: a.Color, Pretext: a.Pretext, Title: a.Title, TitleLink: a.TitleLink, Text: a.Text, Fallback: a.Fallback,
			ImageURL: a.ImageURL, ThumbURL: a.ThumbURL, AuthorName: a.AuthorName, AuthorLink: a.AuthorLink,
			AuthorIcon: a.AuthorIcon, Footer: a.Footer, FooterIcon: a.FooterIcon, Ts: json.Number(a.Timestamp),
			MarkdownIn: []string{"text", "pretext", "fields"},
		}
		for _, f := range a.Fields {
			sa.Fields = append(sa.Fields, slack.AttachmentField{Title: f.Title, Value: f.Value, Short: f.Short})
		}
		out = append(out, sa)
	}
	return out
}

func slackTS(t time.Time) string {
	return fmt.Sprintf("%d.%06d", t.Unix(), t.Nanosecond()/1000)
}

// classify wraps a Web API error: what is worth retrying (a network error,
// a 5xx, a rate limit, Slack's own transient errors) wraps chat.ErrRetry;
// an unknown channel chat.ErrUnknownRoom; anything else is permanent.
func classify(what string, err error) error {
	var limited *slack.RateLimitedError
	var status slack.StatusCodeError
	var netErr net.Error
	var urlErr *url.Error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("slack %s: %w", what, err)
	case errors.As(err, &limited):
		return fmt.Errorf("slack %s: %v: %w", what, err, chat.ErrRetry)
	case errors.As(err, &status) && (status.Code >= 500 || status.Code == 429 || status.Code == 408):
		return fmt.Errorf("slack %s: %v: %w", what, err, chat.ErrRetry)
	case errors.As(err, &netErr), errors.As(err, &urlErr):
		return fmt.Errorf("slack %s: %v: %w", what, err, chat.ErrRetry)
	case isSlackError(err, "channel_not_found", "not_in_channel", "is_archived"):
		return fmt.Errorf("slack %s: %v: %w", what, err, chat.ErrUnknownRoom)
	case isSlackError(err, "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"):
		return fmt.Errorf("slack %s: %v: %w", what, err, chat.ErrRetry)
	}
	if strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "connection reset") {
		return fmt.Errorf("slack %s: %v: %w", what, err, chat.ErrRetry)
	}
	return fmt.Errorf("slack %s: %w", what, err)
}

// isSlackError reports whether err is Slack's {"ok":false,"error":code}
// for one of codes.
func isSlackError(err error, codes ...string) bool {
	var resp slack.SlackErrorResponse
	msg := err.Error()
	if errors.As(err, &resp) {
		msg = resp.Err
	}
	for _, c := range codes {
		if msg == c {
			return true
		}
	}
	return false
}
