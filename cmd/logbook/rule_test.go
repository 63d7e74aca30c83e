package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRuleCheck(t *testing.T) {
	const prodRule = `when command is ops:deploy with arg[0] == "prod" must have ops:prod`
	cases := []struct {
		name     string
		args     []string
		stdout   string
		exitCode int
	}{
		{"a user holding the permission is allowed", []string{"--rule", prodRule, "--perm", "ops:prod", "--", "ops:deploy prod"}, "allowed\n", 0},
		{"a user without the permission is denied", []string{"--rule", prodRule, "--perm", "ops:staging", "--", "ops:deploy prod"}, "denied\n", 1},
		{"an invocation the rule does not cover is no match", []string{"--rule", prodRule, "--", "ops:deploy staging"}, "no match\n", 1},
		{"an allow rule allows without permissions", []string{"--rule", "when command is ops:status allow", "--", "ops:status --verbose"}, "allowed\n", 0},
		{"options are matched by name", []string{"--rule", `when command is ops:deploy with option[region] == "eu" must have ops:eu`, "--perm", "ops:eu", "--", "ops:deploy --region=eu"}, "allowed\n", 0},
		{"a rule that does not parse exits 2", []string{"--rule", "when command is deploy allow", "--", "ops:deploy"}, "", 2},
		{"an invocation that does not parse exits 2", []string{"--rule", prodRule, "--", `ops:deploy "prod`}, "", 2},
		{"a bare command name exits 2", []string{"--rule", prodRule, "--", "deploy prod"}, "", 2},
		{"a pipeline exits 2", []string{"--rule", prodRule, "--", "ops:deploy prod | ops:notify"}, "", 2},
		{"a rule asking for approval says which approvals it needs", []string{"--rule", `when command is deploy:prod with arg[0] == 'db' must have deploy:run with 2 approvals from deploy:approver`,
			"--perm", "deploy:run", "--", "deploy:prod db"}, "allowed once approved: 2 approvals from deploy:approver\n", 0},
		{"an approval clause does not let a user without the permission in", []string{"--rule", `when command is deploy:prod must have deploy:run with approval from deploy:approver`,
			"--perm", "deploy:approver", "--", "deploy:prod"}, "denied\n", 1},
		{"a malformed approval clause exits 2", []string{"--rule", `when command is deploy:prod must have deploy:run with 2 approval from deploy:approver`, "--", "deploy:prod"}, "", 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, _, err := runCLIOutput(t, append([]string{"rule", "check"}, c.args...)...)
			code := 0
			if ee, ok := err.(*exitError); ok {
				code = ee.code
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.exitCode || stdout != c.stdout {
				t.Fatalf("exit %d, stdout %q; want exit %d, stdout %q (err %v)", code, stdout, c.exitCode, c.stdout, err)
			}
		})
	}
}

func TestRuleCheckJSONExplainsTheDecision(t *testing.T) {
	stdout, _, err := runCLIOutput(t, "rule", "check", "--json",
		"--rule", `when command is ops:deploy with arg[0] == "prod" must have ops:prod and ops:deploy`, "--perm", "ops:deploy", "--", "ops:deploy prod")
	if ee, ok := err.(*exitError); !ok || ee.code != 1 {
		t.Fatalf("err = %v, want exit 1", err)
	}
	var explanation struct {
		Allowed bool     `json:"allowed"`
		Rule    string   `json:"rule"`
		Missing []string `json:"missing"`
		Held    []string `json:"held"`
	}
	if err := json.Unmarshal([]byte(stdout), &explanation); err != nil {
		t.Fatalf("--json printed %q: %v", stdout, err)
	}
	if explanation.Allowed || !strings.HasPrefix(explanation.Rule, "when command is ops:deploy") ||
		len(explanation.Missing) != 1 || explanation.Missing[0] != "ops:prod" || len(explanation.Held) != 1 {
		t.Fatalf("explanation = %+v", explanation)
	}
}
