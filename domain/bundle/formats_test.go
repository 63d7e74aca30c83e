package bundle_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain/bundle"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestAGortBundleLoadsIntoTheSameModel(t *testing.T) {
	t.Parallel()
	b := mustLoad(t, readTestdata(t, "gort-v1.yaml"))
	if len(b.Warnings()) != 0 {
		t.Fatalf("expected no warnings, got %v", b.Warnings())
	}
	if b.Format != bundle.FormatGort || b.FormatVersion != 1 || b.Name != "ec2" || b.Version != "0.4.0" {
		t.Fatalf("unexpected bundle %+v", b)
	}
	if b.ImageName != "registry.example.com:5000/tools/ec2" || b.Tag != "0.4.0" {
		t.Fatalf("expected the registry port kept in the image name, got %q and tag %q", b.ImageName, b.Tag)
	}
	if b.Image() != "registry.example.com:5000/tools/ec2:0.4.0" {
		t.Fatalf("unexpected image %q", b.Image())
	}
	if strings.Join(b.Permissions, ",") != "ec2:view,ec2:destroy" {
		t.Fatalf("expected the permissions qualified with the bundle name, got %v", b.Permissions)
	}
	find, _ := b.Command("find")
	if strings.Join(find.Executable, " ") != "/usr/local/bin/ec2 find" {
		t.Fatalf("expected the argv list, got %q", find.Executable)
	}
	if tpls := find.Templates(); len(tpls) != 1 || tpls[0].Name != "command" {
		t.Fatalf("expected the command template, got %+v", tpls)
	}
	whoami, _ := b.Command("whoami")
	if len(whoami.Executable) != 0 {
		t.Fatalf("expected no executable (the image entrypoint), got %q", whoami.Executable)
	}
	if len(whoami.Triggers) != 1 || whoami.Triggers[0].Match != `^who am i\??$` {
		t.Fatalf("expected the trigger, got %+v", whoami.Triggers)
	}
	if _, ok := b.Template("command_error"); !ok {
		t.Fatal("expected the bundle's command_error template")
	}
	destroy, _ := b.Command("destroy")
	exec := destroy.EffectiveExecution()
	if exec.Mode != bundle.ModeFresh || exec.Timeout == nil || *exec.Timeout != 20*time.Second ||
		exec.MemoryBytes == nil || *exec.MemoryBytes != 64<<20 || exec.CPUs != nil {
		t.Fatalf("expected fresh, the bundle's 20s and the command's 64MiB, got %+v", exec)
	}
}

