package pipeline_test

import (
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/pipeline"
)

// BenchmarkParse measures a typical pipeline and inputs near the 16 KiB
// limit built to stress each part of the lexer and parser. It reports
// numbers only; the parser is one forward pass, so each should scale
// linearly with its length.
func BenchmarkParse(b *testing.B) {
	n := pipeline.MaxTextBytes - 16
	inputs := []struct{ name, text string }{
		{"typical", `ec2:instance-list --region=us-east-1 | filter --path="tags.Name" --matches="prod" | echo $body > #ops`},
		{"many variables", "c " + strings.Repeat("$a ", n/3)},
		{"many options", "c " + strings.Repeat("-a ", n/3)},
		{"many interpolations", `c "` + strings.Repeat("${a}", n/4-1) + `"`},
		{"many destinations", "c *> " + strings.Repeat("#a ", n/3-2)},
		{"max stages with arguments", strings.Repeat("a|", pipeline.MaxStages-1) + "a " + strings.Repeat("x ", n/2-70)},
		{"deep path then garbage", "c $a" + strings.Repeat("[0]", n/3)},
	}
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.text)))
			for b.Loop() {
				_, _ = pipeline.Parse(in.text)
			}
		})
	}
}
