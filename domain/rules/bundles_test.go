package rules

import (
	"github.com/logbookhq/logbook/internal/testenv"

	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type bundleRule struct {
	file, bundle, command, text string
	line                        int
}

// bundleRules walks a bundle config's YAML tree for commands.<name>.rules,
// every occurrence of the key (one config repeats it), so no rule is missed.
func bundleRules(t *testing.T, path string) []bundleRule {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	bundle := ""
	var commands *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch root.Content[i].Value {
		case "name":
			bundle = root.Content[i+1].Value
		case "commands":
			commands = root.Content[i+1]
		}
	}
	if commands == nil || commands.Kind != yaml.MappingNode {
		return nil
	}
	var found []bundleRule
	for i := 0; i+1 < len(commands.Content); i += 2 {
		name, config := commands.Content[i].Value, commands.Content[i+1]
		for j := 0; j+1 < len(config.Content); j += 2 {
			if config.Content[j].Value != "rules" {
				continue
			}
			for _, item := range config.Content[j+1].Content {
				found = append(found, bundleRule{file: filepath.Base(path), bundle: bundle, command: name, text: item.Value, line: item.Line})
			}
		}
	}
	return found
}

func TestEveryRuleInPublicCogBundlesParses(t *testing.T) {
	t.Parallel()
	cogBundlesDir := testenv.CogBundlesDir(t) // public Cog bundle configs, test data kept beside the repository
	paths, _ := filepath.Glob(filepath.Join(cogBundlesDir, "*.y*ml"))
	if len(paths) == 0 {
		t.Skipf("no Cog bundle configs in %s", cogBundlesDir)
	}
	total, full := 0, 0
	for _, path := range paths {
		for _, br := range bundleRules(t, path) {
			total++
			r, err := ParseForCommand(br.bundle, br.command, br.text)
			if err != nil {
				t.Errorf("%s:%d: rule %q for %s:%s: %v", br.file, br.line, br.text, br.bundle, br.command, err)
				continue
			}
			if strings.HasPrefix(br.text, "when") {
				full++
			}
			if want := br.bundle + ":" + br.command; r.Command() != want {
				t.Errorf("%s:%d: rule %q governs %s, want %s", br.file, br.line, br.text, r.Command(), want)
			}
			if again, err := Parse(r.String()); err != nil || !again.Equal(r) {
				t.Errorf("%s:%d: canonical form %q does not parse back: %v", br.file, br.line, r.String(), err)
			}
		}
	}
	t.Logf("checked %d rules, %d in full form", total, full)
	// 29 configs hold well over a hundred rules, a dozen of them in full form.
	if total < 100 || full < 10 {
		t.Errorf("found %d rules (%d in full form); the extractor is missing some", total, full)
	}
}
