// Package dispatch is the process manager that turns a chat request into
// runs and a reply: identity, parse, aliases, one permission check per stage
// (all before anything runs), runs stage by stage, the reply. It decides;
// it never talks to Docker or chat. This file is its event catalog, the
// `request-<id>` stream.
package dispatch

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/pipeline"
	"github.com/logbookhq/logbook/domain/rules"
	"github.com/logbookhq/logbook/domain/template/render"
)

// StreamPrefix is the category of request streams.
const StreamPrefix = "request-"

// Stream names the stream of request id.
func Stream(requestID string) string { return StreamPrefix + requestID }

// requestNamespace seeds request ids derived from a provider's message id;
// senderNamespace those derived from the sender too, so the two
// derivations never give the same id.
var (
	requestNamespace = uuid.MustParse("5b7f8a52-3c41-4d8e-9a1f-6c2e0d4b7a90")
	senderNamespace  = uuid.MustParse("0c6c7d2e-8f4b-4e51-b7a3-2d9e41f58a16")
)

// RequestID derives the request id from the chat provider and its message
// id, so a provider's retried delivery of one message maps to the same
// request stream and is recorded once (the append expects no stream). It
// is the id of a chat provider's request, whose message ids are the
// provider's own; RequestReceived.ID gives every request's.
func RequestID(adapter, messageID string) string {
	return providerMessageID(adapter, messageID).String()
}

func providerMessageID(adapter, messageID string) uuid.UUID {
	return uuid.NewSHA1(requestNamespace, []byte(adapter+"\x00"+messageID))
}

// RequestReceived is a chat message addressed to Logbook, as the chat
// adapter received it.
type RequestReceived struct {
	Adapter   string `json:"adapter"`    // slack, irc, web, api
	MessageID string `json:"message_id"` // the provider's id for the message
	Room      string `json:"room"`       // where it was typed
	ChatUser  string `json:"chat_user"`  // the provider's handle of the sender
	Text      string `json:"text"`       // the command text, prefix stripped
	Thread    string `json:"thread,omitempty"`
	// Sender is the user who sent an api or web request, as authenticated
	// (the token's or the session's user; ChatUser is the user it runs as,
	// which "as" may change). It is part of the request id, so a message id
	// one user chose never names another user's request. Chat providers
	// leave it empty: their message ids are their own.
	Sender string `json:"sender,omitempty"`
	// Source names the trigger or schedule that made the request
	// (providers trigger and schedule).
	Source string `json:"source,omitempty"`
	// ReplyVia is the chat provider a trigger's or schedule's rooms are
	// on: its redirects (> #ops), and a schedule's Room. Empty: the reply
	// goes back to its caller only.
	ReplyVia string `json:"reply_via,omitempty"`
	// Input is the first stage's input: a trigger's call (its headers,
	// query, parsed JSON body and raw body). A stage that refers to
	// variables ($body.ref) binds them to it.
	Input json.RawMessage `json:"input,omitempty"`
	// TimedID says MessageID is a UUIDv7 that Logbook made itself
	// (WithFreshMessageID), and that the request id keeps its time (ID).
	TimedID bool `json:"timed_id,omitempty"`
}

// WithFreshMessageID gives r a message id of Logbook's own, a new UUIDv7,
// for a request no provider named, and has its request id keep that id's
// time.
func (r RequestReceived) WithFreshMessageID() RequestReceived {
	r.MessageID, r.TimedID = uuid.Must(uuid.NewV7()).String(), true
	return r
}

// PostsVia is the provider whose rooms the request's redirects name.
func (r RequestReceived) PostsVia() string {
	if r.ReplyVia != "" {
		return r.ReplyVia
	}
	return r.Adapter
}

// roomOnChat says the request's Room is a room of its ReplyVia provider
// (a schedule's); a trigger's Room is its name.
func (r RequestReceived) roomOnChat() bool {
	return r.ReplyVia != "" && r.Adapter == ScheduleAdapter
}

// ID is the request's id. A request with a Sender derives it from the
// provider, the sender and the message id; one without (a chat provider's,
// or an api or web request recorded before Sender existed) from the
// provider and the message id alone (RequestID), so a stored log folds to
// the ids its streams were written under.
//
// A request with TimedID keeps its message id's 48 bits of time in its
// own id, short of the version nibble, so it stays a version-5 UUID.
// Request ids then sort in the order the requests came, as do the run ids
// and stream names made from them, and every index keyed by them grows at
// its end: with wholly random request ids each request's rows went to a
// page of their own in each such index, 12 times the pages SQLite wrote
// for the views under builtin load (docs/benchmarks.md, "Request ids in
// the order requests come"). A provider's own message ids, and requests
// recorded before TimedID, derive as before.
func (r RequestReceived) ID() string {
	var id uuid.UUID
	if r.Sender == "" {
		id = providerMessageID(r.Adapter, r.MessageID)
	} else {
		// The sender's length keeps it from running into the message id.
		id = uuid.NewSHA1(senderNamespace, fmt.Appendf(nil, "%s\x00%d:%s\x00%s", r.Adapter, len(r.Sender), r.Sender, r.MessageID))
	}
	if r.TimedID {
		if m, err := uuid.Parse(r.MessageID); err == nil && m.Version() == 7 {
			copy(id[:derivedPrefixBytes], m[:derivedPrefixBytes])
		}
	}
	return id.String()
}

