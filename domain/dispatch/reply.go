package dispatch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/logbookhq/logbook/domain/pipeline"
	"github.com/logbookhq/logbook/domain/template"
)

// Destination is where a reply goes, with "here" and "me" already resolved
// to the room and the person of the request.
type Destination struct {
	Kind pipeline.DestinationKind `json:"kind"` // room, user or url
	Name string                   `json:"name"` // room or user without its sigil; the URL as written
}

// Reply is what to post when a request ends. The adapter posts Text (or
// renders Value with Template, when it can) to every destination, then
// records ReplyPosted for each.
type Reply struct {
	Adapter string        `json:"adapter"`
	To      []Destination `json:"to"`
	// Thread is the request's thread, for replies to the room it came from.
	Thread string `json:"thread,omitempty"`
	// Text is the reply as plain text: body lines, or pretty-printed JSON.
	Text string `json:"text"`
	// Value is the output the text was rendered from, when there is one.
	Value    json.RawMessage `json:"value,omitempty"`
	Template string          `json:"template,omitempty"`
	// Failed marks a reply about a request that did not complete.
	Failed bool `json:"failed,omitempty"`
	// CutRunID names the run whose output the reply shows only the start
	// of: it printed more than a reply holds (run.MaxResultBytes of stdout,
	// or its output cap). Text then ends with a line saying so, and
	// Transcript, when the server knows its address, links the whole
	// transcript.
	CutRunID   string `json:"cut_run_id,omitempty"`
	Transcript string `json:"transcript,omitempty"`
	// Approval is the id of the request awaiting approval that a notice
	// asks people to answer; a provider that can (Slack) adds approve and
	// reject buttons to it.
	Approval string `json:"approval,omitempty"`

	// What RenderReply renders the reply from, beside Value and Template:
	// the command whose output it is (bundle:command) and its bundle's
	// version, a registration notice, and for a request that did not
	// complete, the problem for Logbook's error template.
	Command string   `json:"-"`
	Version string   `json:"-"`
	Notice  string   `json:"-"`
	Problem *Problem `json:"-"`

	// Rendered is the reply rendered for its adapter (RenderReply): what
	// is posted. Nil until rendered.
	Rendered *Rendered `json:"rendered,omitempty"`
}

// cutNotice is the last line of a reply whose output was cut.
func cutNotice(runID, link string) string {
	if link == "" {
		link = "`logbook transcript " + runID + "`"
	}
	return "[output cut: this is its start; the whole transcript: " + link + "]"
}

// cutNoticeDirective is cutNotice as the rendered reply ends with it: the
// transcript's address a link, or the command that prints it as code.
func cutNoticeDirective(runID, link string) template.Directive {
	where := template.Directive{Kind: template.Code, Text: "logbook transcript " + runID}
	if link != "" {
		where = template.Directive{Kind: template.Link, URL: link, Children: []template.Directive{{Kind: template.Text, Text: link}}}
	}
	return template.Directive{Kind: template.Paragraph, Children: []template.Directive{
		{Kind: template.Text, Text: "[output cut: this is its start; the whole transcript: "}, where, {Kind: template.Text, Text: "]"}}}
}

// WithTranscript links the whole transcript, at link, from a reply whose
// output was cut; any other reply is returned as it is.
func (r Reply) WithTranscript(link string) Reply {
	if r.CutRunID == "" || link == "" || r.Transcript != "" {
		return r
	}
	r.Text = strings.TrimSuffix(r.Text, cutNotice(r.CutRunID, "")) + cutNotice(r.CutRunID, link)
	r.Transcript = link
	return r
}

// markCut says, at the end of the reply, that the output of runID was cut.
func (r *Reply) markCut(runID string) {
	r.CutRunID = runID
	r.Text += "\n" + cutNotice(runID, "")
}

// Problem is why a request did not complete, as Logbook's error template
// shows it.
type Problem struct {
	Status  Status   // how the request ended: failed, denied, rejected, unknown_user
	Title   string   // "Denied", "Failed", ...
	Message string   // the sentence
	Hint    string   // a command that helps, shown as code
	Output  []string // the failed command's output
	// Aborted says the failed command aborted (COGCMD_ACTION: abort).
	Aborted bool
}

// NoOutput is the text of the reply to a request whose output is empty, so
// the person still learns that it completed.
const NoOutput = "(no output)"

