// Package run holds the events of a command run (the `run-<id>` stream), the
// pure lifecycle decider that keeps a run's story consistent, and the Cog
// command protocol: the environment a command receives and the parsing of
// what it prints.
package run

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/logbookhq/logbook/domain"
)

// StreamPrefix is the category of run streams: a run's events live in
// "run-<id>".
const StreamPrefix = "run-"

// Stream names the stream of run id.
func Stream(runID string) string { return StreamPrefix + runID }

// Mode says how a bundle's commands are executed.
type Mode string

const (
	// ModeFresh runs each invocation in a new container (the default).
	ModeFresh Mode = "fresh"
	// ModeWarm runs each invocation in a started container from a pool.
	ModeWarm Mode = "warm"
	// ModeSingleUse runs each invocation in a started container from a
	// pool that serves it alone and is then removed: a fresh container's
	// isolation without waiting for one to start.
	ModeSingleUse Mode = "single-use"
	// ModeBuiltin runs the command in-process, in the dispatcher. There is
	// no container: the run's output follows its RunRequested directly.
	ModeBuiltin Mode = "builtin"
)

// Limits bound one run. A zero field means "the executor's default".
type Limits struct {
	TimeoutMS   int64 `json:"timeout_ms,omitempty"`
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	NanoCPUs    int64 `json:"nano_cpus,omitempty"` // 1e9 is one CPU
	Pids        int64 `json:"pids,omitempty"`
	OutputBytes int64 `json:"output_bytes,omitempty"`
}

// Timeout is TimeoutMS as a duration.
func (l Limits) Timeout() time.Duration { return time.Duration(l.TimeoutMS) * time.Millisecond }

// Or fills each zero field of l from defaults: the per-command limit wins
// over the per-bundle one, which wins over the executor's.
func (l Limits) Or(defaults Limits) Limits {
	pick := func(v, d int64) int64 {
		if v > 0 {
			return v
		}
		return d
	}
	return Limits{
		TimeoutMS:   pick(l.TimeoutMS, defaults.TimeoutMS),
		MemoryBytes: pick(l.MemoryBytes, defaults.MemoryBytes),
		NanoCPUs:    pick(l.NanoCPUs, defaults.NanoCPUs),
		Pids:        pick(l.Pids, defaults.Pids),
		OutputBytes: pick(l.OutputBytes, defaults.OutputBytes),
	}
}

// DefaultMaxPids is a site's cap on a run's pids limit unless the operator
// sets another: plenty for a command and its children, too few for a fork
// bomb to trouble the host.
const DefaultMaxPids = 1024

// User is the numeric uid and gid a command runs as. It is never a name:
// images built FROM scratch have no /etc/passwd to look one up in.
type User struct {
	UID int64 `json:"uid"`
	GID int64 `json:"gid"`
}

// DefaultUser is who commands run as unless their bundle says otherwise:
// nobody and nogroup, who own nothing in the image.
var DefaultUser = User{UID: 65534, GID: 65534}

// String is the "uid:gid" form Docker takes.
func (u User) String() string {
	return strconv.FormatInt(u.UID, 10) + ":" + strconv.FormatInt(u.GID, 10)
}

// Invocation is the chat context of a command, handed to it through the Cog
// environment (COG_ROOM, COG_CHAT_HANDLE, ...).
type Invocation struct {
	Room       string `json:"room,omitempty"`
	ChatHandle string `json:"chat_handle,omitempty"`
	Username   string `json:"username,omitempty"`
	PipelineID string `json:"pipeline_id,omitempty"`
	First      bool   `json:"first,omitempty"` // first stage of its pipeline
	Last       bool   `json:"last,omitempty"`  // last stage of its pipeline
}

// RunRequested asks an executor to run one pipeline stage. It never holds a
// secret: EnvNames lists the names of the extra variables the command gets,
// and their values travel beside the event, never inside it.
type RunRequested struct {
	RequestID string         `json:"request_id"`
	Stage     int            `json:"stage"`
	Bundle    string         `json:"bundle"`
	Version   string         `json:"version"`
	Command   string         `json:"command"`
	Image     string         `json:"image"`
	Argv      []string       `json:"argv"`              // the executable and its fixed arguments
	Args      []string       `json:"args,omitempty"`    // invocation arguments (COG_ARGV_<n>)
	Options   map[string]any `json:"options,omitempty"` // invocation options (COG_OPT_<NAME>)
	EnvNames  []string       `json:"env_names,omitempty"`
	// Config are the plain configuration values the command gets, each
	// with the layer it came from: they are not secret, and recording
	// them says exactly what the command saw.
	Config []ConfigValue `json:"config,omitempty"`
	// Secrets name the secrets the command gets, with their layer and
	// version; the values travel in the run-request message only.
	Secrets []SecretRef `json:"secrets,omitempty"`
	Limits  Limits      `json:"limits"`
	// User is who the command runs as. Events recorded before Logbook chose
	// it have none: those commands ran as the image's user (root, unless
	// the image said otherwise). Builtins have none.
	User *User `json:"user,omitempty"`
	Mode Mode  `json:"mode"`
	// Group is the relay group whose executors run it: the bundle's
	// assignment when the run was requested; empty is "default".
	Group      string          `json:"group,omitempty"`
	Input      json.RawMessage `json:"input,omitempty"` // the previous stage's JSON, sent on stdin
	Invocation Invocation      `json:"invocation"`
}