// RequestSeed is what the ids of the events a request's dispatcher makes
// by itself derive from (DerivedID: its receipt, timeout, reply): a hash
// of the request id that keeps the request id's first 6 bytes, so those
// events' ids sort with their request's, as its other events' do.
func RequestSeed(requestID string) uuid.UUID {
	seed := uuid.NewSHA1(uuid.NameSpaceURL, []byte(requestID))
	if id, err := uuid.Parse(requestID); err == nil {
		copy(seed[:derivedPrefixBytes], id[:derivedPrefixBytes])
	}
	return seed
}

// SameSender reports whether other, received under the same request id,
// came from the same sender: a provider's redelivery of one message does,
// another person's message that reuses its id does not.
func (r RequestReceived) SameSender(other RequestReceived) bool {
	return r.Adapter == other.Adapter && r.ChatUser == other.ChatUser && r.Sender == other.Sender
}

// IdentityResolved says which Logbook user sent the request.
type IdentityResolved struct {
	User     string `json:"user"`     // user id
	Username string `json:"username"` // for display and COG_USERNAME
}

// IdentityUnknown says the sender has no Logbook user linked to their
// handle. The reply says how to get access.
type IdentityUnknown struct {
	Adapter  string `json:"adapter"`
	ChatUser string `json:"chat_user"`
	// RegistrationError says why self-registration, when on, could not
	// create a user for the handle.
	RegistrationError string `json:"registration_error,omitempty"`
}

// PipelineParsed records the pipeline as it will run: after alias
// expansion (Expanded is the text that was parsed when an alias applied).
type PipelineParsed struct {
	Stages    json.RawMessage `json:"stages"`    // []pipeline.Stage
	Redirects json.RawMessage `json:"redirects"` // []pipeline.Redirect
	Alias     string          `json:"alias,omitempty"`
	Expanded  string          `json:"expanded,omitempty"`
	// Rerun is true when the request was "!!" and Expanded holds the
	// previous request's text that was parsed in its place.
	Rerun bool `json:"rerun,omitempty"`

	// decoded is Stages and Redirects decoded, kept by the decider that
	// made the event, so that folding it (three times on the way from
	// the decision to the dispatcher's state) does not decode them again.
	// It is what decoding them gives, so a decision folds the same live
	// as read back from the log. Never stored.
	decoded *decodedPipeline
}

type decodedPipeline struct {
	stages    []pipeline.Stage
	redirects []pipeline.Redirect
}

// PipelineRejected records a request whose text does not parse, or names a
// command that does not exist or is disabled.
type PipelineRejected struct {
	Error      string `json:"error"`
	Column     int    `json:"column,omitempty"`     // 1-based; 0 when not about a place in the text
	Suggestion string `json:"suggestion,omitempty"` // the closest command name, for a typo
}

// PermissionChecked records the decision for one stage. Every stage is
// checked before any runs.
type PermissionChecked struct {
	Stage    int             `json:"stage"`
	Command  string          `json:"command"`
	Rule     string          `json:"rule,omitempty"`     // the deciding rule, canonical form
	Required string          `json:"required,omitempty"` // what it requires
	Granted  bool            `json:"granted"`
	Reason   string          `json:"reason"`
	Detail   json.RawMessage `json:"detail,omitempty"` // rules.Explanation
	// Approvals are what the deciding rules ask for before an allowed
	// stage runs; none when it runs without approval.
	Approvals []rules.Approval `json:"approvals,omitempty"`
}

// InvocationChecked records the permission check of one invocation of a
// stage whose arguments refer to the previous stage's output. The
// PermissionChecked of such a stage saw the variables unbound ($x), so the
// rules are evaluated again on the bound values before the invocation runs;
// a denial here fails the request.
type InvocationChecked struct {
	Stage      int             `json:"stage"`
	Invocation int             `json:"invocation"`
	Command    string          `json:"command"`
	Rule       string          `json:"rule,omitempty"`
	Required   string          `json:"required,omitempty"`
	Granted    bool            `json:"granted"`
	Reason     string          `json:"reason"`
	Detail     json.RawMessage `json:"detail,omitempty"`
	// Approvals are what the bound invocation asks for; the approvals
	// the request was granted before it ran must cover them.
	Approvals []rules.Approval `json:"approvals,omitempty"`
}

// RequestDenied ends a request refused before anything ran: a permission
// is missing, or a redirect goes where the bot cannot post.
type RequestDenied struct {
	Reason string `json:"reason"`
}

