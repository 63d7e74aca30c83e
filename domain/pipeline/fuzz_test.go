package pipeline_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/logbookhq/logbook/domain/pipeline"
)

// FuzzParse checks that no text panics or hangs the parser, that every error
// is ErrRerun or a SyntaxError pointing inside the text (or just past it),
// and that what parses renders to canonical text that parses back the same.
// Seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add(`ec2:instance-list --region=us-east-1 | filter --path="tags.Name" --matches="prod" > #ops`)
	f.Fuzz(func(t *testing.T, text string) {
		p, err := pipeline.Parse(text)
		if err != nil {
			if errors.Is(err, pipeline.ErrRerun) {
				return
			}
			var syn *pipeline.SyntaxError
			if !errors.As(err, &syn) {
				t.Fatalf("Parse(%q) error %v is not a *SyntaxError", text, err)
			}
			limit := utf8.RuneCountInString(text) + 1
			if syn.Column < 1 || syn.Column > limit || syn.Msg == "" {
				t.Fatalf("Parse(%q) error %q: column outside 1..%d or no message", text, err, limit)
			}
			return
		}
		if len(p.Stages) == 0 || len(p.Stages) > pipeline.MaxStages {
			t.Fatalf("Parse(%q) gave %d stages", text, len(p.Stages))
		}
		if _, err := json.Marshal(p); err != nil {
			t.Fatalf("Parse(%q) result does not encode: %v", text, err)
		}
		for _, st := range p.Stages {
			if _, err := pipeline.Bind(st, map[string]any{}); err != nil {
				var be *pipeline.BindError
				if !errors.As(err, &be) {
					t.Fatalf("Bind error %v is not a *BindError", err)
				}
			}
		}
		canonical := p.String()
		if len(canonical) > pipeline.MaxTextBytes {
			return // escaping can push text near the limit over it
		}
		again, err := pipeline.Parse(canonical)
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", canonical, text, err)
		}
		if a, b := plainPipeline(p), plainPipeline(again); !reflect.DeepEqual(a, b) {
			t.Fatalf("canonical %q of %q parses differently:\n%v\n%v", canonical, text, a, b)
		}
	})
}

// FuzzBind checks that binding any parsed stage to any JSON object never
// panics, fails only with a BindError, and leaves nothing unbound.
// Seeds are in testdata/fuzz/FuzzBind.
func FuzzBind(f *testing.F) {
	f.Add(`echo $a "${b[0]}" --$c=$d.e`, `{"a":1,"b":["x"],"c":"opt","d":{"e":true}}`)
	f.Fuzz(func(t *testing.T, text, input string) {
		p, err := pipeline.Parse(text)
		if err != nil {
			return
		}
		var in map[string]any
		if json.Unmarshal([]byte(input), &in) != nil {
			return
		}
		for _, st := range p.Stages {
			bound, err := pipeline.Bind(st, in)
			if err != nil {
				var be *pipeline.BindError
				if !errors.As(err, &be) || be.Column < 1 || be.Variable == "" {
					t.Fatalf("Bind(%q, %s) error %v: want a *BindError with column and variable", text, input, err)
				}
				continue
			}
			if bound.NeedsBinding() {
				t.Fatalf("Bind(%q, %s) left variables unbound", text, input)
			}
			_ = bound.String()
		}
	})
}