// replyFor renders the reply an ended request calls for.
func replyFor(r Request) Reply {
	rec := r.received
	origin := []Destination{{Kind: pipeline.DestinationRoom, Name: rec.Room}}
	reply := Reply{Adapter: rec.Adapter, To: origin, Thread: rec.Thread, Failed: true}
	switch r.status {
	case StatusUnknown:
		hint := fmt.Sprintf("!user link USERNAME %s %s", rec.Adapter, rec.ChatUser)
		reply.Text = fmt.Sprintf("I don't know who you are: no Logbook user is linked to your %s handle %s. "+
			"Ask an admin to run `%s`.", rec.Adapter, rec.ChatUser, hint)
		message := fmt.Sprintf("I don't know who you are: no Logbook user is linked to your %s handle %s. Ask an admin to run:", rec.Adapter, rec.ChatUser)
		if AuthenticatedAdapters[rec.Adapter] {
			// These senders name a Logbook user; there is no handle to link.
			hint = ""
			reply.Text = fmt.Sprintf("I don't know who you are: there is no enabled Logbook user named %s. Ask an admin for an account.", rec.ChatUser)
			message = reply.Text
		}
		if reason := r.unknown.RegistrationError; reason != "" {
			reply.Text += " (I could not register you myself: " + reason + ".)"
			message = fmt.Sprintf("I don't know who you are: no Logbook user is linked to your %s handle %s, "+
				"and I could not register you myself: %s. Ask an admin to run:", rec.Adapter, rec.ChatUser, reason)
		}
		reply.Problem = &Problem{Status: StatusUnknown, Title: "Unknown user", Message: message, Hint: hint}
	case StatusRejected:
		reply.Text = "I could not run that: " + rejectionText(r.rejected)
		reply.Problem = &Problem{Status: StatusRejected, Title: "I could not run that", Message: rejectionText(r.rejected)}
	case StatusDenied:
		reply.Text = "Denied: " + r.denied.Reason
		reply.Problem = &Problem{Status: StatusDenied, Title: "Denied", Message: r.denied.Reason}
		// A Gort bundle's message_error shows a denial of its command.
		reply.Command = r.deniedCommand()
	case StatusFailed:
		reply.Text = "Failed: " + r.failed.Reason
		reply.Problem = &Problem{Status: StatusFailed, Title: "Failed", Message: r.failed.Reason}
		reply.Command, reply.Version = r.stageCommand(r.failed.Stage)
		if o, ok := r.outcomes[r.failed.RunID]; ok {
			reply.Problem.Aborted = o.result.Aborted
			if out := renderOutput(o.result.Value); out != "" {
				reply.Text += "\n" + out
				reply.Value = o.result.Value
				reply.Problem.Output = strings.Split(out, "\n")
				if o.result.Truncated {
					reply.markCut(r.failed.RunID)
				}
			}
		}
	case StatusCompleted:
		reply.Failed = false
		reply.To = r.destinations()
		if len(r.redirects) > 0 {
			reply.Thread = ""
		}
		reply.Value = r.completed.Output
		reply.Template = r.lastTemplate()
		reply.Command, reply.Version = r.stageCommand(len(r.stages) - 1)
		reply.Text = renderOutput(r.completed.Output)
		if reply.Text == "" {
			reply.Text = NoOutput
		}
		// The output is the last stage's that ran (an empty output ends a
		// pipeline early).
		for _, sr := range r.stageRuns(r.currentStage()) {
			if r.outcomes[sr.runID].result.Truncated {
				reply.markCut(sr.runID)
				break
			}
		}
	}
	if r.registered.User != "" {
		reply.Notice = registrationNotice(r.registered)
		reply.Text = reply.Notice + "\n" + reply.Text
	}
	return r.routeToChat(reply)
}

// routeToChat sends a trigger's or schedule's reply to the rooms of its
// chat provider: the redirects' (> #ops), the failure too, and otherwise a
// schedule's room. A reply with neither goes back to its caller (a
// trigger's HTTP call waits for it) and is recorded.
func (r Request) routeToChat(reply Reply) Reply {
	rec := r.received
	if rec.ReplyVia == "" {
		return reply
	}
	switch {
	case len(r.redirects) > 0:
		reply.To = r.destinations()
	case !rec.roomOnChat():
		return reply
	}
	reply.Adapter, reply.Thread = rec.ReplyVia, ""
	return reply
}

// deniedCommand is the command (bundle:command) of the first stage a
// permission check denied; "" when the request was denied for another
// reason (a disabled user, a redirect the bot cannot post to).
func (r Request) deniedCommand() string {
	for _, c := range r.checks {
		if !c.Granted {
			return c.Command
		}
	}
	return ""
}

