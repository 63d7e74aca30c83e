package main

import (
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/projections"
)

func TestApprovalsListsTheApprovalsAsATableOrJSON(t *testing.T) {
	expires := time.Date(2026, 3, 1, 12, 15, 0, 0, time.UTC)
	page := httpapi.ApprovalsPage{Approvals: []httpapi.ApprovalView{{
		ApprovalRow: projections.ApprovalRow{RequestID: "0190aaaa-1111-7000-8000-000000000001", Requester: "alice", Text: "rel:prod db",
			Needs: "2 approvals from rel:approver", Status: projections.ApprovalPending, ApprovedBy: "bob", ExpiresAt: sql.NullInt64{Int64: expires.UnixMicro(), Valid: true}},
		Expires: &expires,
	}}, NextCursor: "42"}
	var asked string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = r.URL.RequestURI()
		_ = json.NewEncoder(w).Encode(page)
	}))
	defer srv.Close()
	t.Setenv("LOGBOOK_URL", srv.URL)
	t.Setenv("LOGBOOK_TOKEN", "tok")

	out, errOut, err := runCLIOutput(t, "approvals", "--pending")
	if err != nil {
		t.Fatal(err)
	}
	if asked != "/v1/approvals?limit=50&status=pending" {
		t.Fatalf("asked %s", asked)
	}
	for _, want := range []string{"REQUEST", "REQUESTER  STATUS", "0190aaaa-1111-7000-8000-000000000001", "alice", "pending", "2 approvals from rel:approver", "bob", "rel:prod db"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "--cursor 42") {
		t.Fatalf("stderr %q", errOut)
	}
	out, _, err = runCLIOutput(t, "approvals", "--json", "--requester", "alice")
	var back httpapi.ApprovalsPage
	if err != nil || json.Unmarshal([]byte(out), &back) != nil || len(back.Approvals) != 1 || back.NextCursor != "42" {
		t.Fatalf("--json printed %s (%v)", out, err)
	}
	if asked != "/v1/approvals?limit=50&requester=alice" {
		t.Fatalf("asked %s", asked)
	}
	var ee *exitError
	if _, _, err := runCLIOutput(t, "approvals", "--pending", "--status", "expired"); !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("--pending with another --status: %v", err)
	}
}

func TestApproveAndRejectExitByWhetherTheAnswerCounts(t *testing.T) {
	var path string
	var body map[string]string
	answer := httpapi.AnswerResponse{RequestID: "b", Counted: false, Reply: dispatch.Reply{Text: "your approval does not count: request 0190aaaa is your own", Failed: true}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		_ = json.NewDecoder(r.Body).Decode(&body)
		_ = json.NewEncoder(w).Encode(answer)
	}))
	defer srv.Close()
	t.Setenv("LOGBOOK_URL", srv.URL)
	t.Setenv("LOGBOOK_TOKEN", "tok")

	out, _, err := runCLIOutput(t, "approve", "0190aaaa-1111-7000-8000-000000000001", "looks", "good")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(out, "is your own") {
		t.Fatalf("a refused approval: %v %q", err, out)
	}
	if path != "/v1/approvals/0190aaaa-1111-7000-8000-000000000001/approve" || body["reason"] != "looks good" {
		t.Fatalf("sent %s %v", path, body)
	}
	answer = httpapi.AnswerResponse{RequestID: "c", Counted: true, Reply: dispatch.Reply{Text: "Rejected request 0190aaaa: it will not run."}}
	out, _, err = runCLIOutput(t, "reject", "0190aaaa-1111-7000-8000-000000000001", "not", "now")
	if err != nil || !strings.Contains(out, "it will not run") || path != "/v1/approvals/0190aaaa-1111-7000-8000-000000000001/reject" || body["reason"] != "not now" {
		t.Fatalf("a rejection: %v %q %s %v", err, out, path, body)
	}
	if _, _, err := runCLIOutput(t, "reject", "0190aaaa-1111-7000-8000-000000000001"); err == nil {
		t.Fatal("a rejection without a reason was sent")
	}
}

func TestSayWithoutWaitingPrintsTheRequestAtOnce(t *testing.T) {
	var asked string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = r.URL.RequestURI()
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]string{"request_id": "0190aaaa-1111-7000-8000-000000000001"})
	}))
	defer srv.Close()
	t.Setenv("LOGBOOK_URL", srv.URL)
	t.Setenv("LOGBOOK_TOKEN", "tok")
	out, _, err := runCLIOutput(t, "say", "--no-wait", "rel:prod db")
	if err != nil || asked != "/v1/requests" || !strings.Contains(out, "request 0190aaaa-1111-7000-8000-000000000001 recorded") {
		t.Fatalf("asked %s, printed %q, %v", asked, out, err)
	}
}
