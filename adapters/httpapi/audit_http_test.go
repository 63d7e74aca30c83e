package httpapi_test

import (
	"context"
	"encoding/hex"
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
