package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/rules"
	"github.com/logbookhq/logbook/domain/run"
)

// BuiltinBundle is the namespace of the builtin commands: logbook:echo.
const BuiltinBundle = "logbook"

// ModeBuiltin marks a RunRequested that the runner executes in-process
// (Builtins.Execute) instead of publishing it to the executors.
const ModeBuiltin = run.ModeBuiltin

// Builtin is a command that runs in-process. Run must be deterministic for
// the builtins of this package; the runner's own (history, transcript,
// admin commands) may close over I/O.
type Builtin struct {
	Name        string
	Description string
	Usage       string // "echo TEXT...", shown by help
	// Rules govern who may run it, as for a bundle command; "allow" lets
	// everyone.
	Rules []*rules.Rule
	Run   func(BuiltinCall) (run.Result, error)
	// Changes says it may Record changes: such builtins run one at a
	// time, each deciding on what the one before recorded (two "user
	// create bob" create bob once). The others run side by side.
	Changes bool
	// Pure marks a builtin that reads only its call (arguments, input,
	// invocation, facts) and answers at once: the dispatcher runs it as
	// it decides, and records the run with the decision, so the whole
	// request takes one commit.
	Pure bool
	// ValueOptions are the long options that take a value, so
	// "--pipeline 'echo hi'" reads as "--pipeline='echo hi'".
	ValueOptions []string
}

// BuiltinCall is one invocation of a builtin.
type BuiltinCall struct {
	// Ctx ends when the run must: its timeout, a cancel, the executor
	// stopping. A builtin's I/O runs under it.
	Ctx     context.Context
	Args    []string
	Options map[string]any
	Input   json.RawMessage // the previous stage's output element
	// Invocation is the chat context: room, handle, username.
	Invocation run.Invocation
	Facts      Facts
	// RunID names the run; ids a builtin makes up derive from it, so that
	// running it again after a crash makes the same ones.
	RunID string
	// At is when the run was requested: the time a builtin acts at.
	At      time.Time
	changes *[]Change
}

// Change is an append a builtin decided: events for one stream, at the
// version they were decided from. The runner appends a run's changes and
// the run's output and terminal event in one atomic append, so a crash
// leaves all of them or none, a stream changed meanwhile fails the whole
// run, and a run that fails changes nothing.
type Change struct {
	Stream   string
	Expected eventstore.ExpectedVersion
	Events   []domain.Payload
	// IDs, when set, are the events' ids (one each); otherwise the runner
	// derives them from the run.
	IDs []uuid.UUID
}

// Record stages a change to append with the run's end. A second change to
// the same stream adds its events to the first (which keeps its expected
// version).
func (c BuiltinCall) Record(change Change) {
	if c.changes == nil {
		panic("dispatch: BuiltinCall.Record outside Builtins.Execute")
	}
	for i := range *c.changes {
		if prev := &(*c.changes)[i]; prev.Stream == change.Stream {
			if len(prev.IDs) > 0 || len(change.IDs) > 0 {
				prev.IDs = append(idsOrNil(prev), idsOrNil(&change)...)
			}
			prev.Events = append(prev.Events, change.Events...)
			return
		}
	}
	*c.changes = append(*c.changes, change)
}

// idsOrNil pads a change without fixed ids with zero ids (the runner
// derives those).
func idsOrNil(c *Change) []uuid.UUID {
	if len(c.IDs) > 0 {
		return c.IDs
	}
	return make([]uuid.UUID, len(c.Events))
}

// NewBuiltin declares a builtin with its rules written as in a bundle config
// (short forms allowed).
func NewBuiltin(name, description, usage string, ruleTexts []string, fn func(BuiltinCall) (run.Result, error)) (Builtin, error) {
	if fn == nil {
		return Builtin{}, errorf(KindBadBuiltin, "builtin %s has no run function", name)
	}
	b := Builtin{Name: name, Description: description, Usage: usage, Run: fn}
	for _, text := range ruleTexts {
		r, err := rules.ParseForCommand(BuiltinBundle, name, text)
		if err != nil {
			return Builtin{}, errorf(KindBadBuiltin, "builtin %s: rule %q: %v", name, text, err)
		}
		b.Rules = append(b.Rules, r)
	}
	return b, nil
}

