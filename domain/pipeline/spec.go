package pipeline

// CommandRef names a command as written: Bundle is "" for a bare name.
type CommandRef struct {
	Bundle string
	Name   string
}

// OptionDecl is what a command declares about one option (in a Cog bundle,
// an entry of the command's options with its type and short_flag).
type OptionDecl struct {
	Name       string // canonical long name; options are keyed by it
	Short      string // short flag without the dash ("r" for -r), or ""
	TakesValue bool   // "--name value" consumes the next word
}

// OptionSpec answers, for a command, what it declares about an option. flag
// is the option as written without dashes; short is true for the one-dash
// form. The parser needs it only for "--name value", short-to-long mapping and
// "-abc" clusters; without it options are read as Cog reads undeclared ones.
type OptionSpec interface {
	LookupOption(cmd CommandRef, flag string, short bool) (OptionDecl, bool)
}

// CommandOptions is an OptionSpec from a table of declared options, keyed by
// "bundle:command" or by a bare "command". A command written bare is looked
// up by its bare key; one written with its bundle is looked up by
// "bundle:command" first, then by its bare key.
type CommandOptions map[string][]OptionDecl

// LookupOption implements OptionSpec. A short flag matches a declared Short;
// a long one matches a declared Name. A single dash followed by a declared
// long name (-region) matches too, as in Cog.
func (t CommandOptions) LookupOption(cmd CommandRef, flag string, short bool) (OptionDecl, bool) {
	decls, ok := t[cmd.Name]
	if cmd.Bundle != "" {
		if qualified, found := t[cmd.Bundle+":"+cmd.Name]; found {
			decls, ok = qualified, true
		}
	}
	if !ok {
		return OptionDecl{}, false
	}
	if short {
		for _, d := range decls {
			if d.Short != "" && d.Short == flag {
				return d, true
			}
		}
	}
	for _, d := range decls {
		if d.Name == flag {
			return d, true
		}
	}
	return OptionDecl{}, false
}

// ParseOption configures Parse.
type ParseOption func(*parseConfig)

type parseConfig struct {
	spec OptionSpec
}

// WithOptionSpec tells Parse which options take a value and how short flags
// map to long names.
func WithOptionSpec(spec OptionSpec) ParseOption {
	return func(c *parseConfig) { c.spec = spec }
}
