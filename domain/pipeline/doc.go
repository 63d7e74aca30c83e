// Package pipeline is the Cog pipeline language: what a person types after the
// chat prefix, parsed into stages and redirects, and the binding of a stage's
// variables to the previous stage's output.
//
//	ec2:instance-list --region=us-east-1 | filter --path="tags.Name" --matches=prod > #ops
//
// # Grammar
//
// A pipeline is stages joined by | (&& means the same: a stage runs only when
// the one before it succeeded, which every pipe already requires), optionally
// followed by one redirect: "> dest" or "*> dest dest ...". A redirect ends
// the pipeline; Cog ignored a redirect on a middle stage, Logbook rejects it.
//
// A stage is a command name, written out (never a variable, so the rules can
// be checked before anything runs), "bundle:command" or a bare "command",
// followed by words that are options or arguments.
//
// Words are split on unquoted white space. Single quotes keep everything
// literal except \' (a quote); a backslash before any other character stays,
// with that character, so JSON in single quotes passes through untouched.
// Double quotes keep everything literal except \" \\ \$ (that character) and
// ${path} (interpolation); "echo $x" stays literal text, as in Cog. Outside
// quotes a backslash makes the next character literal. A word may mix quoted
// and unquoted parts: --tags="a b" is one word.
//
// Options: --long, --long=value, -s, -s=value, and "--long value" or
// "-s value" when an OptionSpec declares that the option takes a value. Without
// a spec (or for an option the spec does not know) a flag with no "=" is
// boolean true and the next word is an argument: that is what Cog does for
// undeclared options. A spec may map a short flag to its long name; options are
// keyed by that long name. With a spec, "-vf" whose letters are all declared
// short flags is expanded to -v -f; otherwise it is one option named "vf", as
// in Cog. "--" ends the options: every later word is an argument. A word that
// starts with "-" but reads as a number (-5, -0.5) is an argument. Repeated
// options keep every value (Stage.OptionList); Stage.Options collects them into
// a list, as Cog does. Option names may be variables (--$flag), as in Cog.
//
// Arguments and option values are typed from unquoted, unescaped text: the
// lowercase words true and false are booleans; [+-]digits is an int64 (a
// number too large for int64 stays a string); [+-]digits.digits is a float64;
// anything else, including 1.2.3, TRUE and 1e3, is a string. Anything quoted or
// escaped is a string: "123" stays text.
//
// Variables: $name, $a.b.c, $a[0], $a["key"] and $a['key']; names start with a
// letter or _ and may contain letters, digits, _ and - ($instance-id). A
// variable written alone as an argument or option value keeps the JSON type of
// the value it is bound to. ${path} interpolates into text (inside double
// quotes, or unquoted) and always yields a string. A $ that does not start a
// name ($5, US$) is literal. A $name joined to other unquoted text is an error
// that says to write "text${name}" instead, rather than guessing.
//
// Redirect destinations: #room, @user, here, me, chat://... URLs, and bare
// room names (IRC style), each kept as written and typed.
//
// # Columns and limits
//
// Columns are 1-based and count characters (Unicode code points) from the
// start of the text as given, including any leading "!". Input over 16 KiB,
// more than 64 stages, or a variable path deeper than 32 steps is rejected with
// a SyntaxError; the lexer is a single forward pass, so no input can hang it.
//
// # Chat prefix and rerun
//
// Parse strips one leading "!" so "!echo hi" parses. The text "!!" alone (the
// chat "rerun the previous pipeline" marker) makes Parse return ErrRerun, which
// the dispatcher detects with errors.Is and answers by looking up the user's
// previous pipeline.
package pipeline