func mustBuiltin(name, description, usage string, ruleTexts []string, fn func(BuiltinCall) (run.Result, error)) Builtin {
	b, err := NewBuiltin(name, description, usage, ruleTexts, fn)
	if err != nil {
		panic(err)
	}
	return b
}

// recording marks a builtin that records changes (Builtin.Changes).
func recording(b Builtin) Builtin {
	b.Changes = true
	return b
}

// pure marks a builtin that reads only its call (Builtin.Pure).
func pure(b Builtin) Builtin {
	b.Pure = true
	return b
}

// Builtins is the registry of builtin commands by name.
type Builtins map[string]Builtin

// With returns a registry with more builtins added (replacing any of the
// same name); the receiver is not changed.
func (b Builtins) With(more ...Builtin) Builtins {
	out := make(Builtins, len(b)+len(more))
	for name, builtin := range b {
		out[name] = builtin
	}
	for _, builtin := range more {
		out[builtin.Name] = builtin
	}
	return out
}

// Changes says whether the builtin a run asks for may record changes.
func (b Builtins) Changes(req run.RunRequested) bool {
	builtin, ok := b[req.Command]
	return ok && req.Bundle == BuiltinBundle && builtin.Changes
}

// Pure says whether the builtin a run asks for is pure (Builtin.Pure).
func (b Builtins) Pure(req run.RunRequested) bool {
	builtin, ok := b[req.Command]
	return ok && req.Bundle == BuiltinBundle && builtin.Pure && !builtin.Changes
}