// ConfigValue is one plain configuration value of a run. Layer is the
// bundleconfig layer ("base", "room/ops", ...), or "bundle" for a value
// the bundle's own config sets (a command's env_vars).
type ConfigValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Layer string `json:"layer"`
}

// SecretRef names one secret a run gets: its name, the layer it came from
// and the version of its value. Never the value.
type SecretRef struct {
	Name    string `json:"name"`
	Layer   string `json:"layer"`
	Version int    `json:"version"`
}

// OutputRedacted records how many times the values of the run's secrets
// (or their base64 and URL-encoded forms) were replaced in its output and
// reasons before anything was recorded, by secret name.
type OutputRedacted struct {
	Replacements int            `json:"replacements"`
	BySecret     map[string]int `json:"by_secret,omitempty"`
}

// ContainerCreated records the container a fresh run uses, or the one a
// single-use run took from its pool.
type ContainerCreated struct {
	ContainerID string `json:"container_id"`
	Image       string `json:"image"`
	ImageDigest string `json:"image_digest,omitempty"`
}

// ContainerStarted records that the command began. In warm mode ContainerID
// names the pooled container the command was forked in.
type ContainerStarted struct {
	ContainerID string `json:"container_id,omitempty"`
	Warm        bool   `json:"warm,omitempty"`
}

// Stream names an output stream.
type OutputStream string

const (
	Stdout OutputStream = "stdout"
	Stderr OutputStream = "stderr"
)

// OutputChunk is a piece of a run's output. Bytes are exact (binary data and
// invalid UTF-8 included; base64 in JSON). Seq numbers chunks from 0 across
// both streams in the order they were produced.
type OutputChunk struct {
	Seq    int64        `json:"seq"`
	Stream OutputStream `json:"stream"`
	Bytes  []byte       `json:"bytes"`
	At     time.Time    `json:"at"`
}

// OutputTruncated says the run printed more than its output cap; what came
// after the first LimitBytes was dropped.
type OutputTruncated struct {
	LimitBytes int64 `json:"limit_bytes"`
	AfterSeq   int64 `json:"after_seq"` // the last chunk kept (-1 when none)
}

// ContainerStopped records how the command ended.
type ContainerStopped struct {
	ExitCode   int    `json:"exit_code"`
	OOMKilled  bool   `json:"oom_killed,omitempty"`
	Signal     string `json:"signal,omitempty"` // e.g. "SIGKILL", when a signal ended it
	DurationMS int64  `json:"duration_ms"`
}

// Result is what a command said, parsed by the Cog protocol.
type Result struct {
	// Value is the JSON value the command produced: the value after a "JSON"
	// line, or [{"body": [lines]}] for plain text; null when it printed
	// nothing.
	Value     json.RawMessage `json:"value,omitempty"`
	Template  string          `json:"template,omitempty"`
	Logs      []LogLine       `json:"logs,omitempty"`
	Aborted   bool            `json:"aborted,omitempty"`
	Truncated bool            `json:"truncated,omitempty"` // stdout was longer than what was parsed
}

// LogLine is one COGCMD_<LEVEL>: line.
type LogLine struct {
	Level   string `json:"level"` // debug, info, warn, error
	Message string `json:"message"`
}

// RunSucceeded ends a run whose command exited 0 and did not abort.
type RunSucceeded struct {
	Result Result `json:"result"`
}

// RunFailed ends a run that did not succeed: a non-zero exit, an abort, an
// out-of-memory kill, or a run that could not start (a missing image).
type RunFailed struct {
	Reason string `json:"reason"`
	Result Result `json:"result"`
}

// RunTimedOut ends a run stopped for exceeding its timeout.
type RunTimedOut struct {
	TimeoutMS int64  `json:"timeout_ms"`
	Result    Result `json:"result"`
}

// RunCancelled ends a run stopped on request.
type RunCancelled struct {
	Reason string `json:"reason,omitempty"`
	Result Result `json:"result"`
}

