package template_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/template"
)

func TestATemplateThatDoesNotParseSaysWhereAndWhy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		source     string
		line, col  int
		msgContain string
	}{
		{"a tag left open on its line", "Hello\n  ~$name\nbye", 2, 3, "not closed on its line"},
		{"a tag left open at the end", "Hello ~$name", 1, 7, "a ~ is missing"},
		{"an empty tag", "a ~~ b", 1, 3, "empty tag"},
		{"an unknown tag", "~each var=$x~\n~frobnicate var=$x~\n~end~", 2, 1, "unknown tag ~frobnicate~"},
		{"an end that closes nothing", "text\n~end~", 2, 1, "closes no tag"},
		{"each without var", "~each as=x~~end~", 1, 1, "needs a var= attribute"},
		{"each over a literal", `~each var="x"~~end~`, 1, 7, "takes a variable"},
		{"an attribute the tag does not take", "~each var=$x colour=red~~end~", 1, 14, "has no attribute colour"},
		{"an attribute given twice", "~each var=$x var=$y~~end~", 1, 14, "given twice"},
		{"br with an attribute", "~br x=1~", 1, 5, "takes no attributes"},
		{"a dollar without a name", "~$~", 1, 2, "$ must start a variable name"},
		{"a key missing after a dot", "~$a.~", 1, 5, "expected a key after ."},
		{"a negative index", "~$a[-1]~", 1, 5, "expected a list index"},
		{"an index not closed", "~$a[0~", 1, 6, "expected ] after the index"},
		{"an unknown test", "~if cond=$a full?~~end~", 1, 13, "unknown test full?"},
		{"an unknown function", "~if cond=size($a) > 1~~end~", 1, 10, "unknown function size()"},
		{"a comparison without a right side", "~if cond=$a ==~~end~", 1, 15, "expected a value to compare with"},
		{"an unclosed string", `~attachment title="abc~`, 1, 19, "no closing"},
		{"something after a variable", "~$a b~", 1, 5, "holds only the variable"},
		{"a stray character", "~if cond=$a & $b~~end~", 1, 13, "unexpected"},
		{"an error on a later line keeps its column", "line one\nline two\n**x** ~if cond=$a.b[~~end~", 3, 21, "expected a list index"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := template.Parse(tc.source)
			var syn *template.SyntaxError
			if !errors.As(err, &syn) {
				t.Fatalf("given %q, expected a syntax error, got %v", tc.source, err)
			}
			if syn.Line != tc.line || syn.Column != tc.col || !strings.Contains(syn.Msg, tc.msgContain) {
				t.Fatalf("given %q, expected line %d, column %d, %q; got %v", tc.source, tc.line, tc.col, tc.msgContain, err)
			}
		})
	}
}

func TestATemplateThatParsesWithAWarning(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		source string
		want   []string
	}{
		{"a body tag never closed is closed at the end", "~each var=$results~\n~if cond=$item bound?~\nx\n~end~\n", []string{"line 1, column 1: ~each~ is never closed"}},
		{"two tags never closed are both named, outermost first", "~each var=$a~\n~each var=$item~\nx", []string{"line 1, column 1: ~each~ is never closed", "line 2, column 1: ~each~ is never closed"}},
		{"a closed template has no warnings", "~each var=$a~x~end~", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tm, err := template.Parse(tc.source)
			if err != nil {
				t.Fatal(err)
			}
			warnings := tm.Warnings()
			if len(warnings) != len(tc.want) {
				t.Fatalf("expected %d warnings, got %v", len(tc.want), warnings)
			}
			for i, w := range warnings {
				if !strings.HasPrefix(w.String(), tc.want[i]) {
					t.Errorf("warning %d: expected %q, got %q", i, tc.want[i], w.String())
				}
			}
		})
	}
}

func TestATemplateOverTheSizeLimitIsRefused(t *testing.T) {
	t.Parallel()
	_, err := template.Parse(strings.Repeat("a", template.MaxSourceBytes+1))
	if err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("expected the size limit, got %v", err)
	}
}

func TestTagsNestedTooDeeplyAreRefused(t *testing.T) {
	t.Parallel()
	source := strings.Repeat("~if cond=$a~", 100) + strings.Repeat("~end~", 100)
	_, err := template.Parse(source)
	if err == nil || !strings.Contains(err.Error(), "nest more than") {
		t.Fatalf("expected the depth limit, got %v", err)
	}
}
