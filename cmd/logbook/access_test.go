package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/rules"
)

func TestAccessExplainPrintsATablePerStageAndExitsByTheVerdict(t *testing.T) {
	var asked map[string]string
	explanation := httpapi.AccessExplanation{
		User: "bob", Text: "toolbox:echo hi | toolbox:shout", Denied: "stage 2 (toolbox:shout): missing permission toolbox:shout",
		Stages: []httpapi.StageExplanation{
			{Stage: 1, Command: "toolbox:echo", Allowed: true, Rule: "when command is toolbox:echo allow", Requires: "allow",
				Detail: rules.Explanation{Summary: "allowed: rule `when command is toolbox:echo allow` applies to every invocation of toolbox:echo and allows every user."}},
			{Stage: 2, Command: "toolbox:shout", Rule: "when command is toolbox:shout must have toolbox:shout", Requires: "toolbox:shout",
				Reason: "missing permission toolbox:shout"},
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/access/explain" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewDecoder(r.Body).Decode(&asked)
		_ = json.NewEncoder(w).Encode(explanation)
	}))
	defer srv.Close()
	t.Setenv("LOGBOOK_URL", srv.URL)
	t.Setenv("LOGBOOK_TOKEN", "tok")

	out, _, err := runCLIOutput(t, "access", "explain", "--user", "bob", "toolbox:echo hi | toolbox:shout")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("a denied pipeline exited %v, want 1", err)
	}
	if asked["user"] != "bob" || asked["text"] != "toolbox:echo hi | toolbox:shout" {
		t.Fatalf("asked %v", asked)
	}
	for _, want := range []string{
		"would be denied for bob",
		"STAGE  COMMAND",
		"1      toolbox:echo   allowed",
		"2      toolbox:shout  denied",
		"stage 2 (toolbox:shout): missing permission toolbox:shout",
		"denied: stage 2",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}

	explanation.Allowed, explanation.Denied = true, ""
	explanation.Stages = explanation.Stages[:1]
	out, _, err = runCLIOutput(t, "access", "explain", "--json", "toolbox:echo hi")
	if err != nil {
		t.Fatalf("an allowed pipeline: %v", err)
	}
	var back httpapi.AccessExplanation
	if err := json.Unmarshal([]byte(out), &back); err != nil || !back.Allowed || len(back.Stages) != 1 {
		t.Fatalf("--json printed %s (%v)", out, err)
	}

	explanation.Approvals = []dispatch.ApprovalRequirement{{Permission: "deploy:approver", Needed: 2, Stages: []int{0}}}
	explanation.Approvers = []string{"dave", "erin"}
	out, _, err = runCLIOutput(t, "access", "explain", "toolbox:echo hi")
	if err != nil {
		t.Fatalf("a pipeline allowed once approved: %v", err)
	}
	for _, want := range []string{"would be allowed once approved for bob", "before anything runs it needs 2 approvals from deploy:approver, never bob's own (may approve now: dave, erin)"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
}
