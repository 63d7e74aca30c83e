package bundle_test

import (
	"github.com/logbookhq/logbook/internal/testenv"

	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/rules"
)

// realBundlesDir finds the shared directory of published Cog bundle configs.
// The files are third-party test data and stay outside the project; the
// test reads them in place and skips only when the directory is absent.
func realBundlesDir(t *testing.T) string {
	t.Helper()
	return testenv.CogBundlesDir(t)
}

func realBundle(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(realBundlesDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Files that are expected not to load, and the one error each must give.
var realBundleFailures = map[string]struct {
	line     int
	contains string
}{
	// Version 2 predates rules on every command.
	"cogcmd__github-trigger__config.yaml": {2, "cog_bundle_version 2 is not supported; upgrade the config to version 4"},
}

func TestEveryPublishedCogBundleLoadsOrFailsForItsKnownReason(t *testing.T) {
	t.Parallel()
	dir := realBundlesDir(t)
	paths, err := filepath.Glob(filepath.Join(dir, "*config.y*ml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 29 {
		t.Fatalf("expected the 29 published configs, found %d", len(paths))
	}
	for _, path := range paths {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b, err := bundle.Load(data)
			want, mustFail := realBundleFailures[name]
			if !mustFail {
				if err != nil {
					t.Fatalf("expected the config to load, got %v", err)
				}
				if len(b.Commands()) == 0 {
					t.Fatal("expected commands")
				}
				for _, c := range b.Commands() {
					if len(c.ParsedRules()) != len(c.Rules()) {
						t.Errorf("%s: not every rule was parsed", c.FullName())
					}
				}
				return
			}
			var invalid *bundle.InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("expected an *InvalidError, got %v", err)
			}
			if len(invalid.Errors) != 1 {
				t.Fatalf("expected exactly one error, got %v", invalid.Errors)
			}
			got := invalid.Errors[0]
			if got.Line != want.line || !strings.Contains(got.Message, want.contains) {
				t.Fatalf("expected line %d: ...%s..., got %s", want.line, want.contains, got)
			}
		})
	}
}

