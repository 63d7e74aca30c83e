package main

import (
	"github.com/logbookhq/logbook/internal/testenv"

	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const bundleTestValidConfig = `cog_bundle_version: 4
name: ops
description: Operations
version: "1.0"
docker:
  image: acme/ops
  tag: "1.0"
permissions: [ops:deploy]
commands:
  deploy:
    executable: /bin/deploy
    rules: [must have ops:deploy]
`

// bundleTestWarnedConfig is valid with one warning, an ignored enforcing.
var bundleTestWarnedConfig = bundleTestValidConfig + "    enforcing: false\n"

// bundleTestInvalidConfig has a schema error on line 2 and a repeated
// rules key on line 13.
var bundleTestInvalidConfig = strings.Replace(bundleTestValidConfig, "name: ops", "name: [ops]", 1) + "    executable: /bin/other\n"

func bundleTestWrite(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func bundleTestExitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		t.Fatalf("expected an exit code, got %v", err)
	}
	return ee.code
}

func TestBundleValidatePrintsOkForAValidFile(t *testing.T) {
	t.Parallel()
	good := bundleTestWrite(t, "good.yaml", bundleTestValidConfig)
	out, _, err := runCLIOutput(t, "bundle", "validate", good)
	if code := bundleTestExitCode(t, err); code != 0 {
		t.Fatalf("expected exit 0, got %d", code)
	}
	if out != good+": ok\n" {
		t.Fatalf("unexpected output %q", out)
	}
}

func TestBundleValidateReportsEachFileAndExitsWithTheWorstOutcome(t *testing.T) {
	t.Parallel()
	warned := bundleTestWrite(t, "warned.yaml", bundleTestWarnedConfig)
	bad := bundleTestWrite(t, "bad.yaml", bundleTestInvalidConfig)
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	tests := []struct {
		name    string
		files   []string
		code    int
		stdout  []string
		stderr  string
		notSeen string
	}{
		{"a valid file with a warning is ok and shows the warning", []string{warned}, 0,
			[]string{warned + ": ok", warned + ":13: warning: commands.deploy.enforcing is ignored"}, "", ""},
		{"an invalid file prints every error with its line and exits 1", []string{bad}, 1,
			[]string{bad + ":2: name: expected a string, found a list", bad + `:13: commands.deploy: "executable" repeats the key first defined at line`}, "", bad + ": ok"},
		{"one invalid file among valid ones exits 1", []string{warned, bad}, 1,
			[]string{warned + ": ok", bad + ":2: "}, "", ""},
		{"an unreadable file exits 2 even beside an invalid one", []string{bad, missing}, 2,
			[]string{bad + ":2: "}, missing + ": cannot read: ", ""},
		{"a directory cannot be read", []string{filepath.Dir(missing)}, 2, nil, ": cannot read: ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, errOut, err := runCLIOutput(t, append([]string{"bundle", "validate"}, tt.files...)...)
			if code := bundleTestExitCode(t, err); code != tt.code {
				t.Fatalf("expected exit %d, got %d (stdout %q, stderr %q)", tt.code, code, out, errOut)
			}
			for _, want := range tt.stdout {
				if !strings.Contains(out, want) {
					t.Errorf("expected stdout to contain %q, got %q", want, out)
				}
			}
			if !strings.Contains(errOut, tt.stderr) {
				t.Errorf("expected stderr to contain %q, got %q", tt.stderr, errOut)
			}
			if tt.notSeen != "" && strings.Contains(out, tt.notSeen) {
				t.Errorf("expected stdout not to contain %q, got %q", tt.notSeen, out)
			}
		})
	}
}

