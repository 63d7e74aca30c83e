package bundle_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/bundle"
)

// minimalV4 is the smallest config every check below starts from.
const minimalV4 = `cog_bundle_version: 4
name: ops
description: Operations
version: "1.2.0"
docker:
  image: acme/ops
  tag: "1.2.0"
permissions:
  - ops:deploy
commands:
  deploy:
    executable: /bin/deploy
    rules:
      - must have ops:deploy
`

func loadErrors(t *testing.T, config string) []bundle.Problem {
	t.Helper()
	_, err := bundle.Load([]byte(config))
	var invalid *bundle.InvalidError
	if !errors.As(err, &invalid) {
		t.Fatalf("expected an *InvalidError, got %v", err)
	}
	return invalid.Errors
}

func hasProblem(ps []bundle.Problem, line int, contains string) bool {
	for _, p := range ps {
		if p.Line == line && strings.Contains(p.Message, contains) {
			return true
		}
	}
	return false
}

func TestAMinimalV4ConfigLoadsWithoutWarnings(t *testing.T) {
	t.Parallel()
	b := mustLoad(t, []byte(minimalV4))
	if len(b.Warnings()) != 0 {
		t.Fatalf("expected no warnings, got %v", b.Warnings())
	}
	if b.Format != bundle.FormatCog || b.FormatVersion != 4 || b.Name != "ops" || b.Version != "1.2.0" {
		t.Fatalf("unexpected bundle %+v", b)
	}
	if b.Image() != "acme/ops:1.2.0" {
		t.Fatalf("expected image acme/ops:1.2.0, got %q", b.Image())
	}
	c, ok := b.Command("deploy")
	if !ok || c.FullName() != "ops:deploy" || strings.Join(c.Executable, " ") != "/bin/deploy" {
		t.Fatalf("unexpected command %+v", c)
	}
	if _, ok := b.Command("missing"); ok {
		t.Fatal("expected no command called missing")
	}
	if got := c.Rules()[0].Parsed.String(); got != "when command is ops:deploy must have ops:deploy" {
		t.Fatalf("expected the short-form rule expanded, got %q", got)
	}
	if !c.EffectiveExecution().IsZero() {
		t.Fatalf("expected no execution settings, got %+v", c.EffectiveExecution())
	}
}

