package webui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/internal/testenv"
)

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

// withApprovals gives the fixture the rel bundle, carol (who may run
// rel:prod, with a token) and makes bob an approver; it returns carol's
// token.
func withApprovals(t *testing.T, f *fixture) string {
	t.Helper()
	carol := "lbk_carol_" + strings.Repeat("c", 20)
	f.append(t, bundle.Stream("rel"),
		bundle.BundleInstalled{Name: "rel", Version: "1.0.0", Config: relConfig, Permissions: []string{"rel:run", "rel:approver"}},
		bundle.BundleEnabled{Name: "rel", Version: "1.0.0"})
	f.append(t, access.UserStream("u-carol"), access.UserCreated{User: "u-carol", Username: "carol"}, access.TokenIssued{User: "u-carol", Hash: access.HashToken(carol)})
	f.append(t, access.RoleStream("runner"), access.RoleCreated{Role: "runner"}, access.PermissionGranted{Role: "runner", Permission: "rel:run"})
	f.append(t, access.RoleStream("approver"), access.RoleCreated{Role: "approver"}, access.PermissionGranted{Role: "approver", Permission: "rel:approver"})
	f.append(t, access.GroupStream("runners"), access.GroupCreated{Group: "runners"}, access.MemberAdded{Group: "runners", User: "u-carol"}, access.RoleGranted{Group: "runners", Role: "runner"})
	f.append(t, access.GroupStream("approvers"), access.GroupCreated{Group: "approvers"}, access.MemberAdded{Group: "approvers", User: bobID}, access.RoleGranted{Group: "approvers", Role: "approver"})
	testenv.Eventually(t, "carol's token and bob's grant", func() bool {
		_, ok := f.facts.UserForToken(carol)
		return ok && len(f.facts.Holders("rel:approver")) == 1
	})
	return carol
}

func TestAnApproverAnswersOnTheApprovalsPageAndTheRequestPageShowsWho(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	carol, bob := f.login(t, withApprovals(t, f)), f.login(t, f.bobToken)
	id := carol.say("rel:prod web")

	var page string
	testenv.Eventually(t, "the approval on bob's page", func() bool {
		_, page = bob.get("/approvals")
		return strings.Contains(page, `data-request="`+id+`"`)
	})
	for _, want := range []string{"carol", "rel:prod web", "1 approval from rel:approver", `action="/approvals/` + id + `/approve"`, `action="/approvals/` + id + `/reject"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("bob's approvals page lacks %q:\n%s", want, page)
		}
	}
	if _, own := carol.get("/approvals"); strings.Contains(own, `action="/approvals/`+id+`/approve"`) || !strings.Contains(own, "yours: someone else must answer") {
		t.Fatalf("carol's page offers her an answer to her own request:\n%s", own)
	}
	_, history := carol.get("/history?status=awaiting-approval")
	if !strings.Contains(history, id) {
		t.Fatalf("carol's history awaiting approval lacks %s", id)
	}

	answer := func(b *browser, verdict, reason string) (int, string) {
		resp := b.post("/approvals/"+id+"/"+verdict, url.Values{"csrf": {b.csrf}, "reason": {reason}}, nil)
		body := readAll(t, resp)
		return resp.StatusCode, body
	}
	if status, body := answer(carol, "approve", ""); status != http.StatusOK || !strings.Contains(body, "is your own; someone else must approve it") {
		t.Fatalf("carol approving her own: %d %s", status, body)
	}
	if status, _ := answer(bob, "reject", ""); status != http.StatusBadRequest {
		t.Fatalf("a rejection without a reason: %d", status)
	}
	if resp := bob.post("/approvals/"+id+"/approve", url.Values{"reason": {"no csrf"}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an answer without the CSRF token: %d", resp.StatusCode)
	}
	status, body := answer(bob, "approve", "checked the diff")
	if status != http.StatusOK || !strings.Contains(body, "that was the last approval it needed") {
		t.Fatalf("bob approving: %d %s", status, body)
	}

	testenv.Eventually(t, "the request page to show bob's approval", func() bool {
		_, page = carol.get("/requests/" + id)
		return strings.Contains(page, `id="approval-state">approved`)
	})
	// carol's own approval was refused before it reached her request: the
	// refusal is in the request that carried it, not among the answers.
	for _, want := range []string{"1 approval from rel:approver", `<tr class="answer-approved"><td>bob</td><td>approve</td><td>approved</td><td>checked the diff</td>`} {
		if !strings.Contains(page, want) {
			t.Fatalf("the request page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, `/approvals/`+id+`/approve`) {
		t.Fatal("the request page still offers answers once approved")
	}
}

func TestAUsersPageSaysWhichCommandsNeedApproval(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	carol := f.login(t, withApprovals(t, f))
	_, page := carol.get("/users/carol")
	row := page[strings.Index(page, "<code>rel:prod</code>"):]
	row = row[:strings.Index(row, "</tr>")]
	if !strings.Contains(row, `<td class="approval">1 approval from rel:approver always</td>`) || !strings.Contains(row, "allowed") {
		t.Fatalf("rel:prod's row on carol's page: %s", row)
	}
	if !strings.Contains(page, `<td class="approval">no</td>`) {
		t.Fatal("no command says it needs no approval")
	}
}
