// Package template is Greenbar, the template language of Cog bundles: how a
// command's JSON output becomes a chat reply. It parses a template, runs it
// over the output, and produces provider-neutral directives (paragraphs,
// bold, code, tables, attachments, ...), which a renderer per provider
// turns into a message. The package does no I/O.
//
// # The language
//
// A template is Markdown with tags between tildes:
//
//	**Instances:**
//	~each var=$results as=instance~
//	~attachment title=$instance.name color=$instance.state.color~
//	~if cond=$instance.tags.Name bound?~Name: ~$instance.tags.Name~~end~
//	State: ~$instance.state.name~
//	~end~
//	~end~
//
// Variables are ~$name~ with a path of keys and indexes: ~$results[0].tags.Name~.
// $results is the command's output as a list (CogScope). A key of something
// that is not an object, an index past the end, and a name nothing binds
// are all unbound, and an unbound value shows as nothing. Strings show as
// they are, numbers as the JSON wrote them, lists and objects as JSON.
//
// Tags:
//
//   - ~each var=$list as=name~ ... ~end~ goes through a list, binding each
//     element to $name ($item by default). A value that is not a list is one
//     element; unbound or null is none.
//   - ~join var=$list with=", " as=name~ ... ~end~ is ~each~ with a separator
//     between passes.
//   - ~if cond=...~ ... ~end~ with cond one of: $x (true unless unbound,
//     null or false, as in Cog), $x bound?, $x not_bound?, $x empty? (unbound,
//     null, "", [] or {}), $x not_empty?, or a comparison $x == v, !=, >, >=, <,
//     <= where v is a string, a number, true, false, a bare word or a
//     variable. Numbers compare as numbers and strings as strings; values
//     of different types are never equal and never ordered. length($list)
//     is a list's (or object's) size.
//   - ~attachment title=... color=... ~ ... ~end~ sets its body apart, as a
//     Slack attachment does. It knows title, title_url, color (a CSS colour
//     name or #hex), pretext, fallback, image_url, thumb_url, author,
//     author_link, author_icon, footer, footer_icon and ts; any other
//     attribute is a field shown with its name ("Pipeline ID"=$id), and a
//     name ending in -short marks a short field.
//   - ~title~ ... ~end~ makes its body a heading.
//   - ~json var=$x~ is $x as indented JSON in a code block.
//   - ~count var=$x~ is a list's length or an object's number of keys (0
//     when unbound, N/A for anything else).
//   - ~br~ is a line break.
//
// A # starts a comment to the end of the line, as in Greenbar (write \# for
// the character, and \~ for a tilde). A comment that starts a line takes
// the whole line.
//
// # Markdown, and data that is never markup
//
// After a template runs, its output is read as Markdown: **bold** and
// __bold__, *italics* and _italics_, `code`, fenced code blocks (```), lists
// (*, -, + and 1.), links [text](url) and tables (a header row, a delimiter
// row | --- |, then rows). Every line break is kept, as Cog kept it.
//
// Only characters the template itself wrote can be markup. Evaluation
// keeps, for every character, whether it came from the template or from
// the data, and the Markdown reader looks for delimiters among the
// template's characters only. A value holding "**", "* ", "|", "`" or
// "[x](y)" is shown as those characters: data is never markup. A
// renderer still escapes every text it is given for its provider, so a
// value cannot reach Slack's <!channel> or IRC's control codes either.
//
// # Layout: tags on lines of their own
//
// Two rules keep templates written one tag to a line from leaving blank
// lines behind, and match what Cog produced:
//
//   - A line holding nothing but body tags (each, if, join, attachment,
//     title), ~end~ tags, comments and blanks is layout: its indentation and
//     line break are dropped.
//   - A body tag (other than join) that opens at the start of a line and
//     whose ~end~ ends a line is in block form: each pass of its body is
//     whole lines, so ~each var=$results~~$item.url~~end~ on a line of its
//     own puts each URL on a line of its own, and a false ~if~ written that
//     way leaves no empty line.
//
// # Defaults, Logbook's own replies, Cog v3, Gort
//
// Default renders output that names no template as Cog's default did (text
// lines; a table for a list of objects with the same keys; a block of
// "key: value" lines per object otherwise). ErrorDocument is Logbook's own
// template for failures, denials and requests it cannot run, so every
// provider shows them alike. ParseMustache reads the per-provider
// variants of Cog bundle version 3 templates (see mustache.go and
// cogv3.go), and ParseGort the Go templates of Gort bundles (see gort.go
// for how Gort picks them and what Logbook offers). Package render turns
// directives into each provider's markup.
//
// # Errors and limits
//
// Parse returns a *SyntaxError with the line and column (in characters)
// of the problem: a tag not closed on its line, an unknown tag or
// attribute, a missing var=, an ~end~ that closes nothing, a malformed
// variable or condition. A body tag still open at the end of the template
// is closed there with a Warning: a published bundle (groove) relies on
// it. Execute never fails; a source over MaxSourceBytes is refused, tags
// nest at most 64 deep, and an evaluation past MaxOutputBytes or
// MaxBodyPasses is cut with a note.
package template