func TestGortSpecificProblems(t *testing.T) {
	t.Parallel()
	const base = `gort_bundle_version: 1
name: ec2
version: "0.1"
description: d
image: acme/ec2:1.0
permissions: [view]
commands:
  find:
    executable: [/bin/find]
    rules: [must have ec2:view]
`
	t.Run("a version written as a float is read as its text", func(t *testing.T) {
		t.Parallel()
		b := mustLoad(t, []byte(strings.Replace(base, `version: "0.1"`, "version: 0.1", 1)))
		if b.Version != "0.1" {
			t.Fatalf("expected version 0.1, got %q", b.Version)
		}
	})
	t.Run("an image without a tag gets latest with a warning", func(t *testing.T) {
		t.Parallel()
		b := mustLoad(t, []byte(strings.Replace(base, "acme/ec2:1.0", "acme/ec2", 1)))
		if b.Image() != "acme/ec2:latest" || !hasWarning(b.Warnings(), 5, "has no tag") {
			t.Fatalf("expected acme/ec2:latest and a warning, got %q %v", b.Image(), b.Warnings())
		}
	})
	t.Run("a Cog-style docker section is read too", func(t *testing.T) {
		t.Parallel()
		b := mustLoad(t, []byte(strings.Replace(base, "image: acme/ec2:1.0", "docker:\n  image: acme/ec2\n  tag: \"1.0\"", 1)))
		if b.Image() != "acme/ec2:1.0" {
			t.Fatalf("expected acme/ec2:1.0, got %q", b.Image())
		}
	})
	tests := []struct {
		name   string
		config string
		line   int
		want   string
	}{
		{"executable must be a list", strings.Replace(base, "[/bin/find]", "/bin/find", 1), 9, "commands.find.executable: expected a list, found a string"},
		{"Cog's options are not a Gort field", base + "    options: {}\n", 11, `commands.find: unknown field "options"`},
		{"a trigger must be a valid regular expression", base + "    triggers:\n      - match: \"(\"\n", 12, `trigger "(" is not a valid regular expression`},
		{"a trigger needs match", base + "    triggers:\n      - {}\n", 12, `missing required field "match"`},
		{"an unknown template kind", base + "templates:\n  reply: x\n", 12, `templates: unknown field "reply"`},
		{"image and docker together", base + "docker:\n  image: a\n  tag: b\n", 11, "both image (line 5) and docker are set"},
		{"a rule needing an undeclared permission", strings.Replace(base, "ec2:view]", "ec2:admin]", 1), 10, "ec2:admin, which is not declared"},
		{"an image is required", strings.Replace(base, "image: acme/ec2:1.0\n", "", 1), 1, "missing image: a Gort bundle runs in its image"},
		{"description is required", strings.Replace(base, "description: d\n", "", 1), 1, `missing required field "description"`},
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

func TestACogV5BundleLoadsWithEveryOptionTypeAndExecutionSetting(t *testing.T) {
	t.Parallel()
	b := mustLoad(t, readTestdata(t, "cog-v5.yaml"))
	if len(b.Warnings()) != 0 {
		t.Fatalf("expected no warnings, got %v", b.Warnings())
	}
	if b.FormatVersion != 5 || b.ConfigNotes != "Needs a token." || len(b.Env) != 1 || b.Env[0].Name != "DEPLOY_TOKEN" {
		t.Fatalf("unexpected bundle %+v", b)
	}
	c, _ := b.Command("service")
	if c.Output.Description != "The new release" || c.Output.Example != `{"release": 42}` {
		t.Fatalf("expected v5's output mapping, got %+v", c.Output)
	}
	if c.EnvVars["DRY_RUN"] != "false" || c.EnvVars["RETRIES"] != "3" || c.EnvVars["REGION"] != "eu-west-1" {
		t.Fatalf("expected env_vars as text, got %v", c.EnvVars)
	}
	takesValue := map[string]bool{}
	for _, o := range c.Options() {
		takesValue[o.Name] = o.Type.TakesValue()
	}
	want := map[string]bool{"force": false, "verbose": false, "tag": true, "replicas": true, "ratio": true}
	for name, w := range want {
		if takesValue[name] != w {
			t.Errorf("--%s: expected TakesValue %v, got %v", name, w, takesValue[name])
		}
	}
	for short, long := range map[string]string{"f": "force", "v": "verbose", "t": "tag"} {
		if o, ok := c.OptionByShort(short); !ok || o.Name != long {
			t.Errorf("expected -%s to stand for --%s, got %+v", short, long, o)
		}
	}
	if _, ok := c.OptionByShort("r"); ok {
		t.Error("expected -r to stand for nothing")
	}
	if o, _ := c.Option("replicas"); !o.Required || o.Type != bundle.OptionInt {
		t.Errorf("expected --replicas to be a required int, got %+v", o)
	}

	exec := c.EffectiveExecution()
	if exec.Mode != bundle.ModeWarm || *exec.Timeout != 10*time.Minute || *exec.MemoryBytes != 256<<20 ||
		*exec.CPUs != 0.5 || *exec.Pids != 64 || *exec.OutputCapBytes != 1_000_000 {
		t.Fatalf("expected the command's warm and 10m over the bundle's settings, got %+v", exec)
	}
	if b.Execution.Mode != bundle.ModeUnset || *b.Execution.Timeout != 30*time.Second {
		t.Fatalf("expected the bundle's own settings untouched, got %+v", b.Execution)
	}

	rs := c.Rules()
	if len(rs) != 3 || rs[2].Parsed.Command() != "deploy:service" {
		t.Fatalf("expected three parsed rules, got %+v", rs)
	}
	if perms := rs[2].Parsed.Permissions(); strings.Join(perms, ",") != "deploy:prod,site:deployers" {
		t.Fatalf("expected the full-form rule's permissions, got %v", perms)
	}
}

func TestACogV5OutputMustBeAMapping(t *testing.T) {
	t.Parallel()
	config := strings.Replace(string(readTestdata(t, "cog-v5.yaml")),
		"    output:\n      description: The new release\n      example: '{\"release\": 42}'\n", "    output: The new release\n", 1)
	errs := loadErrors(t, config)
	if !hasProblem(errs, 33, "commands.service.output: expected a mapping, found a string") {
		t.Fatalf("expected the v4-style output refused, got %v", errs)
	}
}

func TestExecutionSettings(t *testing.T) {
	t.Parallel()
	withExecution := func(section string) string {
		return minimalV4 + "execution:\n" + section
	}
	valid := []struct {
		name    string
		section string
		check   func(bundle.Execution) bool
	}{
		{"a duration with units", "  timeout: 1h30m\n", func(e bundle.Execution) bool { return *e.Timeout == 90*time.Minute }},
		{"memory in binary units", "  memory: 1GiB\n", func(e bundle.Execution) bool { return *e.MemoryBytes == 1<<30 }},
		{"memory in decimal units, any case", "  memory: 512mb\n", func(e bundle.Execution) bool { return *e.MemoryBytes == 512_000_000 }},
		{"memory as plain bytes", "  memory: 8388608\n", func(e bundle.Execution) bool { return *e.MemoryBytes == 8<<20 }},
		{"a fractional size", "  output_cap: 1.5KiB\n", func(e bundle.Execution) bool { return *e.OutputCapBytes == 1536 }},
		{"a whole number of CPUs", "  cpu: 2\n", func(e bundle.Execution) bool { return *e.CPUs == 2 }},
		{"warm mode", "  mode: warm\n", func(e bundle.Execution) bool { return e.Mode == bundle.ModeWarm }},
		{"a uid, whose gid is the same", "  user: 1000\n", func(e bundle.Execution) bool { return e.User.UID == 1000 && e.User.GID == 1000 && e.User.Line == 16 }},
		{"a uid and a gid", "  user: \"1000:100\"\n", func(e bundle.Execution) bool { return e.User.UID == 1000 && e.User.GID == 100 }},
		{"root, which runs fresh", "  user: 0\n", func(e bundle.Execution) bool { return e.User.UID == 0 && e.User.GID == 0 }},
		{"the most pids Logbook allows, loaded without a site", "  pids: 4194304\n", func(e bundle.Execution) bool { return *e.Pids == 4194304 }},
		{"an empty section leaves everything unset", "  {}\n", func(e bundle.Execution) bool { return e.IsZero() }},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := mustLoad(t, []byte(withExecution(tt.section)))
			if !tt.check(b.Execution) {
				t.Fatalf("unexpected settings %+v", b.Execution)
			}
		})
	}
	invalid := []struct {
		name    string
		section string
		want    string
	}{
		{"an unknown mode", "  mode: hot\n", `execution.mode: "hot" is not a mode; expected fresh or warm`},
		{"a timeout without a unit", "  timeout: 30\n", "execution.timeout: expected a duration such as 30s"},
		{"a negative timeout", "  timeout: -1s\n", "execution.timeout: expected a duration above zero"},
		{"memory below Docker's minimum", "  memory: 1MiB\n", "below the smallest memory limit, 6MiB"},
		{"an unknown size unit", "  output_cap: 3 bananas\n", "execution.output_cap: expected a size above zero"},
		{"a zero size", "  output_cap: 0\n", "execution.output_cap: expected a size above zero"},
		{"an absurd size", "  output_cap: 99999999999GiB\n", "execution.output_cap: expected a size above zero"},
		{"no CPU", "  cpu: 0\n", "execution.cpu: expected a number of CPUs above 0"},
		{"an infinite CPU count", "  cpu: .inf\n", "execution.cpu: expected a number, found a number (.inf)"},
		{"a fractional process limit", "  pids: 1.5\n", "execution.pids: expected a whole number"},
		{"more pids than any site allows", "  pids: 4194305\n", "execution.pids: expected a process limit from 1 to 4194304"},
		{"a user name", "  user: nobody\n", `execution.user: expected a numeric uid such as 1000 (the gid is then the same) or uid:gid such as 1000:100, each at most 2147483647, found "nobody"`},
		{"a negative uid", "  user: -1\n", "execution.user: expected a numeric uid"},
		{"a uid past 32 bits", "  user: 4294967296\n", "execution.user: expected a numeric uid"},
		{"a gid that is not a number", "  user: \"1000:staff\"\n", "execution.user: expected a numeric uid"},
		{"a misspelt setting", "  timout: 5s\n", `execution: unknown field "timout" (did you mean "timeout"?)`},
		{"a list instead of a mapping", "  - fresh\n", "execution: expected a mapping, found a list"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs := loadErrors(t, withExecution(tt.section))
			if !hasProblem(errs, 16, tt.want) && !hasProblem(errs, 15, tt.want) {
				t.Fatalf("expected ...%s..., got %v", tt.want, errs)
			}
		})
	}
}

