package template

// Logbook's own replies (a failure, a denial, a request it could not run,
// a sender it does not know) go through its own template, so every
// provider shows them the same way: an attachment with a red bar, a
// title, the sentence, the command to run when there is one, and the
// failed command's output in a code block.
const errorSource = `~attachment title=$title color="#d93f3f"~
~$message~
~if cond=$hint not_empty?~
` + "`~$hint~`" + `
~end~
~if cond=$output not_empty?~
` + "```" + `
~each var=$output~
~$item~
~end~
` + "```" + `
~end~
~end~
`

// ErrorTemplateName names Logbook's error template where a reply records
// which template it was rendered with.
const ErrorTemplateName = "logbook:error"

var errorTemplate = func() *Template {
	t, err := Parse(errorSource)
	if err != nil {
		panic("the builtin error template does not parse: " + err.Error())
	}
	return t
}()

// ErrorDocument renders Logbook's error template: title ("Denied"),
// message (why), hint (a command that helps, shown as code) and output
// (the failed command's lines).
func ErrorDocument(title, message, hint string, output []string) Document {
	lines := make([]any, len(output))
	for i, l := range output {
		lines[i] = l
	}
	return errorTemplate.Execute(map[string]any{"title": title, "message": message, "hint": hint, "output": lines})
}