// stageCommand is the command a stage ran (bundle:command) and the version
// of its bundle its first run used.
func (r Request) stageCommand(stage int) (command, version string) {
	if stage < 0 || stage >= len(r.stages) {
		return "", ""
	}
	if runs := r.stageRuns(stage); len(runs) > 0 {
		version = runs[0].version
	}
	return r.commandOf(stage), version
}

func rejectionText(p PipelineRejected) string {
	if p.Column > 0 {
		return fmt.Sprintf("column %d: %s", p.Column, p.Error)
	}
	return p.Error
}

// destinations resolves the redirects; none means the room of the request.
func (r Request) destinations() []Destination {
	rec := r.received
	if len(r.redirects) == 0 {
		return []Destination{{Kind: pipeline.DestinationRoom, Name: rec.Room}}
	}
	var out []Destination
	seen := map[Destination]bool{}
	for _, rd := range r.redirects {
		d := resolveDestination(rec, rd)
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

func resolveDestination(rec RequestReceived, rd pipeline.Redirect) Destination {
	switch rd.Kind {
	case pipeline.DestinationHere:
		return Destination{Kind: pipeline.DestinationRoom, Name: rec.Room}
	case pipeline.DestinationMe:
		return Destination{Kind: pipeline.DestinationUser, Name: rec.ChatUser}
	case pipeline.DestinationURL:
		return Destination{Kind: pipeline.DestinationURL, Name: rd.Target}
	}
	return Destination{Kind: rd.Kind, Name: rd.Name}
}

// lastTemplate is the template the last stage's first run named, if any.
func (r Request) lastTemplate() string {
	for _, sr := range r.stageRuns(len(r.stages) - 1) {
		if t := r.outcomes[sr.runID].result.Template; t != "" {
			return t
		}
	}
	return ""
}

// renderOutput writes a command's JSON output as chat text: Cog's
// [{"body": [lines]}] becomes the lines, a JSON string its text, anything
// else pretty-printed JSON. Empty or null output renders as "".
func renderOutput(v json.RawMessage) string {
	trimmed := bytes.TrimSpace(v)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return ""
	}
	if lines, ok := bodyLines(trimmed); ok {
		return strings.Join(lines, "\n")
	}
	var s string
	if json.Unmarshal(trimmed, &s) == nil {
		return s
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, trimmed, "", "  "); err != nil {
		return string(trimmed)
	}
	return buf.String()
}

// bodyLines reads Cog's text output shape: a list of objects, each with
// only a "body" that is a list of strings (or one string).
func bodyLines(v []byte) ([]string, bool) {
	var items []map[string]json.RawMessage
	if json.Unmarshal(v, &items) != nil || len(items) == 0 {
		return nil, false
	}
	var lines []string
	for _, item := range items {
		body, ok := item["body"]
		if !ok || len(item) != 1 {
			return nil, false
		}
		var many []string
		if json.Unmarshal(body, &many) == nil {
			lines = append(lines, many...)
			continue
		}
		var one string
		if json.Unmarshal(body, &one) != nil {
			return nil, false
		}
		lines = append(lines, one)
	}
	return lines, true
}

// ApprovalNotices are the notices that post the approval request, one per
// provider and room it records in ApprovalRequested.Notify; none unless
// the request awaits approval. They are rendered from the request's
// events alone, so a runner that restarts posts the same ones (and only
// the parts not recorded posted).
func (r Request) ApprovalNotices() []Notice {
	if r.status != StatusAwaitingApproval {
		return nil
	}
	req := r.approval.Requested
	id := shortID(r.id)
	var b strings.Builder
	fmt.Fprintf(&b, "%s asks to run: %s\n", req.RequesterName, req.Text)
	fmt.Fprintf(&b, "It needs %s before %s", r.approval.Needs(), clock(req.ExpiresAt))
	if len(req.Approvers) > 0 {
		fmt.Fprintf(&b, " (%s may approve)", strings.Join(req.Approvers, ", "))
	}
	fmt.Fprintf(&b, ".\nAnswer with !approve %s [reason] or !reject %s reason (request %s).", id, id, r.id)
	var out []Notice
	for _, t := range req.Notify {
		reply := Reply{Adapter: t.Adapter, To: []Destination{t.To}, Text: b.String(), Approval: r.id}
		key := ApprovalNoticeKey
		if t.Adapter == r.received.Adapter && t.To == (Destination{Kind: pipeline.DestinationRoom, Name: r.received.Room}) {
			reply.Thread = r.received.Thread
		} else {
			key += ":" + t.Adapter + ":" + string(t.To.Kind) + ":" + t.To.Name
		}
		out = append(out, Notice{Key: key, Reply: reply})
	}
	return out
}
