package bundle_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain/bundle"
)

// FuzzLoad checks that no input panics or hangs and that Load keeps its
// contract: a bundle and nil, or nil and an *InvalidError with at least one
// error, each on a line that exists.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(minimalV4))
	f.Add([]byte(approvalV4 + "approvals:\n  room: ops-approvals\n  provider: slack\nexecution:\n  concurrency: {bundle: 2, user: 1}\n  rate: 5\n  queue: 30s\n"))
	for _, name := range []string{"gort-v1.yaml", "cog-v5.yaml"} {
		if data, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(data)
		}
	}
	// The smaller published configs are seeds when present; they are read
	// in place, never copied into the corpus. The large ones only slow the
	// fuzzer's minimizer down.
	if paths, err := filepath.Glob("../../../shared/testdata/cog-bundles/*config.y*ml"); err == nil {
		for _, p := range paths {
			if data, err := os.ReadFile(p); err == nil && len(data) < 4096 {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := bundle.Load(data)
		// YAML breaks lines at \n, \r and, in YAML 1.1, at NEL, LS and PS;
		// counting each gives an upper bound on a real line number.
		lines := 2
		for _, brk := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
			lines += bytes.Count(data, []byte(brk))
		}
		if err == nil {
			if b == nil {
				t.Fatal("nil bundle without an error")
			}
			for _, w := range b.Warnings() {
				if w.Line < 0 || w.Line > lines {
					t.Fatalf("warning on line %d of a %d-line input: %s", w.Line, lines, w)
				}
			}
			for _, c := range b.Commands() {
				if got, ok := b.Command(c.Name); !ok || got != c {
					t.Fatalf("command %q not found by name", c.Name)
				}
				for _, r := range c.Rules() {
					if r.Parsed == nil {
						t.Fatalf("%s: rule %q loaded unparsed", c.FullName(), r.Source)
					}
				}
				for _, o := range c.Options() {
					if o.ShortFlag != "" {
						if got, ok := c.OptionByShort(o.ShortFlag); !ok || got != o {
							t.Fatalf("%s: -%s does not find --%s", c.FullName(), o.ShortFlag, o.Name)
						}
					}
				}
			}
			return
		}
		if b != nil {
			t.Fatal("a bundle returned with an error")
		}
		var invalid *bundle.InvalidError
		if !errors.As(err, &invalid) || len(invalid.Errors) == 0 {
			t.Fatalf("expected an *InvalidError with errors, got %v", err)
		}
		for _, p := range invalid.Errors {
			if p.Line < 0 || p.Line > lines || p.Message == "" {
				t.Fatalf("error on line %d of a %d-line input: %q", p.Line, lines, p.Message)
			}
		}
	})
}

func TestHostileDocumentsAreRefusedQuickly(t *testing.T) {
	t.Parallel()
	// Nine levels of nine aliases: expanded, about 387 million strings.
	var laughs strings.Builder
	laughs.WriteString("cog_bundle_version: 4\nl0: &l0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	for i := 1; i <= 9; i++ {
		prev := "*l" + string(rune('0'+i-1))
		laughs.WriteString("l" + string(rune('0'+i)) + ": &l" + string(rune('0'+i)) + " [" + strings.Repeat(prev+",", 8) + prev + "]\n")
	}
	tests := []struct {
		name   string
		config string
		want   string
	}{
		{"a billion laughs", laughs.String(), "YAML aliases (*l0) are not supported"},
		{"flow nesting past YAML's depth limit", "cog_bundle_version: 4\nx: " + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + "\n", "not valid YAML or JSON"},
		{"nesting at YAML's depth limit", "cog_bundle_version: 4\nx: " + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "\n", `unknown field "x"`},
		{"a hundred thousand repeated keys", "cog_bundle_version: 4\n" + strings.Repeat("name: a\n", 100_000), "more errors not shown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, err := bundle.Load([]byte(tt.config))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("expected an error containing %q, got %v", tt.want, err)
			}
			var invalid *bundle.InvalidError
			if errors.As(err, &invalid) && len(invalid.Errors) > 201 {
				t.Fatalf("expected at most 200 errors and a summary, got %d", len(invalid.Errors))
			}
			// A generous bound: these take milliseconds; an expansion
			// would take minutes or exhaust memory.
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
}