func TestSchemaErrorsNameTheLineAndAreAllReported(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config string
		line   int
		want   string
	}{
		{"an unknown top-level field suggests the near one", strings.Replace(minimalV4, "description:", "descripton:", 1),
			3, `unknown field "descripton" (did you mean "description"?)`},
		{"an unknown command field is an error, not a silently dropped rule", strings.Replace(minimalV4, "    rules:", "    rule:", 1),
			13, `commands.deploy: unknown field "rule" (did you mean "rules"?)`},
		{"a field far from every known one lists the expected ones", minimalV4 + "colour: blue\n",
			15, `unknown field "colour"; expected one of approvals, author, cog_bundle_version`},
		{"a missing required field is reported at its mapping", strings.Replace(minimalV4, "description: Operations\n", "", 1),
			1, `missing required field "description"`},
		{"a command without rules is an error", strings.Replace(minimalV4, "    rules:\n      - must have ops:deploy\n", "", 1),
			11, `commands.deploy: missing required field "rules"`},
		{"a command without an executable is an error", strings.Replace(minimalV4, "    executable: /bin/deploy\n", "", 1),
			11, `commands.deploy: missing required field "executable"`},
		{"a docker section without a tag is an error", strings.Replace(minimalV4, "  tag: \"1.2.0\"\n", "", 1),
			5, `docker: missing required field "tag"`},
		{"a mapping where a string belongs", strings.Replace(minimalV4, "name: ops", "name: {first: ops}", 1),
			2, "name: expected a string, found a mapping"},
		{"a boolean is not a string", strings.Replace(minimalV4, "name: ops", "name: true", 1),
			2, "name: expected a string, found a boolean (true)"},
		{"null is not a string", strings.Replace(minimalV4, "name: ops", "name:", 1),
			2, "name: expected a string, found nothing (null)"},
		{"rules must be a list", strings.Replace(minimalV4, "    rules:\n      - must have ops:deploy", "    rules: must have ops:deploy", 1),
			13, "commands.deploy.rules: expected a list, found a string"},
		{"a rule must be a string", strings.Replace(minimalV4, "      - must have ops:deploy", "      - {must: have}", 1),
			14, "commands.deploy.rules[0]: expected a string, found a mapping"},
		{"an option type outside Cog's list", minimalV4 + "    options:\n      region:\n        type: integer\n",
			17, `"integer" is not an option type; expected one of string, int, float, bool, incr, list`},
		{"an option without a type", minimalV4 + "    options:\n      region:\n        required: true\n",
			16, `commands.deploy.options.region: missing required field "type"`},
		{"an unknown option field", minimalV4 + "    options:\n      region:\n        type: string\n        default: eu\n",
			18, `commands.deploy.options.region: unknown field "default"`},
		{"required must be a boolean", minimalV4 + "    options:\n      region:\n        type: string\n        required: \"yes\"\n",
			18, "required: expected true or false, found a string"},
		{"a template needs a body", minimalV4 + "templates:\n  deploy:\n    colour: red\n",
			17, `templates.deploy: unknown field "colour"`},
		{"a template name outside Cog's pattern", minimalV4 + "templates:\n  deploy-result:\n    body: ok\n",
			16, "templates.deploy-result: a template name may use only letters, digits and _"},
		{"the version must be a number", strings.Replace(minimalV4, "cog_bundle_version: 4", `cog_bundle_version: "4"`, 1),
			1, "cog_bundle_version: expected a whole number, found a string"},
		{"a v4 output is a string", minimalV4 + "    output:\n      description: a list\n",
			16, "commands.deploy.output: expected a string, found a mapping"},
		{"cog v3's execution once is refused", minimalV4 + "    execution: once\n",
			15, "once (a long-running command) is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs := loadErrors(t, tt.config)
			if !hasProblem(errs, tt.line, tt.want) {
				t.Fatalf("expected line %d: ...%s..., got %v", tt.line, tt.want, errs)
			}
			for _, e := range errs {
				if e.Kind != bundle.KindSchema {
					t.Errorf("expected only schema errors, got %s: %s", e.Kind, e)
				}
			}
		})
	}
}

func TestEverySchemaErrorIsCollectedNotJustTheFirst(t *testing.T) {
	t.Parallel()
	config := strings.NewReplacer(
		"name: ops", "name: [ops]",
		"    rules:", "    rulez:",
		"  tag: \"1.2.0\"", "  tags: \"1.2.0\"",
	).Replace(minimalV4)
	errs := loadErrors(t, config)
	for _, want := range []struct {
		line int
		text string
	}{
		{2, "name: expected a string, found a list"},
		{7, `docker: unknown field "tags"`},
		{13, `commands.deploy: unknown field "rulez"`},
		{11, `commands.deploy: missing required field "rules"`},
	} {
		if !hasProblem(errs, want.line, want.text) {
			t.Errorf("expected line %d: ...%s..., got %v", want.line, want.text, errs)
		}
	}
}

