package main

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/domain/pipeline"
)

func init() { register(newPipelineCmd) }

func newPipelineCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "pipeline", Short: "Work with the Cog pipeline language"}
	cmd.AddCommand(newPipelineParseCmd())
	return cmd
}

func newPipelineParseCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "parse [--json] 'TEXT'",
		Short: "Parse a chat pipeline and show its stages, typed values and redirects",
		Long: `Parse a pipeline as typed in chat (a leading ! is allowed) and print its
stages, arguments and options with their types, and its redirects. With
--json, print one object: {"stages":[{"command","bundle","name","args",
"options","variables","column"}],"redirects":["#room",...],"destinations":
[{"target","kind","name","column"}],"canonical":"..."}; args and options hold
typed JSON values, variables and templates as their text ("$a.b").
Exit 0 when the text parses, 2 when it does not (column N: message on stderr).
Quote the text for your shell; options are not declared here, so "--name
value" reads as a flag followed by an argument.`,
		Example: `  logbook pipeline parse 'ec2:instance-list --region=us-east-1 | filter --path="tags.Name" > #ops'
  logbook pipeline parse --json 'seed '\''{"a":1}'\'' | echo $a'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pl, err := pipeline.Parse(args[0])
			if errors.Is(err, pipeline.ErrRerun) {
				return exitWith(2, "!! reruns the previous pipeline in chat; there is no previous pipeline here")
			}
			if err != nil {
				return exitWith(2, "%v", err)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), pipelineJSONOf(pl))
			}
			return pipelineWriteText(cmd.OutOrStdout(), pl)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the parsed pipeline as one JSON object")
	return cmd
}

// pipelineJSON is the --json shape: plain typed values for scripts, with the
// per-destination details beside the plain redirect list.
type pipelineJSON struct {
	Stages       []pipelineStageJSON       `json:"stages"`
	Redirects    []string                  `json:"redirects"`
	Destinations []pipelineDestinationJSON `json:"destinations"`
	Canonical    string                    `json:"canonical"`
}

type pipelineStageJSON struct {
	Command   string         `json:"command"`
	Bundle    string         `json:"bundle"`
	Name      string         `json:"name"`
	Args      []any          `json:"args"`
	Options   map[string]any `json:"options"`
	Variables []string       `json:"variables"`
	Column    int            `json:"column"`
}

type pipelineDestinationJSON struct {
	Target string `json:"target"`
	Kind   string `json:"kind"`
	Name   string `json:"name,omitempty"`
	Column int    `json:"column"`
}

func pipelineJSONOf(pl pipeline.Pipeline) pipelineJSON {
	out := pipelineJSON{
		Stages:       make([]pipelineStageJSON, 0, len(pl.Stages)),
		Redirects:    make([]string, 0, len(pl.Redirects)),
		Destinations: make([]pipelineDestinationJSON, 0, len(pl.Redirects)),
		Canonical:    pl.String(),
	}
	for _, st := range pl.Stages {
		s := pipelineStageJSON{
			Command:   st.Command,
			Bundle:    st.Bundle,
			Name:      st.Name,
			Args:      make([]any, 0, len(st.Args)),
			Options:   make(map[string]any, len(st.OptionList)),
			Variables: make([]string, 0),
			Column:    st.Column,
		}
		for _, a := range st.Args {
			s.Args = append(s.Args, a.Literal())
		}
		for name, v := range st.Options {
			s.Options[name] = v.Literal()
		}
		// An option named by a variable has no name until bound: show it
		// under the name as written.
		for _, o := range st.OptionList {
			if o.NameVar != nil {
				s.Options[o.Flag] = o.Value.Literal()
			}
		}
		for _, v := range st.Variables() {
			s.Variables = append(s.Variables, v.String())
		}
		out.Stages = append(out.Stages, s)
	}
	for _, r := range pl.Redirects {
		out.Redirects = append(out.Redirects, r.Target)
		out.Destinations = append(out.Destinations, pipelineDestinationJSON{
			Target: r.Target, Kind: string(r.Kind), Name: r.Name, Column: r.Column,
		})
	}
	return out
}

// pipelineWriteText prints the canonical text, then one row per stage,
// option, argument and destination.
func pipelineWriteText(w io.Writer, pl pipeline.Pipeline) error {
	if _, err := fmt.Fprintf(w, "%s\n\n", pl.String()); err != nil {
		return err
	}
	t := newTable(w, "PART", "NAME", "VALUE", "TYPE", "COLUMN")
	for i, st := range pl.Stages {
		t.Row(fmt.Sprintf("stage %d", i+1), st.Command, "", pipelineCommandKind(st), st.Column)
		// Options and arguments in the order they were written.
		var rows [][]any
		for _, o := range st.OptionList {
			rows = append(rows, []any{"  option", o.Flag, o.Value.String(), pipelineValueType(o.Value), o.Column})
		}
		for j, a := range st.Args {
			rows = append(rows, []any{fmt.Sprintf("  arg %d", j), "", a.String(), pipelineValueType(a), a.Column})
		}
		sort.SliceStable(rows, func(a, b int) bool { return rows[a][4].(int) < rows[b][4].(int) })
		for _, r := range rows {
			t.Row(r...)
		}
	}
	for _, r := range pl.Redirects {
		t.Row("redirect", r.Target, "", string(r.Kind), r.Column)
	}
	return t.Flush()
}

func pipelineCommandKind(st pipeline.Stage) string {
	if st.Bundle == "" {
		return "command (bare)"
	}
	return "command in bundle " + st.Bundle
}

func pipelineValueType(v pipeline.Value) string {
	if v.Quoted && v.Kind == pipeline.KindString {
		return "string (quoted)"
	}
	return string(v.Kind)
}
