package bundle

import (
	"time"

	"github.com/logbookhq/logbook/domain/rules"
)

// Format names the family of config a bundle was written in.
type Format string

const (
	FormatCog  Format = "cog"  // cog_bundle_version 3, 4 or 5
	FormatGort Format = "gort" // gort_bundle_version 1
)

// Bundle is a loaded and validated bundle config. The descriptive fields are
// read-only by convention; commands, options and templates are reached
// through methods so their indexes cannot drift from their contents.
type Bundle struct {
	Format        Format
	FormatVersion int // the value of cog_bundle_version or gort_bundle_version

	Name            string
	Version         string // "N.N" or "N.N.N"
	Description     string
	LongDescription string
	Author          string
	Homepage        string

	// ImageName and Tag locate the image every command runs in. Both are
	// empty for a Cog "simple" bundle, which declares no docker section and
	// names executables on the host.
	ImageName string
	Tag       string
	// Binds are Cog's docker.binds host mounts, kept only so that
	// validation can say they are ignored.
	Binds []string

	// Permissions are fully qualified ("bundle:perm"), in file order.
	Permissions []string
	// Env lists the environment variables the bundle expects an operator
	// to configure (Cog's config.env). Values never live in the config.
	Env         []EnvVar
	ConfigNotes string

	// Execution holds the bundle-wide execution settings as written;
	// commands may override them (see Command.EffectiveExecution), except
	// its Quotas, which hold for the whole bundle.
	Execution Execution

	// Approvals says where the approval requests its rules make are
	// posted besides the request's own room.
	Approvals Approvals

	Line int // line of the document's root mapping

	commands  []*Command
	byName    map[string]*Command
	templates []*Template
	warnings  []Problem
}

// Image is the image reference "image:tag", or "" for a bundle without an
// image.
func (b *Bundle) Image() string {
	if b.ImageName == "" {
		return ""
	}
	if b.Tag == "" {
		return b.ImageName
	}
	return b.ImageName + ":" + b.Tag
}

// Command finds a command by its name within the bundle ("deploy", not
// "ops:deploy").
func (b *Bundle) Command(name string) (*Command, bool) {
	c, ok := b.byName[name]
	return c, ok
}

// Commands lists the bundle's commands in file order.
func (b *Bundle) Commands() []*Command { return append([]*Command(nil), b.commands...) }

// Templates lists the bundle-level output templates in file order.
func (b *Bundle) Templates() []*Template { return append([]*Template(nil), b.templates...) }

// Template finds a bundle-level template by name.
func (b *Bundle) Template(name string) (*Template, bool) {
	for _, t := range b.templates {
		if t.Name == name {
			return t, true
		}
	}
	return nil, false
}

// Warnings are problems that did not make the config invalid: deprecated
// versions, ignored fields, rules that mix and/or without parentheses.
func (b *Bundle) Warnings() []Problem { return append([]Problem(nil), b.warnings...) }

// HasPermission reports whether perm ("bundle:perm") is declared.
func (b *Bundle) HasPermission(perm string) bool {
	for _, p := range b.Permissions {
		if p == perm {
			return true
		}
	}
	return false
}

// EnvVar is one operator-configured environment variable a bundle expects.
type EnvVar struct {
	Name        string
	Description string
	Line        int
}

// Command is one command of a bundle.
type Command struct {
	Name   string
	Bundle string // the owning bundle's name

	// Executable is the argv prefix to run: one path for Cog, a list for
	// Gort, where an empty list means the image's entrypoint.
	Executable []string

	Description     string
	LongDescription string
	Documentation   string // Cog v3's free-form help text
	Arguments       string // synopsis of positional arguments, for help
	Examples        string
	Notes           string
	Subcommands     []Subcommand
	Output          Output

	// EnvVars are fixed environment values the config sets for this
	// command (Cog's env_vars), rendered as strings.
	EnvVars map[string]string

	// Triggers are Gort's message patterns that run the command
	// without an explicit invocation.
	Triggers []Trigger

	// Execution holds only what this command overrides.
	Execution Execution

	Line int

	bundle    *Bundle
	rules     []Rule
	options   []*Option
	byLong    map[string]*Option
	byShort   map[string]*Option
	templates []*Template
}