// RunLost ends a run whose executor went away: its outcome is unknown.
type RunLost struct {
	Reason string `json:"reason"`
}

// ContainerRemoved records that a fresh run's container is gone.
type ContainerRemoved struct {
	ContainerID string `json:"container_id"`
}

// RunClaimed records which executor took a run off its relay group's queue
// (on a broker; the embedded bus records none). Only that executor's
// events are appended to the run afterwards. A run that has not started
// may be claimed again by another executor when the first is gone.
type RunClaimed struct {
	Executor string `json:"executor"`
	Host     string `json:"host,omitempty"`
	Group    string `json:"group,omitempty"`
}

// RunStarting records, on a broker, that the executor holding a run is
// about to start its command. The server appends it before the executor
// goes on, so a run whose command may have begun is never given to
// another executor, even when its holder is cut off before it can say
// more: it ends RunLost instead.
type RunStarting struct {
	Executor string `json:"executor"`
}

// RunCancelRequested records a request to stop a run.
type RunCancelRequested struct {
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func (RunRequested) EventType() string       { return "RunRequested" }
func (ContainerCreated) EventType() string   { return "ContainerCreated" }
func (ContainerStarted) EventType() string   { return "ContainerStarted" }
func (OutputChunk) EventType() string        { return "OutputChunk" }
func (OutputTruncated) EventType() string    { return "OutputTruncated" }
func (ContainerStopped) EventType() string   { return "ContainerStopped" }
func (RunSucceeded) EventType() string       { return "RunSucceeded" }
func (RunFailed) EventType() string          { return "RunFailed" }
func (RunTimedOut) EventType() string        { return "RunTimedOut" }
func (RunCancelled) EventType() string       { return "RunCancelled" }
func (RunLost) EventType() string            { return "RunLost" }
func (ContainerRemoved) EventType() string   { return "ContainerRemoved" }
func (RunCancelRequested) EventType() string { return "RunCancelRequested" }
func (OutputRedacted) EventType() string     { return "OutputRedacted" }
func (RunClaimed) EventType() string         { return "RunClaimed" }
func (RunStarting) EventType() string        { return "RunStarting" }

func init() {
	domain.Register[RunRequested]()
	domain.Register[RunClaimed]()
	domain.Register[RunStarting]()
	domain.Register[ContainerCreated]()
	domain.Register[ContainerStarted]()
	domain.Register[OutputChunk]()
	domain.Register[OutputTruncated]()
	domain.Register[ContainerStopped]()
	domain.Register[RunSucceeded]()
	domain.Register[RunFailed]()
	domain.Register[RunTimedOut]()
	domain.Register[RunCancelled]()
	domain.Register[RunLost]()
	domain.Register[ContainerRemoved]()
	domain.Register[RunCancelRequested]()
	domain.Register[OutputRedacted]()
}

// IsTerminal reports whether p ends a run.
func IsTerminal(p domain.Payload) bool {
	switch p.(type) {
	case RunSucceeded, RunFailed, RunTimedOut, RunCancelled, RunLost:
		return true
	}
	return false
}

// IsTerminalType reports whether an event of type t (its EventType) ends a
// run, for a caller holding the event still encoded.
func IsTerminalType(t string) bool {
	switch t {
	case RunSucceeded{}.EventType(), RunFailed{}.EventType(), RunTimedOut{}.EventType(), RunCancelled{}.EventType(), RunLost{}.EventType():
		return true
	}
	return false
}

// ErrBadID is the kind of an unusable run id.
var ErrBadID = errors.New("bad run id")

// ValidateID accepts ids that are safe in stream and container names: 1 to
// 128 letters, digits, '_', '.' or '-', starting with a letter or digit.
func ValidateID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("%w: %q must be 1 to 128 characters", ErrBadID, id)
	}
	for i, r := range id {
		alnum := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !alnum && (i == 0 || (r != '_' && r != '.' && r != '-')) {
			return fmt.Errorf("%w: %q has %q at column %d; expected a letter, digit, '_', '.' or '-' (a letter or digit first)", ErrBadID, id, r, i+1)
		}
	}
	return nil
}

// AppendJSON appends c's JSON encoding to dst: the same bytes json.Marshal
// produces, without its reflection and re-validation. Output chunks are the
// bulk of what a run records, so this is the hot path.
func (c OutputChunk) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendInt(dst, c.Seq, 10)
	dst = append(dst, `,"stream":`...)
	dst = strconv.AppendQuote(dst, string(c.Stream))
	dst = append(dst, `,"bytes":`...)
	if c.Bytes == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, c.Bytes)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"at":"`...)
	dst = c.At.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, `"}`...)
}