func TestARepeatedKeyIsAnErrorInEveryMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config string
		line   int
		want   string
	}{
		{"a rules key repeated with something other than a list",
			minimalV4 + "    rules: allow\n", 15, `commands.deploy: "rules" repeats the key first defined at line 13`},
		{"a repeated top-level key", minimalV4 + "name: other\n", 15, `"name" repeats the key first defined at line 2`},
		{"a repeated key inside a free-form field Cog ignores", minimalV4 + "    subcommands:\n      list: a\n      list: b\n",
			17, `commands.deploy.subcommands: "list" repeats the key first defined at line 16`},
		{"a repeated key in a JSON object", `{"cog_bundle_version": 4, "name": "a", "name": "b"}`, 1, `"name" repeats the key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs := loadErrors(t, tt.config)
			if !hasProblem(errs, tt.line, tt.want) {
				t.Fatalf("expected line %d: ...%s..., got %v", tt.line, tt.want, errs)
			}
		})
	}
}

func TestARepeatedRulesListIsMergedWithAWarning(t *testing.T) {
	t.Parallel()
	b := mustLoad(t, []byte(minimalV4+"    rules:\n      - allow\n"))
	if !hasWarning(b.Warnings(), 15, `commands.deploy: "rules" repeats the key first defined at line 13; Logbook keeps the rules of both`) {
		t.Fatalf("expected a warning naming both lines, got %v", b.Warnings())
	}
	deploy, _ := b.Command("deploy")
	var lines []int
	for _, r := range deploy.Rules() {
		lines = append(lines, r.Line)
	}
	if len(lines) != 2 || lines[0] != 14 || lines[1] != 16 {
		t.Fatalf("expected the rules of lines 14 and 16, got lines %v", lines)
	}
}

func TestMeaningErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config string
		line   int
		want   string
	}{
		{"a rule that does not parse gives its column", strings.Replace(minimalV4, "must have ops:deploy", "must have", 1),
			14, "commands.deploy.rules[0]: the rule does not parse at column"},
		{"a rule for another command", strings.Replace(minimalV4, "must have ops:deploy", "when command is ops:rollback must have ops:deploy", 1),
			14, "the rule is for ops:rollback, not for this command, ops:deploy"},
		{"a rule for another bundle", strings.Replace(minimalV4, "must have ops:deploy", "when command is dev:deploy must have ops:deploy", 1),
			14, "the rule is for dev:deploy, not for this command, ops:deploy"},
		{"a rule requiring an undeclared permission of the bundle", strings.Replace(minimalV4, "must have ops:deploy", "must have ops:admin", 1),
			14, "the rule requires ops:admin, which is not declared in the bundle's permissions"},
		{"a rule requiring another bundle's permission", strings.Replace(minimalV4, "must have ops:deploy", "must have dev:deploy", 1),
			14, "a bundle's rules may require only its own permissions (ops:...) or site: ones"},
		{"a permission outside the bundle's namespace", strings.Replace(minimalV4, "  - ops:deploy", "  - ops:deploy\n  - dev:deploy", 1),
			10, `permission "dev:deploy" is outside the bundle's namespace`},
		{"a permission without a namespace", strings.Replace(minimalV4, "  - ops:deploy", "  - ops:deploy\n  - deploy", 1),
			10, `permission "deploy" is not valid: expected ops:name`},
		{"a version that is not N.N or N.N.N", strings.Replace(minimalV4, `version: "1.2.0"`, `version: "1.2.0-beta"`, 1),
			4, `version "1.2.0-beta" is not N.N or N.N.N`},
		{"a bare major version", strings.Replace(minimalV4, `version: "1.2.0"`, `version: 1`, 1),
			4, `version "1" is not N.N or N.N.N`},
		{"a bundle name with a space", strings.Replace(minimalV4, "name: ops", "name: my ops", 1),
			2, `bundle name "my ops" is not valid`},
		{"a bundle called site", strings.NewReplacer("name: ops", "name: site", "ops:", "site:").Replace(minimalV4),
			2, `a bundle cannot be called "site"`},
		{"a command name with a colon", strings.Replace(minimalV4, "  deploy:", "  \"de:ploy\":", 1),
			11, `command name "de:ploy" is not valid`},
		{"an empty image tag", strings.Replace(minimalV4, `tag: "1.2.0"`, `tag: ""`, 1),
			7, "the image tag is empty"},
		{"a short flag of two letters", minimalV4 + "    options:\n      region:\n        type: string\n        short_flag: rg\n",
			16, `short_flag "rg" must be one letter or digit`},
		{"an env var reserved for the command protocol", minimalV4 + "    env_vars:\n      COG_BUNDLE: other\n",
			16, `"COG_BUNDLE" is reserved`},
		{"an env var name with a dash", minimalV4 + "config:\n  env:\n    - var: API-KEY\n",
			17, `config.env: "API-KEY" is not a valid environment variable name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs := loadErrors(t, tt.config)
			if !hasProblem(errs, tt.line, tt.want) {
				t.Fatalf("expected line %d: ...%s..., got %v", tt.line, tt.want, errs)
			}
			for _, e := range errs {
				if e.Kind != bundle.KindMeaning {
					t.Errorf("expected only meaning errors, got %s: %s", e.Kind, e)
				}
			}
		})
	}
}

func TestWarningsDoNotMakeAConfigInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config string
		kind   bundle.Kind
		line   int
		want   string
	}{
		{"site permissions may be required without being declared", strings.Replace(minimalV4, "must have ops:deploy", "must have site:ops", 1), "", 0, ""},
		{"enforcing is ignored", minimalV4 + "    enforcing: false\n", bundle.KindSchema, 15, "enforcing is ignored: Logbook always enforces"},
		{"a rule mixing and and or without parentheses", strings.Replace(minimalV4, "  - ops:deploy", "  - ops:deploy\n  - ops:a\n  - ops:b", 1) + "      - must have ops:deploy and ops:a or ops:b\n",
			bundle.KindMeaning, 17, "commands.deploy.rules[1]: "},
		{"a command with an empty rules list", strings.Replace(minimalV4, "    rules:\n      - must have ops:deploy", "    rules: []", 1),
			bundle.KindMeaning, 11, "commands.deploy has no rules, so no one can run it"},
		{"a permission listed twice", strings.Replace(minimalV4, "  - ops:deploy", "  - ops:deploy\n  - ops:deploy", 1), bundle.KindMeaning, 10, `permission "ops:deploy" is listed twice`},
		{"docker binds are ignored", strings.Replace(minimalV4, "  tag: \"1.2.0\"", "  tag: \"1.2.0\"\n  binds: [\"/var/run/docker.sock:/var/run/docker.sock\"]", 1),
			bundle.KindSchema, 8, "docker.binds is ignored"},
		{"cog v3's execution multiple is ignored", minimalV4 + "    execution: multiple\n", bundle.KindSchema, 15, "multiple is Cog's old default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := mustLoad(t, []byte(tt.config))
			if tt.want == "" {
				if len(b.Warnings()) != 0 {
					t.Fatalf("expected no warnings, got %v", b.Warnings())
				}
				return
			}
			if !hasWarning(b.Warnings(), tt.line, tt.want) {
				t.Fatalf("expected warning line %d: ...%s..., got %v", tt.line, tt.want, b.Warnings())
			}
			for _, w := range b.Warnings() {
				if w.Kind != tt.kind {
					t.Errorf("expected a %s warning, got %s: %s", tt.kind, w.Kind, w)
				}
			}
		})
	}
}

func TestDocumentLevelProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config string
		kind   bundle.Kind
		line   int
		want   string
	}{
		{"an empty document", "", bundle.KindSyntax, 0, "the config is empty"},
		{"a comment only", "# nothing\n", bundle.KindSyntax, 0, "the config is empty"},
		{"not YAML", "name: [unclosed\n", bundle.KindSyntax, 1, "not valid YAML or JSON"},
		{"a tab-indented YAML error carries its line", "name: a\n\tversion: 1\n", bundle.KindSyntax, 2, "not valid YAML or JSON"},
		{"two documents", minimalV4 + "---\nname: other\n", bundle.KindSyntax, 15, "a second YAML document starts here"},
		{"a list at the root", "- a\n- b\n", bundle.KindSchema, 1, "a bundle config is a mapping of fields"},
		{"no format version", "name: ops\n", bundle.KindSchema, 1, "missing cog_bundle_version (a Cog bundle, 3 to 5) or gort_bundle_version"},
		{"both format versions", "cog_bundle_version: 4\ngort_bundle_version: 1\n", bundle.KindSchema, 2, "declares both cog_bundle_version (line 1) and gort_bundle_version"},
		{"cog's pre-versioned format", "bundle:\n  name: ops\n  type: foreign\n", bundle.KindSchema, 1, "pre-versioned bundle format"},
		{"a future cog version", "cog_bundle_version: 6\n", bundle.KindSchema, 1, "cog_bundle_version 6 is not supported; Logbook reads Cog bundle versions 3, 4 and 5"},
		{"cog version 2 says how to upgrade", "cog_bundle_version: 2\n", bundle.KindSchema, 1, "upgrade the config to version 4: set cog_bundle_version: 4"},
		{"a future gort version", "gort_bundle_version: 2\n", bundle.KindSchema, 1, "gort_bundle_version 2 is not supported"},
		{"an alias", strings.Replace(minimalV4, "description: Operations", "description: &d Operations\nlong_description: *d", 1), bundle.KindSyntax, 4, "YAML aliases (*d) are not supported"},
		{"a merge key", minimalV4 + "  rollback:\n    <<: {executable: /bin/x}\n    rules: [allow]\n", bundle.KindSyntax, 16, "YAML merge keys (<<) are not supported"},
		{"a custom tag", strings.Replace(minimalV4, "name: ops", "name: !env OPS", 1), bundle.KindSyntax, 2, "the YAML tag !env is not supported"},
		{"a document above 1 MiB", minimalV4 + "# " + strings.Repeat("x", bundle.MaxConfigSize) + "\n", bundle.KindSyntax, 0, "the limit is 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs := loadErrors(t, tt.config)
			for _, e := range errs {
				if e.Line == tt.line && e.Kind == tt.kind && strings.Contains(e.Message, tt.want) {
					return
				}
			}
			t.Fatalf("expected %s error line %d: ...%s..., got %v", tt.kind, tt.line, tt.want, errs)
		})
	}
}

func TestAJSONConfigLoadsLikeItsYAMLTwinWithLineNumbers(t *testing.T) {
	t.Parallel()
	config := `{
  "cog_bundle_version": 4,
  "name": "ops",
  "description": "Operations",
  "version": "1.2.0",
  "docker": {"image": "acme/ops", "tag": "1.2.0"},
  "permissions": ["ops:deploy"],
  "commands": {
    "deploy": {
      "executable": "/bin/deploy",
      "options": {"region": {"type": "string", "short_flag": "r", "required": true}},
      "rules": ["must have ops:deploy"]
    }
  }
}`
	b := mustLoad(t, []byte(config))
	c, _ := b.Command("deploy")
	o, ok := c.OptionByShort("r")
	if !ok || o.Name != "region" || !o.Required || o.Line != 11 {
		t.Fatalf("expected -r for the required --region at line 11, got %+v", o)
	}
	errs := loadErrors(t, strings.Replace(config, `"must have ops:deploy"`, `"must have ops:admin"`, 1))
	if !hasProblem(errs, 12, "ops:admin, which is not declared") {
		t.Fatalf("expected the undeclared permission at line 12, got %v", errs)
	}
}

func TestAnInvalidErrorListsEveryErrorInItsMessage(t *testing.T) {
	t.Parallel()
	_, err := bundle.Load([]byte(strings.NewReplacer("name: ops", "name: [ops]", "    rules:", "    rulez:").Replace(minimalV4)))
	if err == nil {
		t.Fatal("expected an error")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "bundle config has 3 errors:\n") || !strings.Contains(msg, "line 2: name: expected a string") {
		t.Fatalf("unexpected message %q", msg)
	}
}
