package httpapi_test

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/adapters/httpapi"
)

func TestAuditVerifyWalksTheWholeChainForAnAdmin(t *testing.T) {
	t.Parallel()
	// Given a platform with a few requests recorded.
	p := newPlatform(t)
	p.say(t, p.adminToken, "echo one")
	p.say(t, p.adminToken, "echo two")

	// When the admin asks for a verification.
	report := getJSON[httpapi.AuditReport](t, p, "/v1/audit/verify", p.adminToken)

	// Then it covers the log up to at least the head before the call, and
	// names the head's hash as the store has it.
	head, hash, err := p.store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !report.OK || report.FirstBadPosition != 0 || report.Reason != "" {
		t.Fatalf("report %+v, want ok", report)
	}
	if report.Checked != report.HeadPosition || report.HeadPosition > head || report.HeadPosition < 10 {
		t.Fatalf("checked %d, head %d; the store's head is %d", report.Checked, report.HeadPosition, head)
	}
	if report.HeadPosition == head && report.HeadHash != hex.EncodeToString(hash) {
		t.Fatalf("head hash %s, the store's %x", report.HeadHash, hash)
	}
	if report.DurationMS <= 0 {
		t.Fatalf("duration %v", report.DurationMS)
	}
}

func TestAuditVerifyFromAPosition(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	p.say(t, p.adminToken, "echo one")
	report := getJSON[httpapi.AuditReport](t, p, "/v1/audit/verify?from=5", p.adminToken)
	if !report.OK || report.From != 5 || report.Checked != report.HeadPosition-4 {
		t.Fatalf("from 5: %+v, want ok over head-4 events", report)
	}
	for _, from := range []string{"0", "-1", "x", "99999999"} {
		status, _, body := p.do(t, "GET", "/v1/audit/verify?from="+from, p.adminToken, nil)
		if status != 400 || !strings.Contains(string(body), "parameter from") {
			t.Errorf("from=%s: %d %s, want 400 naming from", from, status, body)
		}
	}
}