func TestOverlayReplacesOnlyWhatTheOverrideSets(t *testing.T) {
	t.Parallel()
	second, minute := time.Second, time.Minute
	pids := int64(10)
	base := bundle.Execution{Mode: bundle.ModeWarm, Timeout: &second, Pids: &pids}
	got := base.Overlay(bundle.Execution{Timeout: &minute})
	if got.Mode != bundle.ModeWarm || *got.Timeout != time.Minute || *got.Pids != 10 || got.MemoryBytes != nil {
		t.Fatalf("unexpected overlay %+v", got)
	}
	if *base.Timeout != time.Second {
		t.Fatal("expected the base left unchanged")
	}
}

// A site caps pids (run.DefaultMaxPids unless configured). Validating and
// installing check the cap; reading a config stored before it does not.
func TestASiteCapsTheProcessLimit(t *testing.T) {
	t.Parallel()
	config := []byte(minimalV4 + "execution:\n  pids: 2000\n")
	_, err := bundle.LoadForSite(config, bundle.Site{})
	var invalid *bundle.InvalidError
	if !errors.As(err, &invalid) || !hasProblem(invalid.Errors, 16, "execution.pids: 2000 is above this site's maximum of 1024 processes") {
		t.Fatalf("expected the default maximum named on line 16, got %v", err)
	}
	if b, err := bundle.LoadForSite(config, bundle.Site{MaxPids: 4096}); err != nil || *b.Execution.Pids != 2000 {
		t.Fatalf("expected a site allowing 4096 to accept 2000, got %v", err)
	}
	if b := mustLoad(t, config); *b.Execution.Pids != 2000 {
		t.Fatal("expected a stored config to load whatever the site's maximum")
	}
}