func TestBundleValidateJSONListsEveryFile(t *testing.T) {
	t.Parallel()
	warned := bundleTestWrite(t, "warned.yaml", bundleTestWarnedConfig)
	bad := bundleTestWrite(t, "bad.json", `{"cog_bundle_version": 4, "name": 1.5}`)
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	out, _, err := runCLIOutput(t, "bundle", "validate", "--json", warned, bad, missing)
	if code := bundleTestExitCode(t, err); code != 2 {
		t.Fatalf("expected exit 2, got %d", code)
	}
	var reports []struct {
		File   string `json:"file"`
		OK     bool   `json:"ok"`
		Errors []struct {
			Line    int    `json:"line"`
			Message string `json:"message"`
		} `json:"errors"`
		Warnings []struct {
			Line    int    `json:"line"`
			Message string `json:"message"`
		} `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(out), &reports); err != nil {
		t.Fatalf("expected a JSON list, got %q: %v", out, err)
	}
	if len(reports) != 3 {
		t.Fatalf("expected three reports, got %d", len(reports))
	}
	if r := reports[0]; r.File != warned || !r.OK || len(r.Errors) != 0 || len(r.Warnings) != 1 || r.Warnings[0].Line != 13 {
		t.Errorf("unexpected report for the warned file: %+v", r)
	}
	if r := reports[1]; r.File != bad || r.OK || len(r.Errors) == 0 || r.Errors[0].Line != 1 {
		t.Errorf("unexpected report for the bad file: %+v", r)
	}
	if r := reports[2]; r.OK || len(r.Errors) != 1 || !strings.HasPrefix(r.Errors[0].Message, "cannot read: ") {
		t.Errorf("unexpected report for the missing file: %+v", r)
	}
	if !strings.Contains(out, `"warnings": []`) {
		t.Errorf("expected empty lists written as [], got %s", out)
	}
}

func TestBundleValidateNeedsAFile(t *testing.T) {
	t.Parallel()
	if _, _, err := runCLIOutput(t, "bundle", "validate"); err == nil {
		t.Fatal("expected an error without files")
	}
}

func TestBundleValidateOnThePublishedCogBundles(t *testing.T) {
	t.Parallel()
	dir := testenv.CogBundlesDir(t)
	statuspage := filepath.Join(dir, "cogcmd__statuspage__config.yaml")
	grafana := filepath.Join(dir, "cogcmd__grafana__config.yaml")
	out, _, err := runCLIOutput(t, "bundle", "validate", grafana, statuspage)
	if code := bundleTestExitCode(t, err); code != 0 {
		t.Fatalf("expected exit 0, got %d", code)
	}
	want := grafana + ": ok\n" + statuspage + ": ok\n" +
		statuspage + `:52: warning: commands.incident: "rules" repeats the key first defined at line 29; Logbook keeps the rules of both (a YAML decoder would keep only the last list and silently drop the first), so merge them into one list` + "\n"
	if out != want {
		t.Fatalf("expected\n%s\ngot\n%s", want, out)
	}
}

// A bundle may ask for at most the site's maximum of pids, LOGBOOK_MAX_PIDS
// (1024 unless set); validate names the line and the maximum.
func TestBundleValidateHoldsPidsToTheSitesMaximum(t *testing.T) {
	file := bundleTestWrite(t, "greedy.yaml", bundleTestValidConfig+"execution:\n  pids: 2000\n")
	out, _, err := runCLIOutput(t, "bundle", "validate", file)
	if code := bundleTestExitCode(t, err); code != 1 || out != file+":14: execution.pids: 2000 is above this site's maximum of 1024 processes\n" {
		t.Fatalf("exit %d, output %q; want line 14 naming the maximum 1024", code, out)
	}
	t.Setenv("LOGBOOK_MAX_PIDS", "4096")
	if out, _, err := runCLIOutput(t, "bundle", "validate", file); bundleTestExitCode(t, err) != 0 || out != file+": ok\n" {
		t.Fatalf("with LOGBOOK_MAX_PIDS=4096: %q, %v", out, err)
	}
	t.Setenv("LOGBOOK_MAX_PIDS", "lots")
	if _, _, err := runCLIOutput(t, "bundle", "validate", file); bundleTestExitCode(t, err) != 2 {
		t.Fatalf("with a bad LOGBOOK_MAX_PIDS: %v, want exit 2", err)
	}
}
