package template_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/template"
	"github.com/logbookhq/logbook/internal/testenv"
)

// corpusTemplate is one template of a published Cog bundle.
type corpusTemplate struct {
	file, bundle, name, body string
}

// corpusTemplates loads every published config that loads and returns its
// Greenbar templates (a Cog v3 template with only per-provider variants
// has no Greenbar body and is left out).
func corpusTemplates(t *testing.T) (greenbar []corpusTemplate, providerOnly int) {
	t.Helper()
	dir := testenv.CogBundlesDir(t)
	paths, err := filepath.Glob(filepath.Join(dir, "*config.y*ml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := bundle.Load(data)
		if err != nil {
			continue // the one v2 config is refused by the loader's own tests
		}
		for _, tm := range b.Templates() {
			if tm.Body == "" {
				providerOnly++
				continue
			}
			greenbar = append(greenbar, corpusTemplate{file: filepath.Base(path), bundle: b.Name, name: tm.Name, body: tm.Body})
		}
	}
	return greenbar, providerOnly
}

func TestEveryGreenbarTemplateOfThePublishedBundlesParses(t *testing.T) {
	t.Parallel()
	templates, providerOnly := corpusTemplates(t)
	if len(templates) != 89 || providerOnly != 2 {
		t.Fatalf("expected the corpus's 89 Greenbar templates and 2 per-provider ones, found %d and %d", len(templates), providerOnly)
	}
	parsed := 0
	for _, ct := range templates {
		if _, err := template.Parse(ct.body); err != nil {
			t.Errorf("%s %s: %v", ct.file, ct.name, err)
			continue
		}
		parsed++
	}
	t.Logf("%d/%d corpus templates parse", parsed, len(templates))
}
