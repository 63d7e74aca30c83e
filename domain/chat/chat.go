// Package chat is the port between Logbook and chat providers (Slack, IRC,
// the web console, the HTTP API). A provider turns the messages people type
// into Messages for the dispatcher, and posts the dispatcher's replies back.
//
// The port holds no I/O. Each provider is an adapter under adapters/; the
// server runs several at once, and a person is known on each one by a handle
// linked to their Logbook user (access.HandleLinked), so the same person may
// be "U024BE7LH" on Slack and "alice" on IRC.
package chat

import (
	"context"
	"errors"

	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/template/render"
)

// Message is one chat message addressed to Logbook, as a provider received
// it, with the command prefix or the bot's mention already stripped.
type Message struct {
	Provider  string // "slack", "irc", "web", "api"
	MessageID string // the provider's id for the message, stable across redeliveries
	Room      string // where it was typed: a channel name without its sigil; for a direct message, what posting back takes (Slack: the D… channel id; IRC: @nick, so it cannot be taken for a channel)
	User      string // the sender's handle on this provider (what handles are linked by)
	Text      string // the command text, prefix or mention stripped
	Thread    string // the thread to answer in, when the provider has threads and replies go there
	Direct    bool   // typed in a direct message to the bot
}

// Received converts the message into the dispatcher's first event.
func (m Message) Received() dispatch.RequestReceived {
	return dispatch.RequestReceived{
		Adapter: m.Provider, MessageID: m.MessageID, Room: m.Room,
		ChatUser: m.User, Text: m.Text, Thread: m.Thread,
	}
}

// Handler records a received message. It returns once the message is
// durably recorded (the RequestReceived event is in the store); an error
// means it was not, and the provider should let the message be delivered
// again where the provider can (Slack retries; IRC cannot, so it logs).
type Handler func(ctx context.Context, m Message) error

// Provider is one chat provider connection.
type Provider interface {
	// Name is the provider's adapter name, as recorded in RequestReceived
	// and used in handles ("slack", "irc").
	Name() string
	// Run connects, delivers every message addressed to the bot to h, and
	// reconnects with backoff after a disconnect, until ctx ends. It
	// returns ctx's error, or an error when the configuration can never
	// work (a rejected token).
	Run(ctx context.Context, h Handler) error
	// Post delivers one part of a reply to one destination and returns the
	// provider's id for the posted message (may be empty where the provider
	// has none, as on IRC). A Post that returns an error posted nothing the
	// caller can rely on; errors that are worth retrying wrap ErrRetry.
	Post(ctx context.Context, to dispatch.Destination, p Part) (messageID string, err error)
	// CanPost reports, from what the provider already knows (no network
	// round trip), whether the bot may post to the destination: a room it
	// has joined, a user it can message.
	CanPost(to dispatch.Destination) bool
	// Limits says how a reply has to be cut to fit.
	Limits() Limits
	// LookupUser resolves a handle (or a display name the provider
	// understands) to the user's handle and display name.
	LookupUser(ctx context.Context, nameOrHandle string) (User, error)
	// LookupRoom resolves a room name to the provider's room.
	LookupRoom(ctx context.Context, name string) (Room, error)
	// MentionName is how people address the bot ("logbook", "@logbook").
	MentionName() string
}

// Part is one message's worth of a reply.
type Part struct {
	RequestID string // the request the reply answers
	Index     int    // 0-based place of this part in the reply
	Count     int    // how many parts the reply has
	Text      string
	Thread    string // answer in this thread, when set
	Failed    bool   // the request did not complete (providers may mark it)
	// Attachment, when set, asks the provider to upload Text as a file
	// named AttachmentName (Slack) instead of posting it inline.
	Attachment     bool
	AttachmentName string
	// Link is a URL to the whole transcript, for a part that holds only a
	// piece of the output.
	Link string
	// Notice is the key of the notice the part belongs to (the approval
	// request, dispatch.Notice.Key); "" for the request's reply.
	Notice string
	// Approval is the id of the request awaiting approval the part asks
	// people to answer; a provider that can adds approve and reject
	// buttons.
	Approval string
	// Formatted says Text is already in the provider's markup, rendered
	// from directives that escaped the data for it: the provider posts it
	// as it is. Unformatted text is the provider's to escape.
	Formatted bool
	// Attachments go with the part (Slack's legacy attachments).
	Attachments []render.Attachment
}

// Limits describe what one message may hold on a provider.
type Limits struct {
	MaxMessageBytes int // a message's text, in bytes, after the provider's own framing
	// MaxParts is how many messages one reply may take before the rest is
	// uploaded as a file (when UploadFiles) or cut with a link to the
	// transcript.
	MaxParts int
	// MaxLines bounds the lines of a whole reply, where every line is a
	// message of its own (IRC): beyond it, the reply is uploaded or cut
	// like one over MaxParts. 0 means no bound.
	MaxLines    int
	UploadFiles bool
}

// User is a person on a provider.
type User struct {
	Handle      string // what handles are linked by
	DisplayName string
}

// Room is a place on a provider where messages are posted.
type Room struct {
	ID     string // the provider's id (Slack's C024BE91L; IRC's #ops)
	Name   string // without its sigil
	Joined bool   // the bot is in it and may post
}

// Errors providers return, wrapped with the details.
var (
	// ErrRetry marks a failure worth retrying later: a disconnect, a rate
	// limit, a server error. Anything else is permanent.
	ErrRetry = errors.New("chat: temporary failure")
	// ErrUnknownRoom and ErrUnknownUser say a lookup found nothing.
	ErrUnknownRoom = errors.New("chat: unknown room")
	ErrUnknownUser = errors.New("chat: unknown user")
)