// Names lists the registry's names, sorted.
func (b Builtins) Names() []string {
	names := make([]string, 0, len(b))
	for name := range b {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// DefaultBuiltins are the pure builtins, which everyone may run: echo,
// help, which and whoami, and approve, reject and approvals, whose rules
// allow everyone because the request answered decides who may answer it.
func DefaultBuiltins() Builtins {
	allow := []string{"allow"}
	return Builtins{}.With(
		pure(mustBuiltin("echo", "Repeats its arguments.", "echo TEXT...", allow, runEcho)),
		pure(mustBuiltin("help", "Lists the commands, or describes one.", "help [COMMAND]", allow, runHelp)),
		pure(mustBuiltin("which", "Says which bundle a bare command name runs.", "which COMMAND", allow, runWhich)),
		pure(mustBuiltin("whoami", "Says who Logbook thinks you are.", "whoami", allow, runWhoami)),
		recording(mustBuiltin("approve", "Approves a request that waits for approval.", "approve ID [REASON...]", allow, runApprove)),
		recording(mustBuiltin("reject", "Rejects a request that waits for approval, saying why.", "reject ID REASON...", allow, runReject)),
		pure(mustBuiltin("approvals", "Lists the requests waiting for approval that you may answer, or that are yours.", "approvals", allow, runApprovals)),
	)
}

// BuiltinRun is what a builtin run records after its RunRequested, all in
// one atomic append: the changes it decided, and its own events.
type BuiltinRun struct {
	Changes []Change
	// Events are what the builtin printed as OutputChunks, then its
	// terminal event.
	Events []domain.Payload
}

// Execute runs a builtin RunRequested (Mode ModeBuiltin) of run runID. Its
// events are what the builtin printed as OutputChunks (stdout, seq from 0,
// at the time given), then the terminal event: RunSucceeded, or RunFailed
// when the command is not a builtin or its run function fails (a failed run
// keeps no changes). A builtin's output is its result written in the Cog
// protocol, so the transcript of a builtin run reads like that of a command
// in a container, and parses back to the same result.
func (b Builtins) Execute(ctx context.Context, req run.RunRequested, runID string, facts Facts, at time.Time) BuiltinRun {
	var changes []Change
	terminal := b.execute(ctx, req, runID, facts, at, &changes)
	if _, ok := terminal.(run.RunSucceeded); !ok {
		changes = nil
	}
	return BuiltinRun{Changes: changes, Events: OutputEvents(terminal, at)}
}

// OutputEvents are a builtin's output chunks, from the result of its
// terminal event, followed by the terminal event.
func OutputEvents(terminal domain.Payload, at time.Time) []domain.Payload {
	var res run.Result
	switch t := terminal.(type) {
	case run.RunSucceeded:
		res = t.Result
	case run.RunFailed:
		res = t.Result
	}
	var events []domain.Payload
	stdout := CogStdout(res)
	for seq := 0; len(stdout) > 0; seq++ {
		n := min(len(stdout), BuiltinChunkBytes)
		events = append(events, run.OutputChunk{Seq: int64(seq), Stream: run.Stdout, Bytes: stdout[:n:n], At: at})
		stdout = stdout[n:]
	}
	return append(events, terminal)
}

// BuiltinChunkBytes is the most output one OutputChunk of a builtin run
// holds, as the executors' chunker coalesces.
const BuiltinChunkBytes = 16 << 10

func (b Builtins) execute(ctx context.Context, req run.RunRequested, runID string, facts Facts, at time.Time, changes *[]Change) domain.Payload {
	builtin, ok := b[req.Command]
	if !ok || req.Bundle != BuiltinBundle {
		return run.RunFailed{Reason: fmt.Sprintf("%s:%s is not a builtin command", req.Bundle, req.Command)}
	}
	res, err := builtin.Run(BuiltinCall{Ctx: ctx, Args: req.Args, Options: req.Options, Input: req.Input, Invocation: req.Invocation, Facts: facts, RunID: runID, At: at, changes: changes})
	if err != nil {
		return run.RunFailed{Reason: err.Error(), Result: BodyResult(err.Error())}
	}
	if res.Aborted {
		return run.RunFailed{Reason: "aborted", Result: res}
	}
	return run.RunSucceeded{Result: res}
}

// CogStdout writes a result as a command speaking the Cog protocol would
// print it: COG_TEMPLATE and COGCMD_ lines, then the body lines, or "JSON"
// and the value when the value is not Cog's [{"body": [lines]}] or a line
// would read back as something else. run.ParseCogOutput of the bytes gives
// the result back (an empty body reads back as no value).
func CogStdout(res run.Result) []byte {
	var out []byte
	if res.Template != "" {
		out = append(out, "COG_TEMPLATE: "+res.Template+"\n"...)
	}
	for _, l := range res.Logs {
		out = append(out, "COGCMD_"+strings.ToUpper(l.Level)+": "+l.Message+"\n"...)
	}
	if res.Aborted {
		out = append(out, "COGCMD_ACTION: abort\n"...)
	}
	value := bytes.TrimSpace(res.Value)
	if len(value) == 0 || string(value) == "null" {
		return out
	}
	if lines, ok := plainBodyLines(value); ok {
		for _, line := range lines {
			out = append(out, line...)
			out = append(out, '\n')
		}
		return out
	}
	out = append(out, "JSON\n"...)
	out = append(out, value...)
	return append(out, '\n')
}

// plainBodyLines returns the lines of a [{"body": [lines]}] value when each
// reads back as a body line: no line breaks, no "JSON" marker, no protocol
// line, no trailing carriage return.
func plainBodyLines(v json.RawMessage) ([]string, bool) {
	var body []map[string][]string
	if err := json.Unmarshal(v, &body); err != nil || len(body) != 1 || len(body[0]) != 1 {
		return nil, false
	}
	lines, ok := body[0]["body"]
	if !ok {
		return nil, false
	}
	for _, line := range lines {
		if strings.ContainsAny(line, "\n") || strings.HasSuffix(line, "\r") || strings.TrimSpace(line) == "JSON" ||
			strings.HasPrefix(line, "COGCMD_") || strings.HasPrefix(line, "COG_TEMPLATE:") || !utf8.ValidString(line) {
			return nil, false
		}
	}
	return lines, true
}

// bodyResult is text output in Cog's shape, [{"body": [lines]}].
// BodyResult is a plain-text result of lines, as Cog's [{"body": [lines]}].
func BodyResult(lines ...string) run.Result {
	if lines == nil {
		lines = []string{}
	}
	v, _ := json.Marshal([]map[string][]string{{"body": lines}})
	return run.Result{Value: v}
}

func runEcho(c BuiltinCall) (run.Result, error) {
	return BodyResult(strings.Join(c.Args, " ")), nil
}

func runHelp(c BuiltinCall) (run.Result, error) {
	cat := newCatalog(c.Facts)
	if len(c.Args) == 0 {
		lines := []string{"Builtin commands:"}
		for _, name := range cat.builtins.Names() {
			lines = append(lines, fmt.Sprintf("  %s:%s - %s", BuiltinBundle, name, cat.builtins[name].Description))
		}
		for _, b := range cat.enabled {
			lines = append(lines, "", fmt.Sprintf("%s %s:", b.Name, b.Version))
			for _, cmd := range b.Commands() {
				lines = append(lines, fmt.Sprintf("  %s - %s", cmd.FullName(), cmd.Description))
			}
		}
		lines = append(lines, "", "Run `help COMMAND` for one command's usage.")
		return BodyResult(lines...), nil
	}
	t, err := resolveWritten(cat, c.Args[0])
	if err != nil {
		return run.Result{}, err
	}
	if t.builtin != nil {
		return BodyResult(t.FullName()+" - "+t.builtin.Description, "Usage: "+t.builtin.Usage), nil
	}
	return BodyResult(commandHelp(t.command)...), nil
}

// commandHelp is a bundle command's description and usage from its
// declared options.
func commandHelp(cmd *bundle.Command) []string {
	lines := []string{cmd.FullName() + " - " + cmd.Description}
	if cmd.LongDescription != "" {
		lines = append(lines, "", cmd.LongDescription)
	}
	usage := "Usage: " + cmd.FullName()
	if len(cmd.Options()) > 0 {
		usage += " [OPTIONS]"
	}
	if cmd.Arguments != "" {
		usage += " " + cmd.Arguments
	}
	lines = append(lines, "", usage)
	if opts := cmd.Options(); len(opts) > 0 {
		lines = append(lines, "", "Options:")
		for _, o := range opts {
			flag := "--" + o.Name
			if o.ShortFlag != "" {
				flag = "-" + o.ShortFlag + ", " + flag
			}
			if o.TakesValue() {
				flag += " " + strings.ToUpper(string(o.Type))
			}
			line := "  " + flag
			if o.Description != "" {
				line += "  " + o.Description
			}
			if o.Required {
				line += " (required)"
			}
			lines = append(lines, line)
		}
	}
	if cmd.Examples != "" {
		lines = append(lines, "", "Examples:", cmd.Examples)
	}
	return lines
}

func runWhich(c BuiltinCall) (run.Result, error) {
	if len(c.Args) != 1 {
		return run.Result{}, fmt.Errorf("which takes one command name; usage: which COMMAND")
	}
	t, err := resolveWritten(newCatalog(c.Facts), c.Args[0])
	if err != nil {
		return run.Result{}, err
	}
	if t.builtin != nil {
		return BodyResult(fmt.Sprintf("%s is the builtin %s", c.Args[0], t.FullName())), nil
	}
	return BodyResult(fmt.Sprintf("%s is %s (bundle %s %s)", c.Args[0], t.FullName(), t.bundle.Name, t.bundle.Version)), nil
}

func resolveWritten(cat catalog, written string) (target, error) {
	bundleName, name, full := strings.Cut(written, ":")
	if !full {
		bundleName, name = "", written
	}
	return cat.resolve(bundleName, name)
}

func runWhoami(c BuiltinCall) (run.Result, error) {
	user, ok := c.Facts.UserByUsername(c.Invocation.Username)
	if !ok {
		return run.Result{}, fmt.Errorf("there is no user named %s", c.Invocation.Username)
	}
	lines := []string{"You are " + user.Username + "."}
	if user.Email != "" {
		lines = append(lines, "Email: "+user.Email)
	}
	var handles []string
	for _, h := range user.Handles {
		handles = append(handles, h.Provider+": "+h.Handle)
	}
	lines = append(lines, "Chat handles: "+orNone(handles))
	lines = append(lines, "Groups: "+orNone(c.Facts.GroupsOf(user.ID)))
	return BodyResult(lines...), nil
}

func orNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}

// BuiltinPermissions are the logbook:* permissions the builtin bundle
// declares; its administration commands are guarded by them, and the
// bootstrap admin role holds them all.
var BuiltinPermissions = []string{
	"logbook:admin", "logbook:manage_users", "logbook:manage_groups",
	"logbook:manage_roles", "logbook:manage_bundles", "logbook:read_history",
	"logbook:manage_triggers", "logbook:manage_schedules",
}

// NewDirectory returns an empty access directory that already knows the
// builtin bundle's permissions. No event declares them (they come with the
// code), so every model of the directory starts from this one, or grants of
// logbook:* permissions would not count there.
func NewDirectory() *access.Directory {
	dir := access.NewDirectory()
	if err := dir.DeclarePermissions(BuiltinBundle, BuiltinPermissions); err != nil {
		panic(err) // the names above are valid by construction
	}
	return dir
}

// FoldAccess folds one event into an access directory, the one way every
// model of who may do what does it (the dispatcher's facts and the
// permission view), so the view can never disagree with the decisions:
// access events through Directory.Apply, and a bundle's installation by
// declaring the permissions it recorded (malformed ones, or ones outside
// its namespace, are skipped: the bundle's problem, not the model's).
func FoldAccess(dir *access.Directory, p domain.Payload) {
	if installed, ok := p.(bundle.BundleInstalled); ok {
		_ = dir.DeclarePermissions(installed.Name, installed.Permissions)
		return
	}
	dir.Apply(p)
}

// DerivedID gives the n-th event a trigger causes a stable id, so that
// deciding (or running) the same trigger twice appends the same events,
// which the store takes as no-ops.
//
// The id keeps the trigger's first derivedPrefixBytes bytes, and the rest
// is the name-based (SHA-1) id of the trigger and purpose. Every event of a
// request is derived, step by step, from its first one, so they all share
// a prefix, and they sit side by side in the log's unique index of event
// ids. With ids wholly random, each event of a commit dirtied a page of its
// own in that index, 38% of all the pages SQLite wrote under builtin load
// (docs/benchmarks.md).
func DerivedID(trigger uuid.UUID, purpose string, n int) uuid.UUID {
	id := uuid.NewSHA1(trigger, []byte(fmt.Sprintf("%s/%d", purpose, n)))
	copy(id[:derivedPrefixBytes], trigger[:derivedPrefixBytes])
	return id
}

// derivedPrefixBytes is how much of its trigger a derived id keeps: 48
// bits, short of the version nibble (byte 6), so the id stays a version-5
// UUID with 74 bits of its own hash.
const derivedPrefixBytes = 6

// BuiltinRunEvents encodes a builtin run's own events (what it printed,
// then its end) with ids derived from its RunRequested's id, so that the
// run recorded again, by the builtin executor or by the dispatcher that
// ran it as it decided, makes the same events.
func BuiltinRunEvents(requested uuid.UUID, events []domain.Payload, md domain.Metadata) ([]domain.NewEvent, error) {
	out := make([]domain.NewEvent, len(events))
	for i, p := range events {
		e, err := domain.Encode(p, md)
		if err != nil {
			return nil, err
		}
		e.ID = DerivedID(requested, "builtin", i)
		out[i] = e
	}
	return out, nil
}

// EncodeChanges encodes changes to other streams, each event with its
// fixed id or one derived from the trigger.
func EncodeChanges(changes []Change, md domain.Metadata, trigger uuid.UUID) ([]eventstore.StreamAppend, error) {
	parts := make([]eventstore.StreamAppend, 0, len(changes)+2)
	n := 0
	for _, c := range changes {
		events := make([]domain.NewEvent, len(c.Events))
		for i, p := range c.Events {
			e, err := domain.Encode(p, md)
			if err != nil {
				return nil, err
			}
			e.ID = DerivedID(trigger, "change", n)
			if i < len(c.IDs) && c.IDs[i] != uuid.Nil {
				e.ID = c.IDs[i]
			}
			n++
			events[i] = e
		}
		parts = append(parts, eventstore.StreamAppend{Stream: c.Stream, Expected: c.Expected, Events: events})
	}
	return parts, nil
}