func TestPublishedBundlesLoadIntoTheModel(t *testing.T) {
	t.Parallel()
	t.Run("statuspage's repeated rules key keeps both lists, so its permission check stays in force", func(t *testing.T) {
		t.Parallel()
		b := mustLoad(t, realBundle(t, "cogcmd__statuspage__config.yaml"))
		if !hasWarning(b.Warnings(), 52, `commands.incident: "rules" repeats the key first defined at line 29`) {
			t.Fatalf("expected a warning naming line 52 and line 29, got %v", b.Warnings())
		}
		incident, ok := b.Command("incident")
		if !ok {
			t.Fatal("no incident command")
		}
		parsed := incident.ParsedRules()
		if len(parsed) != 2 {
			t.Fatalf("expected the rules of both lists, got %d", len(parsed))
		}
		nobody := rules.Evaluate(parsed, rules.Invocation{Command: "statuspage:incident", Args: []any{"list"}}, nil)
		if nobody.Allowed {
			t.Fatalf("a user without statuspage:update may run statuspage:incident: %s", nobody.Explain())
		}
		updater := rules.Evaluate(parsed, rules.Invocation{Command: "statuspage:incident", Args: []any{"list"}},
			func(p string) bool { return p == "statuspage:update" })
		if !updater.Allowed {
			t.Fatalf("a user with statuspage:update may not run statuspage:incident: %s", updater.Explain())
		}
	})
	t.Run("aws-ecs unbinds the short flag two options share and keeps the rest", func(t *testing.T) {
		t.Parallel()
		b := mustLoad(t, realBundle(t, "cogcmd__aws-ecs__config.yaml"))
		c, ok := b.Command("service-update")
		if !ok {
			t.Fatal("expected command service-update")
		}
		if o, ok := c.OptionByShort("d"); ok {
			t.Fatalf("expected -d to stand for no option, got --%s", o.Name)
		}
		if o, ok := c.OptionByShort("c"); !ok || o.Name != "cluster" {
			t.Fatalf("expected -c to stand for --cluster, got %v %v", o, ok)
		}
		if o, _ := c.Option("desired-count"); o == nil || o.ShortFlag != "" {
			t.Fatalf("expected --desired-count without its ambiguous short flag, got %+v", o)
		}
		if !hasWarning(b.Warnings(), 486, "short flag -d is declared by --desired-count and --deployment-config") {
			t.Fatalf("expected a warning about -d, got %v", b.Warnings())
		}
	})
	t.Run("grafana keeps config.env as the bundle's environment variables", func(t *testing.T) {
		t.Parallel()
		b := mustLoad(t, realBundle(t, "cogcmd__grafana__config.yaml"))
		var names []string
		for _, e := range b.Env {
			names = append(names, e.Name)
		}
		if strings.Join(names, ",") != "GRAFANA_URL,GRAFANA_API_KEY" {
			t.Fatalf("expected GRAFANA_URL,GRAFANA_API_KEY, got %v", names)
		}
		if b.Env[0].Line != 11 {
			t.Fatalf("expected GRAFANA_URL at line 11, got %d", b.Env[0].Line)
		}
		if b.Image() != "cogcmd/grafana:0.1.0" {
			t.Fatalf("expected image cogcmd/grafana:0.1.0, got %q", b.Image())
		}
	})
	t.Run("imbriaco has no docker section and loads as a host bundle with a warning", func(t *testing.T) {
		t.Parallel()
		b := mustLoad(t, realBundle(t, "imbriaco__cog-imbriaco__config.yml"))
		if b.Image() != "" {
			t.Fatalf("expected no image, got %q", b.Image())
		}
		if !hasWarning(b.Warnings(), 2, "names no image") {
			t.Fatalf("expected a warning about the missing image, got %v", b.Warnings())
		}
	})
	t.Run("pingdom keeps options, types, short flags and subcommands", func(t *testing.T) {
		t.Parallel()
		b := mustLoad(t, realBundle(t, "cogcmd__pingdom__config.yaml"))
		c, _ := b.Command("check")
		o, ok := c.OptionByShort("c")
		if !ok || o.Name != "count" || o.Type != bundle.OptionInt || !o.Type.TakesValue() || o.Required {
			t.Fatalf("expected -c to be the optional int --count, got %+v", o)
		}
		if len(c.Subcommands) != 3 || c.Subcommands[1].Usage != "show <id>" {
			t.Fatalf("expected three subcommands, got %+v", c.Subcommands)
		}
		rs := c.Rules()
		if len(rs) != 1 || rs[0].Line != 48 || rs[0].Parsed.Command() != "pingdom:check" {
			t.Fatalf("expected one rule at line 48 for pingdom:check, got %+v", rs)
		}
	})
	t.Run("a version 3 bundle loads with a deprecation warning and keeps per-provider templates", func(t *testing.T) {
		t.Parallel()
		b := mustLoad(t, realBundle(t, "cogcmd__circle__config.yaml"))
		if b.FormatVersion != 3 {
			t.Fatalf("expected format version 3, got %d", b.FormatVersion)
		}
		if !hasWarning(b.Warnings(), 2, "cog_bundle_version 3 is deprecated") {
			t.Fatalf("expected a deprecation warning, got %v", b.Warnings())
		}
		tpl, ok := b.Template("status")
		if !ok || tpl.Providers["slack"].Source != "{{status}} - {{stop_time}}" || tpl.Providers["slack"].Line != 35 {
			t.Fatalf("expected the slack variant of template status, got %+v", tpl)
		}
	})
	t.Run("heroku's with-rules parse and expand to the full form", func(t *testing.T) {
		t.Parallel()
		b := mustLoad(t, realBundle(t, "cogcmd__heroku__config.yaml"))
		c, _ := b.Command("ps")
		got := c.Rules()[1].Parsed.String()
		if !strings.HasPrefix(got, "when command is heroku:ps with ") || !strings.Contains(got, "heroku:write") {
			t.Fatalf("expected the expanded full form, got %q", got)
		}
	})
}

func mustLoad(t *testing.T, data []byte) *bundle.Bundle {
	t.Helper()
	b, err := bundle.Load(data)
	if err != nil {
		t.Fatalf("expected the config to load, got %v", err)
	}
	return b
}

func hasWarning(ws []bundle.Problem, line int, contains string) bool {
	for _, w := range ws {
		if w.Line == line && strings.Contains(w.Message, contains) {
			return true
		}
	}
	return false
}