// FullName is "bundle:command", the name rules and pipelines use.
func (c *Command) FullName() string { return c.Bundle + ":" + c.Name }

// Rules are the command's access rules in file order.
func (c *Command) Rules() []Rule { return append([]Rule(nil), c.rules...) }

// ParsedRules are the command's rules as the evaluator takes them.
func (c *Command) ParsedRules() []*rules.Rule {
	out := make([]*rules.Rule, 0, len(c.rules))
	for _, r := range c.rules {
		out = append(out, r.Parsed)
	}
	return out
}

// Options lists the declared options in file order.
func (c *Command) Options() []*Option { return append([]*Option(nil), c.options...) }

// Option finds a declared option by its long name (without dashes).
func (c *Command) Option(long string) (*Option, bool) {
	o, ok := c.byLong[long]
	return o, ok
}

// OptionByShort finds the option a one-letter flag (without the dash)
// stands for. A letter declared by two options of the command stands for
// neither, so an ambiguous flag is never silently given one meaning.
func (c *Command) OptionByShort(short string) (*Option, bool) {
	o, ok := c.byShort[short]
	return o, ok
}

// Templates lists the command's own templates (Gort), in file order.
func (c *Command) Templates() []*Template { return append([]*Template(nil), c.templates...) }

// EffectiveExecution is the bundle's execution settings overlaid with the
// command's overrides. Fields still unset are for the executor to default.
func (c *Command) EffectiveExecution() Execution {
	if c.bundle == nil {
		return c.Execution
	}
	return c.bundle.Execution.Overlay(c.Execution)
}

// Subcommand documents one subcommand form for help output.
type Subcommand struct {
	Usage       string
	Description string
}

// Output documents what a command prints (Cog v4: a description; v5: a
// description and an example).
type Output struct {
	Description string
	Example     string
}

// Trigger is a Gort trigger: a regular expression over chat messages.
type Trigger struct {
	Match string
	Line  int
}

// Rule is one access rule as written and as parsed.
type Rule struct {
	Source string // the text in the config, short forms included
	Line   int
	Parsed *rules.Rule
}

// OptionType is a Cog option type.
type OptionType string

const (
	OptionString OptionType = "string"
	OptionInt    OptionType = "int"
	OptionFloat  OptionType = "float"
	OptionBool   OptionType = "bool"
	OptionIncr   OptionType = "incr" // counts repetitions: -v -v is 2
	OptionList   OptionType = "list" // repeatable, values collected in order
)

var optionTypes = []OptionType{OptionString, OptionInt, OptionFloat, OptionBool, OptionIncr, OptionList}

// TakesValue reports whether "--name X" consumes X as the option's value.
// Flags (bool, incr) do not; "--name=X" is still accepted for them.
func (t OptionType) TakesValue() bool { return t != OptionBool && t != OptionIncr }

// Option is a command option declared in the config.
type Option struct {
	Name     string // long name, used as --name
	Type     OptionType
	Required bool
	// ShortFlag is the one-letter alias (without the dash), or "" when none
	// was declared or the letter is ambiguous within the command.
	ShortFlag   string
	Description string
	Line        int
}

// TakesValue reports whether "--name X" consumes X as the option's value.
func (o *Option) TakesValue() bool { return o.Type.TakesValue() }

// Template is a named output template. Body is the Greenbar template Cog v4
// and v5 use (or the Go template text for Gort); Providers holds Cog v3's
// per-chat-provider variants (slack, hipchat), in Mustache, when present.
type Template struct {
	Name      string
	Body      string
	Providers map[string]Variant
	Line      int
	// BodyLine is the file line of the body's first line. A body written
	// as a block (body: |) maps its lines one to one onto the file's, so
	// a problem on a body's line is reported on the file's line.
	BodyLine  int
	bodyBlock bool
}

// FileLine is the file line of the body's line n (1-based): exact for a
// block body, else the line the body starts on.
func (t *Template) FileLine(n int) int { return fileLine(t.BodyLine, t.bodyBlock, n) }

// Variant is one of a Cog v3 template's per-provider variants: its
// Mustache source and the file line of the source's first line.
type Variant struct {
	Source string
	Line   int
	block  bool
}