// StageStarted links a stage to its run. A stage whose input is a list runs
// once per element (Invocation counts them from 0).
type StageStarted struct {
	Stage      int    `json:"stage"`
	Invocation int    `json:"invocation,omitempty"`
	RunID      string `json:"run_id"`
	// Version is the version of the command's bundle the run uses, so the
	// reply is rendered with that version's templates even if another is
	// enabled meanwhile. Empty for builtins, and in events recorded before
	// it was added.
	Version string `json:"version,omitempty"`
}

// RequestCompleted ends a request whose every stage succeeded.
type RequestCompleted struct {
	Output json.RawMessage `json:"output,omitempty"` // the last stage's JSON
}

// RequestFailed ends a request that started but did not complete: a stage
// failed, timed out or was cancelled, or the request timed out.
type RequestFailed struct {
	Reason string `json:"reason"`
	Stage  int    `json:"stage"`
	RunID  string `json:"run_id,omitempty"`
}

// ReplyPosted records that a chat adapter delivered the reply, and what
// was posted: the text as rendered for the adapter (a secret it reveals
// kept as its placeholder), the template it was rendered with and the
// bundle version that template came from. The command's output as it
// printed it stays in the run's transcript.
type ReplyPosted struct {
	Adapter   string `json:"adapter"`
	Room      string `json:"room"`
	MessageID string `json:"message_id,omitempty"`
	// Format is the rendered text's markup (slack, irc, html, text).
	Format   string `json:"format,omitempty"`
	Rendered string `json:"rendered,omitempty"`
	// Attachments are the Slack attachments posted beside Rendered.
	Attachments []render.Attachment `json:"attachments,omitempty"`
	// Template names the template ("" for Cog's default rendering,
	// logbook:error for Logbook's own); Source says where it came from
	// (bundle, gort, default, logbook).
	Template string `json:"template,omitempty"`
	// TemplateVariant names the Cog v3 per-provider variant (slack,
	// hipchat) of a template without a Greenbar body that was used.
	TemplateVariant string `json:"template_variant,omitempty"`
	Source          string `json:"source,omitempty"`
	Bundle          string `json:"bundle,omitempty"`
	BundleVersion   string `json:"bundle_version,omitempty"`
	// TemplateError says why the named template could not be used.
	TemplateError string `json:"template_error,omitempty"`
}

// MaxRecordedRender bounds the rendered text a ReplyPosted keeps, well
// under the store's 4 MiB event limit; the output itself is in the run's
// transcript.
const MaxRecordedRender = 1 << 20

// NewReplyPosted is the record of a reply posted to room.
func NewReplyPosted(r Reply, room, messageID string) ReplyPosted {
	p := ReplyPosted{Adapter: r.Adapter, Room: room, MessageID: messageID}
	if rr := r.Rendered; rr != nil {
		p.Format, p.Rendered, p.Template, p.Source = string(rr.Format), rr.Recorded, rr.Template, rr.Source
		p.TemplateVariant = rr.Variant
		p.Attachments = rr.RecordedAttachments
		size := len(p.Rendered)
		for _, a := range p.Attachments {
			size += a.Size()
		}
		if size > MaxRecordedRender {
			p.Attachments = nil
			p.Rendered += fmt.Sprintf("\n[%d attachments not recorded: the record keeps at most %d bytes]", len(rr.RecordedAttachments), MaxRecordedRender)
		}
		if len(p.Rendered) > MaxRecordedRender {
			cut := MaxRecordedRender
			for cut > 0 && !utf8.RuneStart(p.Rendered[cut]) {
				cut--
			}
			p.Rendered = p.Rendered[:cut] + fmt.Sprintf("\n[recorded text cut at %d of %d bytes]", cut, len(rr.Recorded))
		}
		p.Bundle, p.BundleVersion, p.TemplateError = rr.Bundle, rr.Version, rr.Error
	}
	return p
}

func (RequestReceived) EventType() string   { return "RequestReceived" }
func (IdentityResolved) EventType() string  { return "IdentityResolved" }
func (IdentityUnknown) EventType() string   { return "IdentityUnknown" }
func (PipelineParsed) EventType() string    { return "PipelineParsed" }
func (PipelineRejected) EventType() string  { return "PipelineRejected" }
func (PermissionChecked) EventType() string { return "PermissionChecked" }
func (InvocationChecked) EventType() string { return "InvocationChecked" }
func (RequestDenied) EventType() string     { return "RequestDenied" }
func (StageStarted) EventType() string      { return "StageStarted" }
func (RequestCompleted) EventType() string  { return "RequestCompleted" }
func (RequestFailed) EventType() string     { return "RequestFailed" }
func (ReplyPosted) EventType() string       { return "ReplyPosted" }

func init() {
	domain.Register[RequestReceived]()
	domain.Register[IdentityResolved]()
	domain.Register[IdentityUnknown]()
	domain.Register[PipelineParsed]()
	domain.Register[PipelineRejected]()
	domain.Register[PermissionChecked]()
	domain.Register[InvocationChecked]()
	domain.Register[RequestDenied]()
	domain.Register[StageStarted]()
	domain.Register[RequestCompleted]()
	domain.Register[RequestFailed]()
	domain.Register[ReplyPosted]()
}