// A warm container's agent runs as root; a command with its uid must run
// fresh. The problem is reported at the user line, once.
func TestACommandCannotRunWarmAsRoot(t *testing.T) {
	t.Parallel()
	twoCommands := minimalV4 + "  status:\n    executable: /bin/status\n    rules:\n      - allow\n"
	tests := []struct {
		name   string
		config string
		line   int // 0: valid
	}{
		{"root set for the bundle, warm for the bundle", twoCommands + "execution:\n  mode: warm\n  user: 0\n", 21},
		{"root set for the bundle, warm for one command", strings.Replace(twoCommands, "    executable: /bin/deploy\n", "    executable: /bin/deploy\n    execution:\n      mode: warm\n", 1) + "execution:\n  user: \"0:0\"\n", 22},
		{"root set for one command of a warm bundle", strings.Replace(twoCommands, "    executable: /bin/status\n", "    executable: /bin/status\n    execution:\n      user: 0\n", 1) + "execution:\n  mode: warm\n", 18},
		{"root warm for the bundle, fresh for its only command", strings.Replace(minimalV4, "    executable: /bin/deploy\n", "    executable: /bin/deploy\n    execution:\n      mode: fresh\n", 1) + "execution:\n  mode: warm\n  user: 0\n", 0},
		{"another user warm", twoCommands + "execution:\n  mode: warm\n  user: 1000\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := bundle.Load([]byte(tt.config))
			if tt.line == 0 {
				if err != nil {
					t.Fatalf("expected it to load, got %v", err)
				}
				return
			}
			var invalid *bundle.InvalidError
			if !errors.As(err, &invalid) || len(invalid.Errors) != 1 || !hasProblem(invalid.Errors, tt.line, "uid 0 (root) cannot run warm: a warm container's agent runs as root, so a command running as root must run fresh") {
				t.Fatalf("expected one problem on line %d, got %v", tt.line, err)
			}
		})
	}
}
