package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/template"
	"github.com/logbookhq/logbook/domain/template/render"
)

// templateMaxData bounds --data: a command's parsed output is at most
// run.MaxResultBytes, and a little more is allowed for hand-written data.
const templateMaxData = 4 << 20

func init() { register(templateNewCmd) }

func templateNewCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "template", Short: "Work with bundle output templates (Greenbar, Cog v3's Mustache, and Gort's Go templates)"}
	cmd.AddCommand(templateNewRenderCmd())
	return cmd
}

// templateProviders are --provider's values: a chat provider's format, or
// the directives themselves.
var templateProviders = map[string]render.Format{
	"slack": render.FormatSlack, "irc": render.FormatIRC, "web": render.FormatHTML, "text": render.FormatText,
}

func templateNewRenderCmd() *cobra.Command {
	var bundleFile, name, command, provider, data string
	cmd := &cobra.Command{
		Use:   "render --bundle FILE --template NAME [--provider slack|irc|web|text|directives] [--data JSON|-]",
		Short: "Print what a bundle's template posts for some output, as a provider would show it",
		Long: `Render loads the bundle config as Logbook would install it (so a template
that does not parse is reported on its line), runs the template over the
output given with --data (the JSON the command prints after its JSON line;
- reads it from stdin; none is an empty output), and prints what would be
posted: Slack's mrkdwn text, then its attachments as JSON; IRC's lines (with
IRC's formatting codes); the web UI's HTML; the API's plain text. With
--provider directives it prints the provider-neutral directives as JSON.

A Cog v3 template (per-provider slack: and hipchat: variants, no body:) is
rendered from the variant the provider takes: Slack's on Slack, HipChat's
plain text elsewhere when there is one; the directives are those of the
API's plain text. Which variant was used is said on stderr.

For a Gort bundle, --template is the purpose (command, command_error,
message, message_error) and --command the command whose templates are
looked at first.

Exit 0 when the template rendered, 2 when the bundle, the template, the
data or a flag is not usable (the reason on stderr).`,
		Example: `  logbook template render --bundle config.yaml --template instance_list --provider slack --data '[{"instance_id": "i-1"}]'
  my-command | sed 1d | logbook template render --bundle config.yaml --template status --provider irc --data -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, asDirectives := templateProviders[provider]
			if !asDirectives && provider != "directives" {
				return exitWith(2, "--provider %q: expected slack, irc, web, text or directives", provider)
			}
			asDirectives = provider == "directives"
			b, err := templateLoadBundle(cmd.ErrOrStderr(), bundleFile)
			if err != nil {
				return err
			}
			output, err := templateReadData(cmd.InOrStdin(), data)
			if err != nil {
				return err
			}
			if asDirectives {
				format = render.FormatText // the API's, which is what carries directives
			}
			doc, info, err := templateDocument(b, command, name, output, format)
			if err != nil {
				return err
			}
			if info.Variant != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "template %s: rendered from its Cog v3 %s variant\n", name, info.Variant)
			}
			if asDirectives {
				return writeJSON(cmd.OutOrStdout(), doc)
			}
			return templatePrint(cmd.OutOrStdout(), render.Render(doc, format))
		},
	}
	cmd.Flags().StringVar(&bundleFile, "bundle", "", "the bundle config (YAML or JSON)")
	cmd.Flags().StringVar(&name, "template", "", "the template's name (for Gort: command, command_error, message or message_error)")
	cmd.Flags().StringVar(&command, "command", "", "for Gort bundles: the command whose own templates come first")
	cmd.Flags().StringVar(&provider, "provider", "text", "slack, irc, web, text or directives")
	cmd.Flags().StringVar(&data, "data", "", "the command's JSON output, or - to read it from stdin")
	_ = cmd.MarkFlagRequired("bundle")
	_ = cmd.MarkFlagRequired("template")
	return cmd
}

// templateLoadBundle loads the config, printing its problems as bundle
// validate does when it is not valid.
func templateLoadBundle(stderr io.Writer, file string) (*bundle.Bundle, error) {
	config, err := bundleReadConfig(file)
	if err != nil {
		return nil, exitWith(2, "cannot read %s: %v", file, err)
	}
	b, err := bundle.Load(config)
	var invalid *bundle.InvalidError
	if errors.As(err, &invalid) {
		for _, p := range invalid.Errors {
			fmt.Fprintf(stderr, "%s:%d: %s\n", file, p.Line, p.Message)
		}
		return nil, exitWith(2, "%s is not a valid bundle config", file)
	}
	if err != nil {
		return nil, exitWith(2, "%s: %v", file, err)
	}
	for _, w := range b.Warnings() {
		if strings.Contains(w.Message, "templates.") {
			fmt.Fprintf(stderr, "%s:%d: warning: %s\n", file, w.Line, w.Message)
		}
	}
	return b, nil
}

func templateReadData(stdin io.Reader, data string) (json.RawMessage, error) {
	if data == "-" {
		raw, err := io.ReadAll(io.LimitReader(stdin, templateMaxData+1))
		if err != nil {
			return nil, exitWith(2, "reading the data from stdin: %v", err)
		}
		data = string(raw)
	}
	if len(data) > templateMaxData {
		return nil, exitWith(2, "the data is over %d bytes", templateMaxData)
	}
	if strings.TrimSpace(data) == "" {
		return nil, nil
	}
	if _, err := template.DecodeJSON([]byte(data)); err != nil {
		return nil, exitWith(2, "--data is not one JSON value: %v", err)
	}
	return json.RawMessage(data), nil
}

// templateDocument renders the output with the named template, as a reply
// would be, except that a template the reply would replace with the
// default rendering is an error here: its author wants to know.
func templateDocument(b *bundle.Bundle, command, name string, output json.RawMessage, f render.Format) (template.Document, dispatch.RenderInfo, error) {
	if b.Format == bundle.FormatGort {
		doc, err := templateGortDocument(b, command, name, output)
		return doc, dispatch.RenderInfo{}, err
	}
	if _, ok := b.Template(name); !ok {
		var names []string
		for _, t := range b.Templates() {
			names = append(names, t.Name)
		}
		return nil, dispatch.RenderInfo{}, exitWith(2, "bundle %s has no template %s; its templates: %s", b.Name, name, strings.Join(names, ", "))
	}
	doc, info := dispatch.CommandOutputDocument(b, command, name, output, f)
	if info.Error != "" {
		return nil, info, exitWith(2, "%s", info.Error)
	}
	return doc, info, nil
}

func templateGortDocument(b *bundle.Bundle, command, purpose string, output json.RawMessage) (template.Document, error) {
	purposes := []string{template.GortCommand, template.GortCommandError, template.GortMessage, template.GortMessageError}
	if !slices.Contains(purposes, purpose) {
		return nil, exitWith(2, "a Gort bundle's templates are named by purpose: --template is one of %s", strings.Join(purposes, ", "))
	}
	t, ok := dispatch.GortTemplate(b, command, purpose)
	if !ok {
		return nil, exitWith(2, "bundle %s declares no %s template (for command %q or the bundle)", b.Name, purpose, command)
	}
	g, err := template.ParseGort(t.Body)
	if err != nil {
		return nil, exitWith(2, "%v", err)
	}
	var problem *dispatch.Problem
	if purpose != template.GortCommand && purpose != template.GortMessage {
		problem = &dispatch.Problem{Title: "Failed"}
	}
	doc, err := g.Execute(dispatch.GortEnvelope(b, command, output, problem))
	if err != nil {
		return nil, exitWith(2, "%v", err)
	}
	return doc, nil
}

func templatePrint(w io.Writer, out render.Output) error {
	text := out.Text
	if !strings.HasSuffix(text, "\n") && text != "" {
		text += "\n"
	}
	if _, err := io.WriteString(w, text); err != nil {
		return err
	}
	if len(out.Attachments) == 0 {
		return nil
	}
	if _, err := io.WriteString(w, "--- attachments ---\n"); err != nil {
		return err
	}
	return writeJSON(w, out.Attachments)
}
