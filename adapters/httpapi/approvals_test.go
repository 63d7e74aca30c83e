package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/internal/testenv"
	"github.com/logbookhq/logbook/projections"
)

// relConfig's prod command needs an approval from rel:approver.
const relConfig = `cog_bundle_version: 4
name: rel
description: Releases
version: "1.0.0"
docker:
  image: acme/rel
  tag: "1.0.0"
permissions:
  - rel:run
  - rel:approver
commands:
  prod:
    executable: /bin/prod
    rules:
      - must have rel:run with approval from rel:approver
`

func TestApprovalsAreAskedForListedAndAnsweredThroughTheAPI(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		approvalsThroughTheAPI(t, newPlatform(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		approvalsThroughTheAPI(t, newPlatformOn(t, openPostgres(t)))
	})
}

func approvalsThroughTheAPI(t *testing.T, p *platform) {
	// Given alice who may run rel:prod, bob who may approve it, and carol
	// who holds neither.
	if _, err := dispatcher.InstallBundle(context.Background(), p.store, []byte(relConfig), "test"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the rel bundle to be known", func() bool { return p.facts.BundleInstalled("rel") })
	p.say(t, p.adminToken, "bundle enable rel 1.0.0")
	alice, bob, carol := p.addUser(t, "alice"), p.addUser(t, "bob"), p.addUser(t, "carol")
	for _, text := range []string{
		"role create runners", "role grant runners rel:run", "group create runners", "group add runners alice", "group grant runners runners",
		"role create approvers", "role grant approvers rel:approver", "group create approvers", "group add approvers bob", "group grant approvers approvers",
	} {
		p.say(t, p.adminToken, text)
	}

	// The explanation says what the request would wait for.
	status, _, raw := p.do(t, http.MethodPost, "/v1/access/explain", alice, mustMarshal(t, map[string]string{"text": "rel:prod web"}))
	e := mustJSON[httpapi.AccessExplanation](t, status, raw)
	if !e.Allowed || len(e.Approvals) != 1 || e.Approvals[0].Permission != "rel:approver" || e.Approvals[0].Needed != 1 ||
		!slices.Equal(e.Approvers, []string{"bob"}) || len(e.Stages[0].Approvals) != 1 {
		t.Fatalf("explanation %s", raw)
	}

	// When alice asks, the request waits.
	status, _, raw = p.do(t, http.MethodPost, "/v1/requests", alice, mustMarshal(t, map[string]string{"text": "rel:prod web"}))
	if status != http.StatusAccepted {
		t.Fatalf("POST /v1/requests: %d %s", status, raw)
	}
	var asked struct {
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(raw, &asked); err != nil {
		t.Fatal(err)
	}
	id := asked.RequestID
	var pending httpapi.ApprovalsPage
	testenv.Eventually(t, "the approval listed as pending", func() bool {
		pending = getJSON[httpapi.ApprovalsPage](t, p, "/v1/approvals?status=pending", bob)
		return len(pending.Approvals) == 1
	})
	if a := pending.Approvals[0]; a.RequestID != id || a.Requester != "alice" || a.Needs != "1 approval from rel:approver" || a.Expires == nil {
		t.Fatalf("pending %+v", a)
	}
	if got := getJSON[httpapi.ApprovalsPage](t, p, "/v1/approvals", carol); len(got.Approvals) != 0 {
		t.Fatalf("carol, who may not answer it, lists %+v", got.Approvals)
	}
	if status, _, _ := p.do(t, http.MethodGet, "/v1/approvals/"+id, carol, nil); status != http.StatusNotFound {
		t.Fatalf("carol reading the approval: %d", status)
	}
	history := getJSON[httpapi.HistoryPage](t, p, "/v1/history?status=awaiting-approval", alice)
	if len(history.Requests) != 1 || history.Requests[0].RequestID != id {
		t.Fatalf("alice's history awaiting approval: %+v", history.Requests)
	}

	// alice's own approval is refused; carol may not even see the request;
	// bob's approval counts.
	for _, who := range []struct {
		token, want string
		counted     bool
	}{
		{alice, "is your own; someone else must approve it", false},
		{bob, "that was the last approval it needed", true},
	} {
		status, _, raw := p.do(t, http.MethodPost, "/v1/approvals/"+id+"/approve", who.token, mustMarshal(t, map[string]string{"reason": "looks right"}))
		answer := mustJSON[httpapi.AnswerResponse](t, status, raw)
		if answer.Counted != who.counted || !strings.Contains(answer.Reply.Text, who.want) {
			t.Fatalf("answer %s, want counted %v and %q", raw, who.counted, who.want)
		}
	}
	if status, _, raw := p.do(t, http.MethodPost, "/v1/approvals/"+id+"/approve", carol, mustMarshal(t, map[string]string{})); status != http.StatusNotFound {
		t.Fatalf("carol approving: %d %s, want the 404 of a missing approval", status, raw)
	}
	var detail httpapi.ApprovalDetail
	testenv.Eventually(t, "the approval approved", func() bool {
		detail = getJSON[httpapi.ApprovalDetail](t, p, "/v1/approvals/"+id, alice)
		return detail.Approval.Status == projections.ApprovalApproved
	})
	if detail.Approval.ApprovedBy != "bob" || len(detail.Answers) != 1 || detail.Answers[0].Username != "bob" || detail.Answers[0].Reason != "looks right" {
		t.Fatalf("detail %+v", detail)
	}
	status, _, raw = p.do(t, http.MethodPost, "/v1/approvals/"+id+"/reject", bob, mustMarshal(t, map[string]string{}))
	if status != http.StatusBadRequest || !strings.Contains(string(raw), "reason") {
		t.Fatalf("a rejection without a reason: %d %s", status, raw)
	}
	if status, _, raw := p.do(t, http.MethodGet, "/v1/approvals?status=maybe", bob, nil); status != http.StatusBadRequest {
		t.Fatalf("a bad status: %d %s", status, raw)
	}
	events := getJSON[httpapi.RequestDetail](t, p, "/v1/requests/"+id, alice)
	var types []string
	for _, e := range events.Events {
		types = append(types, e.Type)
	}
	if !slices.Contains(types, "RequestApproved") || !slices.Contains(types, "StageStarted") {
		t.Fatalf("request events %v", types)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