// FileLine is the file line of the variant's line n (1-based): exact for a
// block (slack: |), else the line the variant starts on.
func (v Variant) FileLine(n int) int { return fileLine(v.Line, v.block, n) }

func fileLine(first int, block bool, n int) int {
	if block && n > 0 {
		return first + n - 1
	}
	return first
}

// Mode is how the executor runs a bundle's commands.
type Mode string

const (
	ModeUnset Mode = ""
	ModeFresh Mode = "fresh" // a new container per invocation
	ModeWarm  Mode = "warm"  // a pooled, already started container per invocation
	// ModeSingleUse: an already started container per invocation, used
	// for that one and removed.
	ModeSingleUse Mode = "single-use"
)

// Approvals is a bundle's approvals section.
type Approvals struct {
	// Room is the approvers' room: each approval request one of the
	// bundle's rules makes is posted there too. "" for none. Written as a
	// redirect names a room, a leading # is not part of the name.
	Room string
	// Provider is the chat provider Room is on (slack, irc); "" means the
	// provider the request came from.
	Provider string
	Line     int
}

// Quotas bound how much of a bundle runs at once and how often one user
// may ask for it; a nil field is no bound. They hold for the whole bundle
// (a command cannot override them), and site configuration overrides them
// (QuotaOverrides).
type Quotas struct {
	// BundleConcurrency, UserConcurrency and RoomConcurrency bound the
	// bundle's runs in flight: all of them, one user's, one room's.
	BundleConcurrency *int64
	UserConcurrency   *int64
	RoomConcurrency   *int64
	// Rate bounds the requests one user may start with the bundle's
	// commands in any minute.
	Rate *int64
	// Queue is how long a request over a quota waits for room before it
	// is refused; zero refuses it at once.
	Queue *time.Duration
}

// IsZero reports whether no quota is set.
func (q Quotas) IsZero() bool {
	return q.BundleConcurrency == nil && q.UserConcurrency == nil && q.RoomConcurrency == nil && q.Rate == nil && q.Queue == nil
}

// Overlay returns q with every field that o sets replaced by o's value.
func (q Quotas) Overlay(o Quotas) Quotas {
	if o.BundleConcurrency != nil {
		q.BundleConcurrency = o.BundleConcurrency
	}
	if o.UserConcurrency != nil {
		q.UserConcurrency = o.UserConcurrency
	}
	if o.RoomConcurrency != nil {
		q.RoomConcurrency = o.RoomConcurrency
	}
	if o.Rate != nil {
		q.Rate = o.Rate
	}
	if o.Queue != nil {
		q.Queue = o.Queue
	}
	return q
}

// Execution is the execution section of a bundle or a command. A nil
// pointer (or ModeUnset) means "not set here": the command inherits the
// bundle's value and the executor applies its own default last.
type Execution struct {
	Mode           Mode
	Timeout        *time.Duration
	MemoryBytes    *int64
	CPUs           *float64
	Pids           *int64
	OutputCapBytes *int64
	User           *User
	// Quotas are set at the bundle level only.
	Quotas Quotas
}

// User is the numeric uid and gid an execution section asks commands to
// run as.
type User struct {
	UID, GID int64
	Line     int // where the section says so
}

// IsZero reports whether nothing is set.
func (e Execution) IsZero() bool {
	return e.Mode == ModeUnset && e.Timeout == nil && e.MemoryBytes == nil &&
		e.CPUs == nil && e.Pids == nil && e.OutputCapBytes == nil && e.User == nil && e.Quotas.IsZero()
}

// Overlay returns e with every field that o sets replaced by o's value.
func (e Execution) Overlay(o Execution) Execution {
	if o.Mode != ModeUnset {
		e.Mode = o.Mode
	}
	if o.Timeout != nil {
		e.Timeout = o.Timeout
	}
	if o.MemoryBytes != nil {
		e.MemoryBytes = o.MemoryBytes
	}
	if o.CPUs != nil {
		e.CPUs = o.CPUs
	}
	if o.Pids != nil {
		e.Pids = o.Pids
	}
	if o.OutputCapBytes != nil {
		e.OutputCapBytes = o.OutputCapBytes
	}
	if o.User != nil {
		e.User = o.User
	}
	return e
}
